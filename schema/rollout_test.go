package schema

import (
	"testing"
)

// TestRolloutDefaults: a rollout that names only its backends and steps
// gets the documented defaults, and the Deployments default to the
// backends' names.
func TestRolloutDefaults(t *testing.T) {
	m, err := LoadSources(Source{Name: "mesh.cue", Data: []byte(`services: "booksapp/books": {
	port: 7002
	split: {books: 100, "books-v2": 0}
	rollout: {from: "books", to: "books-v2", steps: [5, 10, 25, 50, 100]}
}`)})
	if err != nil {
		t.Fatal(err)
	}
	r := m.Services["booksapp/books"].Rollout
	if r == nil {
		t.Fatal("rollout not decoded")
	}
	if r.FromDeployment != "books" || r.ToDeployment != "books-v2" {
		t.Errorf("deployments = %q, %q; want the backends' names", r.FromDeployment, r.ToDeployment)
	}
	if r.Interval != "1m" || r.ProgressDeadline != "15m" {
		t.Errorf("interval %q, deadline %q; want 1m, 15m", r.Interval, r.ProgressDeadline)
	}
	a := r.Analysis
	if a.SuccessRate.MaxDrop != 1 || a.LatencyP99.MaxIncrease != "10%" || a.MinRequests != 100 || a.FailureLimit != 2 || a.Confidence != 0.95 {
		t.Errorf("analysis defaults = %+v", a)
	}
	if len(r.Steps) != 5 || r.Steps[4] != 100 {
		t.Errorf("steps = %v", r.Steps)
	}
}
