package generators

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshctl/meshctl/certs"
)

const vizSrc = "viz: enabled: true\n"

// vizCerts are stand-in serving pairs for tap and tap-injector.
func vizCerts() Inputs {
	return Inputs{Certs: &certs.Bundle{Webhooks: map[string]certs.KeyPair{
		"tap.linkerd-viz":          {CertPEM: "CERT tap", KeyPEM: "KEY tap"},
		"tap-injector.linkerd-viz": {CertPEM: "CERT tap-injector", KeyPEM: "KEY tap-injector"},
	}}}
}

func renderViz(t *testing.T, src string, in Inputs) []Object {
	t.Helper()
	return viz(load(t, src), in)
}

// upstreamViz is `linkerd viz install` at 2.19 (FACTS §10.1) without the
// nine Prometheus objects vizprom.go renders.
var upstreamViz = []string{
	"Namespace/linkerd-viz",
	// metrics-api
	"ClusterRole/linkerd-linkerd-viz-metrics-api", "ClusterRoleBinding/linkerd-linkerd-viz-metrics-api",
	"ServiceAccount/linkerd-viz/metrics-api", "Service/linkerd-viz/metrics-api", "Deployment/linkerd-viz/metrics-api",
	"Server/linkerd-viz/metrics-api", "AuthorizationPolicy/linkerd-viz/metrics-api",
	"MeshTLSAuthentication/linkerd-viz/metrics-api-web", "ServiceProfile/linkerd-viz/metrics-api.linkerd-viz.svc.cluster.local",
	// tap
	"ClusterRole/linkerd-linkerd-viz-tap", "ClusterRole/linkerd-linkerd-viz-tap-admin",
	"ClusterRoleBinding/linkerd-linkerd-viz-tap", "ClusterRoleBinding/linkerd-linkerd-viz-tap-auth-delegator",
	"ServiceAccount/linkerd-viz/tap", "RoleBinding/kube-system/linkerd-linkerd-viz-tap-auth-reader",
	"Secret/linkerd-viz/tap-k8s-tls", "APIService/v1alpha1.tap.linkerd.io", "Service/linkerd-viz/tap", "Deployment/linkerd-viz/tap",
	"Server/linkerd-viz/tap-api", "AuthorizationPolicy/linkerd-viz/tap",
	// tap-injector
	"ClusterRole/linkerd-tap-injector", "ClusterRoleBinding/linkerd-tap-injector", "ServiceAccount/linkerd-viz/tap-injector",
	"Secret/linkerd-viz/tap-injector-k8s-tls", "MutatingWebhookConfiguration/linkerd-tap-injector-webhook-config",
	"Service/linkerd-viz/tap-injector", "Deployment/linkerd-viz/tap-injector",
	"Server/linkerd-viz/tap-injector-webhook", "AuthorizationPolicy/linkerd-viz/tap-injector",
	// web
	"Role/linkerd/web", "RoleBinding/linkerd/web",
	"ClusterRole/linkerd-linkerd-viz-web-check", "ClusterRoleBinding/linkerd-linkerd-viz-web-check",
	"ClusterRoleBinding/linkerd-linkerd-viz-web-admin",
	"ClusterRole/linkerd-linkerd-viz-web-api", "ClusterRoleBinding/linkerd-linkerd-viz-web-api",
	"ServiceAccount/linkerd-viz/web", "Service/linkerd-viz/web", "Deployment/linkerd-viz/web",
	// shared
	"NetworkAuthentication/linkerd-viz/kube-api-server", "NetworkAuthentication/linkerd-viz/kubelet",
}

func TestVizObjectSet(t *testing.T) {
	secrets := []string{"Secret/linkerd-viz/tap-k8s-tls", "Secret/linkerd-viz/tap-injector-k8s-tls"}
	tests := []struct {
		name  string
		src   string
		in    Inputs
		want  []string
		count int
	}{
		{"disabled", "", vizCerts(), nil, 0},
		{"with serving pairs, as viz install", vizSrc, vizCerts(), upstreamViz, 43},
		{"offline: no pairs, no Secrets", vizSrc, Inputs{}, without(upstreamViz, secrets...), 41},
		{"ha adds the tap PDB", vizSrc + "viz: ha: true", vizCerts(), append(append([]string{}, upstreamViz...), "PodDisruptionBudget/linkerd-viz/tap"), 44},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := renderViz(t, tc.src, tc.in)
			if d := cmp.Diff(sorted(tc.want), objectIDs(got)); d != "" {
				t.Errorf("objects (-want +got):\n%s", d)
			}
			if len(got) != tc.count {
				t.Errorf("%d objects, want %d", len(got), tc.count)
			}
		})
	}
}

