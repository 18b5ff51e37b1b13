package generators

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

const traceDeploySrc = "tracing: {enabled: true, collector: deploy: true}\n"

func envValue(t *testing.T, c corev1.Container, name string) (string, bool) {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func proxyOf(t *testing.T, d appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "linkerd-proxy" {
			return c
		}
	}
	t.Fatalf("%s has no linkerd-proxy", d.Name)
	return corev1.Container{}
}

// linkerdConfigTracing is proxy.tracing in linkerd-config's values.
func linkerdConfigTracing(t *testing.T, objs []Object) map[string]any {
	t.Helper()
	var cm corev1.ConfigMap
	find(t, objs, "ConfigMap/linkerd/linkerd-config", &cm)
	var v struct {
		Proxy struct {
			Tracing map[string]any `json:"tracing"`
		} `json:"proxy"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["values"]), &v); err != nil {
		t.Fatal(err)
	}
	return v.Proxy.Tracing
}

// otelConfig is the collector configuration, as the collector reads it.
type otelConfig struct {
	Extensions map[string]any            `json:"extensions"`
	Receivers  map[string]any            `json:"receivers"`
	Processors map[string]map[string]any `json:"processors"`
	Exporters  map[string]map[string]any `json:"exporters"`
	Service    struct {
		Extensions []string `json:"extensions"`
		Pipelines  map[string]struct {
			Receivers  []string `json:"receivers"`
			Processors []string `json:"processors"`
			Exporters  []string `json:"exporters"`
		} `json:"pipelines"`
	} `json:"service"`
}

func collectorConfigOf(t *testing.T, objs []Object) otelConfig {
	t.Helper()
	var cm corev1.ConfigMap
	find(t, objs, "ConfigMap/linkerd-tracing/collector-config", &cm)
	raw, ok := cm.Data["collector.yaml"]
	if !ok {
		t.Fatalf("collector-config has no collector.yaml: %v", cm.Data)
	}
	var cfg otelConfig
	if err := yaml.UnmarshalStrict([]byte(raw), &cfg); err != nil {
		t.Fatalf("collector.yaml: %v\n%s", err, raw)
	}
	return cfg
}

func TestTraceBackendOff(t *testing.T) {
	tests := []struct{ name, src string }{
		{"tracing disabled", ""},
		{"deploy false", "tracing: enabled: true\n"},
		{"deploy without tracing", "tracing: collector: deploy: true\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t, tc.src)
			if got := traceBackend(m, Inputs{}); got != nil {
				t.Errorf("traceBackend rendered %v", objectIDs(got))
			}
			for _, o := range render(t, tc.src, Inputs{}) {
				if o.Object.GetNamespace() == "linkerd-tracing" || o.ID() == "Namespace/linkerd-tracing" {
					t.Errorf("rendered %s", o.ID())
				}
			}
		})
	}
}

func TestTraceBackendObjects(t *testing.T) {
	got := traceBackend(load(t, traceDeploySrc), Inputs{})
	want := []string{
		"ConfigMap/linkerd-tracing/collector-config",
		"Deployment/linkerd-tracing/collector",
		"Deployment/linkerd-tracing/jaeger",
		"Namespace/linkerd-tracing",
		"Service/linkerd-tracing/collector",
		"Service/linkerd-tracing/jaeger",
		"ServiceAccount/linkerd-tracing/collector",
		"ServiceAccount/linkerd-tracing/jaeger",
	}
	if diff := cmp.Diff(want, objectIDs(got)); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	for _, o := range got {
		wantStage := StageExtensions
		if o.Object.GetKind() == "Namespace" {
			wantStage = StageCRDs
		}
		if o.Stage != wantStage {
			t.Errorf("%s in stage %s, want %s", o.ID(), o.Stage, wantStage)
		}
	}
	var ns corev1.Namespace
	find(t, got, "Namespace/linkerd-tracing", &ns)
	if ns.Annotations["linkerd.io/inject"] != "enabled" {
		t.Errorf("namespace annotations %v, want linkerd.io/inject: enabled", ns.Annotations)
	}
}

// TestTraceCollectorIdentity: the proxies authenticate the collector by the
// identity linkerd-config and their env name; the collector must run as it.
func TestTraceCollectorIdentity(t *testing.T) {
	tests := []struct {
		name, src, sa, identity string
	}{
		{"default", traceDeploySrc, "collector", "collector.linkerd-tracing.serviceaccount.identity.linkerd.cluster.local"},
		{"custom", traceDeploySrc + "tracing: collector: {serviceAccount: \"otel\", namespace: \"obs\"}\n",
			"otel", "otel.obs.serviceaccount.identity.linkerd.cluster.local"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t, tc.src)
			objs := render(t, tc.src, Inputs{})
			ns := m.Tracing.Collector.Namespace
			var d appsv1.Deployment
			find(t, objs, "Deployment/"+ns+"/collector", &d)
			var sa corev1.ServiceAccount
			find(t, objs, "ServiceAccount/"+ns+"/"+tc.sa, &sa)
			if got := d.Spec.Template.Spec.ServiceAccountName; got != tc.sa {
				t.Errorf("collector runs as %q, want %q", got, tc.sa)
			}
			if got := identityName(m, d.Spec.Template.Spec.ServiceAccountName, d.Namespace); got != tc.identity {
				t.Errorf("collector identity %q, want %q", got, tc.identity)
			}
			for _, name := range []string{"linkerd-identity", "linkerd-destination", "linkerd-proxy-injector"} {
				var cp appsv1.Deployment
				find(t, objs, "Deployment/linkerd/"+name, &cp)
				if got, _ := envValue(t, proxyOf(t, cp), "LINKERD2_PROXY_TRACE_COLLECTOR_SVC_NAME"); got != tc.identity {
					t.Errorf("%s proxy expects collector %q, want %q", name, got, tc.identity)
				}
			}
			mi, _ := linkerdConfigTracing(t, objs)["collector"].(map[string]any)["meshIdentity"].(map[string]any)
			want := map[string]any{"serviceAccountName": tc.sa, "namespace": ns}
			if diff := cmp.Diff(want, mi); diff != "" {
				t.Errorf("linkerd-config meshIdentity (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTraceServices: the collector Service is what the default endpoint
// names, and the jaeger Service is what the dashboard links to.
func TestTraceServices(t *testing.T) {
	m := load(t, traceDeploySrc)
	objs := render(t, traceDeploySrc, Inputs{})
	tests := []struct {
		svc, port string
		want      string
	}{
		{"collector", "otlp", m.Tracing.Collector.Endpoint},
		{"jaeger", "ui", vizJaegerURL(m)},
	}
	if m.Tracing.Collector.Endpoint != "collector.linkerd-tracing.svc.cluster.local:4317" {
		t.Fatalf("schema default endpoint is %q", m.Tracing.Collector.Endpoint)
	}
	for _, tc := range tests {
		t.Run(tc.svc, func(t *testing.T) {
			var s corev1.Service
			find(t, objs, "Service/linkerd-tracing/"+tc.svc, &s)
			var d appsv1.Deployment
			find(t, objs, "Deployment/linkerd-tracing/"+tc.svc, &d)
			for k, v := range s.Spec.Selector {
				if d.Spec.Template.Labels[k] != v {
					t.Errorf("selector %s=%s does not match the pod labels %v", k, v, d.Spec.Template.Labels)
				}
			}
			i := slices.IndexFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == tc.port })
			if i < 0 {
				t.Fatalf("no port %q in %v", tc.port, s.Spec.Ports)
			}
			p := s.Spec.Ports[i]
			got := fmt.Sprintf("%s.%s.svc.%s:%d", s.Name, s.Namespace, m.Linkerd.ClusterDomain, p.Port)
			if got != tc.want {
				t.Errorf("service address %q, want %q", got, tc.want)
			}
			c := d.Spec.Template.Spec.Containers[0]
			j := slices.IndexFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.TargetPort.StrVal })
			if j < 0 || c.Ports[j].ContainerPort != p.Port {
				t.Errorf("targetPort %q does not reach container port %d: %v", p.TargetPort.StrVal, p.Port, c.Ports)
			}
		})
	}
	// The collector exports to jaeger's OTLP port.
	cfg := collectorConfigOf(t, objs)
	if got := cfg.Exporters["otlp/jaeger"]["endpoint"]; got != "jaeger.linkerd-tracing.svc.cluster.local:4317" {
		t.Errorf("exporter endpoint %v", got)
	}
}

func TestTraceDeployments(t *testing.T) {
	src := traceDeploySrc + `tracing: collector: resources: memory: limit: "512Mi"` + "\n"
	objs := render(t, src, Inputs{})
	tests := []struct {
		name, image, healthPort string
		args                    []string
		env                     map[string]string
		ports                   map[string]int32
		memoryLimit             string
	}{
		{name: "collector", image: "otel/opentelemetry-collector-contrib:0.161.0", healthPort: "health",
			args:  []string{"--config=/conf/collector.yaml"},
			ports: map[string]int32{"otlp": 4317, "otlp-http": 4318, "health": 13133}, memoryLimit: "512Mi"},
		{name: "jaeger", image: "jaegertracing/all-in-one:1.65.0", healthPort: "admin",
			env:   map[string]string{"COLLECTOR_OTLP_ENABLED": "true", "SPAN_STORAGE_TYPE": "memory"},
			ports: map[string]int32{"ui": 16686, "otlp": 4317, "admin": 14269}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d appsv1.Deployment
			find(t, objs, "Deployment/linkerd-tracing/"+tc.name, &d)
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
				t.Errorf("replicas %v, want 1", d.Spec.Replicas)
			}
			pod := d.Spec.Template
			if pod.Annotations["linkerd.io/inject"] != "enabled" {
				t.Errorf("pod annotations %v, want linkerd.io/inject: enabled", pod.Annotations)
			}
			for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/part-of", labelComponent} {
				if pod.Labels[k] == "" {
					t.Errorf("pod label %s missing: %v", k, pod.Labels)
				}
			}
			if pod.Labels[labelComponent] != tc.name {
				t.Errorf("component label %q, want %q", pod.Labels[labelComponent], tc.name)
			}
			if a := pod.Spec.AutomountServiceAccountToken; a == nil || *a {
				t.Errorf("automountServiceAccountToken %v, want false", a)
			}
			if len(pod.Spec.Containers) != 1 {
				t.Fatalf("containers %v", containerNames(pod.Spec.Containers))
			}
			c := pod.Spec.Containers[0]
			if c.Image != tc.image {
				t.Errorf("image %q, want %q", c.Image, tc.image)
			}
			if diff := cmp.Diff(tc.args, c.Args); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
			for k, v := range tc.env {
				if got, ok := envValue(t, c, k); !ok || got != v {
					t.Errorf("env %s=%q, want %q", k, got, v)
				}
			}
			ports := map[string]int32{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			if diff := cmp.Diff(tc.ports, ports); diff != "" {
				t.Errorf("ports (-want +got):\n%s", diff)
			}
			for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.StrVal != tc.healthPort {
					t.Errorf("%s probe %+v, want HTTP on %s", name, p, tc.healthPort)
				}
			}
			sc := c.SecurityContext
			if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
				sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("security context %+v is not restricted", sc)
			}
			if got := c.Resources.Limits.Memory().String(); tc.memoryLimit != "" && got != tc.memoryLimit {
				t.Errorf("memory limit %s, want %s", got, tc.memoryLimit)
			}
		})
	}
}

func TestCollectorConfig(t *testing.T) {
	tests := []struct {
		sampling string
		want     float64
	}{
		{"0.1", 10},
		{"1.0", 100},
		{"0.25", 25},
		{"0.07", 7},  // 7.000000000000001 unrounded
		{"0.57", 57}, // 56.99999999999999 unrounded
		{"0", 0},
	}
	for _, tc := range tests {
		t.Run("sampling "+tc.sampling, func(t *testing.T) {
			src := traceDeploySrc + "tracing: sampling: " + tc.sampling + "\n"
			cfg := collectorConfigOf(t, render(t, src, Inputs{}))
			if got := cfg.Processors["probabilistic_sampler"]["sampling_percentage"]; got != tc.want {
				t.Errorf("sampling_percentage %v, want %v", got, tc.want)
			}
			checkPipeline(t, cfg)
			p := cfg.Service.Pipelines["traces"]
			if diff := cmp.Diff([]string{"otlp"}, p.Receivers); diff != "" {
				t.Errorf("receivers (-want +got):\n%s", diff)
			}
			protocols := cfg.Receivers["otlp"].(map[string]any)["protocols"].(map[string]any)
			for proto, ep := range map[string]string{"grpc": "0.0.0.0:4317", "http": "0.0.0.0:4318"} {
				if got := protocols[proto].(map[string]any)["endpoint"]; got != ep {
					t.Errorf("otlp %s endpoint %v, want %s", proto, got, ep)
				}
			}
			if tls := cfg.Exporters["otlp/jaeger"]["tls"]; !cmp.Equal(tls, map[string]any{"insecure": true}) {
				t.Errorf("exporter tls %v", tls)
			}
			if ep := cfg.Extensions["health_check"].(map[string]any)["endpoint"]; ep != "0.0.0.0:13133" {
				t.Errorf("health_check endpoint %v", ep)
			}
		})
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// checkPipeline checks the one traces pipeline against what cfg defines.
func checkPipeline(t *testing.T, cfg otelConfig) {
	t.Helper()
	p, ok := cfg.Service.Pipelines["traces"]
	if !ok || len(cfg.Service.Pipelines) != 1 {
		t.Fatalf("pipelines %v, want traces only", cfg.Service.Pipelines)
	}
	checkUsed(t, "receiver", keys(cfg.Receivers), p.Receivers)
	checkUsed(t, "processor", keys(cfg.Processors), p.Processors)
	checkUsed(t, "exporter", keys(cfg.Exporters), p.Exporters)
	checkUsed(t, "extension", keys(cfg.Extensions), cfg.Service.Extensions)
}

// checkUsed: every component the pipeline names is defined, and every
// defined one is used (the collector refuses the first, warns on neither).
func checkUsed(t *testing.T, kind string, defined, used []string) {
	t.Helper()
	u := slices.Sorted(slices.Values(used))
	if diff := cmp.Diff(defined, slices.Compact(u)); diff != "" {
		t.Errorf("%ss defined vs used (-defined +used):\n%s", kind, diff)
	}
	if len(u) != len(slices.Compact(slices.Clone(u))) {
		t.Errorf("%ss listed twice: %v", kind, used)
	}
}

var quotedNamespace = regexp.MustCompile(`== "([^"]*)"`)

