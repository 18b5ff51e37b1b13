package drift_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshctl/meshctl/drift"
	"github.com/meshctl/meshctl/internal/meshtest"
	"github.com/meshctl/meshctl/internal/promtest"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/rollout"
	"github.com/meshctl/meshctl/schema"
)

// rolloutService is a service with a rollout from NAME to NAME-v2, judged
// every 10s by the Prometheus at url.
func rolloutService(name, url, deadline string) string {
	return fmt.Sprintf(`
services: "booksapp/%[1]s": {
	port: 8080
	split: {%[1]s: 100, "%[1]s-v2": 0}
	rollout: {
		from: "%[1]s", to: "%[1]s-v2"
		steps: [20, 50, 100]
		interval: "10s"
		progressDeadline: %[3]q
		analysis: {minRequests: 50, failureLimit: 2, successRate: maxDrop: 1}
		prometheusURL: %[2]q
	}
}
`, name, url, deadline)
}

// TestLoopRunsRollouts runs five rollouts at once in one loop, against a
// real Prometheus that scrapes an exporter of Linkerd's proxy metrics
// every second, and checks each outcome on the API server:
//   - healthy: promoted through every step, across a restart of the loop
//     (it resumes at the same step), a kubectl edit of its weights (put
//     back to the rollout's), and an apply of the unchanged mesh.cue (no
//     write);
//   - worse, 2 points below its primary: rolled back within failureLimit
//     analyses, never past its first step;
//   - both, whose versions degrade together: not blamed, promoted;
//   - quiet, with too little traffic: holds, says so, and rolls back at the
//     progress deadline;
//   - blind, whose Prometheus is down: holds and never promotes, then
//     moves once Prometheus is back;
//   - a new build of healthy's candidate starts it over;
//   - and rollouts dropped from mesh.cue mid-rollout leave no state, series
//     or route behind.
func TestLoopRunsRollouts(t *testing.T) {
	e := newEnv(t)
	ex := promtest.NewExporter(t)
	prom := promtest.Start(t, ex.Addr())
	blind := promtest.Start(t, ex.Addr())
	blind.Stop()

	traffic := map[string][2]promtest.Traffic{
		"healthy": {{RPS: 200, SuccessRate: 0.999, LatencyMs: 15}, {RPS: 200, SuccessRate: 0.999, LatencyMs: 15}},
		"worse":   {{RPS: 200, SuccessRate: 0.999, LatencyMs: 15}, {RPS: 200, SuccessRate: 0.979, LatencyMs: 15}},
		"both":    {{RPS: 200, SuccessRate: 0.95, LatencyMs: 15}, {RPS: 200, SuccessRate: 0.95, LatencyMs: 15}},
		"quiet":   {{RPS: 0.5, SuccessRate: 1, LatencyMs: 15}, {RPS: 0.5, SuccessRate: 1, LatencyMs: 15}},
		"blind":   {{RPS: 200, SuccessRate: 1, LatencyMs: 15}, {RPS: 200, SuccessRate: 1, LatencyMs: 15}},
	}
	e.ensureNamespace("booksapp")
	for name, tr := range traffic {
		ex.Set("booksapp", name, tr[0])
		ex.Set("booksapp", name+"-v2", tr[1])
		e.deployment("booksapp", name)
		e.deployment("booksapp", name+"-v2")
	}
	prom.WaitFor(t, `sum(rate(response_total{deployment="healthy-v2"}[5s])) > 0`, time.Minute)

	mesh := defaultMesh(t) +
		rolloutService("healthy", prom.URL(), "2m") +
		rolloutService("worse", prom.URL(), "2m") +
		rolloutService("both", prom.URL(), "2m") +
		rolloutService("quiet", prom.URL(), "30s") +
		rolloutService("blind", blind.URL(), "10m")
	e.write(mesh)
	run := e.start(drift.Options{})
	e.inSync(2 * time.Minute)

	// Every rollout starts at its first step, and the routes carry it.
	for name := range traffic {
		e.rolloutAt("booksapp/"+name, func(s rollout.State) bool { return s.Weight >= 20 })
	}

	// healthy at 50%: an apply of the unchanged file writes nothing; a
	// kubectl edit of the weights is put back; a restarted loop resumes.
	e.rolloutAt("booksapp/healthy", func(s rollout.State) bool { return s.Weight == 50 })
	t.Run("apply of the unchanged mesh.cue mid-rollout writes nothing", func(t *testing.T) {
		e := e.in(t)
		m, err := schema.LoadSources(schema.Source{Name: "mesh.cue", Data: []byte(mesh)})
		if err != nil {
			t.Fatal(err)
		}
		for attempt := 0; ; attempt++ {
			before := e.rolloutWeights()
			rep, err := plan.Apply(e.ctx, m, plan.Single(&plan.Member{Client: e.client}), plan.ApplyOptions{Version: "test"})
			if err != nil {
				t.Fatal(err)
			}
			moved := !mapsEqual(before, e.rolloutWeights())
			res := rep.Clusters[0].Result
			if moved && attempt < 5 {
				continue // a rollout stepped during the apply: try again
			}
			if res.Writes != 0 {
				t.Fatalf("apply of the unchanged mesh.cue mid-rollout made %d writes: %s", res.Writes, res.SummaryLine())
			}
			return
		}
	})
	t.Run("kubectl edit of the weights is put back to the rollout's", func(t *testing.T) {
		e := e.in(t)
		want := e.routeWeights("healthy")
		e.editRouteWeights("healthy", map[string]int64{"healthy": 1, "healthy-v2": 99})
		e.until("the loop to restore healthy's weights", time.Minute, func() (bool, error) {
			got := e.routeWeights("healthy")
			st := e.rolloutState("booksapp/healthy")
			if got["healthy-v2"] != int64(st.Weight) || got["healthy"] != int64(100-st.Weight) {
				return false, fmt.Errorf("route %v, rollout at %d (was %v)", got, st.Weight, want)
			}
			return true, nil
		})
	})
	t.Run("a restarted loop resumes at the same step", func(t *testing.T) {
		run.stop()
		before := e.rolloutStates()
		// The new loop runs until the test ends, not the subtest.
		run = e.start(drift.Options{})
		e := e.in(t)
		e.inSync(time.Minute)
		after := e.rolloutStates()
		for svc, b := range before {
			a := after[svc]
			switch {
			case a.Candidate != b.Candidate:
				t.Errorf("%s: the new loop took another candidate: %s, was %s", svc, a.Candidate, b.Candidate)
			case b.Done() && (a.Phase != b.Phase || a.Weight != b.Weight):
				t.Errorf("%s: ended %s at %d%%, now %s at %d%%", svc, b.Phase, b.Weight, a.Phase, a.Weight)
			case !b.Done() && a.Step < b.Step:
				t.Errorf("%s: the new loop went back from step %d to %d", svc, b.Step, a.Step)
			case !b.Done() && a.Step == b.Step && !a.StepStarted.Equal(b.StepStarted):
				t.Errorf("%s: the new loop started step %d over (%s, was %s)", svc, a.Step, a.StepStarted, b.StepStarted)
			}
		}
		// blind holds at its first step while its Prometheus is down: it
		// is mid-rollout whatever the others did meanwhile.
		if b := before["booksapp/blind"]; b.Phase != rollout.Progressing || len(after["booksapp/blind"].History) < len(b.History) {
			t.Errorf("blind: before the restart %s with %d analyses, after %d", b.Phase, len(b.History), len(after["booksapp/blind"].History))
		}
	})

	// The outcomes.
	healthy := e.rolloutAt("booksapp/healthy", func(s rollout.State) bool { return s.Done() })
	if healthy.Phase != rollout.Promoted {
		t.Errorf("healthy: %s: %s", healthy.Phase, healthy.Message)
	}
	if got := e.routeWeights("healthy"); got["healthy-v2"] != 100 || got["healthy"] != 0 {
		t.Errorf("healthy's route after promotion: %v", got)
	}
	worse := e.rolloutAt("booksapp/worse", func(s rollout.State) bool { return s.Done() })
	fails, passes := verdicts(worse)
	if worse.Phase != rollout.RolledBack || passes > 0 || fails != 2 || len(worse.History) > 2 {
		t.Errorf("worse: %s after %d analyses (%d failed, %d passed): %s", worse.Phase, len(worse.History), fails, passes, worse.Message)
	}
	if got := e.routeWeights("worse"); got["worse"] != 100 || got["worse-v2"] != 0 {
		t.Errorf("worse's route after the rollback: %v", got)
	}
	both := e.rolloutAt("booksapp/both", func(s rollout.State) bool { return s.Done() })
	if both.Phase != rollout.Promoted {
		t.Errorf("both (degraded together): %s: %s", both.Phase, both.Message)
	}
	quiet := e.rolloutAt("booksapp/quiet", func(s rollout.State) bool { return s.Done() })
	fails, passes = verdicts(quiet)
	if quiet.Phase != rollout.RolledBack || fails+passes > 0 || !strings.Contains(quiet.Message, "progress deadline") || !strings.Contains(quiet.Message, "too little traffic") {
		t.Errorf("quiet: %s (%d failed, %d passed): %s", quiet.Phase, fails, passes, quiet.Message)
	}
	st := e.rolloutState("booksapp/blind")
	fails, passes = verdicts(st)
	if st.Weight != 20 || fails+passes > 0 || len(st.History) == 0 || !strings.Contains(st.Message, "no metrics") {
		t.Errorf("blind, Prometheus down: at %d%% after %d analyses (%d failed, %d passed): %s", st.Weight, len(st.History), fails, passes, st.Message)
	}
	blind.Restart(t)
	e.rolloutAt("booksapp/blind", func(s rollout.State) bool { return s.Weight > 20 })

	// People and tools see it.
	e.event(rollout.ReasonPromoted, "healthy-v2 promoted")
	e.event(rollout.ReasonRolledBack, "worse-v2 rolled back")
	e.event(rollout.ReasonHeld, "too little traffic")
	e.until("meshctl_rollout_weight_percent{service=booksapp/healthy} at 100", time.Minute, func() (bool, error) {
		if w := scrape(t, run.loop.MetricsAddr, "meshctl_rollout_weight_percent", `service="booksapp/healthy"`); w != 100 {
			return false, fmt.Errorf("%v", w)
		}
		return true, nil
	})
	if n := scrape(t, run.loop.MetricsAddr, "meshctl_rollout_analyses_total", `verdict="hold"`); n < 1 {
		t.Errorf("meshctl_rollout_analyses_total{verdict=hold} = %v", n)
	}

	// A new build of the candidate starts its rollout over, even after it
	// ended: the loop looks at every poll.
	d, err := e.cluster.Client.AppsV1().Deployments("booksapp").Get(e.ctx, "healthy-v2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].Image = "example/healthy-v2:2"
	if _, err := e.cluster.Client.AppsV1().Deployments("booksapp").Update(e.ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	again := e.rolloutAt("booksapp/healthy", func(s rollout.State) bool { return s.Candidate != healthy.Candidate })
	if again.Phase != rollout.Progressing || again.Step != 0 || again.Weight != 20 {
		t.Errorf("a new candidate: %s at step %d (%d%%), want the first step", again.Phase, again.Step, again.Weight)
	}

	// Rollouts dropped from mesh.cue, mid-rollout: their states, their
	// series and their routes go.
	e.write(defaultMesh(t))
	e.inSync(2 * time.Minute)
	e.until("the rollouts' states and series to go", time.Minute, func() (bool, error) {
		states, err := e.readRolloutStates()
		if err != nil {
			return false, err
		}
		if n := scrape(t, run.loop.MetricsAddr, "meshctl_rollout_phase"); len(states) > 0 || n != 0 {
			return false, fmt.Errorf("%d states, phase series summing to %v", len(states), n)
		}
		return true, nil
	})
	if _, ok := e.route("healthy"); ok {
		t.Error("HTTPRoute booksapp/healthy is still there after its service left mesh.cue")
	}
}

func verdicts(s rollout.State) (fails, passes int) {
	for _, a := range s.History {
		switch a.Verdict {
		case rollout.Fail:
			fails++
		case rollout.Pass:
			passes++
		}
	}
	return fails, passes
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func (e *env) ensureNamespace(name string) {
	e.t.Helper()
	_, err := e.cluster.Client.CoreV1().Namespaces().Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		e.t.Fatal(err)
	}
}

// deployment creates a Deployment, a rollout side's workload.
func (e *env) deployment(ns, name string) {
	e.t.Helper()
	d := meshtest.Deployment(ns, name, "example/"+name+":1")
	if _, err := e.cluster.Client.AppsV1().Deployments(ns).Create(e.ctx, d, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// rolloutStates are every rollout's state, as stored on the server, by
// service: the ConfigMaps labelled plan.RolloutStatesLabel.
func (e *env) rolloutStates() map[string]rollout.State {
	e.t.Helper()
	out, err := e.readRolloutStates()
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) readRolloutStates() (map[string]rollout.State, error) {
	list, err := e.cluster.Client.CoreV1().ConfigMaps(e.client.Namespace()).List(e.ctx, metav1.ListOptions{LabelSelector: plan.RolloutStatesLabel + "=true"})
	if err != nil {
		return nil, err
	}
	out := map[string]rollout.State{}
	for _, cm := range list.Items {
		for k, v := range cm.Data {
			var s rollout.State
			if err := json.Unmarshal([]byte(v), &s); err != nil {
				return nil, fmt.Errorf("%s key %s: %w", cm.Name, k, err)
			}
			out[s.Service] = s
		}
	}
	return out, nil
}

// rolloutState is one rollout's stored state.
func (e *env) rolloutState(service string) rollout.State {
	e.t.Helper()
	s, ok := e.rolloutStates()[service]
	if !ok {
		e.t.Fatalf("no state stored for %s", service)
	}
	return s
}

// rolloutWeights are every rollout's candidate weight, as stored.
func (e *env) rolloutWeights() map[string]int {
	e.t.Helper()
	out := map[string]int{}
	for svc, s := range e.rolloutStates() {
		out[svc] = s.Weight
	}
	return out
}

// rolloutAt waits until service's stored state meets cond and its route
// carries its weights, and returns the state.
func (e *env) rolloutAt(service string, cond func(rollout.State) bool) rollout.State {
	e.t.Helper()
	var s rollout.State
	name := strings.SplitN(service, "/", 2)[1]
	e.until(service+"'s rollout", 3*time.Minute, func() (bool, error) {
		states, err := e.readRolloutStates()
		if err != nil {
			return false, err
		}
		var ok bool
		if s, ok = states[service]; !ok {
			return false, fmt.Errorf("no state for %s", service)
		}
		if !cond(s) {
			return false, fmt.Errorf("%s", s.Summary(time.Now()))
		}
		w := e.routeWeights(name)
		if w[name+"-v2"] != int64(s.Weight) || w[name] != int64(100-s.Weight) {
			return false, fmt.Errorf("route weights %v, rollout at %d", w, s.Weight)
		}
		return true, nil
	})
	return s
}

// routeWeights reads HTTPRoute booksapp/name's backend weights.
func (e *env) routeWeights(name string) map[string]int64 {
	e.t.Helper()
	raw, ok := e.route(name)
	if !ok {
		e.t.Fatalf("HTTPRoute booksapp/%s is missing", name)
	}
	return meshtest.RouteWeights(e.t, []byte(raw))
}

// editRouteWeights changes HTTPRoute booksapp/name's weights as `kubectl
// edit` does: a JSON merge of the whole rules list, by another manager.
func (e *env) editRouteWeights(name string, weights map[string]int64) {
	e.t.Helper()
	raw, _ := e.route(name)
	var obj map[string]any
	if err := json.Unmarshal([]byte(raw), &obj); err != nil {
		e.t.Fatal(err)
	}
	rules := obj["spec"].(map[string]any)["rules"].([]any)
	for _, r := range rules {
		for _, b := range r.(map[string]any)["backendRefs"].([]any) {
			ref := b.(map[string]any)
			ref["weight"] = weights[ref["name"].(string)]
		}
	}
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"rules": rules}})
	if err := e.cluster.Client.Discovery().RESTClient().Patch(types.MergePatchType).
		AbsPath("/apis/policy.linkerd.io/v1beta3/namespaces/booksapp/httproutes", name).
		Param("fieldManager", "kubectl-edit").Body(patch).Do(e.ctx).Error(); err != nil {
		e.t.Fatal(err)
	}
}
