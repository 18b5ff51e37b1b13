package generators

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sschema "k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/meshctl/meshctl/internal/ident"
	"github.com/meshctl/meshctl/schema"
)

// viz's Prometheus (FACTS §10.1, §10.2). The image is Prometheus's own, not
// one under the Linkerd registry.
const (
	promName = "prometheus"
	// promImage is upstream's. hack/promql loads the configs with the
	// parser of Prometheus 3.16 (module v0.316.0), not 2.55: the module
	// proxy serves no github.com/prometheus/prometheus older than v0.313.
	promImage      = "prom/prometheus:v2.55.1"
	promPort       = 9090
	promConfigMap  = "prometheus-config"
	promConfigFile = "prometheus.yml"
	promAdminPort  = "admin"
	// promScrapeSecret holds the scrape jobs for a Prometheus meshctl does
	// not run, when it is not run by the Prometheus Operator. Its two keys
	// hold the same jobs in the shape each consumer reads (issue 27):
	// promScrapeFileKey is a file for scrape_config_files, which Prometheus
	// reads as a map with a scrape_configs list (a bare list fails with
	// "cannot unmarshal !!seq into config.ScrapeConfigs");
	// promScrapeOperatorKey is the bare list the Prometheus Operator's
	// additionalScrapeConfigs appends to the config it generates.
	promScrapeSecret      = "linkerd-prometheus-scrape-config"
	promScrapeFileKey     = "scrape-config-file.yaml"
	promScrapeOperatorKey = "additional-scrape-configs.yaml"
	// The interval upstream scrapes and evaluates at; the dashboards and
	// metrics-api queries assume it.
	promInterval = "10s"
	// The serviceaccount mount every Prometheus pod has, which the cadvisor
	// job authenticates to the API server with.
	promSADir = "/var/run/secrets/kubernetes.io/serviceaccount"
)

// Prometheus memory sizing. Each meshed pod adds a few thousand series
// (the proxy's per-route and per-peer metrics); Prometheus keeps about 1 KB
// per in-memory series head, so about 5 MB per pod. The 256Mi base covers
// the process, the cadvisor and control-plane jobs, and query buffers. The
// limit doubles the request to absorb compaction and query spikes.
const (
	promMemBaseMi   = 256
	promMemPerPodMi = 5
	promMemLimitX   = 2
	// promHACPU is upstream's `viz install --ha` cpu request (FACTS §10.5).
	promHACPU = "300m"
)

// vizPrometheus renders viz's Prometheus, or what an external Prometheus
// needs to scrape the mesh.
func vizPrometheus(m *schema.Mesh, _ Inputs) []Object {
	switch p := m.Viz.Prometheus; {
	case !m.Viz.Enabled:
		return nil
	case p.ExternalURL == "":
		return bundledPrometheus(m)
	case p.Operator:
		return promPodMonitors(m)
	}
	return []Object{promScrapeConfigSecret(m)}
}

