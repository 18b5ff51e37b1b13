package plan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/rollout"
	"github.com/meshctl/meshctl/schema"
)

// The rollout states live in ConfigMaps in the meshctl namespace, labelled
// RolloutStatesLabel: a rollout.State as JSON per service (key
// "namespace.name"), sharded by a hash of the service so that no
// ConfigMap nears the API server's size limit (a state with its recent
// analyses is a few KiB: 1,000 rollouts would not fit one). A restarted
// loop, a new leader and `meshctl rollout` all start from them. They are
// not rendered, so never pruned; a rollout's key goes when mesh.cue drops
// the rollout.
const (
	// RolloutStatesName is the shards' name prefix: meshctl-rollouts-0,
	// meshctl-rollouts-1...
	RolloutStatesName = "meshctl-rollouts"
	// RolloutStatesLabel marks the shards (value "true").
	RolloutStatesLabel = "meshctl.io/rollout-states"
	// RolloutFieldManager writes the rollout states, apart from the field
	// manager that applies mesh.cue.
	RolloutFieldManager = "meshctl-rollout"
	// statesPerShard bounds a shard at about 400 KiB.
	statesPerShard = 100
)

// rolloutKey is a service's key in a shard: a dot cannot occur in a
// namespace or Service name, and a slash cannot occur in a key.
func rolloutKey(service string) string { return strings.Replace(service, "/", ".", 1) }

// storedRollouts are the states as read, and the shards they came from,
// for the write that follows.
type storedRollouts struct {
	states map[string]rollout.State // by service, "namespace/name"
	shards map[string]*corev1.ConfigMap
}

// readRollouts reads the rollout states of the cluster: one LIST. A key
// that does not parse is dropped (its rollout starts over): nothing is
// guessed.
func readRollouts(ctx context.Context, c *apply.Client) (*storedRollouts, error) {
	var list corev1.ConfigMapList
	if err := c.Kube().List(ctx, &list, client.InNamespace(c.Namespace()), client.MatchingLabels{RolloutStatesLabel: "true"}); err != nil {
		return nil, fmt.Errorf("reading the rollout states (ConfigMaps %s/%s-*): %w", c.Namespace(), RolloutStatesName, err)
	}
	out := &storedRollouts{states: map[string]rollout.State{}, shards: map[string]*corev1.ConfigMap{}}
	for i := range list.Items {
		cm := &list.Items[i]
		out.shards[cm.Name] = cm
		for k, v := range cm.Data {
			var s rollout.State
			if json.Unmarshal([]byte(v), &s) != nil || s.Service == "" || rolloutKey(s.Service) != k {
				continue
			}
			out.states[s.Service] = s
		}
	}
	return out, nil
}

// shardOf is the shard of a service among n.
func shardOf(service string, n int) string {
	h := fnv.New32a()
	h.Write([]byte(service))
	return fmt.Sprintf("%s-%d", RolloutStatesName, h.Sum32()%uint32(n))
}

// writeRollouts stores states in place of what was read: each shard that
// changed is updated (a conflict, such as a person's promote while the
// loop judged, is an error, and the next run starts from what won), and
// shards no longer needed go.
func writeRollouts(ctx context.Context, c *apply.Client, read *storedRollouts, states map[string]rollout.State) error {
	n := 1
	for n*statesPerShard < len(states) {
		n *= 2
	}
	want := map[string]map[string]string{}
	for svc, s := range states {
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		name := shardOf(svc, n)
		if want[name] == nil {
			want[name] = map[string]string{}
		}
		want[name][rolloutKey(svc)] = string(b)
	}
	where := fmt.Sprintf("storing the rollout states (ConfigMaps %s/%s-*)", c.Namespace(), RolloutStatesName)
	for _, name := range slices.Sorted(maps.Keys(want)) {
		data := want[name]
		if cm, ok := read.shards[name]; ok {
			if maps.Equal(cm.Data, data) {
				continue
			}
			cm = cm.DeepCopy()
			cm.Data = data
			if err := c.Kube().Update(ctx, cm, client.FieldOwner(RolloutFieldManager)); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			continue
		}
		if err := ensureNamespace(ctx, c); err != nil {
			return err
		}
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.Namespace(),
				Labels: map[string]string{RolloutStatesLabel: "true", "app.kubernetes.io/part-of": "meshctl"}},
			Data: data,
		}
		if err := c.Kube().Create(ctx, cm, client.FieldOwner(RolloutFieldManager)); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(read.shards)) {
		if _, ok := want[name]; ok {
			continue
		}
		cm := read.shards[name]
		if err := c.Kube().Delete(ctx, cm, client.Preconditions{ResourceVersion: &cm.ResourceVersion}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

func ensureNamespace(ctx context.Context, c *apply.Client) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.Namespace()}}
	if err := c.Kube().Create(ctx, ns, client.FieldOwner(RolloutFieldManager)); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", c.Namespace(), err)
	}
	return nil
}

