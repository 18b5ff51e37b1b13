package generators

import (
	"fmt"
	"math"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/meshctl/meshctl/schema"
)

// The trace backend tracing.collector.deploy runs. Linkerd 2.19 has no
// jaeger extension (FACTS §9): every proxy exports OTLP to one mesh-wide
// endpoint, so meshctl deploys the receiving end itself.
const (
	// collectorName is the Service the default tracing.collector.endpoint
	// (schema/mesh.cue) names. With another endpoint the Service keeps this
	// name and the proxies send their spans elsewhere.
	collectorName      = "collector"
	collectorConfigKey = "collector.yaml"
	// jaegerName is the Service vizJaegerURL links the dashboard to.
	jaegerName = "jaeger"

	otlpGRPCPort        = 4317
	otlpHTTPPort        = 4318
	collectorHealthPort = 13133
	jaegerUIPort        = 16686
	jaegerAdminPort     = 14269

	// traceUID is the non-root user both upstream images are built to run as.
	traceUID = 10001
	// jaegerMaxTraces bounds the in-memory store, which otherwise grows
	// until the pod is OOM-killed.
	jaegerMaxTraces = "100000"

	// traceNamespaceAttr is the resource attribute tracing.namespaces
	// filters on (OpenTelemetry's semantic convention for a pod's namespace).
	traceNamespaceAttr = "k8s.namespace.name"
	// tracePodNamespace is the proxy env var that holds the pod's namespace;
	// the kubelet expands $(_pod_ns) because the proxy defines it earlier.
	tracePodNamespace = "$(_pod_ns)"
)

// traceExtension is the linkerd.io/extension value of the trace backend's
// objects: a meshctl convention, as no upstream extension exists any more.
const traceExtension = "tracing"

// traceLabels are the labels of a trace-backend object of component c.
func traceLabels(c string) map[string]string {
	return map[string]string{labelExtension: traceExtension, labelComponent: c}
}

// tracePodLabels add the app.kubernetes.io labels; the injector also takes
// the proxy's service.name from app.kubernetes.io/name (FACTS §9).
func tracePodLabels(c string) map[string]string {
	return merge(traceLabels(c), map[string]string{
		"app.kubernetes.io/name":    c,
		"app.kubernetes.io/part-of": "meshctl-tracing",
	})
}

// traceBackend renders the trace backend tracing.collector.deploy asks for:
// an OpenTelemetry Collector the proxies export to, and a Jaeger
// all-in-one it forwards to, both meshed.
func traceBackend(m *schema.Mesh, _ Inputs) []Object {
	c := m.Tracing.Collector
	if !m.Tracing.Enabled || !c.Deploy {
		return nil
	}
	// Meshed by the core injector: the proxies only export to a collector
	// that holds a mesh identity (see traceCollector).
	var objs []Object
	if !renderedElsewhere(m, c.Namespace) {
		objs = append(objs, nsObject(c.Namespace, map[string]string{
			labelExtension:                       traceExtension,
			"pod-security.kubernetes.io/enforce": podSecurityLevel(m),
		}, map[string]string{"linkerd.io/inject": "enabled"}))
	}
	objs = append(objs, traceCollector(m)...)
	return append(objs, traceJaeger(m)...)
}