func TestTraceNamespaces(t *testing.T) {
	const defaultExtra = "k8s.pod.ip=$(_pod_ip)\nk8s.pod.uid=$(_pod_uid)\nk8s.container.name=$(_pod_containerName)\n"
	tests := []struct {
		name       string
		namespaces string
		kept       []string
		extra      string
		labels     map[string]any
	}{
		{name: "all namespaces", extra: defaultExtra},
		{name: "two namespaces", namespaces: `["shop", "books"]`, kept: []string{"books", "shop"},
			extra: defaultExtra + "k8s.namespace.name=$(_pod_ns)\n",
			labels: map[string]any{
				"k8s.pod.ip": "$(_pod_ip)", "k8s.pod.uid": "$(_pod_uid)",
				"k8s.container.name": "$(_pod_containerName)", "k8s.namespace.name": "$(_pod_ns)",
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := traceDeploySrc + "tracing: controlPlane: true\n"
			if tc.namespaces != "" {
				src += "tracing: namespaces: " + tc.namespaces + "\n"
			}
			objs := render(t, src, Inputs{})
			cfg := collectorConfigOf(t, objs)
			checkPipeline(t, cfg)
			f, ok := cfg.Processors["filter/namespaces"]
			if ok != (tc.kept != nil) {
				t.Fatalf("filter present %v, want %v", ok, tc.kept != nil)
			}
			if ok {
				conds := f["traces"].(map[string]any)["span"].([]any)
				if len(conds) != 1 {
					t.Fatalf("conditions %v, want one", conds)
				}
				cond := conds[0].(string)
				// Spans without the attribute (the controllers') are kept.
				if !strings.HasPrefix(cond, `resource.attributes["k8s.namespace.name"] != nil and not (`) {
					t.Errorf("condition %q drops spans without a namespace", cond)
				}
				var kept []string
				for _, m := range quotedNamespace.FindAllStringSubmatch(cond, -1) {
					kept = append(kept, m[1])
				}
				if diff := cmp.Diff(tc.kept, kept); diff != "" {
					t.Errorf("kept namespaces (-want +got):\n%s", diff)
				}
				p := cfg.Service.Pipelines["traces"].Processors
				if slices.Index(p, "filter/namespaces") > slices.Index(p, "probabilistic_sampler") {
					t.Errorf("processors %v: filter runs after the sampler", p)
				}
			}
			var d appsv1.Deployment
			find(t, objs, "Deployment/linkerd/linkerd-destination", &d)
			if got, _ := envValue(t, proxyOf(t, d), "LINKERD2_PROXY_TRACE_EXTRA_ATTRIBUTES"); got != tc.extra {
				t.Errorf("control-plane extra attributes %q, want %q", got, tc.extra)
			}
			got, _ := linkerdConfigTracing(t, objs)["labels"].(map[string]any)
			if diff := cmp.Diff(tc.labels, got); diff != "" {
				t.Errorf("linkerd-config proxy.tracing.labels (-want +got):\n%s", diff)
			}
		})
	}
}
