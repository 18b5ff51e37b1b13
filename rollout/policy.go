// Package rollout judges canaries: it compares a candidate's Linkerd
// metrics with its primary's over the same window, and moves a rollout
// through its steps, holds it, promotes it or rolls it back. It is pure:
// the numbers come in (see Query and Prometheus), a new State goes out,
// and plan writes the weights and the state.
package rollout

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meshctl/meshctl/schema"
)

// Policy is a service's rollout as mesh.cue declares it, parsed.
type Policy struct {
	// Service is "namespace/name".
	Service   string
	Namespace string
	From, To  string
	// FromDeployment and ToDeployment answer for each side in the metrics.
	FromDeployment, ToDeployment string
	Steps                        []int
	Interval                     time.Duration
	ProgressDeadline             time.Duration
	// MaxDrop is how far the candidate's success rate may fall below the
	// primary's, as a fraction (0.005 is half a point).
	MaxDrop float64
	// MaxIncrease is how much higher the candidate's p99 may be, as a
	// fraction of the primary's (0.1 is 10%).
	MaxIncrease  float64
	MinRequests  float64
	FailureLimit int
	Confidence   float64
	// PrometheusURL is where the numbers come from; empty for the
	// caller's default.
	PrometheusURL string
}

// PolicyOf parses a service's rollout. The schema has checked it; what
// fails here is a bug, reported rather than ignored.
func PolicyOf(service string, r schema.Rollout) (Policy, error) {
	ns, _, _ := strings.Cut(service, "/")
	p := Policy{
		Service: service, Namespace: ns,
		From: r.From, To: r.To, FromDeployment: r.FromDeployment, ToDeployment: r.ToDeployment,
		Steps:         r.Steps,
		MaxDrop:       r.Analysis.SuccessRate.MaxDrop / 100,
		MinRequests:   float64(r.Analysis.MinRequests),
		FailureLimit:  r.Analysis.FailureLimit,
		Confidence:    r.Analysis.Confidence,
		PrometheusURL: r.PrometheusURL,
	}
	var err error
	if p.Interval, err = time.ParseDuration(r.Interval); err != nil {
		return p, fmt.Errorf("%s: rollout.interval: %w", service, err)
	}
	if p.ProgressDeadline, err = time.ParseDuration(r.ProgressDeadline); err != nil {
		return p, fmt.Errorf("%s: rollout.progressDeadline: %w", service, err)
	}
	pct, err := strconv.ParseFloat(strings.TrimSuffix(r.Analysis.LatencyP99.MaxIncrease, "%"), 64)
	if err != nil {
		return p, fmt.Errorf("%s: rollout.analysis.latencyP99.maxIncrease: %w", service, err)
	}
	p.MaxIncrease = pct / 100
	if len(p.Steps) == 0 || p.Steps[len(p.Steps)-1] != 100 {
		return p, fmt.Errorf("%s: rollout.steps must end at 100", service)
	}
	if p.FailureLimit < 1 {
		p.FailureLimit = 1
	}
	return p, nil
}

// Policies are the mesh's rollouts, by service, in service order.
func Policies(m *schema.Mesh) ([]Policy, error) {
	var out []Policy
	for _, k := range slices.Sorted(maps.Keys(m.Services)) {
		svc := m.Services[k]
		if svc.Rollout == nil {
			continue
		}
		p, err := PolicyOf(k, *svc.Rollout)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