// traceCollector is the OpenTelemetry Collector.
//
// Its image defaults to otel/opentelemetry-collector-contrib:0.161.0
// (schema/mesh.cue), the release whose own config validation hack/otelcol
// runs on collectorConfig (core and contrib modules v0.161.0). The
// exporter is otlp, which that release reads as the alias of otlp_grpc,
// so a user who pins an older image keeps a config it reads too.
//
// The proxies open mTLS to it and check its identity against
// LINKERD2_PROXY_TRACE_COLLECTOR_SVC_NAME,
// <sa>.<ns>.serviceaccount.identity.linkerd.<trust domain> (tracingEnv,
// linkerd-config's meshIdentity): so it runs meshed, as that ServiceAccount.
func traceCollector(m *schema.Mesh) []Object {
	c := m.Tracing.Collector
	ns, comp := c.Namespace, collectorName
	cfg := mustYAML(collectorConfig(m))
	port := func(name string, p int32) corev1.ContainerPort {
		return corev1.ContainerPort{Name: name, ContainerPort: p, Protocol: corev1.ProtocolTCP}
	}
	health := httpProbe("/", intstr.FromString("health"))
	container := corev1.Container{
		Name:  comp,
		Image: c.Image,
		Args:  []string{"--config=/conf/" + collectorConfigKey},
		Ports: []corev1.ContainerPort{
			port("otlp", otlpGRPCPort), port("otlp-http", otlpHTTPPort), port("health", collectorHealthPort),
		},
		LivenessProbe:   health,
		ReadinessProbe:  health,
		Resources:       resources(c.Resources),
		SecurityContext: restrictedContext(traceUID, nil),
		VolumeMounts:    []corev1.VolumeMount{{Name: "config", MountPath: "/conf", ReadOnly: true}},
	}
	pod := corev1.PodSpec{
		ServiceAccountName: c.ServiceAccount,
		Containers:         []corev1.Container{container},
		Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: comp + "-config"},
		}}}},
	}
	return []Object{
		toObject(StageExtensions, gvkSA, &corev1.ServiceAccount{
			ObjectMeta: objectMeta(c.ServiceAccount, ns, traceLabels(comp), nil),
		}),
		toObject(StageExtensions, gvkConfigMap, &corev1.ConfigMap{
			ObjectMeta: objectMeta(comp+"-config", ns, traceLabels(comp), nil),
			Data:       map[string]string{collectorConfigKey: cfg},
		}),
		traceDeployment(ns, comp, pod, map[string]string{"checksum/config": sha256Hex([]byte(cfg))}),
		traceService(ns, comp, []corev1.ServicePort{
			{Name: "otlp", Port: otlpGRPCPort, TargetPort: intstr.FromString("otlp")},
			{Name: "otlp-http", Port: otlpHTTPPort, TargetPort: intstr.FromString("otlp-http")},
		}),
	}
}

// traceJaeger is Jaeger all-in-one with in-memory storage: it takes OTLP
// from the collector and serves the UI the viz dashboard links to.
func traceJaeger(m *schema.Mesh) []Object {
	ns, comp := m.Tracing.Collector.Namespace, jaegerName
	health := httpProbe("/", intstr.FromString("admin"))
	container := corev1.Container{
		Name:  comp,
		Image: m.Tracing.Collector.JaegerImage,
		Env: []corev1.EnvVar{
			env("COLLECTOR_OTLP_ENABLED", "true"),
			env("SPAN_STORAGE_TYPE", "memory"),
			env("MEMORY_MAX_TRACES", jaegerMaxTraces),
		},
		Ports: []corev1.ContainerPort{
			{Name: "ui", ContainerPort: jaegerUIPort, Protocol: corev1.ProtocolTCP},
			{Name: "otlp", ContainerPort: otlpGRPCPort, Protocol: corev1.ProtocolTCP},
			{Name: "admin", ContainerPort: jaegerAdminPort, Protocol: corev1.ProtocolTCP},
		},
		LivenessProbe:   health,
		ReadinessProbe:  health,
		SecurityContext: restrictedContext(traceUID, nil),
		VolumeMounts:    []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
	}
	pod := corev1.PodSpec{
		ServiceAccountName: comp,
		Containers:         []corev1.Container{container},
		Volumes:            []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
	}
	return []Object{
		toObject(StageExtensions, gvkSA, &corev1.ServiceAccount{ObjectMeta: objectMeta(comp, ns, traceLabels(comp), nil)}),
		traceDeployment(ns, comp, pod, nil),
		traceService(ns, comp, []corev1.ServicePort{
			{Name: "ui", Port: jaegerUIPort, TargetPort: intstr.FromString("ui")},
			{Name: "otlp", Port: otlpGRPCPort, TargetPort: intstr.FromString("otlp")},
		}),
	}
}

// traceDeployment is a one-replica, meshed Deployment of component comp.
// Neither component talks to the API server, so no token is mounted; the
// injector adds the projected token the proxy's identity needs.
func traceDeployment(ns, comp string, pod corev1.PodSpec, annotations map[string]string) Object {
	pod.AutomountServiceAccountToken = ptr.To(false)
	pod.SecurityContext = &corev1.PodSecurityContext{
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	return toObject(StageExtensions, gvkDeployment, &appsv1.Deployment{
		ObjectMeta: objectMeta(comp, ns, traceLabels(comp), nil),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: traceLabels(comp)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: objectMeta("", "", tracePodLabels(comp),
					merge(map[string]string{"linkerd.io/inject": "enabled"}, annotations)),
				Spec: pod,
			},
		},
	})
}

