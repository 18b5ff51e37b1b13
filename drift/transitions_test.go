package drift_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/drift"
	"github.com/meshctl/meshctl/internal/meshtest"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

// TestLoopTransitions walks testdata/transitions through one reconcile
// loop, as revisions of its source: each mesh is written over the last,
// and the loop must apply it, prune what left it, record it in sync, and
// stay up (no panic, /healthz answering). The cluster then matches the
// mesh for the server too: a diff finds nothing. Deletions beyond the
// default budget are allowed (--max-deletions 100%), as a reviewed change
// that turns viz off needs. The cluster admits as running webhooks would
// (plan's TestTransitions says why).
func TestLoopTransitions(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{Full: true,
		APIServerFlags: []string{"--disable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook"}})
	c, err := apply.New(rest.CopyConfig(cluster.Config), "")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: t.Context(), cluster: cluster, client: c, mesh: filepath.Join(t.TempDir(), "mesh.cue")}
	steps := meshtest.Steps(t)
	read := func(t *testing.T, path string) string {
		b, err := os.ReadFile(filepath.Join(meshtest.Root(), path))
		if err != nil {
			t.Fatal(err)
		}
		m, err := schema.Load(filepath.Join(meshtest.Root(), path))
		if err != nil {
			t.Fatal(err)
		}
		meshtest.Prepare(t, cluster, m)
		return string(b)
	}
	e.write(read(t, steps[0]))
	r := e.start(drift.Options{Interval: time.Hour, MaxDeletions: apply.Limit{Percent: 100}})
	e.inSync(3 * time.Minute)
	for i := 1; i < len(steps); i++ {
		t.Run(meshtest.Name(steps[i-1])+" to "+meshtest.Name(steps[i]), func(t *testing.T) {
			e := e.in(t)
			e.write(read(t, steps[i]))
			st := e.inSync(2 * time.Minute)
			if st.LastError != "" {
				t.Errorf("status: %s", st.LastError)
			}
			if n := scrape(t, r.loop.MetricsAddr, "meshctl_errors_total", `where="panic"`); n != 0 {
				t.Fatalf("the loop recovered from %v panics", n)
			}
			if code := get(t, "http://"+r.loop.HealthAddr+"/healthz"); code != http.StatusOK {
				t.Fatalf("/healthz = %d", code)
			}
			m, err := schema.Load(e.mesh)
			if err != nil {
				t.Fatal(err)
			}
			set, _, err := plan.ForCluster(e.ctx, m, plan.Cluster{Client: c, DryRun: true}, "test")
			if err != nil {
				t.Fatal(err)
			}
			d, err := c.Diff(e.ctx, set, apply.DiffOptions{})
			if err != nil {
				t.Fatalf("diff: %v", err)
			}
			for _, o := range d.Objects {
				if o.Action != apply.Unchanged {
					t.Errorf("after the loop applied it: %s %s %s", o.ID, o.Action, o.Reason)
				}
			}
		})
	}
}
