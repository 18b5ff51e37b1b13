package generators

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const (
	promVizOn       = "viz: enabled: true\n"
	promVizExternal = promVizOn + `viz: prometheus: externalURL: "http://prom.monitoring:9090"` + "\n"
)

func promObjects(t *testing.T, src string) []Object {
	t.Helper()
	return vizPrometheus(load(t, src), Inputs{})
}

func promDeploy(t *testing.T, src string) appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	find(t, promObjects(t, src), "Deployment/linkerd-viz/prometheus", &d)
	return d
}

func TestVizPrometheusBundledObjects(t *testing.T) {
	objs := promObjects(t, promVizOn)
	want := []string{
		"AuthorizationPolicy/linkerd-viz/prometheus-admin",
		"ClusterRole/linkerd-linkerd-viz-prometheus",
		"ClusterRoleBinding/linkerd-linkerd-viz-prometheus",
		"ConfigMap/linkerd-viz/prometheus-config",
		"Deployment/linkerd-viz/prometheus",
		"Server/linkerd-viz/prometheus-admin",
		"Service/linkerd-viz/prometheus",
		"ServiceAccount/linkerd-viz/prometheus",
		"ServiceProfile/linkerd-viz/prometheus.linkerd-viz.svc.cluster.local",
	}
	if diff := cmp.Diff(want, objectIDs(objs)); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	for _, o := range objs {
		if o.Stage != StageExtensions {
			t.Errorf("%s in stage %s, want extensions", o.ID(), o.Stage)
		}
	}
}