// bundledPrometheus is upstream's Prometheus: RBAC, config, Service,
// Deployment, the policy that lets metrics-api query it, and its profile.
func bundledPrometheus(m *schema.Mesh) []Object {
	labels := vizLabels(promName)
	nsLabels := merge(labels, map[string]string{"namespace": vizNamespace})
	created := map[string]string{annotationCreated: createdBy(m)}
	inject := merge(created, map[string]string{"linkerd.io/inject": "enabled"})
	role := "linkerd-" + vizNamespace + "-" + promName
	objs := []Object{
		toObject(StageExtensions, gvkClusterRole, &rbacv1.ClusterRole{
			ObjectMeta: objectMeta(role, "", labels, nil),
			Rules:      []rbacv1.PolicyRule{rule(core, []string{"nodes", "nodes/proxy", "pods"}, []string{"get", "list", "watch"})},
		}),
		toObject(StageExtensions, gvkCRB, &rbacv1.ClusterRoleBinding{
			ObjectMeta: objectMeta(role, "", labels, nil),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   saSubject(promName, vizNamespace),
		}),
		toObject(StageExtensions, gvkSA, &corev1.ServiceAccount{ObjectMeta: objectMeta(promName, vizNamespace, nsLabels, nil)}),
		toObject(StageExtensions, gvkConfigMap, &corev1.ConfigMap{
			ObjectMeta: objectMeta(promConfigMap, vizNamespace, nsLabels, created),
			Data:       map[string]string{promConfigFile: promConfig(m)},
		}),
		toObject(StageExtensions, gvkService, &corev1.Service{
			ObjectMeta: objectMeta(promName, vizNamespace, nsLabels, inject),
			Spec: corev1.ServiceSpec{
				Type:     corev1.ServiceTypeClusterIP,
				Selector: labels,
				Ports:    []corev1.ServicePort{{Name: promAdminPort, Port: promPort, TargetPort: intstr.FromInt32(promPort)}},
			},
		}),
		promDeployment(m),
	}
	extLabels := map[string]string{labelExtension: "viz"}
	objs = append(objs,
		vizResource("policy.linkerd.io/v1beta3", "Server", "prometheus-admin", vizNamespace, extLabels, created, map[string]any{
			"podSelector":   map[string]any{"matchLabels": anyMap(nsLabels)},
			"port":          promAdminPort,
			"proxyProtocol": "HTTP/1",
		}),
		vizResource("policy.linkerd.io/v1alpha1", "AuthorizationPolicy", "prometheus-admin", vizNamespace, extLabels, created, map[string]any{
			"targetRef": map[string]any{"group": "policy.linkerd.io", "kind": "Server", "name": "prometheus-admin"},
			"requiredAuthenticationRefs": []any{
				map[string]any{"kind": "ServiceAccount", "name": "metrics-api", "namespace": vizNamespace},
			},
		}),
	)
	if rolloutsAskViz(m) {
		// Policies admit a client when it meets every authentication one
		// of them requires: the reconciler gets a policy of its own.
		objs = append(objs, vizResource("policy.linkerd.io/v1alpha1", "AuthorizationPolicy", "prometheus-admin-meshctl", vizNamespace, extLabels, created, map[string]any{
			"targetRef": map[string]any{"group": "policy.linkerd.io", "kind": "Server", "name": "prometheus-admin"},
			"requiredAuthenticationRefs": []any{
				map[string]any{"kind": "ServiceAccount", "name": ident.Reconciler, "namespace": ident.Namespace},
			},
		}))
	}
	objs = append(objs,
		vizResource("linkerd.io/v1alpha2", "ServiceProfile", fmt.Sprintf("%s.%s.svc.%s", promName, vizNamespace, m.Linkerd.ClusterDomain),
			vizNamespace, extLabels, nil, map[string]any{"routes": []any{
				promRoute("POST", "/api/v1/query"),
				promRoute("GET", "/api/v1/query_range"),
				promRoute("GET", "/api/v1/series"),
			}}),
	)
	return objs
}

// promDeployment is the Prometheus Deployment. The pod is not pre-injected:
// the core webhook adds the proxy (FACTS §10.1).
func promDeployment(m *schema.Mesh) Object {
	selector := merge(vizLabels(promName), map[string]string{"namespace": vizNamespace})
	live := httpProbe("/-/healthy", intstr.FromInt32(promPort))
	live.InitialDelaySeconds, live.TimeoutSeconds = 30, 30
	ready := httpProbe("/-/ready", intstr.FromInt32(promPort))
	ready.InitialDelaySeconds, ready.TimeoutSeconds = 30, 30
	sc := restrictedContext(nobodyUID, nil)
	sc.RunAsGroup = ptr.To(int64(nobodyUID))
	c := corev1.Container{
		Name:            promName,
		Image:           promImage,
		ImagePullPolicy: corev1.PullPolicy(m.Linkerd.ImagePullPolicy),
		Args:            promArgs(m),
		LivenessProbe:   live,
		ReadinessProbe:  ready,
		Ports:           []corev1.ContainerPort{{Name: promAdminPort, ContainerPort: promPort}},
		Resources:       resources(promResources(m)),
		SecurityContext: sc,
		VolumeMounts: []corev1.VolumeMount{
			{Name: "data", MountPath: "/data"},
			{Name: promConfigMap, MountPath: "/etc/prometheus/" + promConfigFile, SubPath: promConfigFile, ReadOnly: true},
		},
	}
	return vizDeployment(m, vizDeploy{
		name: promName, container: c, labels: selector, selector: selector, prometheus: true,
		volumes: []corev1.Volume{
			{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: promConfigMap, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: promConfigMap}}}},
		},
	})
}

