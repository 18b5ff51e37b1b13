package plan_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/internal/meshtest"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
	meshschema "github.com/meshctl/meshctl/schema"
)

// NoWebhooks are kube-apiserver's flags for a cluster whose admission
// webhooks are never called. Linkerd's webhooks cannot answer on a test
// cluster (loopback pod IPs never become endpoints), and with HA they fail
// closed: they would reject the mesh's own objects, which the running
// webhooks of a real cluster admit. The transition tests measure meshctl's
// moves between meshes, so their clusters admit as those webhooks would.
var noWebhooks = []string{"--disable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook"}

// TestTransitions walks testdata/transitions on a cluster of its own, as a
// user moves between meshes. For each step from A to B (A applied) it
//   - diffs B as 'meshctl diff' does, without a panic or an error;
//   - checks that InSync's verdict on every object of B agrees with the
//     server's dry-run: an object found in sync locally is unchanged for
//     the server too, and one the server finds unchanged is in sync;
//   - applies B, with --max-deletions 100% when the deletion budget
//     refuses (and then checks that the refused run wrote nothing);
//   - applies B again, and counts at the wire: no write, no dry-run;
//   - checks that every object of B is then in sync, locally and for the
//     server.
func TestTransitions(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{Full: true, APIServerFlags: noWebhooks})
	rec := &testcluster.Recorder{}
	cfg := rest.CopyConfig(cluster.Config)
	cfg.Wrap(rec.Wrap)
	c, err := apply.New(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	tr := &transition{cluster: cluster, c: c, fleet: plan.Single(&plan.Member{Client: c}), rec: rec}
	steps := meshtest.Steps(t)
	first := tr.load(t, steps[0])
	if _, err := tr.apply(t, first, apply.Options{}); err != nil {
		t.Fatalf("%s: %v", steps[0], err)
	}
	for i := 1; i < len(steps); i++ {
		t.Run(fmt.Sprintf("%02d %s to %s", i, meshtest.Name(steps[i-1]), meshtest.Name(steps[i])), func(t *testing.T) {
			tr.step(t, tr.load(t, steps[i]))
		})
	}
}

type transition struct {
	cluster *testcluster.Cluster
	c       *apply.Client
	fleet   *plan.Fleet
	rec     *testcluster.Recorder
}

func (tr *transition) load(t *testing.T, path string) *meshschema.Mesh {
	t.Helper()
	m := load(t, filepath.Join(meshtest.Root(), path))
	meshtest.Prepare(t, tr.cluster, m)
	return m
}

// step moves the cluster to m.
func (tr *transition) step(t *testing.T, m *meshschema.Mesh) {
	ctx := t.Context()
	// diff, as the CLI does it: one LIST per kind, decided locally where
	// in sync, the rest dry-run.
	d, err := plan.Diff(ctx, m, tr.fleet, plan.DiffOptions{Version: "test"})
	if err != nil {
		t.Fatalf("diff: %v", err)
	}
	set, live := tr.render(t, m)
	tr.verdicts(t, ctx, set, live, d.Clusters[0].Result)

	res, err := tr.apply(t, m, apply.Options{})
	if errors.Is(err, apply.ErrPruneRefused) {
		t.Logf("the deletion budget refused: %v", err)
		res, err = tr.apply(t, m, apply.Options{MaxDeletions: apply.Limit{Percent: 100}})
	}
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	t.Logf("apply: %s", res.SummaryLine())

	// Again: nothing to do, and nothing asked of the server but reads.
	tr.rec.Take()
	again, err := tr.apply(t, m, apply.Options{})
	if err != nil {
		t.Fatalf("second apply: %v", err)
	}
	for _, r := range tr.rec.Take() {
		if r.Class == "write" || r.Class == "dryrun" {
			t.Errorf("second apply: %s %s %s", r.Class, r.Method, r.Path)
		}
	}
	if again.Writes != 0 || again.DryRuns != 0 {
		for _, e := range again.Entries {
			if e.Action != apply.Unchanged {
				t.Errorf("second apply: %s", e)
			}
		}
	}
	// Rendered again: the apply may have stored certificates the dry
	// render only made in memory (a new webhook's pair).
	set, live = tr.render(t, m)
	after, err := tr.c.Diff(ctx, set, apply.DiffOptions{Live: live})
	if err != nil {
		t.Fatalf("diff after the apply: %v", err)
	}
	for _, o := range after.Objects {
		if o.Stage != "prune" && !o.InSyncLocally() {
			t.Errorf("%s: not in sync after the apply (%s): %s", o.ID, o.Action, why(set, live, o.ID))
		}
	}
	tr.verdicts(t, ctx, set, live, after)
}

