package generators

import (
	"fmt"

	"github.com/meshctl/meshctl/schema"
)

// The viz extension's namespace and the labels upstream puts on its objects
// (FACTS §10). viz.go renders the extension, vizprom.go its Prometheus or
// what an external one needs, grafana.go the dashboards, tracing.go the
// trace backend.
const (
	vizNamespace   = "linkerd-viz"
	labelExtension = "linkerd.io/extension"
	labelComponent = "component"
	vizUID         = 2103
)

// VizWebhookServices are viz's Services that serve the API server (tap's
// APIService, tap-injector's webhook) and so need a serving pair. Names
// qualified with their namespace, as certs.Options takes them for Services
// outside the control plane's namespace.
var VizWebhookServices = []string{"tap." + vizNamespace, "tap-injector." + vizNamespace}

// vizLabels are the labels of a viz object of component c.
func vizLabels(c string) map[string]string {
	return map[string]string{labelExtension: "viz", labelComponent: c}
}

// vizPrometheusURL is where metrics-api reads metrics: the external
// Prometheus, or viz's own.
func vizPrometheusURL(m *schema.Mesh) string {
	if u := m.Viz.Prometheus.ExternalURL; u != "" {
		return u
	}
	return fmt.Sprintf("http://prometheus.%s.svc.%s:9090", vizNamespace, m.Linkerd.ClusterDomain)
}

// vizJaegerURL is the dashboard's link to traces: the mesh's own setting,
// else the Jaeger that tracing.collector.deploy runs, else none.
func vizJaegerURL(m *schema.Mesh) string {
	switch {
	case m.Viz.JaegerURL != "":
		return m.Viz.JaegerURL
	case m.Tracing.Enabled && m.Tracing.Collector.Deploy:
		return fmt.Sprintf("jaeger.%s.svc.%s:16686", m.Tracing.Collector.Namespace, m.Linkerd.ClusterDomain)
	}
	return ""
}

// Notes are what meshctl vet says of a valid mesh beyond "valid": figures
// meshctl chose for the user, such as Prometheus's memory.
func Notes(m *schema.Mesh) []string {
	var out []string
	if line := PrometheusSizing(m); line != "" {
		out = append(out, line)
	}
	return out
}

// renderedElsewhere: the Namespace ns is rendered by the control plane,
// viz, the CNI plugin or the meshed namespaces, so the trace backend and
// Grafana, which put objects in a namespace the mesh names, leave it out
// (Render fails on an object rendered twice).
func renderedElsewhere(m *schema.Mesh, ns string) bool {
	switch {
	case ns == linkerdNamespace, m.Viz.Enabled && ns == vizNamespace, m.CNI.Enabled && ns == cniNamespace:
		return true
	}
	_, meshed := m.Namespaces[ns]
	return meshed
}

// podSecurityLevel is the Pod Security level namespaces of meshed pods
// need: linkerd-init's NET_ADMIN needs privileged, which the CNI plugin
// makes unnecessary (as upstream labels namespace linkerd).
func podSecurityLevel(m *schema.Mesh) string {
	if m.CNI.Enabled {
		return "restricted"
	}
	return "privileged"
}
