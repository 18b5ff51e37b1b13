package generators

import (
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/utils/ptr"
)

// smiExtensionIDs are the objects of `linkerd smi install` (FACTS §17),
// with the stage each goes in.
var smiExtensionIDs = map[string]Stage{
	"Namespace/linkerd-smi": StageCRDs,
	"CustomResourceDefinition/trafficsplits.split.smi-spec.io": StageCRDs,
	"ServiceAccount/linkerd-smi/smi-adaptor":                   StageExtensions,
	"ClusterRole/smi-adaptor":                                  StageExtensions,
	"ClusterRoleBinding/smi-adaptor":                           StageExtensions,
	"Deployment/linkerd-smi/smi-adaptor":                       StageExtensions,
}

// smiObjects are the rendered objects that are the extension's.
func smiObjects(t *testing.T, src string) map[string]Stage {
	t.Helper()
	objs, err := Render(load(t, src), Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Stage{}
	for _, o := range objs {
		if _, ok := smiExtensionIDs[o.ID()]; ok {
			got[o.ID()] = o.Stage
		}
	}
	return got
}

func TestSMIExtensionObjects(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want map[string]Stage
	}{
		{"no smi service, no extension", `services: "shop/a": {port: 80, split: {a: 50, b: 50}}`, map[string]Stage{}},
		{"one smi service without a split still installs it", `services: "shop/a": model: "smi"`, smiExtensionIDs},
		{"two smi services install it once", `services: {"shop/a": {model: "smi", split: {a: 50, b: 50}}, "web/b": {model: "smi", split: {b: 1, c: 99}}}`, smiExtensionIDs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, smiObjects(t, tc.src)); d != "" {
				t.Errorf("extension objects (-want +got):\n%s", d)
			}
		})
	}
}

func TestSMIExtensionFacts(t *testing.T) {
	objs, err := Render(load(t, `linkerd: clusterDomain: "example.org"
services: "shop/a": model: "smi"`), Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	ext := map[string]string{"linkerd.io/extension": "smi"}
	adaptor := map[string]string{"linkerd.io/extension": "smi", "component": "smi-adaptor"}
	owned := func(l map[string]string) map[string]string {
		return merge(l, map[string]string{"app.kubernetes.io/managed-by": "meshctl"})
	}

	ns := objectByID(t, objs, "Namespace/linkerd-smi")
	if d := cmp.Diff(owned(ext), ns.GetLabels()); d != "" {
		t.Errorf("namespace labels (-want +got):\n%s", d)
	}

	var crd apiextv1.CustomResourceDefinition
	fromUnstructured(t, objectByID(t, objs, "CustomResourceDefinition/trafficsplits.split.smi-spec.io"), &crd)
	if d := cmp.Diff(owned(ext), crd.Labels); d != "" {
		t.Errorf("CRD labels (-want +got):\n%s", d)
	}
	wantNames := apiextv1.CustomResourceDefinitionNames{Kind: "TrafficSplit", ListKind: "TrafficSplitList", Plural: "trafficsplits", Singular: "trafficsplit", ShortNames: []string{"ts"}}
	if d := cmp.Diff(wantNames, crd.Spec.Names); d != "" {
		t.Errorf("CRD names (-want +got):\n%s", d)
	}
	if crd.Spec.Group != "split.smi-spec.io" || crd.Spec.Scope != apiextv1.NamespaceScoped || crd.Spec.Conversion == nil || crd.Spec.Conversion.Strategy != apiextv1.NoneConverter {
		t.Errorf("CRD group %q, scope %q, conversion %+v", crd.Spec.Group, crd.Spec.Scope, crd.Spec.Conversion)
	}
	type ver struct {
		Name            string
		Served, Storage bool
		Column          string
		Required        []string
		BackendRequired []string
		WeightIntOrStr  bool
	}
	var got []ver
	for _, v := range crd.Spec.Versions {
		s := v.Schema.OpenAPIV3Schema.Properties["spec"]
		b := s.Properties["backends"].Items.Schema
		got = append(got, ver{v.Name, v.Served, v.Storage, v.AdditionalPrinterColumns[0].Name + "=" + v.AdditionalPrinterColumns[0].JSONPath,
			s.Required, b.Required, b.Properties["weight"].XIntOrString})
	}
	same := func(name string, storage bool) ver {
		return ver{name, true, storage, "Service=.spec.service", []string{"service", "backends"}, []string{"service", "weight"}, true}
	}
	if d := cmp.Diff([]ver{same("v1alpha1", true), same("v1alpha2", false)}, got); d != "" {
		t.Errorf("CRD versions (-want +got):\n%s", d)
	}

	var role rbacv1.ClusterRole
	fromUnstructured(t, objectByID(t, objs, "ClusterRole/smi-adaptor"), &role)
	wantRules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		{APIGroups: []string{"linkerd.io"}, Resources: []string{"serviceprofiles"}, Verbs: []string{"list", "get", "create", "update"}},
		{APIGroups: []string{"split.smi-spec.io"}, Resources: []string{"trafficsplits"}, Verbs: []string{"list", "get", "watch"}},
	}
	if d := cmp.Diff(wantRules, role.Rules); d != "" {
		t.Errorf("ClusterRole rules (-want +got):\n%s", d)
	}
	if d := cmp.Diff(owned(adaptor), role.Labels); d != "" {
		t.Errorf("ClusterRole labels (-want +got):\n%s", d)
	}
	var binding rbacv1.ClusterRoleBinding
	fromUnstructured(t, objectByID(t, objs, "ClusterRoleBinding/smi-adaptor"), &binding)
	wantBinding := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "smi-adaptor", Namespace: "linkerd-smi"}}
	if d := cmp.Diff(wantBinding, binding.Subjects); d != "" || binding.RoleRef.Name != "smi-adaptor" || binding.RoleRef.Kind != "ClusterRole" {
		t.Errorf("binding to %+v (-want +got):\n%s", binding.RoleRef, d)
	}

	var dep appsv1.Deployment
	fromUnstructured(t, objectByID(t, objs, "Deployment/linkerd-smi/smi-adaptor"), &dep)
	if ptr.Deref(dep.Spec.Replicas, 0) != 1 || dep.Spec.Template.Spec.ServiceAccountName != "smi-adaptor" {
		t.Errorf("replicas %v, serviceAccountName %q", dep.Spec.Replicas, dep.Spec.Template.Spec.ServiceAccountName)
	}
	for what, l := range map[string]map[string]string{"labels": dep.Labels, "selector": dep.Spec.Selector.MatchLabels, "pod labels": dep.Spec.Template.Labels} {
		want := adaptor
		if what == "labels" {
			want = owned(adaptor)
		}
		if d := cmp.Diff(want, l); d != "" {
			t.Errorf("Deployment %s (-want +got):\n%s", what, d)
		}
	}
	if d := cmp.Diff(map[string]string{"linkerd.io/inject": "enabled"}, dep.Spec.Template.Annotations); d != "" {
		t.Errorf("pod annotations (-want +got):\n%s", d)
	}
	if sc := dep.Spec.Template.Spec.SecurityContext; sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v, want seccomp RuntimeDefault", sc)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	type container struct {
		Name, Image string
		Args        []string
		Port        string
		CPU, Memory [2]string
	}
	gotC := container{c.Name, c.Image, c.Args, c.Ports[0].Name + "=" + strconv.Itoa(int(c.Ports[0].ContainerPort)),
		[2]string{c.Resources.Requests.Cpu().String(), c.Resources.Limits.Cpu().String()},
		[2]string{c.Resources.Requests.Memory().String(), c.Resources.Limits.Memory().String()}}
	wantC := container{"smi-adaptor", "cr.l5d.io/linkerd/smi-adaptor:v0.2.7", []string{"-cluster-domain=example.org"}, "admin-http=9995",
		[2]string{"100m", "100m"}, [2]string{"20Mi", "20Mi"}}
	if d := cmp.Diff(wantC, gotC); d != "" {
		t.Errorf("container (-want +got):\n%s", d)
	}
	wantSC := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To(int64(65534)),
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if d := cmp.Diff(wantSC, c.SecurityContext); d != "" {
		t.Errorf("container securityContext (-want +got):\n%s", d)
	}
}

