package generators

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestProgramConfigs checks which files ProgramConfigs finds, and that a
// Secret's come out decoded. hack/promql, hack/otelcol and hack/nginx load
// what it finds with each program's own parser.
func TestProgramConfigs(t *testing.T) {
	type found struct{ Program, Object, Key string }
	tests := []struct {
		name, src string
		want      []found
	}{
		{"default", "", nil},
		{"viz", "viz: enabled: true", []found{
			{ProgramPrometheus, "ConfigMap/linkerd-viz/prometheus-config", "prometheus.yml"},
		}},
		{"external prometheus", promVizExternal, []found{
			{ProgramPrometheusOperatorScrape, "Secret/linkerd-viz/linkerd-prometheus-scrape-config", "additional-scrape-configs.yaml"},
			{ProgramPrometheusScrapeFile, "Secret/linkerd-viz/linkerd-prometheus-scrape-config", "scrape-config-file.yaml"},
		}},
		{"operator", promVizExternal + "viz: prometheus: operator: true", nil},
		{"tracing", "tracing: {enabled: true, collector: deploy: true}", []found{
			{ProgramOtelCol, "ConfigMap/linkerd-tracing/collector-config", "collector.yaml"},
		}},
		{"fault", `namespaces: shop: {}
services: "shop/books": {port: 7002, fault: {percent: 10, status: 500}}`, []found{
			{ProgramNginx, "ConfigMap/shop/books-fault", "nginx.conf"},
		}},
		{"grafana", `viz: {enabled: true, grafana: {enabled: true, dashboards: {health: false, route: false, pod: false, service: false, deployment: false, namespace: false}}}`, []found{
			{ProgramGrafanaDashboard, "ConfigMap/grafana/linkerd-top-line-dashboard", "top-line.json"},
			{ProgramPrometheus, "ConfigMap/linkerd-viz/prometheus-config", "prometheus.yml"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := Render(load(t, tc.src), Inputs{})
			if err != nil {
				t.Fatal(err)
			}
			cfgs, err := ProgramConfigs(objs)
			if err != nil {
				t.Fatal(err)
			}
			var got []found
			for _, c := range cfgs {
				got = append(got, found{c.Program, c.Object, c.Key})
				if len(c.Data) == 0 {
					t.Errorf("%s key %s: empty", c.Object, c.Key)
				}
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("configs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProgramConfigsDecodeSecrets checks that a Secret's file comes out as
// the program reads it, not base64.
func TestProgramConfigsDecodeSecrets(t *testing.T) {
	objs, err := Render(load(t, promVizExternal), Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	cfgs, err := ProgramConfigs(objs)
	if err != nil {
		t.Fatal(err)
	}
	starts := map[string]string{
		ProgramPrometheusScrapeFile:     "scrape_configs:\n- ",
		ProgramPrometheusOperatorScrape: "- ",
	}
	for _, c := range cfgs {
		if !strings.HasPrefix(string(c.Data), starts[c.Program]) {
			t.Errorf("%s key %s starts %q, want %q", c.Object, c.Key, string(c.Data)[:min(20, len(c.Data))], starts[c.Program])
		}
	}
}