// promArgs are Prometheus's flags, the map-valued ones in upstream's
// (sorted) order.
func promArgs(m *schema.Mesh) []string {
	r := m.Viz.Prometheus.Retention
	args := []string{
		"--log.level=info",
		"--log.format=logfmt",
		"--config.file=/etc/prometheus/" + promConfigFile,
		"--storage.tsdb.path=/data",
	}
	if r.Size != "" {
		args = append(args, "--storage.tsdb.retention.size="+r.Size)
	}
	return append(args, "--storage.tsdb.retention.time="+r.Time)
}

// promResources are the Prometheus container's resources: the user's, then
// HA's cpu request, then memory sized from expectedPods. A user who sets
// either memory field sets memory entirely, so a derived limit never ends
// up below a request they chose.
func promResources(m *schema.Mesh) schema.Resources {
	r := m.Viz.Prometheus.Resources
	if m.Viz.HA && r.CPU.Request == "" {
		r.CPU.Request = promHACPU
	}
	if !promMemorySet(m) {
		req, limit := promMemory(m)
		r.Memory = schema.RequestLimit{Request: req, Limit: limit}
	}
	return r
}

func promMemorySet(m *schema.Mesh) bool {
	mem := m.Viz.Prometheus.Resources.Memory
	return mem.Request != "" || mem.Limit != ""
}

// promMemory is the derived memory request and limit.
func promMemory(m *schema.Mesh) (request, limit string) {
	req := promMemBaseMi + promMemPerPodMi*m.Viz.Prometheus.ExpectedPods
	return fmt.Sprintf("%dMi", req), fmt.Sprintf("%dMi", promMemLimitX*req)
}

// PrometheusSizing is the line `meshctl vet` prints about viz's Prometheus
// memory; empty when meshctl runs no Prometheus.
func PrometheusSizing(m *schema.Mesh) (line string) {
	if !m.Viz.Enabled || m.Viz.Prometheus.ExternalURL != "" {
		return ""
	}
	if promMemorySet(m) {
		mem := m.Viz.Prometheus.Resources.Memory
		return fmt.Sprintf("viz Prometheus memory: request %s, limit %s (set by viz.prometheus.resources)",
			promOrUnset(mem.Request), promOrUnset(mem.Limit))
	}
	req, limit := promMemory(m)
	return fmt.Sprintf("viz Prometheus memory: request %s, limit %s (%dMi base + %dMi × %d expected pods; set viz.prometheus.resources.memory to override)",
		req, limit, promMemBaseMi, promMemPerPodMi, m.Viz.Prometheus.ExpectedPods)
}

func promOrUnset(s string) string {
	if s == "" {
		return "unset"
	}
	return s
}

func promRoute(method, path string) map[string]any {
	return map[string]any{
		"name":      method + " " + path,
		"condition": map[string]any{"method": method, "pathRegex": path},
	}
}

// promGlobal is prometheus.yml's global section.
type promGlobal struct {
	EvaluationInterval string `json:"evaluation_interval"`
	ScrapeInterval     string `json:"scrape_interval"`
	ScrapeTimeout      string `json:"scrape_timeout"`
}

// promFile is the whole prometheus.yml.
type promFile struct {
	Global        promGlobal     `json:"global"`
	RuleFiles     []string       `json:"rule_files"`
	ScrapeConfigs []scrapeConfig `json:"scrape_configs"`
}