func TestVizStages(t *testing.T) {
	for _, o := range renderViz(t, vizSrc, vizCerts()) {
		want := StageExtensions
		if o.Object.GetKind() == "Namespace" {
			want = StageCRDs
		}
		if o.Stage != want {
			t.Errorf("%s in stage %s, want %s", o.ID(), o.Stage, want)
		}
	}
}

func TestVizNamespace(t *testing.T) {
	var ns corev1.Namespace
	find(t, renderViz(t, vizSrc, Inputs{}), "Namespace/linkerd-viz", &ns)
	want := map[string]string{"linkerd.io/extension": "viz", "pod-security.kubernetes.io/enforce": "privileged"}
	if d := cmp.Diff(want, ns.Labels); d != "" {
		t.Errorf("labels (-want +got):\n%s", d)
	}
	if len(ns.Annotations) != 0 {
		t.Errorf("annotations %v, want none", ns.Annotations)
	}
}

func TestVizDeployments(t *testing.T) {
	objs := renderViz(t, vizSrc, vizCerts())
	extComp := func(c string) map[string]string {
		return map[string]string{"linkerd.io/extension": "viz", "component": c}
	}
	withNS := func(c string) map[string]string {
		return merge(extComp(c), map[string]string{"namespace": "linkerd-viz"})
	}
	tests := []struct {
		name     string
		image    string
		args     []string
		ports    []corev1.ContainerPort
		admin    int32
		selector map[string]string
		podLabel map[string]string
		version  bool // app.kubernetes.io/version on the Deployment
		tls      string
	}{
		{"metrics-api", "cr.l5d.io/linkerd/metrics-api:edge-25.10.7",
			[]string{"-controller-namespace=linkerd", "-log-level=info", "-log-format=plain", "-cluster-domain=cluster.local",
				"-prometheus-url=http://prometheus.linkerd-viz.svc.cluster.local:9090", "-enable-pprof=false"},
			[]corev1.ContainerPort{{Name: "http", ContainerPort: 8085}, {Name: "admin", ContainerPort: 9995}}, 9995,
			extComp("metrics-api"), extComp("metrics-api"), true, ""},
		{"tap", "cr.l5d.io/linkerd/tap:edge-25.10.7",
			[]string{"api", "-api-namespace=linkerd", "-log-level=info", "-log-format=plain", "-identity-trust-domain=cluster.local", "-enable-pprof=false"},
			[]corev1.ContainerPort{{Name: "grpc", ContainerPort: 8088}, {Name: "apiserver", ContainerPort: 8089}, {Name: "admin", ContainerPort: 9998}}, 9998,
			withNS("tap"), withNS("tap"), true, "tap-k8s-tls"},
		{"tap-injector", "cr.l5d.io/linkerd/tap:edge-25.10.7",
			[]string{"injector", "-tap-service-name=tap.linkerd-viz.serviceaccount.identity.linkerd.cluster.local", "-log-level=info", "-log-format=plain", "-enable-pprof=false"},
			[]corev1.ContainerPort{{Name: "tap-injector", ContainerPort: 8443}, {Name: "admin", ContainerPort: 9995}}, 9995,
			map[string]string{"component": "tap-injector"}, extComp("tap-injector"), false, "tap-injector-k8s-tls"},
		{"web", "cr.l5d.io/linkerd/web:edge-25.10.7",
			[]string{"-linkerd-metrics-api-addr=metrics-api.linkerd-viz.svc.cluster.local:8085", "-cluster-domain=cluster.local",
				"-controller-namespace=linkerd", "-log-level=info", "-log-format=plain",
				`-enforced-host=^(localhost|127\.0\.0\.1|web\.linkerd-viz\.svc\.cluster\.local|web\.linkerd-viz\.svc|\[::1\])(:\d+)?$`,
				"-enable-pprof=false"},
			[]corev1.ContainerPort{{Name: "http", ContainerPort: 8084}, {Name: "admin", ContainerPort: 9994}}, 9994,
			withNS("web"), withNS("web"), true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d appsv1.Deployment
			find(t, objs, "Deployment/linkerd-viz/"+tc.name, &d)
			if _, ok := objectByID(t, objs, "Deployment/linkerd-viz/"+tc.name).Object["spec"].(map[string]any)["strategy"]; ok {
				t.Error("strategy is rendered; upstream sets none without HA")
			}
			if got := containerNames(d.Spec.Template.Spec.Containers); !cmp.Equal(got, []string{tc.name}) {
				t.Fatalf("containers %v, want only %s (no proxy: the core injector adds it)", got, tc.name)
			}
			c := d.Spec.Template.Spec.Containers[0]
			if c.Image != tc.image || c.ImagePullPolicy != corev1.PullIfNotPresent {
				t.Errorf("image %s %s, want %s IfNotPresent", c.Image, c.ImagePullPolicy, tc.image)
			}
			if diff := cmp.Diff(tc.args, c.Args); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.ports, c.Ports); diff != "" {
				t.Errorf("ports (-want +got):\n%s", diff)
			}
			admin := intstr.FromInt32(tc.admin)
			if p := c.LivenessProbe.HTTPGet; p.Path != "/ping" || p.Port != admin || c.LivenessProbe.InitialDelaySeconds != 10 {
				t.Errorf("liveness %s :%s delay %d, want /ping :%d delay 10", p.Path, p.Port.String(), c.LivenessProbe.InitialDelaySeconds, tc.admin)
			}
			if p := c.ReadinessProbe.HTTPGet; p.Path != "/ready" || p.Port != admin || c.ReadinessProbe.FailureThreshold != 7 {
				t.Errorf("readiness %s :%s threshold %d, want /ready :%d threshold 7", p.Path, p.Port.String(), c.ReadinessProbe.FailureThreshold, tc.admin)
			}
			if diff := cmp.Diff(tc.selector, d.Spec.Selector.MatchLabels); diff != "" {
				t.Errorf("selector (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.podLabel, d.Spec.Template.Labels); diff != "" {
				t.Errorf("pod labels (-want +got):\n%s", diff)
			}
			wantLabels := merge(tc.podLabel, map[string]string{"app.kubernetes.io/name": tc.name, "app.kubernetes.io/part-of": "Linkerd"})
			if tc.version {
				wantLabels["app.kubernetes.io/version"] = "edge-25.10.7"
			}
			if diff := cmp.Diff(wantLabels, d.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			wantAnn := map[string]string{"linkerd.io/created-by": "linkerd/cli edge-25.10.7", "linkerd.io/inject": "enabled", "config.linkerd.io/proxy-await": "enabled"}
			if diff := cmp.Diff(wantAnn, d.Annotations); diff != "" {
				t.Errorf("annotations (-want +got):\n%s", diff)
			}
			// No checksum/config: upstream's CLI renders it only in Helm installs.
			wantPodAnn := map[string]string{
				"linkerd.io/created-by": "linkerd/cli edge-25.10.7", "linkerd.io/inject": "enabled",
				"cluster-autoscaler.kubernetes.io/safe-to-evict":         "true",
				"config.alpha.linkerd.io/proxy-wait-before-exit-seconds": "0",
			}
			if diff := cmp.Diff(wantPodAnn, d.Spec.Template.Annotations); diff != "" {
				t.Errorf("pod annotations (-want +got):\n%s", diff)
			}
			sc := c.SecurityContext
			if *sc.RunAsUser != 2103 || *sc.RunAsGroup != 2103 || !*sc.RunAsNonRoot || !*sc.ReadOnlyRootFilesystem || sc.Capabilities.Drop[0] != "ALL" {
				t.Errorf("securityContext %+v, want uid/gid 2103, non-root, read-only, drop ALL", sc)
			}
			spec := d.Spec.Template.Spec
			if *spec.AutomountServiceAccountToken || spec.ServiceAccountName != tc.name || spec.NodeSelector["kubernetes.io/os"] != "linux" {
				t.Errorf("pod spec: automount %v, sa %s, nodeSelector %v", *spec.AutomountServiceAccountToken, spec.ServiceAccountName, spec.NodeSelector)
			}
			if *d.Spec.Replicas != 1 || d.Spec.Strategy.RollingUpdate != nil || *d.Spec.RevisionHistoryLimit != 10 || spec.Affinity != nil {
				t.Errorf("replicas %d, strategy %+v, history %d, affinity %v: want 1, none, 10, none", *d.Spec.Replicas, d.Spec.Strategy, *d.Spec.RevisionHistoryLimit, spec.Affinity)
			}
			var mounts []string
			for _, vm := range c.VolumeMounts {
				mounts = append(mounts, vm.Name+":"+vm.MountPath)
			}
			wantMounts := []string{"kube-api-access:/var/run/secrets/kubernetes.io/serviceaccount"}
			if tc.tls != "" {
				wantMounts = append([]string{"tls:/var/run/linkerd/tls"}, wantMounts...)
				if v := spec.Volumes[0]; v.Secret == nil || v.Secret.SecretName != tc.tls {
					t.Errorf("first volume %+v, want Secret %s", v, tc.tls)
				}
			}
			if diff := cmp.Diff(wantMounts, mounts); diff != "" {
				t.Errorf("mounts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVizServices(t *testing.T) {
	objs := renderViz(t, vizSrc, Inputs{})
	tests := []struct {
		name     string
		ports    []corev1.ServicePort
		selector map[string]string
	}{
		{"metrics-api", []corev1.ServicePort{{Name: "http", Port: 8085, TargetPort: intstr.FromInt32(8085)}}, vizLabels("metrics-api")},
		{"tap", []corev1.ServicePort{{Name: "grpc", Port: 8088, TargetPort: intstr.FromInt32(8088)},
			{Name: "apiserver", Port: 443, TargetPort: intstr.FromString("apiserver")}}, vizLabels("tap")},
		{"tap-injector", []corev1.ServicePort{{Name: "tap-injector", Port: 443, TargetPort: intstr.FromString("tap-injector")}}, vizLabels("tap-injector")},
		{"web", []corev1.ServicePort{{Name: "http", Port: 8084, TargetPort: intstr.FromInt32(8084)},
			{Name: "admin", Port: 9994, TargetPort: intstr.FromInt32(9994)}}, vizLabels("web")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s corev1.Service
			find(t, objs, "Service/linkerd-viz/"+tc.name, &s)
			if diff := cmp.Diff(tc.ports, s.Spec.Ports); diff != "" {
				t.Errorf("ports (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.selector, s.Spec.Selector); diff != "" {
				t.Errorf("selector (-want +got):\n%s", diff)
			}
			if s.Spec.Type != corev1.ServiceTypeClusterIP || s.Annotations["linkerd.io/inject"] != "enabled" {
				t.Errorf("type %s, annotations %v: want ClusterIP and linkerd.io/inject=enabled", s.Spec.Type, s.Annotations)
			}
		})
	}
}

func vizField(t *testing.T, u *unstructured.Unstructured, path ...string) any {
	t.Helper()
	v, ok, err := unstructured.NestedFieldNoCopy(u.Object, path...)
	if err != nil || !ok {
		t.Fatalf("%s: no %s", u.GetName(), strings.Join(path, "."))
	}
	return v
}

func TestVizAPIService(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Inputs
		ca   string
	}{
		{"with pair", vizCerts(), base64.StdEncoding.EncodeToString([]byte("CERT tap"))},
		{"offline", Inputs{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := objectByID(t, renderViz(t, vizSrc, tc.in), "APIService/v1alpha1.tap.linkerd.io")
			if u.GetAPIVersion() != "apiregistration.k8s.io/v1" {
				t.Errorf("apiVersion %s", u.GetAPIVersion())
			}
			want := map[string]any{
				"group": "tap.linkerd.io", "version": "v1alpha1",
				"groupPriorityMinimum": int64(1000), "versionPriority": int64(100),
				"service": map[string]any{"name": "tap", "namespace": "linkerd-viz"},
			}
			if tc.ca != "" {
				want["caBundle"] = tc.ca
			}
			if diff := cmp.Diff(want, u.Object["spec"]); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVizTapInjectorWebhook(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		in   Inputs
		ca   string
	}{
		{"with pair", vizSrc, vizCerts(), "CERT tap-injector"},
		{"offline", vizSrc, Inputs{}, ""},
		{"ha keeps Ignore", vizSrc + "viz: ha: true", vizCerts(), "CERT tap-injector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mwc admissionv1.MutatingWebhookConfiguration
			find(t, renderViz(t, tc.src, tc.in), "MutatingWebhookConfiguration/linkerd-tap-injector-webhook-config", &mwc)
			if len(mwc.Webhooks) != 1 {
				t.Fatalf("%d webhooks, want 1", len(mwc.Webhooks))
			}
			w := mwc.Webhooks[0]
			if w.Name != "tap-injector.linkerd.io" || *w.FailurePolicy != admissionv1.Ignore || *w.ReinvocationPolicy != admissionv1.IfNeededReinvocationPolicy ||
				*w.SideEffects != admissionv1.SideEffectClassNone || w.TimeoutSeconds != nil {
				t.Errorf("webhook %s failure %s reinvocation %s sideEffects %s timeout %v", w.Name, *w.FailurePolicy, *w.ReinvocationPolicy, *w.SideEffects, w.TimeoutSeconds)
			}
			if s := w.ClientConfig.Service; s.Name != "tap-injector" || s.Namespace != "linkerd-viz" || *s.Path != "/" {
				t.Errorf("service %+v", s)
			}
			if string(w.ClientConfig.CABundle) != tc.ca {
				t.Errorf("caBundle %q, want %q", w.ClientConfig.CABundle, tc.ca)
			}
			r := w.Rules[0]
			if len(w.Rules) != 1 || r.Operations[0] != admissionv1.Create || r.Resources[0] != "pods" || r.APIVersions[0] != "v1" || *r.Scope != admissionv1.NamespacedScope {
				t.Errorf("rules %+v, want CREATE v1 pods Namespaced", w.Rules)
			}
			sel := w.NamespaceSelector.MatchExpressions
			if len(sel) != 1 || sel[0].Key != "kubernetes.io/metadata.name" || sel[0].Operator != "NotIn" || !cmp.Equal(sel[0].Values, []string{"kube-system"}) {
				t.Errorf("namespaceSelector %+v", sel)
			}
		})
	}
}

func TestVizPolicy(t *testing.T) {
	objs := renderViz(t, vizSrc, Inputs{})
	servers := []struct{ name, component, port, protocol string }{
		{"metrics-api", "metrics-api", "http", "HTTP/1"},
		{"tap-api", "tap", "apiserver", "TLS"},
		{"tap-injector-webhook", "tap-injector", "tap-injector", "TLS"},
	}
	for _, s := range servers {
		t.Run("Server "+s.name, func(t *testing.T) {
			u := objectByID(t, objs, "Server/linkerd-viz/"+s.name)
			if u.GetAPIVersion() != "policy.linkerd.io/v1beta3" {
				t.Errorf("apiVersion %s", u.GetAPIVersion())
			}
			want := map[string]any{"port": s.port, "proxyProtocol": s.protocol,
				"podSelector": map[string]any{"matchLabels": map[string]any{"linkerd.io/extension": "viz", "component": s.component}}}
			if diff := cmp.Diff(want, u.Object["spec"]); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
	policies := []struct{ name, server, authKind, auth string }{
		{"metrics-api", "metrics-api", "MeshTLSAuthentication", "metrics-api-web"},
		{"tap", "tap-api", "NetworkAuthentication", "kube-api-server"},
		{"tap-injector", "tap-injector-webhook", "NetworkAuthentication", "kube-api-server"},
	}
	for _, p := range policies {
		t.Run("AuthorizationPolicy "+p.name, func(t *testing.T) {
			u := objectByID(t, objs, "AuthorizationPolicy/linkerd-viz/"+p.name)
			want := map[string]any{
				"targetRef":                  map[string]any{"group": "policy.linkerd.io", "kind": "Server", "name": p.server},
				"requiredAuthenticationRefs": []any{map[string]any{"group": "policy.linkerd.io", "kind": p.authKind, "name": p.auth}},
			}
			if diff := cmp.Diff(want, u.Object["spec"]); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
			objectByID(t, objs, p.authKind+"/linkerd-viz/"+p.auth)
		})
	}
	mtls := objectByID(t, objs, "MeshTLSAuthentication/linkerd-viz/metrics-api-web")
	if diff := cmp.Diff([]any{map[string]any{"kind": "ServiceAccount", "name": "web"}}, vizField(t, mtls, "spec", "identityRefs")); diff != "" {
		t.Errorf("identityRefs (-want +got):\n%s", diff)
	}
	for _, n := range []string{"kube-api-server", "kubelet"} {
		u := objectByID(t, objs, "NetworkAuthentication/linkerd-viz/"+n)
		want := []any{map[string]any{"cidr": "0.0.0.0/0"}, map[string]any{"cidr": "::/0"}}
		if diff := cmp.Diff(want, vizField(t, u, "spec", "networks")); diff != "" {
			t.Errorf("%s networks (-want +got):\n%s", n, diff)
		}
	}
}

func TestVizServiceProfile(t *testing.T) {
	u := objectByID(t, renderViz(t, vizSrc+`linkerd: clusterDomain: "example.org"`, Inputs{}),
		"ServiceProfile/linkerd-viz/metrics-api.linkerd-viz.svc.example.org")
	var got []string
	for _, r := range vizField(t, u, "spec", "routes").([]any) {
		rm := r.(map[string]any)
		c := rm["condition"].(map[string]any)
		got = append(got, rm["name"].(string)+"|"+c["method"].(string)+" "+c["pathRegex"].(string))
	}
	var want []string
	for _, n := range []string{"StatSummary", "TopRoutes", "ListPods", "ListServices", "SelfCheck", "Gateways", "Edges"} {
		want = append(want, "POST /api/v1/"+n+"|POST /api/v1/"+n)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
}

func TestVizRBAC(t *testing.T) {
	objs := renderViz(t, vizSrc, Inputs{})
	bindings := []struct {
		id, roleKind, role, sa string
	}{
		{"ClusterRoleBinding/linkerd-linkerd-viz-metrics-api", "ClusterRole", "linkerd-linkerd-viz-metrics-api", "metrics-api"},
		{"ClusterRoleBinding/linkerd-linkerd-viz-tap", "ClusterRole", "linkerd-linkerd-viz-tap", "tap"},
		{"ClusterRoleBinding/linkerd-linkerd-viz-tap-auth-delegator", "ClusterRole", "system:auth-delegator", "tap"},
		{"RoleBinding/kube-system/linkerd-linkerd-viz-tap-auth-reader", "Role", "extension-apiserver-authentication-reader", "tap"},
		{"ClusterRoleBinding/linkerd-tap-injector", "ClusterRole", "linkerd-tap-injector", "tap-injector"},
		{"RoleBinding/linkerd/web", "Role", "web", "web"},
		{"ClusterRoleBinding/linkerd-linkerd-viz-web-check", "ClusterRole", "linkerd-linkerd-viz-web-check", "web"},
		{"ClusterRoleBinding/linkerd-linkerd-viz-web-admin", "ClusterRole", "linkerd-linkerd-viz-tap-admin", "web"},
		{"ClusterRoleBinding/linkerd-linkerd-viz-web-api", "ClusterRole", "linkerd-linkerd-viz-web-api", "web"},
	}
	for _, b := range bindings {
		t.Run(b.id, func(t *testing.T) {
			var rb rbacv1.RoleBinding // a ClusterRoleBinding converts into the same fields
			find(t, objs, b.id, &rb)
			if rb.RoleRef.Kind != b.roleKind || rb.RoleRef.Name != b.role {
				t.Errorf("roleRef %s/%s, want %s/%s", rb.RoleRef.Kind, rb.RoleRef.Name, b.roleKind, b.role)
			}
			want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: b.sa, Namespace: "linkerd-viz"}}
			if diff := cmp.Diff(want, rb.Subjects); diff != "" {
				t.Errorf("subjects (-want +got):\n%s", diff)
			}
		})
	}
	var web rbacv1.Role
	find(t, objs, "Role/linkerd/web", &web)
	if r := web.Rules[0]; !cmp.Equal(r.ResourceNames, []string{"linkerd-config"}) || r.Verbs[0] != "get" {
		t.Errorf("web's first rule %+v, want get on configmap linkerd-config", r)
	}
	var admin rbacv1.ClusterRole
	find(t, objs, "ClusterRole/linkerd-linkerd-viz-tap-admin", &admin)
	if r := admin.Rules[1]; r.APIGroups[0] != "tap.linkerd.io" || r.Resources[0] != "*" || r.Verbs[0] != "watch" {
		t.Errorf("tap-admin rule %+v, want watch tap.linkerd.io/*", r)
	}
}

func TestVizHA(t *testing.T) {
	objs := renderViz(t, vizSrc+"viz: ha: true", vizCerts())
	haRes := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("50Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("250Mi")},
	}
	tests := []struct {
		name      string
		replicas  int32
		strategy  bool
		resources corev1.ResourceRequirements
	}{
		{"metrics-api", 1, false, corev1.ResourceRequirements{}},
		{"tap", 3, true, haRes},
		{"tap-injector", 1, true, corev1.ResourceRequirements{}},
		{"web", 1, false, haRes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d appsv1.Deployment
			find(t, objs, "Deployment/linkerd-viz/"+tc.name, &d)
			if *d.Spec.Replicas != tc.replicas {
				t.Errorf("replicas %d, want %d", *d.Spec.Replicas, tc.replicas)
			}
			ru := d.Spec.Strategy.RollingUpdate
			if got := ru != nil && ru.MaxUnavailable.IntValue() == 1; got != tc.strategy {
				t.Errorf("strategy %+v, want maxUnavailable 1: %v", d.Spec.Strategy, tc.strategy)
			}
			if diff := cmp.Diff(tc.resources, d.Spec.Template.Spec.Containers[0].Resources); diff != "" {
				t.Errorf("resources (-want +got):\n%s", diff)
			}
			aa := d.Spec.Template.Spec.Affinity
			if aa == nil || aa.PodAntiAffinity == nil {
				t.Fatal("no podAntiAffinity")
			}
			req := aa.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
			pref := aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution
			if len(req) != 1 || req[0].TopologyKey != "kubernetes.io/hostname" || len(pref) != 1 || pref[0].Weight != 100 ||
				pref[0].PodAffinityTerm.TopologyKey != "topology.kubernetes.io/zone" {
				t.Errorf("anti-affinity %+v", aa.PodAntiAffinity)
			}
			e := req[0].LabelSelector.MatchExpressions[0]
			if e.Key != "component" || e.Operator != "In" || !cmp.Equal(e.Values, []string{tc.name}) {
				t.Errorf("anti-affinity selector %+v, want component In [%s]", e, tc.name)
			}
		})
	}
	var pdb policyv1.PodDisruptionBudget
	find(t, objs, "PodDisruptionBudget/linkerd-viz/tap", &pdb)
	if pdb.Spec.MaxUnavailable.IntValue() != 1 || !cmp.Equal(pdb.Spec.Selector.MatchLabels, vizLabels("tap")) {
		t.Errorf("PDB spec %+v, want maxUnavailable 1 and selector extension=viz, component=tap", pdb.Spec)
	}
}

func TestVizWebLinks(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // flags between -cluster-domain and -controller-namespace
	}{
		{"none", vizSrc, nil},
		{"grafana", vizSrc + `viz: grafana: url: "https://grafana.example.org"`, []string{"-grafana-external-addr=https://grafana.example.org"}},
		{"jaeger", vizSrc + `viz: jaegerUrl: "jaeger.tracing:16686"`, []string{"-jaeger-addr=jaeger.tracing:16686"}},
		{"both", vizSrc + `viz: grafana: url: "https://g.example.org"` + "\n" + `viz: jaegerUrl: "j:16686"`,
			[]string{"-grafana-external-addr=https://g.example.org", "-jaeger-addr=j:16686"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d appsv1.Deployment
			find(t, renderViz(t, tc.src, Inputs{}), "Deployment/linkerd-viz/web", &d)
			args := d.Spec.Template.Spec.Containers[0].Args
			if len(args) < 3 || !strings.HasPrefix(args[1], "-cluster-domain=") {
				t.Fatalf("args %v", args)
			}
			var got []string
			for _, a := range args[2:] {
				if strings.HasPrefix(a, "-controller-namespace=") {
					break
				}
				got = append(got, a)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("link flags (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVizCustomDomains(t *testing.T) {
	src := vizSrc + `linkerd: clusterDomain: "example.org"` + "\n" + `controlPlane: identity: trustDomain: "mesh.example"`
	objs := renderViz(t, src, Inputs{})
	wantArg := map[string]string{
		"metrics-api":  "-prometheus-url=http://prometheus.linkerd-viz.svc.example.org:9090",
		"tap":          "-identity-trust-domain=mesh.example",
		"tap-injector": "-tap-service-name=tap.linkerd-viz.serviceaccount.identity.linkerd.mesh.example",
		"web":          "-linkerd-metrics-api-addr=metrics-api.linkerd-viz.svc.example.org:8085",
	}
	for name, arg := range wantArg {
		var d appsv1.Deployment
		find(t, objs, "Deployment/linkerd-viz/"+name, &d)
		if args := d.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, arg) {
			t.Errorf("%s args %v lack %s", name, args, arg)
		}
	}
}

func TestVizPrivateKeysOnlyInSecrets(t *testing.T) {
	for _, o := range renderViz(t, vizSrc, vizCerts()) {
		b, err := o.Object.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		// The stand-in keys start "KEY ", which base64 encodes as "S0VZI".
		hasKey := strings.Contains(string(b), "S0VZI")
		if hasKey != (o.Object.GetKind() == "Secret") {
			t.Errorf("%s: holds a private key: %v", o.ID(), hasKey)
		}
	}
}

// TestVizRendersWithTheRest checks that no other generator renders a viz
// object twice, and that Render keeps them all.
func TestVizRendersWithTheRest(t *testing.T) {
	got := map[string]bool{}
	for _, o := range render(t, vizSrc+"viz: ha: true", vizCerts()) {
		got[o.ID()] = true
	}
	for _, id := range append(append([]string{}, upstreamViz...), "PodDisruptionBudget/linkerd-viz/tap") {
		if !got[id] {
			t.Errorf("%s missing from the full render", id)
		}
	}
}

func TestVizLabels(t *testing.T) {
	ext := map[string]string{"linkerd.io/extension": "viz"}
	comp := func(c string) map[string]string { return merge(ext, map[string]string{"component": c}) }
	ns := func(c, n string) map[string]string { return merge(comp(c), map[string]string{"namespace": n}) }
	objs := renderViz(t, vizSrc, vizCerts())
	tests := map[string]map[string]string{
		"ClusterRole/linkerd-linkerd-viz-metrics-api":                          comp("metrics-api"),
		"ServiceAccount/linkerd-viz/metrics-api":                               comp("metrics-api"),
		"Service/linkerd-viz/metrics-api":                                      comp("metrics-api"),
		"ServiceAccount/linkerd-viz/tap":                                       ns("tap", "linkerd-viz"),
		"RoleBinding/kube-system/linkerd-linkerd-viz-tap-auth-reader":          ns("tap", "linkerd-viz"),
		"Secret/linkerd-viz/tap-k8s-tls":                                       ns("tap", "linkerd-viz"),
		"APIService/v1alpha1.tap.linkerd.io":                                   comp("tap"),
		"Service/linkerd-viz/tap":                                              ns("tap", "linkerd-viz"),
		"ClusterRole/linkerd-tap-injector":                                     ext,
		"ServiceAccount/linkerd-viz/tap-injector":                              ext,
		"Secret/linkerd-viz/tap-injector-k8s-tls":                              ext,
		"MutatingWebhookConfiguration/linkerd-tap-injector-webhook-config":     ext,
		"Service/linkerd-viz/tap-injector":                                     comp("tap-injector"),
		"Role/linkerd/web":                                                     ns("web", "linkerd"),
		"ClusterRole/linkerd-linkerd-viz-web-check":                            comp("web"),
		"Service/linkerd-viz/web":                                              ns("web", "linkerd-viz"),
		"NetworkAuthentication/linkerd-viz/kube-api-server":                    ext,
		"ServiceProfile/linkerd-viz/metrics-api.linkerd-viz.svc.cluster.local": ext,
	}
	for id, want := range tests {
		if diff := cmp.Diff(want, objectByID(t, objs, id).GetLabels()); diff != "" {
			t.Errorf("%s labels (-want +got):\n%s", id, diff)
		}
	}
}