func TestSMIModel(t *testing.T) {
	tests := []struct {
		name string
		svc  string
		want map[string]m
	}{
		{
			name: "a canary: a TrafficSplit, and no profile without routes",
			svc:  `{model: "smi", split: {books: 90, "books-v2": 10}}`,
			want: map[string]m{"TrafficSplit/shop/books": {"service": "books", "backends": []any{
				m{"service": "books", "weight": int64(90)}, m{"service": "books-v2", "weight": int64(10)},
			}}},
		},
		{
			name: "routes and a fault: a profile without dstOverrides, the fault a third backend",
			svc:  `{model: "smi", port: 7002, routes: [{name: "GET /", pathRegex: "/"}], split: {books: 90, "books-v2": 10}, fault: {percent: 10, status: 500}}`,
			want: map[string]m{
				"TrafficSplit/shop/books": {"service": "books", "backends": []any{
					m{"service": "books", "weight": int64(810)}, m{"service": "books-v2", "weight": int64(90)}, m{"service": "books-fault", "weight": int64(100)},
				}},
				"ServiceProfile/shop/books.shop.svc.cluster.local": {"routes": []any{m{"name": "GET /", "condition": m{"pathRegex": "/"}}}},
				"ConfigMap/shop/books-fault":                       nil, "Deployment/shop/books-fault": nil, "Service/shop/books-fault": nil,
			},
		},
		{
			name: "routes alone: a profile, no TrafficSplit",
			svc:  `{model: "smi", routes: [{name: "GET /", pathRegex: "/"}]}`,
			want: map[string]m{"ServiceProfile/shop/books.shop.svc.cluster.local": {"routes": []any{m{"name": "GET /", "condition": m{"pathRegex": "/"}}}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var objs []Object
			for _, o := range renderTraffic(t, `services: "shop/books": `+tc.svc) {
				if o.Object.GetNamespace() == "shop" {
					objs = append(objs, o)
				}
			}
			if d := cmp.Diff(sortedKeys(tc.want), objectIDs(objs)); d != "" {
				t.Fatalf("objects (-want +got):\n%s", d)
			}
			for id, want := range tc.want {
				if want == nil {
					continue
				}
				if d := cmp.Diff(want, m(specOf(t, objs, id))); d != "" {
					t.Errorf("%s spec (-want +got):\n%s", id, d)
				}
				if o := objectByID(t, objs, id); o.GetKind() == "TrafficSplit" && o.GetAPIVersion() != "split.smi-spec.io/v1alpha2" {
					t.Errorf("%s: apiVersion %s", id, o.GetAPIVersion())
				}
			}
		})
	}
}
