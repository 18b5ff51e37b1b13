package install

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/internal/ident"
	"github.com/meshctl/meshctl/schema"
)

func ids(objs []*unstructured.Unstructured) []string {
	out := make([]string, len(objs))
	for i, u := range objs {
		out[i] = ident.ID(u.GetKind(), u.GetNamespace(), u.GetName())
	}
	return out
}

func mustObjects(t *testing.T, o Options) []*unstructured.Unstructured {
	t.Helper()
	objs, err := Objects(o)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func typed[T any](t *testing.T, objs []*unstructured.Unstructured, kind, namespace, name string) *T {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() == kind && u.GetNamespace() == namespace && u.GetName() == name {
			out := new(T)
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
				t.Fatal(err)
			}
			return out
		}
	}
	t.Fatalf("no %s", ident.ID(kind, namespace, name))
	return nil
}

// TestInstallObjects: the objects, in apply order, and the Deployment's command
// line and volumes for each way mesh.cue arrives.
func TestInstallObjects(t *testing.T) {
	base := []string{"Namespace/meshctl", "ServiceAccount/meshctl/meshctl-reconciler", "ClusterRole/meshctl-reconciler",
		"ClusterRoleBinding/meshctl-reconciler", "Role/meshctl/meshctl-reconciler", "RoleBinding/meshctl/meshctl-reconciler"}
	flags := []string{"--leader-elect", "--metrics-addr=:8080", "--health-addr=:8081", "--log-format=json"}
	tests := []struct {
		name    string
		edit    func(*Options)
		ns      string
		ids     []string
		args    []string
		volumes []string
		source  *rbacv1.PolicyRule
	}{{
		name:    "configmap",
		edit:    func(*Options) {},
		ns:      "meshctl",
		ids:     append(slices.Clone(base), "Deployment/meshctl/meshctl-reconciler"),
		args:    append(append([]string{"reconcile", "/etc/mesh/mesh.cue"}, flags...), "--interval=10m0s", "--meshctl-namespace=meshctl"),
		volumes: []string{"tmp:/tmp", "mesh:/etc/mesh"},
	}, {
		name:    "one cluster of a fleet",
		edit:    func(o *Options) { o.Cluster = "west" },
		ns:      "meshctl",
		ids:     append(slices.Clone(base), "Deployment/meshctl/meshctl-reconciler"),
		args:    append(append([]string{"reconcile", "/etc/mesh/mesh.cue"}, flags...), "--interval=10m0s", "--meshctl-namespace=meshctl", "--cluster=west"),
		volumes: []string{"tmp:/tmp", "mesh:/etc/mesh"},
	}, {
		name: "git repository",
		edit: func(o *Options) {
			o.Source, o.SourcePath, o.Interval = "flux:GitRepository/flux-system/mesh", "clusters/prod/mesh.cue", time.Minute
		},
		ns: "meshctl",
		ids: append(slices.Clone(base), "Role/flux-system/meshctl-reconciler-source", "RoleBinding/flux-system/meshctl-reconciler-source",
			"Deployment/meshctl/meshctl-reconciler"),
		args: append(append([]string{"reconcile"}, flags...), "--interval=1m0s", "--meshctl-namespace=meshctl",
			"--source=flux:GitRepository/flux-system/mesh", "--source-path=clusters/prod/mesh.cue"),
		volumes: []string{"tmp:/tmp"},
		source:  &rbacv1.PolicyRule{APIGroups: []string{"source.toolkit.fluxcd.io"}, Resources: []string{"gitrepositories"}, ResourceNames: []string{"mesh"}, Verbs: []string{"get", "list", "watch"}},
	}, {
		name: "oci repository in another namespace",
		edit: func(o *Options) { o.Source, o.Namespace = "flux:OCIRepository/flux/mesh-oci", "mesh-system" },
		ns:   "mesh-system",
		ids: []string{"Namespace/mesh-system", "ServiceAccount/mesh-system/meshctl-reconciler", "ClusterRole/meshctl-reconciler",
			"ClusterRoleBinding/meshctl-reconciler", "Role/mesh-system/meshctl-reconciler", "RoleBinding/mesh-system/meshctl-reconciler",
			"Role/flux/meshctl-reconciler-source", "RoleBinding/flux/meshctl-reconciler-source", "Deployment/mesh-system/meshctl-reconciler"},
		args:    append(append([]string{"reconcile"}, flags...), "--interval=10m0s", "--meshctl-namespace=mesh-system", "--source=flux:OCIRepository/flux/mesh-oci"),
		volumes: []string{"tmp:/tmp"},
		source:  &rbacv1.PolicyRule{APIGroups: []string{"source.toolkit.fluxcd.io"}, Resources: []string{"ocirepositories"}, ResourceNames: []string{"mesh-oci"}, Verbs: []string{"get", "list", "watch"}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions("v1.2.3")
			tc.edit(&o)
			objs := mustObjects(t, o)
			if d := cmp.Diff(tc.ids, ids(objs)); d != "" {
				t.Errorf("objects (-want +got):\n%s", d)
			}
			d := typed[appsv1.Deployment](t, objs, "Deployment", tc.ns, Name)
			c := d.Spec.Template.Spec.Containers[0]
			if diff := cmp.Diff(tc.args, c.Args); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
			var vols []string
			for _, m := range c.VolumeMounts {
				vols = append(vols, m.Name+":"+m.MountPath)
			}
			if diff := cmp.Diff(tc.volumes, vols); diff != "" {
				t.Errorf("mounts (-want +got):\n%s", diff)
			}
			if len(d.Spec.Template.Spec.Volumes) != len(tc.volumes) {
				t.Errorf("volumes %v, mounts %v", d.Spec.Template.Spec.Volumes, vols)
			}
			crb := typed[rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding", "", Name)
			if want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: Name, Namespace: tc.ns}}; !cmp.Equal(want, crb.Subjects) {
				t.Errorf("ClusterRoleBinding subjects %v", crb.Subjects)
			}
			if tc.source != nil {
				ns := strings.Split(tc.ids[len(tc.ids)-2], "/")[1]
				r := typed[rbacv1.Role](t, objs, "Role", ns, Name+"-source")
				if diff := cmp.Diff([]rbacv1.PolicyRule{*tc.source}, r.Rules); diff != "" {
					t.Errorf("source Role (-want +got):\n%s", diff)
				}
				rb := typed[rbacv1.RoleBinding](t, objs, "RoleBinding", ns, Name+"-source")
				if rb.Subjects[0].Namespace != tc.ns || rb.RoleRef.Name != r.Name {
					t.Errorf("source RoleBinding %+v", rb)
				}
			}
		})
	}
}

