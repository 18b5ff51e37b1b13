package plan_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/internal/ident"
	"github.com/meshctl/meshctl/internal/meshtest"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/rollout"
)

const rolloutMesh = `
namespaces: booksapp: {inject: "enabled", create: true}
viz: enabled: true
services: "booksapp/books": {
	port: 7002
	split: {books: 100, "books-v2": 0}
	rollout: {from: "books", to: "books-v2", steps: [10, 50, 100], interval: "10s"}
}
`

// TestRolloutWithoutTheLoop: on a real API server, viz's Prometheus
// admits the reconciler (the policy names its ServiceAccount); an apply
// renders the file's weights until a rollout starts; a person's promote
// and abort are stored and reach the route; an apply of the unchanged
// file then writes nothing; and an ended rollout refuses another decision.
func TestRolloutWithoutTheLoop(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	c, err := apply.New(cluster.Config, "")
	if err != nil {
		t.Fatal(err)
	}
	m := mustLoadSource(t, "mesh.cue", rolloutMesh)
	fleet := plan.Single(&plan.Member{Client: c})
	if _, err := plan.Apply(ctx, m, fleet, plan.ApplyOptions{Version: "test"}); err != nil {
		t.Fatal(err)
	}

	t.Run("the policy admits the reconciler", func(t *testing.T) {
		pol := &unstructured.Unstructured{}
		pol.SetAPIVersion("policy.linkerd.io/v1alpha1")
		pol.SetKind("AuthorizationPolicy")
		if err := c.Kube().Get(ctx, client.ObjectKey{Namespace: "linkerd-viz", Name: "prometheus-admin-meshctl"}, pol); err != nil {
			t.Fatal(err)
		}
		refs, _, _ := unstructured.NestedSlice(pol.Object, "spec", "requiredAuthenticationRefs")
		target, _, _ := unstructured.NestedStringMap(pol.Object, "spec", "targetRef")
		if len(refs) != 1 || target["kind"] != "Server" || target["name"] != "prometheus-admin" {
			t.Fatalf("policy: target %v, refs %v", target, refs)
		}
		ref := refs[0].(map[string]any)
		if ref["kind"] != "ServiceAccount" || ref["name"] != ident.Reconciler || ref["namespace"] != ident.Namespace {
			t.Errorf("the policy admits %v, not ServiceAccount %s/%s", ref, ident.Namespace, ident.Reconciler)
		}
	})

	route := func() map[string]int64 {
		t.Helper()
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("policy.linkerd.io/v1beta3")
		u.SetKind("HTTPRoute")
		if err := c.Kube().Get(ctx, client.ObjectKey{Namespace: "booksapp", Name: "books"}, u); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		return meshtest.RouteWeights(t, b)
	}
	if w := route(); w["books"] != 100 || w["books-v2"] != 0 {
		t.Fatalf("before any rollout the route carries %v, want the file's 100/0", w)
	}
	for _, name := range []string{"books", "books-v2"} {
		d := meshtest.Deployment("booksapp", name, "example/"+name)
		if err := c.Kube().Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	o := plan.RolloutOptions{Apply: &plan.ApplyOptions{Version: "test", Progress: func(string) io.Writer { return io.Discard }}}
	decide := func(act plan.RolloutAction, want int64) rollout.State {
		t.Helper()
		rep, err := plan.DecideRollout(ctx, m, fleet, act, o)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Moved || rep.Applied == nil {
			t.Fatalf("%+v: moved %v, applied %v", act, rep.Moved, rep.Applied != nil)
		}
		if w := route(); w["books-v2"] != want || w["books"] != 100-want {
			t.Fatalf("%+v: the route carries %v, want books-v2 at %d", act, w, want)
		}
		return rep.Clusters[0].States[0]
	}
	// The first decision starts the rollout (step 1, 10%) and promotes it
	// a step.
	if s := decide(plan.RolloutAction{Service: "booksapp/books", Promote: true}, 50); s.Step != 1 || s.Phase != rollout.Progressing {
		t.Errorf("after promote: step %d, %s", s.Step, s.Phase)
	}
	rep, err := plan.Apply(ctx, m, fleet, plan.ApplyOptions{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if res := rep.Clusters[0].Result; res.Writes != 0 {
		t.Errorf("an apply of the unchanged file mid-rollout made %d writes: %s", res.Writes, res.SummaryLine())
	}
	if rs := rep.Clusters[0].Rollouts; len(rs) != 1 || rs[0].Weight != 50 {
		t.Errorf("the apply reports rollouts %+v", rs)
	}
	if s := decide(plan.RolloutAction{Service: "booksapp/books"}, 0); s.Phase != rollout.RolledBack {
		t.Errorf("after abort: %s", s.Phase)
	}
	if _, err := plan.DecideRollout(ctx, m, fleet, plan.RolloutAction{Service: "booksapp/books", Promote: true}, o); !errors.Is(err, plan.ErrRolloutEnded) {
		t.Errorf("a decision on an ended rollout: %v, want ErrRolloutEnded", err)
	}
	// Dropping the rollout from the file renders the file's split again,
	// and its state goes.
	m2 := mustLoadSource(t, "mesh.cue", `
namespaces: booksapp: {inject: "enabled", create: true}
viz: enabled: true
services: "booksapp/books": {port: 7002, split: {books: 100}}
`)
	if _, err := plan.Rollouts(ctx, m2, fleet, plan.RolloutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Apply(ctx, m2, fleet, plan.ApplyOptions{Version: "test"}); err != nil {
		t.Fatal(err)
	}
	if w := route(); len(w) != 1 || w["books"] != 100 {
		t.Errorf("after the rollout left mesh.cue the route carries %v", w)
	}
	crs, err := plan.ReadRollouts(ctx, m2, fleet, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(crs[0].States) != 0 {
		t.Errorf("states left after the rollout left mesh.cue: %+v", crs[0].States)
	}
}
