package rendertest

import (
	"testing"

	"github.com/meshctl/meshctl/generators"
)

// TestConfigs checks that the meshes render every kind of file the parser
// tests in hack/ load, so that none of them passes on nothing.
func TestConfigs(t *testing.T) {
	for _, p := range []string{
		generators.ProgramPrometheus,
		generators.ProgramPrometheusScrapeFile,
		generators.ProgramPrometheusOperatorScrape,
		generators.ProgramOtelCol,
		generators.ProgramNginx,
		generators.ProgramGrafanaDashboard,
	} {
		cfgs, err := Configs(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfgs) == 0 {
			t.Errorf("no mesh renders a file for %s", p)
		}
		for _, c := range cfgs {
			t.Logf("%s: %s (%d bytes)", p, c.Where(), len(c.Data))
		}
	}
}