// TestInstallDeploymentRunsHardened pins what the pod must be: 2 replicas, probes
// on the health port, requests, a memory limit with GOMEMLIMIT below it,
// non-root with a read-only root filesystem, and the token mounted.
func TestInstallDeploymentRunsHardened(t *testing.T) {
	d := typed[appsv1.Deployment](t, mustObjects(t, DefaultOptions("v1.2.3")), "Deployment", "meshctl", Name)
	p := d.Spec.Template.Spec
	c := p.Containers[0]
	mem := c.Resources.Limits.Memory().Value()
	goLimit := strings.TrimSuffix(c.Env[0].Value, "MiB")
	checks := []struct {
		name string
		ok   bool
	}{
		{"2 replicas", *d.Spec.Replicas == 2},
		{"image of the version", c.Image == "ghcr.io/meshctl/meshctl:v1.2.3"},
		{"liveness /healthz on health", c.LivenessProbe.HTTPGet.Path == "/healthz" && c.LivenessProbe.HTTPGet.Port.StrVal == "health"},
		{"readiness /readyz on health", c.ReadinessProbe.HTTPGet.Path == "/readyz" && c.ReadinessProbe.HTTPGet.Port.StrVal == "health"},
		{"ports", cmp.Equal([]corev1.ContainerPort{{Name: "metrics", ContainerPort: 8080, Protocol: "TCP"}, {Name: "health", ContainerPort: 8081, Protocol: "TCP"}}, c.Ports)},
		{"requests", c.Resources.Requests.Cpu().String() == "100m" && c.Resources.Requests.Memory().String() == "128Mi"},
		{"memory limit 320Mi", c.Resources.Limits.Memory().String() == "320Mi" && c.Resources.Limits.Cpu().IsZero()},
		{"GOMEMLIMIT below the limit", c.Env[0].Name == "GOMEMLIMIT" && goLimit != "" && mustAtoi(t, goLimit)<<20 < mem && mustAtoi(t, goLimit)<<20 > mem*8/10},
		{"POD_NAME", c.Env[1].Name == "POD_NAME" && c.Env[1].ValueFrom.FieldRef.FieldPath == "metadata.name"},
		{"non-root 65532", *p.SecurityContext.RunAsNonRoot && *p.SecurityContext.RunAsUser == 65532},
		{"seccomp", p.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault},
		{"read-only root", *c.SecurityContext.ReadOnlyRootFilesystem},
		{"no privilege escalation", !*c.SecurityContext.AllowPrivilegeEscalation},
		{"drop ALL", cmp.Equal([]corev1.Capability{"ALL"}, c.SecurityContext.Capabilities.Drop)},
		{"token mounted", *p.AutomountServiceAccountToken && p.ServiceAccountName == Name},
		{"spread over nodes", p.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey == corev1.LabelHostname},
		{"selector matches the pods", d.Spec.Template.Labels["app.kubernetes.io/name"] == d.Spec.Selector.MatchLabels["app.kubernetes.io/name"]},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: not so in %+v", c.name, d.Spec)
		}
	}
}