// render renders m as a dry run does, and lists its live objects.
func (tr *transition) render(t *testing.T, m *meshschema.Mesh) (apply.Set, apply.LiveObjects) {
	t.Helper()
	set, _, err := plan.ForCluster(t.Context(), m, plan.Cluster{Client: tr.c, DryRun: true}, "test")
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	live, err := tr.c.ListLive(t.Context(), set, plan.WideKinds(m)...)
	if err != nil {
		t.Fatal(err)
	}
	return set, live
}

// verdicts dry-runs every object of set on the server and compares the
// server's verdict with the one local reached.
func (tr *transition) verdicts(t *testing.T, ctx context.Context, set apply.Set, live apply.LiveObjects, local *apply.DiffResult) {
	t.Helper()
	// An object a controller is still writing (a Deployment's revision
	// annotation, just after it changed) can read as changed to ssa's
	// dry-run, which compares with a GET made a moment before: the server
	// is asked again until it holds still, and only a verdict that holds
	// is a disagreement.
	var says map[string]apply.Action
	var texts map[string]string
	disagree := func(o apply.ObjectDiff) string {
		switch a := says[o.ID]; {
		case o.InSyncLocally() && a != apply.Unchanged:
			return fmt.Sprintf("%s: InSync says in sync, the server's dry-run says %s: apply would lose the change:\n%s", o.ID, a, texts[o.ID])
		case !o.InSyncLocally() && a == apply.Unchanged:
			return fmt.Sprintf("%s: InSync says not in sync (%s), the server's dry-run says unchanged", o.ID, why(set, live, o.ID))
		}
		return ""
	}
	var problems []string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		server, err := tr.c.Diff(ctx, set, apply.DiffOptions{Live: askServer{}})
		if err != nil {
			return false, err
		}
		says, texts = map[string]apply.Action{}, map[string]string{}
		for _, o := range server.Objects {
			if o.Stage != "prune" {
				says[o.ID], texts[o.ID] = o.Action, o.Diff
			}
		}
		problems = problems[:0]
		for _, o := range local.Objects {
			if o.Stage == "prune" {
				continue
			}
			if p := disagree(o); p != "" {
				problems = append(problems, p)
			}
		}
		return len(problems) == 0, nil
	})
	if err != nil && !wait.Interrupted(err) {
		t.Fatalf("dry-run of every object: %v", err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// why says why InSync finds the object id of set not in sync with live.
func why(set apply.Set, live apply.LiveObjects, id string) string {
	for _, st := range set.Stages {
		for _, u := range st.Objects {
			if apply.ID(u) != id {
				continue
			}
			l, ok := live.Live(u.GroupVersionKind(), u.GetNamespace(), u.GetName())
			if !ok {
				return "live not known"
			}
			return apply.NotInSync(u, l)
		}
	}
	return "not in the render"
}

// apply applies m with the apply verb, as 'meshctl apply' does.
func (tr *transition) apply(t *testing.T, m *meshschema.Mesh, o apply.Options) (*apply.Result, error) {
	t.Helper()
	before := tr.inventoryVersion(t)
	o.Prune = true
	var progress strings.Builder
	rep, err := plan.Apply(t.Context(), m, tr.fleet, plan.ApplyOptions{Apply: o, Version: "test",
		Progress: func(string) io.Writer { return &progress }})
	for _, line := range strings.Split(progress.String(), "\n") {
		if strings.Contains(line, "finish deleting") || strings.Contains(line, " gone after ") {
			t.Log(line)
		}
	}
	if errors.Is(err, apply.ErrPruneRefused) {
		if after := tr.inventoryVersion(t); after != before {
			t.Errorf("a refused apply wrote the inventory (resourceVersion %s → %s)", before, after)
		}
		if !strings.Contains(err.Error(), "--max-deletions") || !strings.Contains(err.Error(), "prune.maxDeletions") {
			t.Errorf("refusal does not say how to go on: %v", err)
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	return rep.Clusters[0].Result, nil
}

func (tr *transition) inventoryVersion(t *testing.T) string {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	if err := tr.c.Kube().Get(t.Context(), client.ObjectKey{Namespace: tr.c.Namespace(), Name: apply.InventoryName}, u); err != nil {
		return ""
	}
	return u.GetResourceVersion()
}

// askServer knows no live object: every object is dry-run.
type askServer struct{}

func (askServer) Live(schema.GroupVersionKind, string, string) (*unstructured.Unstructured, bool) {
	return nil, false
}