// HasRollouts says whether any service of m declares a rollout.
func HasRollouts(m *schema.Mesh) bool {
	for _, s := range m.Services {
		if s.Rollout != nil {
			return true
		}
	}
	return false
}

// withRolloutWeights is m with each rollout's split at the weights its
// stored state asks for, so that every render (apply, diff, the loop's
// drift correction) writes the rollout's current weights rather than the
// file's starting ones, and applying mesh.cue never undoes a step. A
// rollout without a state, or whose state is for other backends, renders
// the file's split. m is not modified.
func withRolloutWeights(m *schema.Mesh, states map[string]rollout.State) *schema.Mesh {
	var out *schema.Mesh
	for svc, s := range states {
		spec, ok := m.Services[svc]
		if !ok || spec.Rollout == nil || spec.Rollout.From != s.From || spec.Rollout.To != s.To {
			continue
		}
		if out == nil {
			cp := *m
			cp.Services = maps.Clone(m.Services)
			out = &cp
		}
		spec.Split = s.Weights()
		out.Services[svc] = spec
	}
	if out == nil {
		return m
	}
	return out
}

// rolloutWeights reads the stored states and puts their weights into m
// (withRolloutWeights), when m has rollouts: a mesh without one costs no
// request.
func rolloutWeights(ctx context.Context, m *schema.Mesh, c Cluster) (*schema.Mesh, []rollout.State, error) {
	if !HasRollouts(m) || c.Client == nil {
		return m, nil, nil
	}
	read, err := readRollouts(ctx, c.Client)
	if err != nil {
		return nil, nil, err
	}
	var states []rollout.State
	for _, k := range slices.Sorted(maps.Keys(read.states)) {
		if spec, ok := m.Services[k]; ok && spec.Rollout != nil {
			states = append(states, read.states[k])
		}
	}
	return withRolloutWeights(m, read.states), states, nil
}

// RolloutOptions control the rollout verb.
type RolloutOptions struct {
	// Cluster, with a mesh that declares clusters, is the one whose
	// rollouts move; "" moves them in every cluster.
	Cluster string
	// PrometheusURL overrides where the numbers come from for rollouts
	// that do not name their own (rollout.prometheusURL).
	PrometheusURL string
	// HTTP is the client for Prometheus; nil for a default one.
	HTTP *http.Client
	// Now is the clock; nil for time.Now.
	Now func() time.Time
	// Apply, when set, is how the weights reach the routes when one
	// moved: the apply verb with these options (the loop passes its own,
	// the CLI its flags). Nil stores the states only.
	Apply *ApplyOptions
}

// RolloutReport is what the rollout verb found and did.
type RolloutReport struct {
	// Clusters hold each cluster's rollouts, in the fleet's order.
	Clusters []ClusterRollouts
	// Moved says whether a weight changed, and so the routes were (or, with
	// no Apply, must be) applied again.
	Moved bool
	// Applied is the apply that carried the weights, when one ran.
	Applied *ApplyReport
	// Next is when the next analysis falls due anywhere; zero when none
	// will.
	Next time.Time
}

// ClusterRollouts are one cluster's rollouts and what happened to them.
type ClusterRollouts struct {
	Cluster string
	States  []rollout.State
	Events  []rollout.Event
	// Judged are the analyses this run made.
	Judged []Judged
}

// Judged is one analysis of one rollout.
type Judged struct {
	Service string
	rollout.Analysis
}

// Rollouts moves every rollout of the fleet that is due, in one sequence
// for the reconcile loop and `meshctl rollout`: bring each stored state in
// line with mesh.cue and its candidate's pod template (a new candidate
// starts over), read the windows that ended from Prometheus (two queries
// per server and interval, however many rollouts), judge, store the
// states, and when a weight moved, apply the mesh so that the routes carry
// it. Prometheus that does not answer holds the rollouts it serves; it
// never promotes.
func Rollouts(ctx context.Context, m *schema.Mesh, f *Fleet, o RolloutOptions) (*RolloutReport, error) {
	return changeRollouts(ctx, m, f, o, nil)
}

// ErrRolloutEnded is wrapped when a person decides on a rollout that
// has been promoted or rolled back.
var ErrRolloutEnded = errors.New("the rollout has ended")

