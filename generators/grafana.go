package generators

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshctl/meshctl/internal/ident"
	"github.com/meshctl/meshctl/schema"
)

// Linkerd 2.19 ships no Grafana; meshctl authors its own dashboards and
// hands them, with a datasource, to a Grafana that someone else runs, through
// the sidecar convention of the Grafana Helm chart and kube-prometheus-stack:
// ConfigMaps labelled grafana_dashboard / grafana_datasource "1" in the
// namespace the sidecar watches.
const (
	labelGrafanaDashboard  = "grafana_dashboard"
	labelGrafanaDatasource = "grafana_datasource"
	// grafanaDatasourceUID is the datasource uid every dashboard panel and
	// variable names; dashboards/*.json carry it literally.
	grafanaDatasourceUID  = "linkerd-prometheus"
	grafanaDatasourceName = "Linkerd Prometheus"
	grafanaDatasourceCM   = "linkerd-grafana-datasource"
)

//go:embed dashboards/*.json
var dashboardFiles embed.FS

// grafanaMetric is a metric the dashboards select, where it comes from, and
// the labels they match it on.
type grafanaMetric struct {
	Source string
	Labels []string
}

// Labels that viz's scrape jobs (FACTS §10.2, upstream prometheus.yaml)
// add to every series of a job: linkerd-proxy copies namespace, pod and the
// linkerd.io/proxy-<kind> pod label (deployment, ...); linkerd-controller and
// linkerd-multicluster-controller set component to the container's name.
var (
	proxyTargetLabels = []string{"namespace", "pod", "deployment", "job", "instance"}
	ctrlTargetLabels  = []string{"component", "job", "instance"}
	// Both sets: process metrics come from proxies and controllers.
	anyTargetLabels = []string{"namespace", "pod", "deployment", "component", "job", "instance"}
	// The proxy's labels on its HTTP metrics (request_total and the rest).
	proxyHTTPLabels = []string{"direction", "authority", "tls", "dst_namespace", "dst_deployment", "dst_service", "dst_pod"}
	// The labels naming a route and its parent on outbound_http_route_*.
	httpRouteLabels = []string{"parent_group", "parent_kind", "parent_namespace", "parent_name", "parent_port",
		"parent_section_name", "route_group", "route_kind", "route_namespace", "route_name", "hostname"}
)

// linkerdMetrics is every metric the dashboards select. hack/promql's test
// parses every query and fails on one that selects anything else or
// matches another label.
//
// Where each was verified, at linkerd/linkerd2 version-2.19 and the
// linkerd2-proxy it ships:
//   - request_total, response_total, response_latency_ms, tcp_*: the
//     queries of viz/metrics-api/stat_summary.go (classification, tls,
//     dst_* labels, direction in prometheus.go) and the proxy's transport
//     metrics (tcp_open_connections, tcp_read/write_bytes_total).
//   - route_*: viz/metrics-api/top_routes.go (ServiceProfile routes, rt_route
//     and dst labels).
//   - outbound_http_route_*: viz/cmd/routes.go (HTTPRoute routes; labels
//     parent_name, parent_port, route_name, route_kind) and Linkerd's docs
//     (route_namespace, http_status, error).
//   - control_identity_cert_*: linkerd2-proxy linkerd/identity/src/metrics.rs,
//     registered under the "control_identity" then "cert" prefixes in
//     linkerd/app/src/lib.rs. The old identity_cert_expiration_timestamp_seconds
//     no longer exists.
//   - process_*: linkerd2-proxy linkerd/metrics/src/process.rs for proxies;
//     client_golang's default collectors for the Go controllers, which also
//     give go_goroutines.
//   - gateway_*: multicluster/service-mirror/metrics.go (label
//     target_cluster_name), as viz/metrics-api/gateways.go reads them.
//   - up: Prometheus itself, per target.
var linkerdMetrics = map[string]grafanaMetric{
	"request_total":              {"proxy", slices.Concat(proxyTargetLabels, proxyHTTPLabels)},
	"response_total":             {"proxy", slices.Concat(proxyTargetLabels, proxyHTTPLabels, []string{"classification", "status_code"})},
	"response_latency_ms_bucket": {"proxy", slices.Concat(proxyTargetLabels, proxyHTTPLabels, []string{"status_code", "le"})},
	"tcp_open_connections":       {"proxy", slices.Concat(proxyTargetLabels, proxyHTTPLabels, []string{"peer"})},
	"tcp_read_bytes_total":       {"proxy", slices.Concat(proxyTargetLabels, proxyHTTPLabels, []string{"peer"})},
	"tcp_write_bytes_total":      {"proxy", slices.Concat(proxyTargetLabels, proxyHTTPLabels, []string{"peer"})},

	"route_request_total":              {"proxy", slices.Concat(proxyTargetLabels, []string{"direction", "dst", "rt_route"})},
	"route_response_total":             {"proxy", slices.Concat(proxyTargetLabels, []string{"direction", "dst", "rt_route", "classification", "status_code"})},
	"route_response_latency_ms_bucket": {"proxy", slices.Concat(proxyTargetLabels, []string{"direction", "dst", "rt_route", "status_code", "le"})},

	"outbound_http_route_request_statuses_total":          {"proxy", slices.Concat(proxyTargetLabels, httpRouteLabels, []string{"http_status", "error"})},
	"outbound_http_route_request_duration_seconds_bucket": {"proxy", slices.Concat(proxyTargetLabels, httpRouteLabels, []string{"le"})},

	"control_identity_cert_expiration_timestamp_seconds": {"proxy", proxyTargetLabels},
	"control_identity_cert_refreshes_total":              {"proxy", slices.Concat(proxyTargetLabels, []string{"result"})},

	"process_cpu_seconds_total":     {"proxy and control plane", anyTargetLabels},
	"process_resident_memory_bytes": {"proxy and control plane", anyTargetLabels},
	"go_goroutines":                 {"control plane", ctrlTargetLabels},

	"gateway_alive":                   {"multicluster service mirror", slices.Concat(ctrlTargetLabels, []string{"target_cluster_name"})},
	"gateway_enabled":                 {"multicluster service mirror", slices.Concat(ctrlTargetLabels, []string{"target_cluster_name"})},
	"gateway_latency":                 {"multicluster service mirror", slices.Concat(ctrlTargetLabels, []string{"target_cluster_name"})},
	"gateway_probe_latency_ms_bucket": {"multicluster service mirror", slices.Concat(ctrlTargetLabels, []string{"target_cluster_name", "le"})},

	"up": {"prometheus", anyTargetLabels},
}