func traceService(ns, comp string, ports []corev1.ServicePort) Object {
	for i := range ports {
		ports[i].Protocol = corev1.ProtocolTCP
	}
	return toObject(StageExtensions, gvkService, &corev1.Service{
		ObjectMeta: objectMeta(comp, ns, traceLabels(comp), nil),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: traceLabels(comp),
			Ports:    ports,
		},
	})
}

// jaegerOTLPAddr is where the collector exports to.
func jaegerOTLPAddr(m *schema.Mesh) string {
	return fmt.Sprintf("%s.%s.svc.%s:%d", jaegerName, m.Tracing.Collector.Namespace, m.Linkerd.ClusterDomain, otlpGRPCPort)
}

// collectorConfig is the collector's configuration document. Processors run
// in pipeline order: memory first, then the namespace filter, so that the
// sampler only weighs spans that would be kept.
func collectorConfig(m *schema.Mesh) map[string]any {
	t := m.Tracing
	processors := map[string]any{
		"memory_limiter": map[string]any{"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 25},
		"probabilistic_sampler": map[string]any{
			"sampling_percentage": samplingPercentage(t.Sampling),
		},
		"batch": map[string]any{},
	}
	pipeline := []string{"memory_limiter"}
	if f := namespaceFilter(t.Namespaces); f != nil {
		processors["filter/namespaces"] = f
		pipeline = append(pipeline, "filter/namespaces")
	}
	pipeline = append(pipeline, "probabilistic_sampler", "batch")
	return map[string]any{
		"extensions": map[string]any{
			"health_check": map[string]any{"endpoint": fmt.Sprintf("0.0.0.0:%d", collectorHealthPort)},
		},
		"receivers": map[string]any{
			"otlp": map[string]any{"protocols": map[string]any{
				"grpc": map[string]any{"endpoint": fmt.Sprintf("0.0.0.0:%d", otlpGRPCPort)},
				"http": map[string]any{"endpoint": fmt.Sprintf("0.0.0.0:%d", otlpHTTPPort)},
			}},
		},
		"processors": processors,
		"exporters": map[string]any{
			// Plaintext to the collector's own proxy: the two proxies carry
			// it to Jaeger over mTLS.
			"otlp/jaeger": map[string]any{"endpoint": jaegerOTLPAddr(m), "tls": map[string]any{"insecure": true}},
		},
		"service": map[string]any{
			"extensions": []string{"health_check"},
			"pipelines": map[string]any{"traces": map[string]any{
				"receivers":  []string{"otlp"},
				"processors": pipeline,
				"exporters":  []string{"otlp/jaeger"},
			}},
		},
	}
}

// samplingPercentage is sampling×100, rounded so that 0.1 gives 10 and not
// float64's 10.000000000000002.
func samplingPercentage(sampling float64) float64 {
	return math.Round(sampling*100*1e6) / 1e6
}

// namespaceFilter is the filter processor (contrib) that keeps
// tracing.namespaces: Linkerd 2.19 traces mesh-wide, so every proxy still
// exports and the collector drops the spans of other namespaces. Spans
// without the attribute (the controllers' own) are kept.
func namespaceFilter(namespaces []string) map[string]any {
	if len(namespaces) == 0 {
		return nil
	}
	nss := slices.Clone(namespaces)
	slices.Sort(nss)
	nss = slices.Compact(nss)
	attr := fmt.Sprintf("resource.attributes[%q]", traceNamespaceAttr)
	keep := make([]string, len(nss))
	for i, ns := range nss {
		keep[i] = fmt.Sprintf("%s == %q", attr, ns) // DNS labels: no escaping needed
	}
	drop := fmt.Sprintf("%s != nil and not (%s)", attr, strings.Join(keep, " or "))
	return map[string]any{
		"error_mode": "ignore",
		"traces":     map[string]any{"span": []string{drop}},
	}
}

// traceProxyLabels are linkerd-config's proxy.tracing.labels, which the
// injector renders into each workload proxy's
// LINKERD2_PROXY_TRACE_EXTRA_ATTRIBUTES: upstream's defaults plus the
// pod's namespace, set only when tracing.namespaces needs it.
func traceProxyLabels(m *schema.Mesh) map[string]string {
	if len(m.Tracing.Namespaces) == 0 {
		return nil
	}
	return map[string]string{
		"k8s.pod.ip":         "$(_pod_ip)",
		"k8s.pod.uid":        "$(_pod_uid)",
		"k8s.container.name": "$(_pod_containerName)",
		traceNamespaceAttr:   tracePodNamespace,
	}
}