// RolloutAction is a person's decision on one rollout.
type RolloutAction struct {
	// Service is "namespace/name".
	Service string
	// Promote moves to the next step (Full: to 100%); otherwise the
	// rollout is aborted (rolled back).
	Promote, Full bool
}

// DecideRollout takes a person's decision on one rollout (`meshctl rollout
// promote|abort`), stores it, and applies the weights as Rollouts does.
func DecideRollout(ctx context.Context, m *schema.Mesh, f *Fleet, act RolloutAction, o RolloutOptions) (*RolloutReport, error) {
	if svc, ok := m.Services[act.Service]; !ok || svc.Rollout == nil {
		return nil, fmt.Errorf("%s has no rollout in mesh.cue", act.Service)
	}
	return changeRollouts(ctx, m, f, o, &act)
}

func changeRollouts(ctx context.Context, m *schema.Mesh, f *Fleet, o RolloutOptions, act *RolloutAction) (*RolloutReport, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	policies, err := rollout.Policies(m)
	if err != nil {
		return nil, err
	}
	order, err := f.targets(m, o.Cluster)
	if err != nil {
		return nil, err
	}
	rep := &RolloutReport{}
	for _, name := range order {
		mem, err := f.Member(ctx, name)
		if err != nil {
			return rep, inCluster(name, err)
		}
		cr, moved, err := moveRollouts(ctx, m, mem.Client, policies, o, act, now())
		if err != nil {
			return rep, inCluster(name, err)
		}
		cr.Cluster = name
		rep.Clusters = append(rep.Clusters, cr)
		rep.Moved = rep.Moved || moved
		for _, s := range cr.States {
			if !s.Next.IsZero() && (rep.Next.IsZero() || s.Next.Before(rep.Next)) {
				rep.Next = s.Next
			}
		}
	}
	if rep.Moved && o.Apply != nil {
		ao := *o.Apply
		ao.Cluster = o.Cluster
		rep.Applied, err = Apply(ctx, m, f, ao)
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// moveRollouts runs the rollout verb's steps in one cluster.
func moveRollouts(ctx context.Context, m *schema.Mesh, c *apply.Client, policies []rollout.Policy, o RolloutOptions, act *RolloutAction, now time.Time) (ClusterRollouts, bool, error) {
	var cr ClusterRollouts
	read, err := readRollouts(ctx, c)
	if err != nil {
		return cr, false, err
	}
	candidates, err := candidateIDs(ctx, c, policies)
	if err != nil {
		return cr, false, err
	}
	next := map[string]rollout.State{}
	moved := false
	// Sync first: which rollouts exist, at which step, for which candidate.
	for _, p := range policies {
		var stored *rollout.State
		if s, ok := read.states[p.Service]; ok {
			stored = &s
		}
		s, ev := rollout.Sync(p, stored, candidates[p.Service], now)
		if ev != nil {
			cr.Events = append(cr.Events, *ev)
		}
		if stored == nil || stored.Weight != s.Weight {
			moved = true
		}
		next[p.Service] = s
	}
	for svc := range read.states {
		if _, ok := next[svc]; !ok {
			moved = true // the file's split renders again
		}
	}
	if act != nil {
		p := policyFor(policies, act.Service)
		s := next[act.Service]
		var ev rollout.Event
		if act.Promote {
			s, ev = rollout.Promote(p, s, act.Full, now)
		} else {
			s, ev = rollout.Abort(p, s)
		}
		if ev.Reason == "" {
			return cr, false, fmt.Errorf("%s: %w (%s); a new candidate starts another", act.Service, ErrRolloutEnded, s.Phase)
		}
		moved = moved || s.Weight != next[act.Service].Weight
		next[act.Service] = s
		cr.Events = append(cr.Events, ev)
	} else {
		evs, judged, w := judgeDue(ctx, m, policies, next, o, now)
		cr.Events, cr.Judged = append(cr.Events, evs...), judged
		moved = moved || w
	}
	if err := writeRollouts(ctx, c, read, next); err != nil {
		return cr, false, err
	}
	for _, k := range slices.Sorted(maps.Keys(next)) {
		cr.States = append(cr.States, next[k])
	}
	return cr, moved, nil
}

func policyFor(ps []rollout.Policy, svc string) rollout.Policy {
	for _, p := range ps {
		if p.Service == svc {
			return p
		}
	}
	return rollout.Policy{}
}

// window is a group of rollouts that one pair of queries serves: the same
// server, window length and end.
type window struct {
	url string
	iv  time.Duration
	end time.Time
}

// judgeDue judges every rollout whose analysis is due, grouping the
// queries, and says whether a weight moved.
func judgeDue(ctx context.Context, m *schema.Mesh, policies []rollout.Policy, states map[string]rollout.State, o RolloutOptions, now time.Time) ([]rollout.Event, []Judged, bool) {
	groups := map[window][]rollout.Policy{}
	var order []window
	for _, p := range policies {
		s := states[p.Service]
		if !s.Due(now) {
			continue
		}
		end := s.Next
		if now.Sub(end) > p.Interval {
			// Long overdue (the loop was down): judge the last whole
			// window, not an old one.
			end = now.Truncate(p.Interval)
		}
		k := window{url: prometheusURL(m, p, o), iv: p.Interval, end: end}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], p)
	}
	var events []rollout.Event
	var judged []Judged
	moved := false
	for _, k := range order {
		var samples map[rollout.Workload]rollout.Sample
		var err error
		if k.url == "" {
			err = fmt.Errorf("no Prometheus to ask: enable viz, or set viz.prometheus.externalURL or rollout.prometheusURL")
		} else {
			prom := &rollout.Prometheus{URL: k.url, Client: o.HTTP}
			samples, err = prom.Samples(ctx, k.iv, k.end)
		}
		for _, p := range groups[k] {
			before := states[p.Service]
			s, ev := rollout.Advance(p, before, rollout.WindowFor(p, samples, k.end, err), now)
			states[p.Service] = s
			if ev.Reason != "" {
				events = append(events, ev)
			}
			// A due rollout is Progressing: Advance judged it once.
			if n := len(s.History); n > 0 {
				judged = append(judged, Judged{Service: p.Service, Analysis: s.History[n-1]})
			}
			moved = moved || s.Weight != before.Weight
		}
	}
	return events, judged, moved
}

