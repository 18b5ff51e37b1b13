package generators

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshctl/meshctl/internal/ident"
)

const grafanaOn = "viz: enabled: true\nviz: grafana: enabled: true\n"

func readDashboardsT(t *testing.T) map[string]dashboardJSON {
	t.Helper()
	out, err := readDashboards()
	if err != nil || len(out) == 0 {
		t.Fatalf("no embedded dashboards: %v", err)
	}
	return out
}

func TestDashboardFilesMatchSchema(t *testing.T) {
	dashboards := readDashboardsT(t)
	var files, names []string
	uids := map[string]string{}
	for name, d := range dashboards {
		files = append(files, name)
		if d.Title == "" {
			t.Errorf("%s: no title", name)
		}
		if d.UID != "linkerd-"+name {
			t.Errorf("%s: uid %q, want %q", name, d.UID, "linkerd-"+name)
		}
		if other, dup := uids[d.UID]; dup {
			t.Errorf("%s and %s share uid %q", name, other, d.UID)
		}
		uids[d.UID] = name
	}
	for name := range load(t, grafanaOn).Viz.Grafana.Dashboards {
		names = append(names, name)
	}
	want := []string{"deployment", "health", "multicluster", "namespace", "pod", "route", "service", "top-line"}
	if d := cmp.Diff(want, sorted(names)); d != "" {
		t.Errorf("schema dashboards (-want +got):\n%s", d)
	}
	if d := cmp.Diff(sorted(names), sorted(files)); d != "" {
		t.Errorf("dashboards/*.json against the schema's names (-schema +files):\n%s", d)
	}
}

// grafanaVars lists the variables s uses.
func grafanaVars(s string) []string {
	var out []string
	for _, m := range grafanaVarRe.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1]+m[2])
	}
	return out
}

// TestDashboardQueries checks what needs no PromQL parser: every variable
// a query uses is defined before it, variables are label_values queries,
// and panels and variables read the meshctl datasource. Parsing the
// queries and checking their metrics and labels is hack/promql's test: the
// parser's module raises this module's k8s.io/* requirements.
func TestDashboardQueries(t *testing.T) {
	for name, d := range readDashboardsT(t) {
		t.Run(name, func(t *testing.T) {
			defined := map[string]bool{}
			for _, v := range d.Templating.List {
				q := v.Definition
				if q == "" || v.Query["query"] != q {
					t.Errorf("variable %s: definition %q and query %q differ", v.Name, q, v.Query["query"])
				}
				checkQueryVars(t, "variable "+v.Name, q, defined)
				if v.Type != "query" || !labelValuesRe.MatchString(q) {
					t.Errorf("variable %s: want a label_values(selector, label) query, got type %q query %q", v.Name, v.Type, q)
				}
				if v.Datasource.UID != grafanaDatasourceUID {
					t.Errorf("variable %s: datasource %q", v.Name, v.Datasource.UID)
				}
				defined[v.Name] = true
			}
			ids := map[int]bool{}
			targets := 0
			for _, p := range d.Panels {
				if ids[p.ID] {
					t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
				}
				ids[p.ID] = true
				if p.Type == "row" {
					continue
				}
				if p.Datasource == nil || p.Datasource.UID != grafanaDatasourceUID {
					t.Errorf("panel %q: not on datasource %s", p.Title, grafanaDatasourceUID)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q: no targets", p.Title)
				}
				for _, tg := range p.Targets {
					targets++
					where := fmt.Sprintf("panel %q", p.Title)
					checkQueryVars(t, where, tg.Expr, defined)
					if tg.Datasource.UID != grafanaDatasourceUID {
						t.Errorf("%s: target datasource %q", where, tg.Datasource.UID)
					}
					if strings.TrimSpace(tg.Expr) == "" {
						t.Errorf("%s: empty query", where)
					}
				}
			}
			if targets < 3 {
				t.Errorf("only %d queries", targets)
			}
		})
	}
}

// checkQueryVars fails on a variable that is neither a built-in nor defined.
func checkQueryVars(t *testing.T, where, q string, defined map[string]bool) {
	t.Helper()
	for _, v := range grafanaVars(q) {
		if !grafanaBuiltins[v] && !defined[v] {
			t.Errorf("%s uses $%s, which is not defined before it", where, v)
		}
	}
}