// scrapeConfig is one Prometheus scrape job, with the fields viz uses.
type scrapeConfig struct {
	JobName              string          `json:"job_name"`
	Scheme               string          `json:"scheme,omitempty"`
	TLSConfig            *promTLS        `json:"tls_config,omitempty"`
	BearerTokenFile      string          `json:"bearer_token_file,omitempty"`
	StaticConfigs        []staticConfig  `json:"static_configs,omitempty"`
	KubernetesSDConfigs  []kubernetesSD  `json:"kubernetes_sd_configs,omitempty"`
	RelabelConfigs       []relabelConfig `json:"relabel_configs,omitempty"`
	MetricRelabelConfigs []relabelConfig `json:"metric_relabel_configs,omitempty"`
}

type promTLS struct {
	CAFile             string `json:"ca_file"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify"`
}

type staticConfig struct {
	Targets []string `json:"targets"`
}

type kubernetesSD struct {
	Role       string        `json:"role"`
	Namespaces *sdNamespaces `json:"namespaces,omitempty"`
}

type sdNamespaces struct {
	Names []string `json:"names"`
}

// relabelConfig is one relabeling, as prometheus.yml spells it; operator()
// spells it for a PodMonitor.
type relabelConfig struct {
	SourceLabels []string `json:"source_labels,omitempty"`
	Action       string   `json:"action,omitempty"`
	Regex        string   `json:"regex,omitempty"`
	TargetLabel  string   `json:"target_label,omitempty"`
	Replacement  string   `json:"replacement,omitempty"`
}

