package promql

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/config"
	_ "github.com/prometheus/prometheus/discovery/kubernetes" // kubernetes_sd_configs, as in prometheus's own build
	"go.yaml.in/yaml/v2"

	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/internal/rendertest"
)

// The parser is Prometheus v3 (module v0.316.0, Prometheus 3.16), while viz
// renders upstream's prom/prometheus:v2.55.1 (FACTS §10.1): the module
// proxy serves no v0.55.x, only v0.313 and later. The files use nothing
// that differs between the two (scrape_config_files exists since 2.43),
// and an external Prometheus may be either.

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// viz's scrape jobs without Prometheus's own, as the scrape-config Secret
// holds them.
var externalJobs = []string{"kubernetes-nodes-cadvisor", "linkerd-controller", "linkerd-multicluster-controller", "linkerd-proxy"}

func configs(t *testing.T, program string) []rendertest.Config {
	t.Helper()
	cfgs, err := rendertest.Configs(program)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) == 0 {
		t.Fatalf("no mesh renders a file for %s", program)
	}
	return cfgs
}

// TestPrometheusConfig loads viz's prometheus.yml of every mesh that renders
// one, as prometheus --config.file does.
func TestPrometheusConfig(t *testing.T) {
	for _, c := range configs(t, generators.ProgramPrometheus) {
		cfg, err := loadMain(t, string(c.Data))
		if err != nil {
			t.Errorf("%s: %v", c.Where(), err)
			continue
		}
		if got := jobNames(cfg.ScrapeConfigs); !slices.Contains(got, "linkerd-proxy") {
			t.Errorf("%s: jobs %v, no linkerd-proxy", c.Where(), got)
		}
	}
}

// TestScrapeConfigFile loads the scrape-config Secret's file key through a
// main config's scrape_config_files, as a Prometheus that lists it does.
func TestScrapeConfigFile(t *testing.T) {
	for _, c := range configs(t, generators.ProgramPrometheusScrapeFile) {
		jobs, err := loadScrapeConfigFile(t, c.Data)
		if err != nil {
			t.Errorf("%s: %v", c.Where(), err)
			continue
		}
		if got := jobNames(jobs); !slices.Equal(got, externalJobs) {
			t.Errorf("%s: jobs %v, want %v", c.Where(), got, externalJobs)
		}
	}
}

// TestOperatorScrapeConfigs reads the scrape-config Secret's Operator key as
// the Prometheus Operator's additionalScrapeConfigs does (a YAML list of
// scrape jobs appended to scrape_configs), into Prometheus's own
// []*config.ScrapeConfig, and then loads the config Prometheus is given.
func TestOperatorScrapeConfigs(t *testing.T) {
	for _, c := range configs(t, generators.ProgramPrometheusOperatorScrape) {
		jobs, err := loadOperatorScrapeConfigs(t, c.Data)
		if err != nil {
			t.Errorf("%s: %v", c.Where(), err)
			continue
		}
		if got := jobNames(jobs); !slices.Equal(got, externalJobs) {
			t.Errorf("%s: jobs %v, want %v", c.Where(), got, externalJobs)
		}
	}
}

// TestBrokenConfigs proves that each loader above can fail: on the bare
// list that issue 27 found in the scrape_config_files key, on the file
// given to the Operator, on a misspelt key and on a bad relabel regex.
func TestBrokenConfigs(t *testing.T) {
	file := configs(t, generators.ProgramPrometheusScrapeFile)[0].Data
	list := configs(t, generators.ProgramPrometheusOperatorScrape)[0].Data
	main := configs(t, generators.ProgramPrometheus)[0].Data
	tests := []struct {
		name string
		load func() error
		want string
	}{
		{"bare list in scrape_config_files", func() error { _, err := loadScrapeConfigFile(t, list); return err },
			"cannot unmarshal !!seq into config.ScrapeConfigs"},
		{"file as additionalScrapeConfigs", func() error { _, err := loadOperatorScrapeConfigs(t, file); return err },
			"cannot unmarshal !!map into []*config.ScrapeConfig"},
		{"misspelt key in prometheus.yml", func() error {
			_, err := loadMain(t, strings.Replace(string(main), "scrape_interval:", "scrape_intervall:", 1))
			return err
		}, "field scrape_intervall not found"},
		{"misspelt key in a job", func() error {
			_, err := loadScrapeConfigFile(t, []byte(strings.Replace(string(file), "kubernetes_sd_configs:", "kubernetes_sd_config:", 1)))
			return err
		}, "field kubernetes_sd_config not found"},
		{"bad regex", func() error {
			_, err := loadOperatorScrapeConfigs(t, []byte(strings.Replace(string(list), "regex: (Pending|Running)", "regex: (Pending|Running", 1)))
			return err
		}, "missing closing )"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.load()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// loadMain loads a whole prometheus.yml from a file, as Prometheus does.
func loadMain(t *testing.T, yml string) (*config.Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFile(path, false, quiet)
	if err != nil {
		return nil, err
	}
	if _, err := cfg.GetScrapeConfigs(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// loadScrapeConfigFile lists data in a main config's scrape_config_files
// and returns the scrape jobs Prometheus reads from it.
func loadScrapeConfigFile(t *testing.T, data []byte) ([]*config.ScrapeConfig, error) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "linkerd.yaml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadMain(t, fmt.Sprintf("global: {scrape_interval: 10s}\nscrape_config_files: [%q]\n", file))
	if err != nil {
		return nil, err
	}
	return cfg.GetScrapeConfigs()
}

// loadOperatorScrapeConfigs unmarshals data strictly into the list type
// Prometheus reads scrape_configs into, validates each job as Prometheus
// does, then loads the main config the Operator would write with them.
func loadOperatorScrapeConfigs(t *testing.T, data []byte) ([]*config.ScrapeConfig, error) {
	t.Helper()
	var jobs []*config.ScrapeConfig
	if err := yaml.UnmarshalStrict(data, &jobs); err != nil {
		return nil, err
	}
	for _, j := range jobs {
		if err := j.Validate(config.DefaultGlobalConfig); err != nil {
			return nil, err
		}
	}
	var list []yaml.MapSlice // as the Operator holds them
	if err := yaml.Unmarshal(data, &list); err != nil {
		return nil, err
	}
	main, err := yaml.Marshal(map[string]any{"global": map[string]string{"scrape_interval": "10s"}, "scrape_configs": list})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadMain(t, string(main))
	if err != nil {
		return nil, err
	}
	return cfg.GetScrapeConfigs()
}

func jobNames(jobs []*config.ScrapeConfig) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.JobName)
	}
	return out
}