// DashboardMetrics maps every metric the dashboards may select to the
// labels a query may match or group it on, target labels included. The
// PromQL test in hack/promql checks the parsed queries against it.
func DashboardMetrics() map[string][]string {
	out := make(map[string][]string, len(linkerdMetrics))
	for name, m := range linkerdMetrics {
		out[name] = slices.Sorted(slices.Values(m.Labels))
	}
	return out
}

// DashboardQuery is one PromQL query of an embedded dashboard, with its
// Grafana variables replaced so that it is plain PromQL.
type DashboardQuery struct {
	Dashboard string // file name without .json
	Where     string // the panel or variable it belongs to
	Expr      string
}

// dashboardJSON is the part of a Grafana dashboard meshctl reads.
type dashboardJSON struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string            `json:"name"`
			Type       string            `json:"type"`
			Definition string            `json:"definition"`
			Query      map[string]string `json:"query"`
			Datasource struct{ UID string }
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct{ UID string }
		Targets    []struct {
			Expr       string `json:"expr"`
			Datasource struct{ UID string }
		} `json:"targets"`
	} `json:"panels"`
}

// grafanaBuiltins are Grafana's own variables a query may use.
var grafanaBuiltins = map[string]bool{"__rate_interval": true, "__interval": true, "__interval_ms": true, "__range": true, "__range_s": true}

var (
	grafanaVarRe   = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)
	labelValuesRe  = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)
	queryResultRe  = regexp.MustCompile(`^query_result\((.+)\)$`)
	labelNamesOnly = regexp.MustCompile(`^label_values\(\s*\w+\s*\)$`)
)

// substituteVars replaces variables with values of the kind Grafana
// would: a duration for the interval built-ins, a label value otherwise.
func substituteVars(s string) string {
	return grafanaVarRe.ReplaceAllStringFunc(s, func(v string) string {
		if grafanaBuiltins[strings.Trim(v, "${}")] {
			return "5m"
		}
		return "emojivoto"
	})
}

// templatingExpr is the PromQL a variable's query runs, or "" for one that
// runs none. label_values(selector, label) becomes a count by label, so
// that the label is checked against the selector's metric like a grouping.
func templatingExpr(q string) string {
	if m := labelValuesRe.FindStringSubmatch(q); m != nil {
		return fmt.Sprintf("count by (%s) (%s)", m[2], m[1])
	}
	if labelNamesOnly.MatchString(q) {
		return ""
	}
	if m := queryResultRe.FindStringSubmatch(q); m != nil {
		return m[1]
	}
	return q // not a Prometheus templating query: the parser rejects it
}