func (r relabelConfig) operator() map[string]any {
	out := map[string]any{}
	if len(r.SourceLabels) > 0 {
		ls := make([]any, len(r.SourceLabels))
		for i, l := range r.SourceLabels {
			ls[i] = l
		}
		out["sourceLabels"] = ls
	}
	for k, v := range map[string]string{"action": r.Action, "regex": r.Regex, "targetLabel": r.TargetLabel, "replacement": r.Replacement} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// The upstream scrape job names (FACTS §10.2).
const (
	jobPrometheus   = "prometheus"
	jobCadvisor     = "kubernetes-nodes-cadvisor"
	jobController   = "linkerd-controller"
	jobMulticluster = "linkerd-multicluster-controller"
	jobProxy        = "linkerd-proxy"
)

// promConfig is the bundled prometheus.yml.
func promConfig(m *schema.Mesh) string {
	return mustYAML(promFile{
		Global:        promGlobal{EvaluationInterval: promInterval, ScrapeInterval: promInterval, ScrapeTimeout: promInterval},
		RuleFiles:     []string{"/etc/prometheus/*_rules.yml", "/etc/prometheus/*_rules.yaml"},
		ScrapeConfigs: scrapeConfigs(m),
	})
}

// scrapeConfigs are viz's scrape jobs: Prometheus itself, node cadvisor,
// the Linkerd controllers, the multicluster controllers and every proxy.
// The bundled config holds them all; the external Secret and the
// PodMonitors are built from the same jobs. The mesh is an argument though
// 2.19 fixes every name the jobs match (linkerd, linkerd-viz, linkerd-proxy).
func scrapeConfigs(_ *schema.Mesh) []scrapeConfig {
	pods := []kubernetesSD{{Role: "pod"}}
	return []scrapeConfig{
		{JobName: jobPrometheus, StaticConfigs: []staticConfig{{Targets: []string{fmt.Sprintf("localhost:%d", promPort)}}}},
		{
			// Node container metrics through the API server's node proxy,
			// for the Kubernetes dashboards.
			JobName:             jobCadvisor,
			Scheme:              "https",
			TLSConfig:           &promTLS{CAFile: promSADir + "/ca.crt", InsecureSkipVerify: true},
			BearerTokenFile:     promSADir + "/token",
			KubernetesSDConfigs: []kubernetesSD{{Role: "node"}},
			RelabelConfigs: []relabelConfig{
				{Action: "labelmap", Regex: "__meta_kubernetes_node_label_(.+)"},
				{TargetLabel: "__address__", Replacement: "kubernetes.default.svc:443"},
				{SourceLabels: []string{"__meta_kubernetes_node_name"}, Regex: "(.+)", TargetLabel: "__metrics_path__", Replacement: "/api/v1/nodes/$1/proxy/metrics/cadvisor"},
			},
			MetricRelabelConfigs: []relabelConfig{
				{SourceLabels: []string{"__name__"}, Regex: "(container|machine)_(cpu|memory|network|fs)_(.+)", Action: "keep"},
				{SourceLabels: []string{"__name__"}, Regex: "container_memory_failures_total", Action: "drop"},
			},
		},
		{
			JobName:             jobController,
			KubernetesSDConfigs: []kubernetesSD{{Role: "pod", Namespaces: &sdNamespaces{Names: []string{linkerdNamespace, vizNamespace}}}},
			RelabelConfigs:      controllerRelabels(".*admin$"),
		},
		{
			JobName:             jobMulticluster,
			KubernetesSDConfigs: pods,
			RelabelConfigs: append([]relabelConfig{{
				SourceLabels: []string{"__meta_kubernetes_pod_label_component", "__meta_kubernetes_pod_container_port_name"},
				Action:       "keep",
				Regex:        "(linkerd-service-mirror|controller);.*-admin$",
			}}, controllerRelabels("")...),
		},
		{JobName: jobProxy, KubernetesSDConfigs: pods, RelabelConfigs: proxyRelabels()},
	}
}

// controllerRelabels keep a controller's admin port (when keep is set),
// never a proxy's, and label the series with the container's name.
func controllerRelabels(keep string) []relabelConfig {
	var rs []relabelConfig
	if keep != "" {
		rs = append(rs, relabelConfig{SourceLabels: []string{"__meta_kubernetes_pod_container_port_name"}, Action: "keep", Regex: keep})
	}
	return append(rs,
		relabelConfig{SourceLabels: []string{"__meta_kubernetes_pod_container_port_name"}, Action: "drop", Regex: "linkerd-admin"},
		relabelConfig{SourceLabels: []string{"__meta_kubernetes_pod_container_name"}, Action: "replace", TargetLabel: "component"},
	)
}

// proxyRelabels keep the admin port of proxies of this control plane, in
// running or starting pods, and turn the pod's labels into series labels
// with linkerd.io/ and linkerd.io/proxy- stripped; the pod's job label
// becomes k8s_job, so it does not clash with Prometheus's job.
func proxyRelabels() []relabelConfig {
	p := "__meta_kubernetes_pod_label_"
	tmp := "__tmp_pod_label_"
	return []relabelConfig{
		{SourceLabels: []string{"__meta_kubernetes_pod_phase"}, Regex: "(Pending|Running)", Action: "keep"},
		{
			SourceLabels: []string{"__meta_kubernetes_pod_container_name", "__meta_kubernetes_pod_container_port_name", p + "linkerd_io_control_plane_ns"},
			Action:       "keep",
			Regex:        "^linkerd-proxy;linkerd-admin;" + linkerdNamespace + "$",
		},
		{SourceLabels: []string{"__meta_kubernetes_namespace"}, Action: "replace", TargetLabel: "namespace"},
		{SourceLabels: []string{"__meta_kubernetes_pod_name"}, Action: "replace", TargetLabel: "pod"},
		{SourceLabels: []string{p + "linkerd_io_proxy_job"}, Action: "replace", TargetLabel: "k8s_job"},
		{Action: "labeldrop", Regex: p + "linkerd_io_proxy_job"},
		{Action: "labelmap", Regex: p + "linkerd_io_proxy_(.+)"},
		{Action: "labeldrop", Regex: p + "linkerd_io_proxy_(.+)"},
		{Action: "labelmap", Regex: p + "linkerd_io_(.+)"},
		{Action: "labelmap", Regex: p + "(.+)", Replacement: tmp + "$1"},
		{Action: "labelmap", Regex: tmp + "linkerd_io_(.+)", Replacement: tmp + "$1"},
		{Action: "labeldrop", Regex: tmp + "linkerd_io_(.+)"},
		{Action: "labelmap", Regex: tmp + "(.+)"},
	}
}

// promScrapeConfigSecret holds the scrape jobs for a Prometheus run
// without PodMonitors: one key to list in scrape_config_files, one for the
// Prometheus Operator's additionalScrapeConfigs. Prometheus's own job is
// left out. hack/promql loads both with Prometheus's own parser.
func promScrapeConfigSecret(m *schema.Mesh) Object {
	var jobs []scrapeConfig
	for _, j := range scrapeConfigs(m) {
		if j.JobName != jobPrometheus {
			jobs = append(jobs, j)
		}
	}
	return toObject(StageExtensions, gvkSecret, &corev1.Secret{
		ObjectMeta: objectMeta(promScrapeSecret, vizNamespace, vizLabels(promName), map[string]string{
			annotationCreated: createdBy(m),
			"kubernetes.io/description": "Scrape jobs for the Prometheus at " + m.Viz.Prometheus.ExternalURL +
				": list key " + promScrapeFileKey + " in its scrape_config_files, or name key " + promScrapeOperatorKey +
				" in the Prometheus Operator's additionalScrapeConfigs; scrape every " + promInterval + ".",
		}),
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			promScrapeFileKey:     []byte(mustYAML(promScrapeFile{ScrapeConfigs: jobs})),
			promScrapeOperatorKey: []byte(mustYAML(jobs)),
		},
	})
}