// TestInstallMeshed: by default the reconciler stays off the mesh; with
// Meshed it gets a proxy (for viz's Prometheus), with the API server's
// ports and its own outside it.
func TestInstallMeshed(t *testing.T) {
	ann := func(o Options) map[string]string {
		return typed[appsv1.Deployment](t, mustObjects(t, o), "Deployment", "meshctl", Name).Spec.Template.Annotations
	}
	o := DefaultOptions("v1.2.3")
	if got := ann(o); !cmp.Equal(got, map[string]string{"linkerd.io/inject": "disabled"}) {
		t.Errorf("default pod annotations %v", got)
	}
	o.Meshed = true
	want := map[string]string{
		"linkerd.io/inject":                     "enabled",
		"config.linkerd.io/skip-outbound-ports": "443,6443",
		"config.linkerd.io/skip-inbound-ports":  "8080,8081",
	}
	if got := ann(o); !cmp.Equal(got, want) {
		t.Errorf("meshed pod annotations: %s", cmp.Diff(want, got))
	}
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	for _, r := range s {
		if r < '0' || r > '9' {
			t.Fatalf("%q is not a number", s)
		}
		n = n*10 + int64(r-'0')
	}
	return n
}

// TestInstallInvalidOptions: each mistake is one line that names the flag.
func TestInstallInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"not flux", func(o *Options) { o.Source = "git:https://example.com/mesh" }, `--source "git:https://example.com/mesh": want flux:GitRepository/NAMESPACE/NAME or flux:OCIRepository/NAMESPACE/NAME`},
		{"unknown kind", func(o *Options) { o.Source = "flux:Bucket/flux-system/mesh" }, `--source "flux:Bucket/flux-system/mesh": want flux:GitRepository/NAMESPACE/NAME or flux:OCIRepository/NAMESPACE/NAME`},
		{"no name", func(o *Options) { o.Source = "flux:GitRepository/flux-system" }, `--source "flux:GitRepository/flux-system": want flux:GitRepository/NAMESPACE/NAME or flux:OCIRepository/NAMESPACE/NAME`},
		{"bad name", func(o *Options) { o.Source = "flux:GitRepository/Flux/mesh" }, `--source "flux:GitRepository/Flux/mesh": "Flux" is not a valid name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`},
		{"source path alone", func(o *Options) { o.SourcePath = "mesh.cue" }, "--source-path needs --source: the ConfigMap's mesh.cue is mounted at /etc/mesh/mesh.cue"},
		{"interval", func(o *Options) { o.Interval = 0 }, "--interval 0s: want a positive duration, such as 10m"},
		{"image", func(o *Options) { o.Image = "" }, "--image is empty: give the meshctl image to run"},
		{"cluster", func(o *Options) { o.Cluster = "West" }, `--cluster "West": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`},
		{"namespace", func(o *Options) { o.Namespace = "Mesh" }, `--meshctl-namespace "Mesh": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions("dev")
			tc.edit(&o)
			_, err := Objects(o)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}

// TestInstallRulesAreNarrow: no wildcard anywhere, one row per resource, and the
// write verbs only on kinds meshctl renders.
func TestInstallRulesAreNarrow(t *testing.T) {
	seen := map[string]bool{}
	writes := []string{"create", "update", "patch", "delete", "bind", "escalate"}
	for _, r := range Rules {
		key := r.Group + "/" + r.Resource
		if seen[key] {
			t.Errorf("%s has two rows", key)
		}
		seen[key] = true
		for _, v := range append(slices.Clone(r.Verbs), r.Group, r.Resource) {
			if strings.Contains(v, "*") {
				t.Errorf("%s: wildcard %q", key, v)
			}
		}
		for _, v := range r.Verbs {
			// statefulsets: safeToEvict patches the templates of workloads
			// meshctl does not render.
			if r.Kind == "" && slices.Contains(writes, v) && key != "apps/statefulsets" {
				t.Errorf("%s: %s on a kind meshctl does not render", key, v)
			}
		}
		if (slices.Contains(r.Verbs, "bind") || slices.Contains(r.Verbs, "escalate")) && r.Group != rbacv1.GroupName {
			t.Errorf("%s: bind or escalate outside RBAC", key)
		}
	}
	for _, pr := range clusterRules() {
		if len(pr.APIGroups) != 1 || len(pr.ResourceNames) != 0 {
			t.Errorf("rule %+v", pr)
		}
	}
}

// renderedKinds renders every example and golden input (and each cluster
// of the multicluster ones), with throwaway certificates so that the
// objects that hold them are rendered too, and returns the rendered
// objects' kinds as group/Kind, and the CRDs as group/plural.
func renderedKinds(t *testing.T) (kinds, crds map[string][]string) {
	t.Helper()
	paths, _ := filepath.Glob("../../examples/*.cue")
	goldens, _ := filepath.Glob("../../testdata/golden/*.cue")
	multi, _ := filepath.Glob("../../testdata/golden/multicluster/*.cue")
	paths = append(append(append(paths, goldens...), multi...), "../../mesh.cue")
	kinds, crds = map[string][]string{}, map[string][]string{}
	for _, p := range paths {
		m, err := schema.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := certs.Generate(generators.CertOptions(m, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		clusters := []string{""}
		if len(m.Clusters) > 0 {
			clusters = slices.Sorted(maps.Keys(m.Clusters))
		}
		for _, c := range clusters {
			for _, noPolicy := range []bool{false, true} {
				objs, err := generators.Render(m, generators.Inputs{Certs: b, Cluster: c, NoAdmissionPolicy: noPolicy})
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				for _, o := range objs {
					gvk := o.Object.GroupVersionKind()
					k := gvk.Group + "/" + gvk.Kind
					if !slices.Contains(kinds[k], p) {
						kinds[k] = append(kinds[k], p)
					}
					if gvk.Kind == "CustomResourceDefinition" {
						group, _, _ := unstructured.NestedString(o.Object.Object, "spec", "group")
						plural, _, _ := unstructured.NestedString(o.Object.Object, "spec", "names", "plural")
						crds[group+"/"+plural] = append(crds[group+"/"+plural], p)
					}
				}
			}
		}
	}
	return kinds, crds
}

// TestInstallRulesCoverEveryRenderedKind: every kind any example or golden input
// renders has a row with the verbs apply, prune and the watch need, and
// every kind row is rendered by one of them: a generator that adds a kind
// fails here until the table covers it, and a row nothing needs goes.
func TestInstallRulesCoverEveryRenderedKind(t *testing.T) {
	kinds, crds := renderedKinds(t)
	byKind := map[string]Rule{}
	byResource := map[string]Rule{}
	for _, r := range Rules {
		if r.Kind != "" {
			byKind[r.Group+"/"+r.Kind] = r
		}
		byResource[r.Group+"/"+r.Resource] = r
	}
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		r, ok := byKind[k]
		if !ok {
			t.Errorf("%s (rendered by %s) has no row in Rules: add one with the verbs it needs", k, kinds[k][0])
			continue
		}
		for _, v := range manage {
			if !slices.Contains(r.Verbs, v) {
				t.Errorf("%s: no %s", k, v)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(byKind)) {
		if _, ok := kinds[k]; !ok {
			t.Errorf("%s has a row in Rules, but nothing renders it", k)
		}
	}
	// Prune keeps a CRD while custom resources of it remain, and a
	// Namespace while it holds objects meshctl does not manage: it lists
	// them.
	for _, k := range slices.Sorted(maps.Keys(crds)) {
		if r, ok := byResource[k]; !ok || !slices.Contains(r.Verbs, "list") {
			t.Errorf("CRD %s (rendered by %s): the prune guards cannot list its objects: add a list row", k, crds[k][0])
		}
	}
	if len(kinds) < 20 || len(crds) < 10 {
		t.Errorf("only %d kinds and %d CRDs rendered: are the inputs gone?", len(kinds), len(crds))
	}
}
