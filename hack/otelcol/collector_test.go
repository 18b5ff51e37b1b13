package otelcol

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/otelcol"

	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/internal/rendertest"
	"github.com/meshctl/meshctl/schema"
)

// TestCollectorConfigs validates every collector configuration the meshes
// render, as `otelcol validate` does.
func TestCollectorConfigs(t *testing.T) {
	cfgs, err := rendertest.Configs(generators.ProgramOtelCol)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) == 0 {
		t.Fatal("no mesh renders a collector configuration")
	}
	filtered := false
	for _, c := range cfgs {
		filtered = filtered || strings.Contains(string(c.Data), "filter/namespaces")
		if err := validate(t, c.Data); err != nil {
			t.Errorf("%s: %v", c.Where(), err)
		}
	}
	if !filtered {
		t.Error("no mesh renders the namespace filter: its OTTL goes unchecked")
	}
}

// TestBrokenCollectorConfigs proves that validate can fail: on a broken
// OTTL condition, a misspelt key, a component the pipeline names but the
// configuration lacks, and a component type the Collector does not have.
func TestBrokenCollectorConfigs(t *testing.T) {
	cfgs, err := rendertest.Configs(generators.ProgramOtelCol)
	if err != nil {
		t.Fatal(err)
	}
	var good string
	for _, c := range cfgs {
		if strings.Contains(string(c.Data), "filter/namespaces") {
			good = string(c.Data)
		}
	}
	if err := validate(t, []byte(good)); err != nil {
		t.Fatalf("the unbroken configuration fails: %v", err)
	}
	tests := []struct {
		name, old, new, want string
	}{
		{"broken OTTL condition", `!= nil and not (`, `!= nil and not ((`,
			`processors::filter/namespaces: unable to parse OTTL condition`},
		{"OTTL path that does not exist", `resource.attributes[`, `resource.atributes[`,
			`segment "atributes" from path "resource.atributes[k8s.namespace.name]" is not a valid path`},
		{"misspelt key", `sampling_percentage:`, `sampling_percentag:`, `has invalid keys: sampling_percentag`},
		{"unknown component type", `memory_limiter:`, `memory_limitter:`, `unknown type: "memory_limitter"`},
		{"pipeline names a missing component", `- batch`, `- batch/missing`,
			`references processor "batch/missing" which is not configured`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.old) {
				t.Fatalf("the configuration has no %q to break", tc.old)
			}
			err := validate(t, []byte(strings.Replace(good, tc.old, tc.new, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// validate writes cfg to a file and runs the Collector's DryRun on it: what
// `otelcol validate --config=FILE` runs.
func validate(t *testing.T, cfg []byte) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "collector.yaml")
	if err := os.WriteFile(path, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	col, err := otelcol.NewCollector(Settings(path))
	if err != nil {
		t.Fatal(err)
	}
	return col.DryRun(context.Background())
}

// TestImageIsTheParsersRelease keeps the Collector meshctl renders by
// default at the release whose validation these tests run.
func TestImageIsTheParsersRelease(t *testing.T) {
	m, err := schema.Load(filepath.Join(rendertest.Root(), "testdata", "golden", "tracing.cue"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "otel/opentelemetry-collector-contrib:" + Version; m.Tracing.Collector.Image != want {
		t.Errorf("the default collector image is %s, and the tests validate with %s: move them together", m.Tracing.Collector.Image, want)
	}
}
