package promql

import (
	"testing"
	"time"

	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/rollout"
)

// TestRolloutQueries parses the queries rollouts run with Prometheus's
// parser and checks their metrics and labels against the ones Linkerd
// exports, as the dashboards' queries are checked.
func TestRolloutQueries(t *testing.T) {
	metrics := generators.DashboardMetrics()
	for _, window := range []time.Duration{10 * time.Second, time.Minute, 90 * time.Minute} {
		qs := rollout.Queries(window)
		if len(qs) != 2 {
			t.Fatalf("%d rollout queries, want 2 (responses and latency)", len(qs))
		}
		for _, q := range qs {
			for _, problem := range check(q, metrics) {
				t.Errorf("rollout query: %s\n%s", problem, q)
			}
		}
	}
}