func TestVizPrometheusDeploymentFacts(t *testing.T) {
	d := promDeploy(t, promVizOn)
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("containers = %v, want prometheus only", containerNames(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	sel := map[string]string{"linkerd.io/extension": "viz", "component": "prometheus", "namespace": "linkerd-viz"}
	tests := []struct {
		name      string
		got, want any
	}{
		{"container", c.Name, "prometheus"},
		{"image", c.Image, "prom/prometheus:v2.55.1"},
		{"args", c.Args, []string{"--log.level=info", "--log.format=logfmt", "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/data", "--storage.tsdb.retention.time=6h"}},
		{"ports", c.Ports, []corev1.ContainerPort{{Name: "admin", ContainerPort: 9090}}},
		{"liveness", [4]any{c.LivenessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Port.IntValue(), c.LivenessProbe.InitialDelaySeconds, c.LivenessProbe.TimeoutSeconds}, [4]any{"/-/healthy", 9090, int32(30), int32(30)}},
		{"readiness", [4]any{c.ReadinessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Port.IntValue(), c.ReadinessProbe.InitialDelaySeconds, c.ReadinessProbe.TimeoutSeconds}, [4]any{"/-/ready", 9090, int32(30), int32(30)}},
		{"mounts", c.VolumeMounts, []corev1.VolumeMount{
			{Name: "data", MountPath: "/data"},
			{Name: "prometheus-config", MountPath: "/etc/prometheus/prometheus.yml", SubPath: "prometheus.yml", ReadOnly: true},
			{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
		}},
		{"uid/gid", [2]int64{*sc.RunAsUser, *sc.RunAsGroup}, [2]int64{65534, 65534}},
		{"non-root, read-only, drop ALL", [3]any{*sc.RunAsNonRoot, *sc.ReadOnlyRootFilesystem, sc.Capabilities.Drop}, [3]any{true, true, []corev1.Capability{"ALL"}}},
		{"fsGroup", *pod.SecurityContext.FSGroup, int64(65534)},
		{"volumes", []string{pod.Volumes[0].Name, pod.Volumes[1].Name, pod.Volumes[1].ConfigMap.Name, pod.Volumes[2].Name}, []string{"data", "prometheus-config", "prometheus-config", "kube-api-access"}},
		{"data is an emptyDir", pod.Volumes[0].EmptyDir != nil, true},
		{"serviceAccount", pod.ServiceAccountName, "prometheus"},
		{"automount off", *pod.AutomountServiceAccountToken, false},
		{"nodeSelector", pod.NodeSelector, map[string]string{"kubernetes.io/os": "linux"}},
		{"replicas", *d.Spec.Replicas, int32(1)},
		{"selector", d.Spec.Selector.MatchLabels, sel},
		{"pod labels", d.Spec.Template.Labels, sel},
		{"deployment inject", [2]string{d.Annotations["linkerd.io/inject"], d.Annotations["config.linkerd.io/proxy-await"]}, [2]string{"enabled", "enabled"}},
		{"pod inject", [2]string{d.Spec.Template.Annotations["linkerd.io/inject"], d.Spec.Template.Annotations["config.alpha.linkerd.io/proxy-wait-before-exit-seconds"]}, [2]string{"enabled", "0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestVizPrometheusServiceAndPolicy(t *testing.T) {
	objs := promObjects(t, promVizOn)
	var svc corev1.Service
	find(t, objs, "Service/linkerd-viz/prometheus", &svc)
	srv := objectByID(t, objs, "Server/linkerd-viz/prometheus-admin")
	ap := objectByID(t, objs, "AuthorizationPolicy/linkerd-viz/prometheus-admin")
	sp := objectByID(t, objs, "ServiceProfile/linkerd-viz/prometheus.linkerd-viz.svc.cluster.local")
	var routes []string
	for _, r := range sp.Object["spec"].(map[string]any)["routes"].([]any) {
		routes = append(routes, r.(map[string]any)["name"].(string))
	}
	nested := func(u *unstructured.Unstructured, path ...string) any {
		v, _, _ := unstructured.NestedFieldNoCopy(u.Object, path...)
		return v
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"service port", [3]any{svc.Spec.Ports[0].Name, svc.Spec.Ports[0].Port, svc.Spec.Ports[0].TargetPort.IntValue()}, [3]any{"admin", int32(9090), 9090}},
		{"service selector", svc.Spec.Selector, map[string]string{"linkerd.io/extension": "viz", "component": "prometheus"}},
		{"service inject", svc.Annotations["linkerd.io/inject"], "enabled"},
		{"server apiVersion", srv.GetAPIVersion(), "policy.linkerd.io/v1beta3"},
		{"server port", nested(srv, "spec", "port"), "admin"},
		{"server protocol", nested(srv, "spec", "proxyProtocol"), "HTTP/1"},
		{"policy apiVersion", ap.GetAPIVersion(), "policy.linkerd.io/v1alpha1"},
		{"policy target", nested(ap, "spec", "targetRef", "name"), "prometheus-admin"},
		{"policy requires metrics-api", nested(ap, "spec", "requiredAuthenticationRefs"), []any{map[string]any{"kind": "ServiceAccount", "name": "metrics-api", "namespace": "linkerd-viz"}}},
		{"profile routes", routes, []string{"POST /api/v1/query", "GET /api/v1/query_range", "GET /api/v1/series"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// promJobNames parses a YAML list of scrape jobs and returns their names.
func promJobNames(t *testing.T, list []any) []string {
	t.Helper()
	var names []string
	for _, j := range list {
		names = append(names, j.(map[string]any)["job_name"].(string))
	}
	return names
}

func promJob(t *testing.T, list []any, name string) map[string]any {
	t.Helper()
	for _, j := range list {
		if j.(map[string]any)["job_name"] == name {
			return j.(map[string]any)
		}
	}
	t.Fatalf("job %s missing", name)
	return nil
}

func TestVizPrometheusConfig(t *testing.T) {
	var cm corev1.ConfigMap
	find(t, promObjects(t, promVizOn), "ConfigMap/linkerd-viz/prometheus-config", &cm)
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["prometheus.yml"]), &cfg); err != nil {
		t.Fatalf("prometheus.yml does not parse: %v", err)
	}
	global := map[string]any{"scrape_interval": "10s", "scrape_timeout": "10s", "evaluation_interval": "10s"}
	if diff := cmp.Diff(global, cfg["global"]); diff != "" {
		t.Errorf("global (-want +got):\n%s", diff)
	}
	jobs := cfg["scrape_configs"].([]any)
	want := []string{"prometheus", "kubernetes-nodes-cadvisor", "linkerd-controller", "linkerd-multicluster-controller", "linkerd-proxy"}
	if diff := cmp.Diff(want, promJobNames(t, jobs)); diff != "" {
		t.Errorf("jobs (-want +got):\n%s", diff)
	}
	proxyKeep := promJob(t, jobs, "linkerd-proxy")["relabel_configs"].([]any)[1]
	wantKeep := map[string]any{
		"action": "keep",
		"source_labels": []any{
			"__meta_kubernetes_pod_container_name",
			"__meta_kubernetes_pod_container_port_name",
			"__meta_kubernetes_pod_label_linkerd_io_control_plane_ns",
		},
		"regex": "^linkerd-proxy;linkerd-admin;linkerd$",
	}
	if diff := cmp.Diff(wantKeep, proxyKeep); diff != "" {
		t.Errorf("linkerd-proxy keep rule (-want +got):\n%s", diff)
	}
	ns := promJob(t, jobs, "linkerd-controller")["kubernetes_sd_configs"].([]any)[0].(map[string]any)["namespaces"]
	if diff := cmp.Diff(map[string]any{"names": []any{"linkerd", "linkerd-viz"}}, ns); diff != "" {
		t.Errorf("linkerd-controller namespaces (-want +got):\n%s", diff)
	}
	mcKeep := promJob(t, jobs, "linkerd-multicluster-controller")["relabel_configs"].([]any)[0].(map[string]any)["regex"]
	if mcKeep != "(linkerd-service-mirror|controller);.*-admin$" {
		t.Errorf("linkerd-multicluster-controller keep regex = %v", mcKeep)
	}
}

func TestPrometheusSizing(t *testing.T) {
	tests := []struct {
		name               string
		src                string
		req, limit, cpuReq string
		retention          []string
		line               string
	}{
		{
			name: "default 100 pods", src: promVizOn,
			req: "756Mi", limit: "1512Mi",
			retention: []string{"--storage.tsdb.retention.time=6h"},
			line:      "viz Prometheus memory: request 756Mi, limit 1512Mi (256Mi base + 5Mi × 100 expected pods; set viz.prometheus.resources.memory to override)",
		},
		{
			name: "1000 pods, size retention", src: promVizOn + `viz: prometheus: {expectedPods: 1000, retention: {time: "24h", size: "10GB"}}`,
			req: "5256Mi", limit: "10512Mi",
			retention: []string{"--storage.tsdb.retention.size=10GB", "--storage.tsdb.retention.time=24h"},
			line:      "viz Prometheus memory: request 5256Mi, limit 10512Mi (256Mi base + 5Mi × 1000 expected pods; set viz.prometheus.resources.memory to override)",
		},
		{
			name: "user memory wins", src: promVizOn + `viz: prometheus: {expectedPods: 1000, resources: memory: {request: "2Gi", limit: "4Gi"}}`,
			req: "2Gi", limit: "4Gi",
			retention: []string{"--storage.tsdb.retention.time=6h"},
			line:      "viz Prometheus memory: request 2Gi, limit 4Gi (set by viz.prometheus.resources)",
		},
		{
			name: "user request only derives no limit", src: promVizOn + `viz: prometheus: resources: memory: request: "3Gi"`,
			req:       "3Gi",
			retention: []string{"--storage.tsdb.retention.time=6h"},
			line:      "viz Prometheus memory: request 3Gi, limit unset (set by viz.prometheus.resources)",
		},
		{
			name: "ha cpu, derived memory", src: promVizOn + "viz: ha: true\n",
			req: "756Mi", limit: "1512Mi", cpuReq: "300m",
			retention: []string{"--storage.tsdb.retention.time=6h"},
			line:      "viz Prometheus memory: request 756Mi, limit 1512Mi (256Mi base + 5Mi × 100 expected pods; set viz.prometheus.resources.memory to override)",
		},
		{
			name: "ha, user cpu wins", src: promVizOn + "viz: ha: true\n" + `viz: prometheus: resources: cpu: request: "1"`,
			req: "756Mi", limit: "1512Mi", cpuReq: "1",
			retention: []string{"--storage.tsdb.retention.time=6h"},
			line:      "viz Prometheus memory: request 756Mi, limit 1512Mi (256Mi base + 5Mi × 100 expected pods; set viz.prometheus.resources.memory to override)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := promDeploy(t, tc.src).Spec.Template.Spec.Containers[0]
			quantity := func(l corev1.ResourceList, n corev1.ResourceName) string {
				if q, ok := l[n]; ok {
					return q.String()
				}
				return ""
			}
			got := [3]string{quantity(c.Resources.Requests, corev1.ResourceMemory), quantity(c.Resources.Limits, corev1.ResourceMemory), quantity(c.Resources.Requests, corev1.ResourceCPU)}
			if diff := cmp.Diff([3]string{tc.req, tc.limit, tc.cpuReq}, got); diff != "" {
				t.Errorf("memory request, limit, cpu request (-want +got):\n%s", diff)
			}
			var retention []string
			for _, a := range c.Args {
				if strings.HasPrefix(a, "--storage.tsdb.retention.") {
					retention = append(retention, a)
				}
			}
			if diff := cmp.Diff(tc.retention, retention); diff != "" {
				t.Errorf("retention args (-want +got):\n%s", diff)
			}
			if got := PrometheusSizing(load(t, tc.src)); got != tc.line {
				t.Errorf("PrometheusSizing = %q, want %q", got, tc.line)
			}
		})
	}
}

func TestPrometheusSizingNoBundled(t *testing.T) {
	for name, src := range map[string]string{"viz disabled": "", "external": promVizExternal} {
		if got := PrometheusSizing(load(t, src)); got != "" {
			t.Errorf("%s: PrometheusSizing = %q, want empty", name, got)
		}
	}
}

func TestVizPrometheusExternal(t *testing.T) {
	tests := []struct {
		name string
		src  string
		ids  []string
	}{
		{"viz disabled", "", nil},
		{"viz disabled, external", `viz: prometheus: externalURL: "http://prom.monitoring:9090"`, nil},
		{"no operator", promVizExternal, []string{"Secret/linkerd-viz/linkerd-prometheus-scrape-config"}},
		{"operator", promVizExternal + "viz: prometheus: {operator: true, podMonitorLabels: release: \"kps\"}\n", []string{
			"PodMonitor/linkerd-viz/linkerd-controller",
			"PodMonitor/linkerd-viz/linkerd-multicluster-controller",
			"PodMonitor/linkerd-viz/linkerd-proxy",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.ids, objectIDs(promObjects(t, tc.src)), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVizPrometheusScrapeSecret(t *testing.T) {
	var s corev1.Secret
	find(t, promObjects(t, promVizExternal), "Secret/linkerd-viz/linkerd-prometheus-scrape-config", &s)
	if s.Type != corev1.SecretTypeOpaque {
		t.Errorf("type = %s, want Opaque", s.Type)
	}
	// One key per consumer (issue 27); hack/promql loads each with
	// Prometheus's own parser.
	if diff := cmp.Diff([]string{"additional-scrape-configs.yaml", "scrape-config-file.yaml"}, slices.Sorted(maps.Keys(s.Data))); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	var file map[string][]any
	if err := yaml.UnmarshalStrict(s.Data["scrape-config-file.yaml"], &file); err != nil {
		t.Fatalf("scrape-config-file.yaml is not a map of lists: %v", err)
	}
	if diff := cmp.Diff([]string{"scrape_configs"}, slices.Sorted(maps.Keys(file))); diff != "" {
		t.Errorf("scrape-config-file.yaml's top-level keys (-want +got):\n%s", diff)
	}
	var list []any
	if err := yaml.UnmarshalStrict(s.Data["additional-scrape-configs.yaml"], &list); err != nil {
		t.Fatalf("additional-scrape-configs.yaml is not a list: %v", err)
	}
	want := []string{"kubernetes-nodes-cadvisor", "linkerd-controller", "linkerd-multicluster-controller", "linkerd-proxy"}
	if diff := cmp.Diff(want, promJobNames(t, file["scrape_configs"])); diff != "" {
		t.Errorf("scrape-config-file.yaml's jobs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(file["scrape_configs"], list); diff != "" {
		t.Errorf("the two keys hold different jobs (-file +list):\n%s", diff)
	}
	if !strings.Contains(s.Annotations["kubernetes.io/description"], "http://prom.monitoring:9090") {
		t.Errorf("description %q does not name the external Prometheus", s.Annotations["kubernetes.io/description"])
	}
}

func TestVizPrometheusPodMonitors(t *testing.T) {
	objs := promObjects(t, promVizExternal+"viz: prometheus: {operator: true, podMonitorLabels: release: \"kps\"}\n")
	endpoint := func(u *unstructured.Unstructured) map[string]any {
		eps, _, _ := unstructured.NestedSlice(u.Object, "spec", "podMetricsEndpoints")
		if len(eps) != 1 {
			t.Fatalf("%s: %d endpoints, want 1", u.GetName(), len(eps))
		}
		return eps[0].(map[string]any)
	}
	lastJob := func(ep map[string]any) any {
		rs := ep["relabelings"].([]any)
		return rs[len(rs)-1]
	}
	tests := []struct {
		name       string
		namespaces any
		selector   any
		port       any
	}{
		{"linkerd-proxy", map[string]any{"any": true}, map[string]any{"matchLabels": map[string]any{"linkerd.io/control-plane-ns": "linkerd"}}, "linkerd-admin"},
		{"linkerd-controller", map[string]any{"matchNames": []any{"linkerd", "linkerd-viz"}}, map[string]any{}, nil},
		{"linkerd-multicluster-controller", map[string]any{"any": true}, map[string]any{"matchExpressions": []any{map[string]any{
			"key": "component", "operator": "In", "values": []any{"linkerd-service-mirror", "controller"}}}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := objectByID(t, objs, "PodMonitor/linkerd-viz/"+tc.name)
			ep := endpoint(u)
			if u.GetAPIVersion() != "monitoring.coreos.com/v1" {
				t.Errorf("apiVersion = %s", u.GetAPIVersion())
			}
			if got := u.GetLabels()["release"]; got != "kps" {
				t.Errorf("label release = %q, want the user's kps", got)
			}
			spec := u.Object["spec"].(map[string]any)
			if diff := cmp.Diff(tc.namespaces, spec["namespaceSelector"]); diff != "" {
				t.Errorf("namespaceSelector (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.selector, spec["selector"]); diff != "" {
				t.Errorf("selector (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.port, ep["port"]); diff != "" {
				t.Errorf("port (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]any{"action": "replace", "targetLabel": "job", "replacement": tc.name}, lastJob(ep)); diff != "" {
				t.Errorf("job relabeling (-want +got):\n%s", diff)
			}
		})
	}
	// The proxy monitor carries the proxy job's keep rule, camel-cased.
	keep := endpoint(objectByID(t, objs, "PodMonitor/linkerd-viz/linkerd-proxy"))["relabelings"].([]any)[1]
	want := map[string]any{"action": "keep", "regex": "^linkerd-proxy;linkerd-admin;linkerd$", "sourceLabels": []any{
		"__meta_kubernetes_pod_container_name", "__meta_kubernetes_pod_container_port_name", "__meta_kubernetes_pod_label_linkerd_io_control_plane_ns",
	}}
	if diff := cmp.Diff(want, keep); diff != "" {
		t.Errorf("proxy keep rule (-want +got):\n%s", diff)
	}
}

// TestVizPrometheusAdmitsTheReconciler: a rollout that reads viz's own
// Prometheus gets the reconciler admitted by a policy of its own; one that
// names its Prometheus, or a mesh with an external one, does not.
func TestVizPrometheusAdmitsTheReconciler(t *testing.T) {
	const id = "AuthorizationPolicy/linkerd-viz/prometheus-admin-meshctl"
	rollout := func(extra string) string {
		return `services: "booksapp/books": {port: 7002, split: {books: 100, "books-v2": 0}, rollout: {from: "books", to: "books-v2", steps: [50, 100]` + extra + `}}` + "\n"
	}
	cases := []struct {
		name, src string
		want      bool
	}{
		{"no rollout", promVizOn, false},
		{"a rollout on viz's Prometheus", promVizOn + rollout(""), true},
		{"a rollout with its own Prometheus", promVizOn + rollout(`, prometheusURL: "http://prom:9090"`), false},
		{"viz with an external Prometheus", promVizExternal + rollout(""), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			objs := promObjects(t, c.src)
			if got := slices.Contains(objectIDs(objs), id); got != c.want {
				t.Fatalf("%s rendered: %v, want %v", id, got, c.want)
			}
			if !c.want {
				return
			}
			u := objectByID(t, objs, id)
			refs, _, _ := unstructured.NestedSlice(u.Object, "spec", "requiredAuthenticationRefs")
			want := []any{map[string]any{"kind": "ServiceAccount", "name": "meshctl-reconciler", "namespace": "meshctl"}}
			if !cmp.Equal(refs, want) {
				t.Errorf("refs %v, want %v", refs, want)
			}
			if name, _, _ := unstructured.NestedString(u.Object, "spec", "targetRef", "name"); name != "prometheus-admin" {
				t.Errorf("targets %q", name)
			}
		})
	}
}