// prometheusURL is where a rollout's numbers come from: its own URL, the
// caller's, viz's external Prometheus, or viz's own; "" when there is
// none.
func prometheusURL(m *schema.Mesh, p rollout.Policy, o RolloutOptions) string {
	switch {
	case p.PrometheusURL != "":
		return p.PrometheusURL
	case o.PrometheusURL != "":
		return o.PrometheusURL
	case m.Viz.Prometheus.ExternalURL != "":
		return m.Viz.Prometheus.ExternalURL
	case m.Viz.Enabled:
		return fmt.Sprintf("http://prometheus.linkerd-viz.svc.%s:9090", m.Linkerd.ClusterDomain)
	}
	return ""
}

// candidateIDs identify each rollout's candidate: its backend and a hash
// of its Deployment's pod template, so that a new build of the candidate
// starts the analysis over. One LIST of Deployments per namespace.
func candidateIDs(ctx context.Context, c *apply.Client, policies []rollout.Policy) (map[string]string, error) {
	byNS := map[string]map[string]string{}
	out := map[string]string{}
	for _, p := range policies {
		hashes, ok := byNS[p.Namespace]
		if !ok {
			var list appsv1.DeploymentList
			if err := c.Kube().List(ctx, &list, client.InNamespace(p.Namespace)); err != nil {
				return nil, fmt.Errorf("reading the rollouts' Deployments in %s: %w", p.Namespace, err)
			}
			hashes = map[string]string{}
			for _, d := range list.Items {
				b, _ := json.Marshal(d.Spec.Template)
				sum := sha256.Sum256(b)
				hashes[d.Name] = hex.EncodeToString(sum[:6])
			}
			byNS[p.Namespace] = hashes
		}
		h := hashes[p.ToDeployment]
		if h == "" {
			h = "absent"
		}
		out[p.Service] = p.To + "@" + h
	}
	return out, nil
}

// ReadRollouts are the fleet's rollout states as stored, for status and
// `meshctl rollout status`; they change nothing. m may be nil for a fleet
// of one.
func ReadRollouts(ctx context.Context, m *schema.Mesh, f *Fleet, only string) ([]ClusterRollouts, error) {
	order := []string{""}
	if !f.single {
		var err error
		if order, err = f.targets(m, only); err != nil {
			return nil, err
		}
	}
	var out []ClusterRollouts
	for _, name := range order {
		mem, err := f.Member(ctx, name)
		if err != nil {
			return out, inCluster(name, err)
		}
		read, err := readRollouts(ctx, mem.Client)
		if err != nil {
			return out, inCluster(name, err)
		}
		cr := ClusterRollouts{Cluster: name}
		for _, k := range slices.Sorted(maps.Keys(read.states)) {
			cr.States = append(cr.States, read.states[k])
		}
		out = append(out, cr)
	}
	return out, nil
}