func TestDashboardTemplatingExpr(t *testing.T) {
	tests := []struct{ q, want string }{
		{`label_values(request_total{direction="inbound", namespace="$namespace"}, deployment)`,
			`count by (deployment) (request_total{direction="inbound", namespace="emojivoto"})`},
		{"label_values(gateway_alive, target_cluster_name)", "count by (target_cluster_name) (gateway_alive)"},
		{"label_values(namespace)", ""},
		{"query_result(sum by (pod) (up))", "sum by (pod) (up)"},
		{"namespaces()", "namespaces()"},
	}
	for _, tc := range tests {
		t.Run(tc.q, func(t *testing.T) {
			if got := substituteVars(templatingExpr(tc.q)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDashboardSubstituteVars(t *testing.T) {
	tests := []struct{ in, want string }{
		{`rate(x{a="$namespace"}[$__rate_interval])`, `rate(x{a="emojivoto"}[5m])`},
		{`x{a=~"${deployment}", b=~"${pod:regex}"}[$__range]`, `x{a=~"emojivoto", b=~"emojivoto"}[5m]`},
		{`sum(up)`, `sum(up)`},
	}
	for _, tc := range tests {
		if got := substituteVars(tc.in); got != tc.want {
			t.Errorf("substituteVars(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestDashboardQueriesCover: DashboardQueries hands hack/promql every panel
// target and variable query, with no Grafana variable left in.
func TestDashboardQueriesCover(t *testing.T) {
	qs, err := DashboardQueries()
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, d := range readDashboardsT(t) {
		want += len(d.Templating.List)
		for _, p := range d.Panels {
			want += len(p.Targets)
		}
	}
	if len(qs) != want {
		t.Errorf("%d queries, want %d", len(qs), want)
	}
	seen := map[string]bool{}
	for _, q := range qs {
		seen[q.Dashboard] = true
		if strings.Contains(q.Expr, "$") || q.Expr == "" || q.Where == "" {
			t.Errorf("%s %s: %q", q.Dashboard, q.Where, q.Expr)
		}
	}
	if len(seen) != len(readDashboardsT(t)) {
		t.Errorf("queries from %d dashboards, want %d", len(seen), len(readDashboardsT(t)))
	}
}

func TestDashboardMetrics(t *testing.T) {
	got := DashboardMetrics()
	if d := cmp.Diff(sorted(slices.Collect(maps.Keys(linkerdMetrics))), sorted(slices.Collect(maps.Keys(got)))); d != "" {
		t.Errorf("metrics (-want +got):\n%s", d)
	}
	want := []string{"deployment", "instance", "job", "namespace", "pod", "result"}
	if d := cmp.Diff(want, got["control_identity_cert_refreshes_total"]); d != "" {
		t.Errorf("control_identity_cert_refreshes_total labels (-want +got):\n%s", d)
	}
	got["up"][0] = "changed" // a copy: the caller cannot change linkerdMetrics
	if linkerdMetrics["up"].Labels[0] == "changed" {
		t.Error("DashboardMetrics shares linkerdMetrics' slices")
	}
}

func TestLinkerdMetricsHaveSources(t *testing.T) {
	sources := map[string]bool{"proxy": true, "control plane": true, "proxy and control plane": true,
		"multicluster service mirror": true, "prometheus": true}
	for name, m := range linkerdMetrics {
		if !sources[m.Source] {
			t.Errorf("%s: source %q", name, m.Source)
		}
		if strings.HasPrefix(name, "identity_cert_") {
			t.Errorf("%s: 2.19 proxies export control_identity_cert_*", name)
		}
		if strings.HasSuffix(name, "_bucket") && !slices.Contains(m.Labels, "le") {
			t.Errorf("%s: a histogram bucket without le", name)
		}
	}
}

func TestGrafanaObjects(t *testing.T) {
	dashboards := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, "ConfigMap/grafana/linkerd-"+n+"-dashboard")
		}
		return out
	}
	all := dashboards("deployment", "health", "namespace", "pod", "route", "service", "top-line")
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"viz off", "viz: grafana: enabled: true", nil},
		{"grafana off", "viz: enabled: true", nil},
		{"defaults", grafanaOn, slices.Concat([]string{"Namespace/grafana", "ConfigMap/grafana/linkerd-grafana-datasource"}, all)},
		{"multicluster on, pod off", grafanaOn + "viz: grafana: dashboards: {multicluster: true, pod: false}",
			slices.Concat([]string{"Namespace/grafana", "ConfigMap/grafana/linkerd-grafana-datasource"},
				dashboards("deployment", "health", "multicluster", "namespace", "route", "service", "top-line"))},
		{"in linkerd-viz", grafanaOn + `viz: grafana: namespace: "linkerd-viz"`,
			[]string{"ConfigMap/linkerd-viz/linkerd-grafana-datasource", "ConfigMap/linkerd-viz/linkerd-deployment-dashboard",
				"ConfigMap/linkerd-viz/linkerd-health-dashboard", "ConfigMap/linkerd-viz/linkerd-namespace-dashboard",
				"ConfigMap/linkerd-viz/linkerd-pod-dashboard", "ConfigMap/linkerd-viz/linkerd-route-dashboard",
				"ConfigMap/linkerd-viz/linkerd-service-dashboard", "ConfigMap/linkerd-viz/linkerd-top-line-dashboard"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, o := range grafana(load(t, tc.src), Inputs{}) {
				got = append(got, o.ID())
				if o.Object.GetKind() == "Namespace" && o.Stage != StageCRDs || o.Object.GetKind() == "ConfigMap" && o.Stage != StageExtensions {
					t.Errorf("%s in stage %s", o.ID(), o.Stage)
				}
			}
			if d := cmp.Diff(sorted(tc.want), sorted(got)); d != "" {
				t.Errorf("objects (-want +got):\n%s", d)
			}
		})
	}
}

func TestGrafanaNamespace(t *testing.T) {
	tests := []struct {
		name, src string
		rendered  bool
	}{
		{"own namespace", `viz: grafana: namespace: "monitoring"`, true},
		{"linkerd", `viz: grafana: namespace: "linkerd"`, false},
		{"linkerd-viz", `viz: grafana: namespace: "linkerd-viz"`, false},
		{"a meshed namespace", "viz: grafana: namespace: \"monitoring\"\nnamespaces: monitoring: {}", false},
		{"another meshed namespace", "viz: grafana: namespace: \"monitoring\"\nnamespaces: emojivoto: {}", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, grafanaOn+tc.src, Inputs{}) // Render fails on a namespace rendered twice
			ns := load(t, grafanaOn+tc.src).Viz.Grafana.Namespace
			var found *corev1.Namespace
			for _, o := range grafana(load(t, grafanaOn+tc.src), Inputs{}) {
				if o.Object.GetKind() == "Namespace" {
					found = &corev1.Namespace{}
					find(t, []Object{o}, "Namespace/"+ns, found)
				}
			}
			if (found != nil) != tc.rendered {
				t.Fatalf("Namespace/%s rendered by grafana: %v, want %v", ns, found != nil, tc.rendered)
			}
			if found != nil {
				if d := cmp.Diff(map[string]string{ident.AnnotationPrune: "disabled"}, found.Annotations); d != "" {
					t.Errorf("annotations (-want +got):\n%s", d)
				}
				var cm corev1.ConfigMap
				find(t, objs, "ConfigMap/"+ns+"/linkerd-grafana-datasource", &cm)
				for _, o := range objs {
					if o.ID() == "Namespace/"+ns && o.Object.GetLabels()[ident.LabelManagedBy] != "" {
						t.Errorf("Namespace/%s is marked as owned by meshctl: it would be pruned", ns)
					}
				}
			}
		})
	}
}

func TestGrafanaConfigMaps(t *testing.T) {
	tests := []struct {
		name, src, url string
	}{
		{"bundled Prometheus", grafanaOn, "http://prometheus.linkerd-viz.svc.cluster.local:9090"},
		{"other cluster domain", grafanaOn + `linkerd: clusterDomain: "example.org"`, "http://prometheus.linkerd-viz.svc.example.org:9090"},
		{"external Prometheus", grafanaOn + `viz: prometheus: externalURL: "http://prometheus-operated.monitoring.svc:9090"`,
			"http://prometheus-operated.monitoring.svc:9090"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := grafana(load(t, tc.src), Inputs{})
			var ds corev1.ConfigMap
			find(t, objs, "ConfigMap/grafana/linkerd-grafana-datasource", &ds)
			if d := cmp.Diff(map[string]string{"grafana_datasource": "1", labelExtension: "viz", labelComponent: "grafana"}, ds.Labels); d != "" {
				t.Errorf("datasource labels (-want +got):\n%s", d)
			}
			var doc struct {
				APIVersion  int              `json:"apiVersion"`
				Datasources []map[string]any `json:"datasources"`
			}
			if err := yaml.UnmarshalStrict([]byte(ds.Data["linkerd-datasource.yaml"]), &doc); err != nil {
				t.Fatal(err)
			}
			want := []map[string]any{{"name": "Linkerd Prometheus", "type": "prometheus", "uid": "linkerd-prometheus",
				"url": tc.url, "access": "proxy", "isDefault": false}}
			if doc.APIVersion != 1 {
				t.Errorf("apiVersion %d", doc.APIVersion)
			}
			if d := cmp.Diff(want, doc.Datasources); d != "" {
				t.Errorf("datasources (-want +got):\n%s", d)
			}

			var cm corev1.ConfigMap
			find(t, objs, "ConfigMap/grafana/linkerd-top-line-dashboard", &cm)
			if d := cmp.Diff(map[string]string{"grafana_dashboard": "1", labelExtension: "viz", labelComponent: "grafana"}, cm.Labels); d != "" {
				t.Errorf("dashboard labels (-want +got):\n%s", d)
			}
			file, _ := dashboardFiles.ReadFile("dashboards/top-line.json")
			if d := cmp.Diff(map[string]string{"top-line.json": string(file)}, cm.Data); d != "" {
				t.Errorf("dashboard data (-want +got):\n%s", d)
			}
		})
	}
}