// promScrapeFile is a file for scrape_config_files: scrape_configs and
// nothing else, as Prometheus reads it.
type promScrapeFile struct {
	ScrapeConfigs []scrapeConfig `json:"scrape_configs"`
}

var gvkPodMonitor = k8sschema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "PodMonitor"}

// promPodMonitors are the Prometheus Operator's equivalent of the
// linkerd-proxy, linkerd-controller and linkerd-multicluster-controller
// jobs. Each relabels job to the upstream job name, which the operator
// would otherwise set to <namespace>/<PodMonitor>, so that queries and
// dashboards written against viz's Prometheus keep working.
func promPodMonitors(m *schema.Mesh) []Object {
	anyNS := map[string]any{"any": true}
	return []Object{
		podMonitor(m, jobProxy, anyNS,
			map[string]any{"matchLabels": map[string]any{labelCPNamespace: linkerdNamespace}},
			"linkerd-admin", proxyRelabels()),
		// Control-plane admin ports have prefixed names (dest-admin,
		// policy-admin, ...), so no port is named: the relabelings pick
		// them, as the scrape job does.
		podMonitor(m, jobController,
			map[string]any{"matchNames": []any{linkerdNamespace, vizNamespace}},
			map[string]any{}, "", controllerRelabels(".*admin$")),
		podMonitor(m, jobMulticluster, anyNS,
			map[string]any{"matchExpressions": []any{map[string]any{
				"key": labelComponent, "operator": "In", "values": []any{"linkerd-service-mirror", "controller"},
			}}},
			"", controllerRelabels(".*-admin$")),
	}
}

func podMonitor(m *schema.Mesh, job string, namespaces, selector map[string]any, port string, relabels []relabelConfig) Object {
	rs := make([]any, 0, len(relabels)+1)
	for _, r := range relabels {
		rs = append(rs, r.operator())
	}
	rs = append(rs, relabelConfig{Action: "replace", TargetLabel: "job", Replacement: job}.operator())
	endpoint := map[string]any{"interval": promInterval, "scrapeTimeout": promInterval, "relabelings": rs}
	if port != "" {
		endpoint["port"] = port
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
		"namespaceSelector":   namespaces,
		"selector":            selector,
		"podMetricsEndpoints": []any{endpoint},
	}}}
	u.SetGroupVersionKind(gvkPodMonitor)
	u.SetName(job)
	u.SetNamespace(vizNamespace)
	u.SetLabels(merge(vizLabels(promName), m.Viz.Prometheus.PodMonitorLabels))
	u.SetAnnotations(map[string]string{annotationCreated: createdBy(m)})
	return Object{Stage: StageExtensions, Object: u}
}

// rolloutsAskViz says whether a rollout takes its numbers from viz's own
// Prometheus: the reconcile loop (meshctl reconcile, installed with
// --meshed) must then be admitted.
func rolloutsAskViz(m *schema.Mesh) bool {
	if m.Viz.Prometheus.ExternalURL != "" {
		return false
	}
	for _, s := range m.Services {
		if s.Rollout != nil && s.Rollout.PrometheusURL == "" {
			return true
		}
	}
	return false
}