// readDashboards parses every embedded dashboard, keyed by file name
// without .json.
func readDashboards() (map[string]dashboardJSON, error) {
	files, err := fs.Glob(dashboardFiles, "dashboards/*.json")
	if err != nil {
		return nil, err
	}
	out := map[string]dashboardJSON{}
	for _, f := range files {
		b, err := dashboardFiles.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var d dashboardJSON
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out[strings.TrimSuffix(strings.TrimPrefix(f, "dashboards/"), ".json")] = d
	}
	return out, nil
}

// DashboardQueries returns every templating query and panel target of the
// embedded dashboards, in file order, as plain PromQL.
func DashboardQueries() ([]DashboardQuery, error) {
	dashboards, err := readDashboards()
	if err != nil {
		return nil, err
	}
	var out []DashboardQuery
	for _, name := range slices.Sorted(maps.Keys(dashboards)) {
		d := dashboards[name]
		for _, v := range d.Templating.List {
			q := v.Query["query"] // what Grafana runs; definition is its display text
			if q == "" {
				q = v.Definition
			}
			if e := templatingExpr(q); e != "" {
				out = append(out, DashboardQuery{name, "variable " + v.Name, substituteVars(e)})
			}
		}
		for _, p := range d.Panels {
			for i, tg := range p.Targets {
				where := fmt.Sprintf("panel %q", p.Title)
				if len(p.Targets) > 1 {
					where += fmt.Sprintf(" target %d", i)
				}
				out = append(out, DashboardQuery{name, where, substituteVars(tg.Expr)})
			}
		}
	}
	return out, nil
}

// grafana renders the dashboards enabled in viz.grafana.dashboards, the
// datasource they read, and the namespace both go to.
func grafana(m *schema.Mesh, _ Inputs) []Object {
	g := m.Viz.Grafana
	if !m.Viz.Enabled || !g.Enabled {
		return nil
	}
	var objs []Object
	if grafanaOwnsNamespace(m) {
		objs = append(objs, nsObject(g.Namespace, nil, map[string]string{ident.AnnotationPrune: "disabled"}))
	}
	objs = append(objs, grafanaDatasource(m))
	for _, name := range grafanaDashboards(m) {
		data, err := dashboardFiles.ReadFile("dashboards/" + name + ".json")
		if err != nil {
			// The schema's dashboard names are tested against the files; a
			// name a user adds has no dashboard to render.
			continue
		}
		objs = append(objs, grafanaConfigMap(g.Namespace, "linkerd-"+name+"-dashboard",
			labelGrafanaDashboard, name+".json", string(data)))
	}
	return objs
}

// grafanaDashboards are the enabled dashboard names, sorted.
func grafanaDashboards(m *schema.Mesh) []string {
	var names []string
	for name, on := range m.Viz.Grafana.Dashboards {
		if on {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// grafanaOwnsNamespace: the namespace is rendered here unless another
// generator renders it already (Render fails on duplicates).
func grafanaOwnsNamespace(m *schema.Mesh) bool {
	ns := m.Viz.Grafana.Namespace
	tracing := m.Tracing.Enabled && m.Tracing.Collector.Deploy && ns == m.Tracing.Collector.Namespace
	return !renderedElsewhere(m, ns) && !tracing
}

// grafanaDatasource provisions the Prometheus the dashboards read: viz's
// own or the external one.
func grafanaDatasource(m *schema.Mesh) Object {
	type datasource struct {
		Name      string `json:"name"`
		Type      string `json:"type"`
		UID       string `json:"uid"`
		URL       string `json:"url"`
		Access    string `json:"access"`
		IsDefault bool   `json:"isDefault"`
	}
	doc := struct {
		APIVersion  int          `json:"apiVersion"`
		Datasources []datasource `json:"datasources"`
	}{1, []datasource{{grafanaDatasourceName, "prometheus", grafanaDatasourceUID, vizPrometheusURL(m), "proxy", false}}}
	out, err := yaml.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("grafana datasource: %v", err)) // plain structs always marshal
	}
	return grafanaConfigMap(m.Viz.Grafana.Namespace, grafanaDatasourceCM, labelGrafanaDatasource, "linkerd-datasource.yaml", string(out))
}

func grafanaConfigMap(namespace, name, sidecarLabel, key, data string) Object {
	return toObject(StageExtensions, gvkConfigMap, &corev1.ConfigMap{
		ObjectMeta: objectMeta(name, namespace, merge(vizLabels("grafana"), map[string]string{sidecarLabel: "1"}), nil),
		Data:       map[string]string{key: data},
	})
}
