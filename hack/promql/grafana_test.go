package promql

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/meshctl/meshctl/generators"
)

// Grafana's dashboard schema, as the Go types of the Grafana Foundation
// SDK v0.0.22 (generated from Grafana's own schemas at its main branch:
// dashboard schemaVersion 42, Grafana 12). meshctl renders no Grafana
// image: the dashboards are for a Grafana someone else runs, so the newest
// schema the module proxy serves is the one to meet. Its strict decoding
// fails on a missing required field, a field of the wrong type and a field
// the schema does not have, in the dashboard, its panels' options and
// field config (per panel plugin) and their queries (per datasource).

func init() { plugins.RegisterDefaultPlugins() }

// wantDashboards are the dashboards meshctl authors (generators/dashboards).
var wantDashboards = []string{"deployment", "health", "multicluster", "namespace", "pod", "route", "service", "top-line"}

// TestDashboardSchema decodes every rendered dashboard strictly into the
// SDK's Dashboard and runs its validation.
func TestDashboardSchema(t *testing.T) {
	var seen []string
	for _, c := range configs(t, generators.ProgramGrafanaDashboard) {
		if err := checkDashboard(c.Data); err != nil {
			t.Errorf("%s: %v", c.Where(), err)
		}
		if name := strings.TrimSuffix(c.Key, ".json"); !slices.Contains(seen, name) {
			seen = append(seen, name)
		}
	}
	slices.Sort(seen)
	if !slices.Equal(seen, wantDashboards) {
		t.Errorf("checked dashboards %v, want %v", seen, wantDashboards)
	}
}

// TestBrokenDashboards proves that checkDashboard can fail: on a field the
// schema lacks, a field of the wrong type, a missing required field and an
// unknown field in a panel's options.
func TestBrokenDashboards(t *testing.T) {
	good := string(configs(t, generators.ProgramGrafanaDashboard)[0].Data)
	if err := checkDashboard([]byte(good)); err != nil {
		t.Fatalf("the unbroken dashboard fails: %v", err)
	}
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown field", `"graphTooltip":`, `"graphTooltipp":`, "unexpected field 'graphTooltipp'"},
		{"wrong type", `"editable": true`, `"editable": "yes"`, "editable: json: cannot unmarshal string into Go value of type bool"},
		{"missing required field", `"schemaVersion":`, `"schemaVersionn":`, "schemaVersion: required field is missing"},
		{"unknown panel option", `"options": {`, `"options": {"legendd": {},`, "unexpected field 'legendd'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.old) {
				t.Fatalf("the dashboard has no %q to break", tc.old)
			}
			err := checkDashboard([]byte(strings.Replace(good, tc.old, tc.new, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// checkDashboard decodes a dashboard's JSON model strictly and validates it.
func checkDashboard(data []byte) error {
	var d dashboard.Dashboard
	if err := sdkError(d.UnmarshalJSONStrict(data)); err != nil {
		return err
	}
	return sdkError(d.Validate())
}

// sdkError is err, or nil for the empty cog.BuildErrors that the SDK's
// strict decoding returns (as a non-nil error) when it finds nothing.
func sdkError(err error) error {
	var errs cog.BuildErrors
	if errors.As(err, &errs) && len(errs) == 0 {
		return nil
	}
	return err
}
