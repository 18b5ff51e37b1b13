package drift_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/ptr"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
	meshschema "github.com/meshctl/meshctl/schema"
)

var (
	soakFor      = flag.Duration("soak.duration", 10*time.Minute, "how long BenchmarkSoak runs (make soak SOAK=1h)")
	soakServices = flag.Int("soak.services", 1000, "services in BenchmarkSoak's mesh, two HTTPRoutes each")
	soakOut      = flag.String("soak.out", "", "also write BenchmarkSoak's summary to this file")
)

// BenchmarkSoak runs two `meshctl reconcile --leader-elect` processes for
// -soak.duration against a throwaway cluster, under load and faults, and
// checks the loop's invariants throughout. It is `make soak`, not part of
// `make test` or `make bench`; its summary goes in BENCHMARKS.md.
//
// The mesh: HA (webhooks set to Ignore: the local cluster's webhooks have
// no endpoints), viz, and -soak.services services in 10 meshed
// namespaces, each with a route and a 90/10 split (two HTTPRoutes): about
// 2,000 objects for 1,000 services.
//
// Load, all the run: three writers that edit fields meshctl owns, delete
// managed objects, add labels under a manager of their own, scale
// Deployments through /scale, and now and then edit one object five times
// at once; a co-owner that server-side applies HTTPRoutes with meshctl's
// own values as kubectl and as another GitOps controller; and a committer
// that writes a new mesh.cue every minute (a service added or removed, a
// weight changed, now and then a broken file).
//
// Faults: kill -9 of the leading loop three times (once while it writes a
// revision that changes 200 objects), two kube-apiserver restarts, one
// etcd restart, and watches closed by the server every 30 to 60 s (the
// loops' proxies drop the timeoutSeconds client-go asks for, and the API
// server runs with --min-request-timeout=30).
//
// Invariants: every edit is corrected (a miss is one not corrected within
// three minutes); other managers' labels and /scale replicas stay; every
// write of the loops is for an object the latest good revision (or the one
// before, while it moves) holds, and every delete for one it dropped; the
// writes per correction stay bounded; the inventory holds every managed
// object at every check, and equals the last good revision at the end;
// `meshctl diff` exits 0 after the last fault; and the resident memory of
// the longest-lived loop at the end is within 20% of what it was after its
// first resync.
func BenchmarkSoak(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "meshctl")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/meshctl").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	for range b.N {
		s := newSoak(b, bin, *soakFor, *soakServices)
		s.run()
		summary := s.summary()
		fmt.Println(summary)
		if *soakOut != "" {
			if err := os.WriteFile(*soakOut, []byte(summary+"\n"), 0o644); err != nil {
				b.Error(err)
			}
		}
		for _, v := range s.violations {
			b.Error(v)
		}
	}
	b.ReportMetric(0, "ns/op")
}

// soak is one run.
type soak struct {
	b        *testing.B
	ctx      context.Context
	stop     context.CancelFunc
	began    time.Time
	length   time.Duration
	bin      string
	services int
	cluster  *testcluster.Cluster
	dyn      dynamic.Interface
	mapper   meta.RESTMapper
	mesh     string // the file the loops read
	inv      *apply.Client

	// kinds maps a resource ("httproutes") to its kind.
	kinds map[string]string

	// stable are the objects no revision changes, which the writers
	// edit; byID all of the first revision's.
	stable []*unstructured.Unstructured
	byID   map[string]*unstructured.Unstructured

	mu         sync.Mutex
	slots      [2]*loopSlot
	revisions  []revision
	edits      []*edit
	busy       map[string]bool // objects with an edit not yet corrected
	others     []otherField
	scaled     map[string]scaled // Deployment ID → what /scale last set
	coOwns     []coOwn
	faults     []*fault
	violations []string
	rss        []rssSample
	rejected   int // edits the API server refused (immutable or invalid)
	nextRev    int
	churned    []int // rev-N services present in the current revision
	weights    map[int]int
	logs       []string // every loop process's log, killed or not
	logOf      map[[2]int]string
	// serverVerbs is the API server's own count of requests by verb,
	// summed over its restarts.
	serverVerbs map[string]float64
	coOwnFailed int
	extras      map[string]bool
	convergedIn time.Duration
}

type loopSlot struct {
	name  string
	proxy *testcluster.Proxy
	r     *reconciler
	gen   int
	// taken is what was taken from the proxy's record so far.
	taken []testcluster.Request
}

// take returns the requests slot i's proxy recorded since the last take,
// and keeps them for the summary.
func (s *soak) take(i int) []testcluster.Request {
	reqs := s.slots[i].proxy.Take()
	s.mu.Lock()
	s.slots[i].taken = append(s.slots[i].taken, reqs...)
	s.mu.Unlock()
	return reqs
}

type revision struct {
	at   time.Time
	what string
	good bool
	ids  map[string]bool
}

type edit struct {
	id, what    string
	path        []string // nil for a delete
	want        any
	uid         types.UID
	at, fixedAt time.Time
	times       int  // edits sent to the object (5 for a burst)
	missed      bool // not corrected within three minutes
	// item is the list item that holds the edited field, as it was. An
	// edit of an item's key (a port's number, a volume mount's path) is,
	// to server-side apply, the rendered item removed and another added:
	// the correction brings the rendered item back, beside the edited one,
	// which stays its editor's.
	item     any
	keptCopy bool // corrected so: the edited item stayed beside it
}

// itemOf returns, for a field inside a list item, that item as it is in
// obj and the list's path; nil when the field is in no list.
func itemOf(obj any, path []string) (item any, list []string) {
	for i := len(path) - 2; i >= 0; i-- {
		if _, err := strconv.Atoi(path[i]); err == nil {
			v, _ := at(obj, path[:i+1])
			return v, path[:i]
		}
	}
	return nil, nil
}

type otherField struct {
	id, label string
	uid       types.UID
}

type scaled struct {
	replicas int64
	uid      types.UID
	at       time.Time
}

type coOwn struct {
	id, manager string
	at          time.Time
}

type fault struct {
	what               string
	at, back, fixedAt  time.Time // injected, API back or new leader, first correction after
	leader, newLeader  string
	writesBeforeKilled int
}

type rssSample struct {
	slot, gen int
	at        time.Time
	mib       float64
}

func newSoak(b *testing.B, bin string, length time.Duration, services int) *soak {
	ctx, stop := context.WithCancel(b.Context())
	b.Cleanup(stop)
	cluster, err := testcluster.Start(ctx, testcluster.Options{APIServerFlags: []string{"--min-request-timeout=30"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cluster.Stop)
	dyn, err := dynamic.NewForConfig(cluster.Config)
	if err != nil {
		b.Fatal(err)
	}
	inv, err := apply.New(cluster.Config, "meshctl")
	if err != nil {
		b.Fatal(err)
	}
	s := &soak{b: b, ctx: ctx, stop: stop, length: length, bin: bin, services: services, cluster: cluster, dyn: dyn, inv: inv,
		mesh: filepath.Join(b.TempDir(), "mesh.cue"), kinds: map[string]string{}, byID: map[string]*unstructured.Unstructured{},
		busy: map[string]bool{}, scaled: map[string]scaled{}, weights: map[int]int{}}
	return s
}

// meshText is the mesh at the current churn: services svc-0…svc-N-1, the
// first 100 with the weights the committer last set, plus rev-K services.
func (s *soak) meshText() string {
	var src strings.Builder
	src.WriteString("controlPlane: {ha: true, webhookFailurePolicy: \"Ignore\"}\nviz: enabled: true\n")
	for i := range 10 {
		fmt.Fprintf(&src, "namespaces: \"soak-%d\": {inject: \"enabled\", create: true}\n", i)
	}
	svc := func(ns int, name string, v1 int) {
		fmt.Fprintf(&src, "services: \"soak-%d/%s\": {port: 8080, routes: [{name: \"GET /items\", method: \"GET\", pathRegex: \"/items(/.*)?\"}], split: {%q: %d, %q: %d}}\n",
			ns, name, name, v1, name+"-v2", 100-v1)
	}
	for i := range s.services {
		w, ok := s.weights[i]
		if !ok {
			w = 90
		}
		svc(i%10, fmt.Sprintf("svc-%d", i), w)
	}
	for _, k := range s.churned {
		svc(k%10, fmt.Sprintf("rev-%d", k), 50)
	}
	return src.String()
}

// churn reports whether an object belongs to what revisions change: the
// first tenth of the services, and the rev-N ones.
func (s *soak) churn(u *unstructured.Unstructured) bool {
	if u.GetKind() != "HTTPRoute" {
		return false
	}
	name := u.GetName()
	if strings.HasPrefix(name, "rev-") {
		return true
	}
	n, err := strconv.Atoi(strings.TrimPrefix(strings.SplitN(name, ".", 2)[0], "svc-"))
	return err == nil && n < s.churned10()
}

func (s *soak) churned10() int { return max(1, s.services/10) }

// render loads text as the loops would and returns its objects by ID.
func (s *soak) render(text string) (map[string]*unstructured.Unstructured, error) {
	path := filepath.Join(s.b.TempDir(), "render.cue")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return nil, err
	}
	m, err := meshschema.Load(path)
	if err != nil {
		return nil, err
	}
	set, err := plan.Offline(m, "soak")
	if err != nil {
		return nil, err
	}
	out := map[string]*unstructured.Unstructured{}
	for _, st := range set.Stages {
		for _, u := range st.Objects {
			out[apply.ID(u)] = u
		}
	}
	return out, nil
}

func (s *soak) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "soak %6s  %s\n", time.Since(s.began).Round(time.Second), fmt.Sprintf(format, args...))
}

func (s *soak) violate(format string, args ...any) {
	msg := fmt.Sprintf("%s: ", time.Since(s.began).Round(time.Second)) + fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.violations = append(s.violations, msg)
	s.mu.Unlock()
	s.logf("VIOLATION %s", msg)
}

func (s *soak) run() {
	s.began = time.Now()
	text := s.meshText()
	objs, err := s.render(text)
	if err != nil {
		s.b.Fatal(err)
	}
	for id, u := range objs {
		s.byID[id] = u
		switch u.GetKind() {
		case "CustomResourceDefinition", "Namespace", "APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
			continue // editing these would break the cluster, not test the loop
		}
		if !s.churn(u) {
			s.stable = append(s.stable, u)
		}
	}
	slices.SortFunc(s.stable, func(a, b *unstructured.Unstructured) int { return strings.Compare(apply.ID(a), apply.ID(b)) })
	s.write(text)
	s.logf("%d objects (%d the writers edit); applying with the CLI", len(objs), len(s.stable))
	out, err := exec.Command(s.bin, "apply", "--kubeconfig="+s.cluster.Kubeconfig, "--meshctl-namespace=meshctl", s.mesh).CombinedOutput()
	if err != nil {
		s.b.Fatalf("meshctl apply: %v\n%s", err, tail(string(out), 20))
	}
	// What every revision holds beside its render: the certificates, the
	// trust roots and the Gateway API CRDs apply adds.
	first, err := s.inv.ReadInventory(s.ctx)
	if err != nil {
		s.b.Fatal(err)
	}
	s.extras = map[string]bool{}
	for _, r := range first.Objects {
		if objs[r.ID()] == nil {
			s.extras[r.ID()] = true
		}
	}
	s.revisions = append(s.revisions, revision{at: time.Now(), what: "initial", good: true, ids: s.withExtras(keys(objs))})
	groups, err := restmapper.GetAPIGroupResources(s.cluster.Client.Discovery())
	if err != nil {
		s.b.Fatal(err)
	}
	s.mapper = restmapper.NewDiscoveryRESTMapper(groups)
	for _, u := range objs {
		if m, err := s.mapper.RESTMapping(u.GroupVersionKind().GroupKind(), u.GroupVersionKind().Version); err == nil {
			s.kinds[m.Resource.Resource] = u.GetKind()
		}
	}

	for i := range s.slots {
		s.slots[i] = &loopSlot{name: fmt.Sprintf("loop-%d", i), proxy: s.cluster.StartProxy(s.b, testcluster.ServerTimesOutWatches())}
		s.startLoop(i)
	}
	s.logf("two loops running; load for %s", s.length)

	var wg sync.WaitGroup
	load, stopLoad := context.WithCancel(s.ctx)
	defer stopLoad()
	for w := range 3 {
		wg.Go(func() { s.writer(load, w) })
	}
	wg.Go(func() { s.coOwner(load) })
	wg.Go(func() { s.committer(load) })
	wg.Go(func() { s.checker(load) })
	wg.Go(func() { s.sampler(load) })
	s.faultsRun()
	// The load goes on after the last fault; then it stops, and what the
	// last good revision says must hold.
	s.until(s.began.Add(s.length * 92 / 100))
	stopLoad()
	wg.Wait()
	s.converge()
	s.countServer()
	for i := range s.slots {
		s.slots[i].r.stop()
	}
}

func (s *soak) withExtras(ids map[string]bool) map[string]bool {
	for id := range s.extras {
		ids[id] = true
	}
	return ids
}

func keys[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// until sleeps until t or the end of the run.
func (s *soak) until(t time.Time) {
	select {
	case <-time.After(time.Until(t)):
	case <-s.ctx.Done():
	}
}

// write replaces the mesh file at once, as git-sync or a ConfigMap volume
// would.
func (s *soak) write(text string) {
	tmp := s.mesh + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		s.b.Fatal(err)
	}
	if err := os.Rename(tmp, s.mesh); err != nil {
		s.b.Fatal(err)
	}
}

func (s *soak) startLoop(i int) {
	sl := s.slots[i]
	s.mu.Lock()
	gen := sl.gen + 1
	s.mu.Unlock()
	r := startReconciler(s.b, s.bin, sl.proxy.Kubeconfig, s.mesh, "--leader-elect", "--interval=1m",
		fmt.Sprintf("--identity=%s-%d", sl.name, gen))
	s.mu.Lock()
	sl.r, sl.gen = r, gen
	s.logs = append(s.logs, r.logf)
	if s.logOf == nil {
		s.logOf = map[[2]int]string{}
	}
	s.logOf[[2]int{i, gen}] = r.logf
	s.mu.Unlock()
}

// leader is the slot whose process holds the Lease, or -1.
func (s *soak) leader() (int, string) {
	lease, err := s.cluster.Client.CoordinationV1().Leases("meshctl").Get(s.ctx, "meshctl-reconciler", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil {
		return -1, ""
	}
	id := *lease.Spec.HolderIdentity
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, sl := range s.slots {
		if id == fmt.Sprintf("%s-%d", sl.name, sl.gen) {
			return i, id
		}
	}
	return -1, id
}

// poll calls cond every 100 ms until it holds or limit passes.
func (s *soak) poll(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) || s.ctx.Err() != nil {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// faultsRun injects the faults at their moments: each within a few percent
// of its place in the run, at random.
func (s *soak) faultsRun() {
	schedule := []struct {
		at   float64
		what string
	}{{0.08, "kill"}, {0.16, "apiserver"}, {0.26, "kill mid-apply"}, {0.36, "etcd"}, {0.46, "kill"}, {0.56, "apiserver"}}
	for _, p := range schedule {
		jitter := time.Duration(rand.Float64() * 0.03 * float64(s.length))
		s.until(s.began.Add(time.Duration(p.at*float64(s.length)) + jitter))
		if s.ctx.Err() != nil {
			return
		}
		f := &fault{what: p.what, at: time.Now()}
		s.logf("fault: %s", p.what)
		switch p.what {
		case "kill", "kill mid-apply":
			s.kill(f, p.what == "kill mid-apply")
		case "apiserver":
			s.countServer() // its counters start again at zero
			if err := s.cluster.RestartAPIServer(s.ctx); err != nil {
				s.b.Fatal(err)
			}
			f.back = time.Now()
		case "etcd":
			if err := s.cluster.RestartEtcd(s.ctx); err != nil {
				s.b.Fatal(err)
			}
			f.back = time.Now()
		}
		// The recovery is measured with a probe: an edit made as soon as
		// the fault is over, and the time until it is corrected.
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
		var e *edit
		for range 10 {
			if e = s.editOnce(rng, "probe"); e != nil {
				break
			}
		}
		if e != nil {
			s.poll(5*time.Minute, func() bool {
				s.mu.Lock()
				defer s.mu.Unlock()
				return !e.fixedAt.IsZero()
			})
			f.fixedAt = e.fixedAt
		}
		s.mu.Lock()
		s.faults = append(s.faults, f)
		s.mu.Unlock()
		s.logf("recovered from %s: back after %s, first correction after %s", p.what, since(f.at, f.back), since(f.at, f.fixedAt))
	}
}

func since(a, b time.Time) string {
	if b.IsZero() {
		return "never"
	}
	return b.Sub(a).Round(10 * time.Millisecond).String()
}

// kill sends SIGKILL to the leading loop; midApply first commits a
// revision that changes 200 HTTPRoutes and waits until the leader has
// written 20 of them. The killed process starts again as a follower once
// another holds the Lease.
func (s *soak) kill(f *fault, midApply bool) {
	var i int
	if !s.poll(2*time.Minute, func() bool { i, f.leader = s.leader(); return i >= 0 }) {
		s.violate("no loop leads before %s", f.what)
		return
	}
	sl := s.slots[i]
	if midApply {
		s.take(i)
		s.commit("big")
		var seen int
		for deadline := time.Now().Add(2 * time.Minute); seen < 5 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			for _, r := range s.take(i) {
				if r.Class == "write" && strings.Contains(r.Path, "/httproutes/svc-") {
					seen++
				}
			}
		}
		f.writesBeforeKilled = seen
	}
	f.at = time.Now()
	_ = sl.r.cmd.Process.Signal(syscall.SIGKILL)
	<-sl.r.exited
	if !s.poll(2*time.Minute, func() bool {
		j, id := s.leader()
		f.newLeader = id
		return j >= 0 && j != i
	}) {
		s.violate("no new leader within 2 minutes of killing %s", f.leader)
	}
	f.back = time.Now()
	s.startLoop(i)
}

// pick returns a stable object no edit is pending on, and marks it busy.
func (s *soak) pick(rng *rand.Rand, kinds ...string) *unstructured.Unstructured {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range 50 {
		u := s.stable[rng.IntN(len(s.stable))]
		if len(kinds) > 0 && !slices.Contains(kinds, u.GetKind()) {
			continue
		}
		if !s.busy[apply.ID(u)] {
			s.busy[apply.ID(u)] = true
			return u
		}
	}
	return nil
}

func (s *soak) release(id string) {
	s.mu.Lock()
	delete(s.busy, id)
	s.mu.Unlock()
}

func (s *soak) resource(u *unstructured.Unstructured) dynamic.ResourceInterface {
	m, err := s.mapper.RESTMapping(u.GroupVersionKind().GroupKind(), u.GroupVersionKind().Version)
	if err != nil {
		s.b.Fatal(err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return s.dyn.Resource(m.Resource).Namespace(u.GetNamespace())
	}
	return s.dyn.Resource(m.Resource)
}

// writer makes a random change every 0.5 to 2.5 s.
func (s *soak) writer(ctx context.Context, n int) {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(time.Now().UnixNano())))
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(500*time.Millisecond + time.Duration(rng.IntN(2000))*time.Millisecond):
		}
		switch x := rng.IntN(100); {
		case x < 45:
			s.editOnce(rng, "edit")
		case x < 55:
			s.editOnce(rng, "burst")
		case x < 70:
			s.deleteOne(rng)
		case x < 85:
			s.addOther(rng, n)
		default:
			s.scale(rng)
		}
	}
}

// leaves lists the paths of an object's scalar fields that the writers
// may edit: not its identity, and not spec.replicas (left to /scale).
func leaves(v any, path []string, out *[][]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			at := append(path[:len(path):len(path)], k)
			if len(path) == 0 && (k == "apiVersion" || k == "kind" || k == "status") ||
				len(path) == 1 && path[0] == "metadata" && (k == "name" || k == "namespace") ||
				len(path) == 1 && path[0] == "spec" && k == "replicas" {
				continue
			}
			leaves(c, at, out)
		}
	case []any:
		for i, c := range x {
			leaves(c, append(path[:len(path):len(path)], strconv.Itoa(i)), out)
		}
	case string, int64, float64, bool:
		*out = append(*out, path)
	}
}

func pointer(path []string) string {
	var b strings.Builder
	for _, p := range path {
		b.WriteString("/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(p))
	}
	return b.String()
}

func at(v any, path []string) (any, bool) {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			c, ok := x[p]
			if !ok {
				return nil, false
			}
			v = c
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func tampered(v any, path []string, n int) any {
	switch x := v.(type) {
	case string:
		if len(path) > 0 && path[0] == "data" {
			return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("soak %d", n)))
		}
		return fmt.Sprintf("%s-soak%d", x, n)
	case int64:
		return x + int64(n)
	case float64:
		return x + float64(n)
	case bool:
		return !x
	}
	return v
}

// editOnce changes one field meshctl owns in a stable object (five times
// in a row for a burst) and records the edit; it returns nil when the
// server refused every field it tried.
func (s *soak) editOnce(rng *rand.Rand, what string) *edit {
	u := s.pick(rng)
	if u == nil {
		return nil
	}
	id := apply.ID(u)
	var paths [][]string
	leaves(u.Object, nil, &paths)
	rng.Shuffle(len(paths), func(i, j int) { paths[i], paths[j] = paths[j], paths[i] })
	res := s.resource(u)
	for _, path := range paths[:min(len(paths), 5)] {
		live, err := res.Get(s.ctx, u.GetName(), metav1.GetOptions{})
		if err != nil {
			break
		}
		want, ok := at(live.Object, path)
		if !ok {
			continue
		}
		e := &edit{id: id, what: what, path: path, want: want, uid: live.GetUID(), times: 1}
		if item, list := itemOf(live.Object, path); list != nil {
			e.item = item
		}
		if what == "burst" {
			e.times = 5
		}
		sent := 0
		for k := range e.times {
			patch, _ := json.Marshal([]map[string]any{{"op": "replace", "path": pointer(path), "value": tampered(want, path, k+1)}})
			_, err := res.Patch(s.ctx, u.GetName(), types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: "soak-intruder"})
			if err != nil {
				break
			}
			if sent == 0 {
				e.at = time.Now()
			}
			sent++
		}
		if sent == 0 {
			s.mu.Lock()
			s.rejected++
			s.mu.Unlock()
			continue
		}
		e.times = sent
		s.mu.Lock()
		s.edits = append(s.edits, e)
		s.mu.Unlock()
		return e
	}
	s.release(id)
	return nil
}

// deleteOne deletes a stable object; the edit is corrected when it is
// back.
func (s *soak) deleteOne(rng *rand.Rand) {
	u := s.pick(rng)
	if u == nil {
		return
	}
	id := apply.ID(u)
	live, err := s.resource(u).Get(s.ctx, u.GetName(), metav1.GetOptions{})
	if err == nil {
		err = s.resource(u).Delete(s.ctx, u.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptr.To(live.GetUID())}})
	}
	if err != nil {
		s.release(id)
		return
	}
	s.mu.Lock()
	s.edits = append(s.edits, &edit{id: id, what: "delete", uid: live.GetUID(), at: time.Now(), times: 1})
	delete(s.scaled, id)
	s.mu.Unlock()
}

// addOther adds a label under a manager of the writer's own; it must stay.
func (s *soak) addOther(rng *rand.Rand, n int) {
	u := s.pick(rng)
	if u == nil {
		return
	}
	id := apply.ID(u)
	defer s.release(id)
	label := fmt.Sprintf("soak.example/writer-%d", n)
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"%d"}}}`, label, rng.IntN(1000))
	live, err := s.resource(u).Patch(s.ctx, u.GetName(), types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: fmt.Sprintf("soak-other-%d", n)})
	if err != nil {
		return
	}
	s.mu.Lock()
	s.others = append(s.others, otherField{id: id, label: label, uid: live.GetUID()})
	s.mu.Unlock()
}

// scale sets a Deployment's replicas through /scale as an autoscaler
// would; meshctl must leave them.
func (s *soak) scale(rng *rand.Rand) {
	u := s.pick(rng, "Deployment")
	if u == nil {
		return
	}
	id := apply.ID(u)
	defer s.release(id)
	n := int64(1 + rng.IntN(6))
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, n)
	_, err := s.resource(u).Patch(s.ctx, u.GetName(), types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "soak-scaler"}, "scale")
	if err != nil {
		return
	}
	live, err := s.resource(u).Get(s.ctx, u.GetName(), metav1.GetOptions{})
	if err != nil {
		return
	}
	s.mu.Lock()
	s.scaled[id] = scaled{replicas: n, uid: live.GetUID(), at: time.Now()}
	s.mu.Unlock()
}

// coOwner server-side applies a stable HTTPRoute with meshctl's values
// every second, as kubectl or as another GitOps controller.
func (s *soak) coOwner(ctx context.Context) {
	rng := rand.New(rand.NewPCG(99, uint64(time.Now().UnixNano())))
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		u := s.pick(rng, "HTTPRoute")
		if u == nil {
			continue
		}
		manager := []string{"kubectl", "argocd-controller"}[rng.IntN(2)]
		// The values meshctl owns as the server holds them: the render's
		// rules without the defaults the server fills in would conflict
		// with meshctl's (an atomic list compared whole), which no
		// co-owner that means the same values sends.
		live, err := s.resource(u).Get(s.ctx, u.GetName(), metav1.GetOptions{})
		if err != nil {
			s.release(apply.ID(u))
			continue
		}
		raw, _ := json.Marshal(map[string]any{"apiVersion": u.GetAPIVersion(), "kind": u.GetKind(),
			"metadata": map[string]any{"name": u.GetName(), "namespace": u.GetNamespace(), "labels": u.GetLabels()},
			"spec":     live.Object["spec"]})
		_, err = s.resource(u).Patch(s.ctx, u.GetName(), types.ApplyPatchType, raw, metav1.PatchOptions{FieldManager: manager})
		if err != nil {
			s.mu.Lock()
			s.coOwnFailed++
			if s.coOwnFailed == 1 {
				s.logf("co-owner %s: %v", manager, err)
			}
			s.mu.Unlock()
			s.release(apply.ID(u))
			continue
		}
		s.mu.Lock()
		s.coOwns = append(s.coOwns, coOwn{id: apply.ID(u), manager: manager, at: time.Now()})
		s.mu.Unlock()
		// Busy for the 10 s in which the loops' writes to it are counted
		// as the co-owner's cost.
		time.AfterFunc(10*time.Second, func() { s.release(apply.ID(u)) })
	}
}

// committer writes a new revision every minute.
func (s *soak) committer(ctx context.Context) {
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Minute):
		}
		s.mu.Lock()
		lastBroken := !s.revisions[len(s.revisions)-1].good
		s.mu.Unlock()
		switch x := rng.IntN(10); {
		case x < 2 && !lastBroken:
			s.commit("broken")
		case x < 5:
			s.commit("add")
		case x < 7:
			s.commit("remove")
		default:
			s.commit("weight")
		}
	}
}

var commitMu sync.Mutex

// commit writes a revision: "add" a service, "remove" the oldest added,
// change one "weight", a "big" change of 100 services' weights, or a
// "broken" file.
func (s *soak) commit(what string) {
	commitMu.Lock()
	defer commitMu.Unlock()
	s.mu.Lock()
	switch what {
	case "add":
		s.nextRev++
		s.churned = append(s.churned, s.nextRev)
	case "remove":
		if len(s.churned) == 0 {
			s.nextRev++
			s.churned = append(s.churned, s.nextRev)
			what = "add"
		} else {
			s.churned = s.churned[1:]
		}
	case "weight":
		s.weights[rand.IntN(s.churned10())] = 1 + rand.IntN(99)
	case "big":
		w := 1 + rand.IntN(99)
		for i := range s.churned10() {
			s.weights[i] = w
		}
	}
	text := s.meshText()
	s.mu.Unlock()
	rev := revision{what: what, good: what != "broken"}
	if rev.good {
		objs, err := s.render(text)
		if err != nil {
			s.b.Fatal(err)
		}
		rev.ids = s.withExtras(keys(objs))
	} else {
		text += "services: \"soak-0/broken\": {port: 8080\n" // unclosed
	}
	s.write(text)
	rev.at = time.Now()
	s.mu.Lock()
	s.revisions = append(s.revisions, rev)
	s.mu.Unlock()
	s.logf("revision %d: %s", len(s.revisions)-1, what)
}

// checker looks at every pending edit every 100 ms, and at the fields of
// other managers and /scale every 5 s.
func (s *soak) checker(ctx context.Context) {
	last := time.Now()
	for ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		s.checkEdits()
		if time.Since(last) > 30*time.Second {
			last = time.Now()
			s.checkOthers(false)
			s.checkInventory()
		}
	}
}

func (s *soak) checkEdits() {
	s.mu.Lock()
	var pending []*edit
	for _, e := range s.edits {
		if e.fixedAt.IsZero() && !e.missed {
			pending = append(pending, e)
		}
	}
	s.mu.Unlock()
	for _, e := range pending {
		u := s.byID[e.id]
		live, err := s.resource(u).Get(s.ctx, u.GetName(), metav1.GetOptions{})
		if err != nil {
			continue
		}
		fixed, kept := false, false
		switch {
		case e.path == nil || live.GetUID() != e.uid:
			fixed = live.GetUID() != e.uid
		case e.item != nil:
			// The item as it was is back in its list, in place or (the
			// key edited) beside the edited one.
			_, listPath := itemOf(live.Object, e.path)
			items, _ := at(live.Object, listPath)
			l, _ := items.([]any)
			for j, it := range l {
				if equalValues(it, e.item) {
					fixed, kept = true, strconv.Itoa(j) != e.path[len(listPath)]
				}
			}
		default:
			v, ok := at(live.Object, e.path)
			fixed = ok && equalValues(v, e.want)
		}
		if fixed {
			s.mu.Lock()
			e.fixedAt, e.keptCopy = time.Now(), kept
			s.mu.Unlock()
			// Busy a little longer: the loops' writes to it until then
			// are counted as this correction's.
			time.AfterFunc(3*time.Second, func() { s.release(e.id) })
		} else if time.Since(e.at) > 3*time.Minute {
			s.violate("%s of %s at %s not corrected within 3 minutes", e.what, e.id, pointer(e.path))
			s.mu.Lock()
			e.missed = true
			s.mu.Unlock()
		}
	}
}

func equalValues(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// checkOthers: labels of other managers and replicas set through /scale
// are still there, on the same object: the last 100 labels, or all of
// them.
func (s *soak) checkOthers(all bool) {
	s.mu.Lock()
	others := slices.Clone(s.others)
	if !all {
		others = others[max(0, len(others)-100):]
	}
	sc := make(map[string]scaled, len(s.scaled))
	for k, v := range s.scaled {
		sc[k] = v
	}
	s.mu.Unlock()
	for _, o := range others {
		u := s.byID[o.id]
		live, err := s.resource(u).Get(s.ctx, u.GetName(), metav1.GetOptions{})
		if err != nil || live.GetUID() != o.uid {
			continue // deleted by a writer since: the label went with it
		}
		if _, ok := live.GetLabels()[o.label]; !ok {
			s.violate("label %s of another manager removed from %s", o.label, o.id)
		}
	}
	for id, want := range sc {
		u := s.byID[id]
		live, err := s.resource(u).Get(s.ctx, u.GetName(), metav1.GetOptions{})
		if err != nil || live.GetUID() != want.uid {
			continue
		}
		s.mu.Lock()
		now := s.scaled[id]
		s.mu.Unlock()
		got, _, _ := unstructured.NestedInt64(live.Object, "spec", "replicas")
		if now.at.Equal(want.at) && got != want.replicas {
			s.violate("%s: replicas %d set through /scale reverted to %d", id, want.replicas, got)
			s.mu.Lock()
			delete(s.scaled, id)
			s.mu.Unlock()
		}
	}
}

// checkInventory: every object the cluster holds with meshctl's label is
// in the inventory (finished or pending), whatever the loops are doing.
func (s *soak) checkInventory() {
	inv, err := s.inv.ReadInventory(s.ctx)
	if err != nil || inv == nil {
		return
	}
	known := map[string]bool{}
	for _, r := range append(slices.Clone(inv.Objects), inv.Pending...) {
		known[r.ID()] = true
	}
	live, err := s.managed()
	if err != nil {
		return
	}
	for id := range live {
		if strings.HasPrefix(id, "Namespace/meshctl") || strings.Contains(id, "/meshctl/") {
			continue // meshctl's own records: the inventory and the keys
		}
		if !known[id] {
			// Read again: the loop may have committed since.
			if inv2, err := s.inv.ReadInventory(s.ctx); err == nil && inv2 != nil {
				found := false
				for _, r := range append(slices.Clone(inv2.Objects), inv2.Pending...) {
					found = found || r.ID() == id
				}
				if found {
					continue
				}
			}
			s.violate("%s is in the cluster with meshctl's label but not in the inventory", id)
		}
	}
}

// managed lists the objects of the render's kinds that carry meshctl's
// label, by ID.
func (s *soak) managed() (map[string]bool, error) {
	out := map[string]bool{}
	seen := map[schema.GroupVersionKind]bool{}
	for _, u := range s.byID {
		gvk := u.GroupVersionKind()
		if seen[gvk] {
			continue
		}
		seen[gvk] = true
		m, err := s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return nil, err
		}
		list, err := s.dyn.Resource(m.Resource).List(s.ctx, metav1.ListOptions{LabelSelector: apply.LabelManagedBy + "=" + apply.ManagedByMeshctl})
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			item := &list.Items[i]
			item.SetKind(gvk.Kind)
			item.SetAPIVersion(gvk.GroupVersion().String())
			if item.GetDeletionTimestamp() == nil {
				out[apply.ID(item)] = true
			}
		}
	}
	return out, nil
}

// sampler records each loop's resident memory every 5 s.
func (s *soak) sampler(ctx context.Context) {
	for ctx.Err() == nil {
		for i, sl := range s.slots {
			s.mu.Lock()
			r, gen := sl.r, sl.gen
			s.mu.Unlock()
			if mib, err := rssOf(r.cmd.Process.Pid); err == nil {
				s.mu.Lock()
				s.rss = append(s.rss, rssSample{slot: i, gen: gen, at: time.Now(), mib: mib})
				s.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
}

func rssOf(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// converge waits, after the load, until every edit is corrected and
// `meshctl diff` of the last good revision exits 0, and checks that the
// inventory is that revision.
func (s *soak) converge() {
	began := time.Now()
	s.poll(3*time.Minute, func() bool {
		s.checkEdits()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, e := range s.edits {
			if e.fixedAt.IsZero() && !e.missed {
				return false
			}
		}
		return true
	})
	s.checkOthers(true)
	// The last revision may be broken: the loops keep the last good one,
	// and so does the file the diff reads.
	s.mu.Lock()
	var good revision
	for _, r := range s.revisions {
		if r.good {
			good = r
		}
	}
	text := s.meshText()
	s.mu.Unlock()
	final := filepath.Join(s.b.TempDir(), "final.cue")
	if err := os.WriteFile(final, []byte(text), 0o644); err != nil {
		s.b.Fatal(err)
	}
	var out []byte
	ok := s.poll(5*time.Minute, func() bool {
		var err error
		out, err = exec.Command(s.bin, "diff", "--kubeconfig="+s.cluster.Kubeconfig, "--meshctl-namespace=meshctl", final).CombinedOutput()
		return err == nil
	})
	s.convergedIn = time.Since(began)
	if !ok {
		s.violate("meshctl diff of the last good revision does not exit 0 after the last fault:\n%s", tail(string(out), 20))
	}
	inv, err := s.inv.ReadInventory(s.ctx)
	if err != nil || inv == nil {
		s.violate("reading the inventory: %v", err)
		return
	}
	have := map[string]bool{}
	for _, r := range inv.Objects {
		have[r.ID()] = true
	}
	if len(inv.Pending) > 0 {
		s.violate("the inventory has %d pending objects at the end", len(inv.Pending))
	}
	for id := range good.ids {
		if !have[id] {
			s.violate("%s is in the last good revision but not in the inventory", id)
		}
	}
	for id := range have {
		if !good.ids[id] {
			s.violate("%s is in the inventory but not in the last good revision", id)
		}
	}
	live, err := s.managed()
	if err == nil {
		for id := range live {
			if !good.ids[id] && !strings.HasPrefix(id, "Namespace/meshctl") && !strings.Contains(id, "/meshctl/") {
				s.violate("%s is in the cluster but not in the last good revision", id)
			}
		}
	}
}

// countServer adds the API server's count of requests by verb (all
// clients: the loops, the writers, the soak's checks) to serverVerbs.
func (s *soak) countServer() {
	raw, err := s.cluster.Client.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(s.ctx)
	if err != nil {
		s.logf("reading the API server's metrics: %v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serverVerbs == nil {
		s.serverVerbs = map[string]float64{}
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		_, rest, _ := strings.Cut(line, `verb="`)
		verb, _, _ := strings.Cut(rest, `"`)
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil && verb != "" {
			s.serverVerbs[verb] += v
		}
	}
}

// duringFault reports whether [from, to] meets a fault's window: from its
// injection to the first correction after it.
func (s *soak) duringFault(from, to time.Time) bool {
	for _, f := range s.faults {
		end := f.fixedAt
		if end.IsZero() {
			end = f.back
		}
		if !to.Before(f.at) && !from.After(end) {
			return true
		}
	}
	return false
}

// loopWrite is one write a loop sent, from its proxy's record.
type loopWrite struct {
	slot   int
	at     time.Time
	method string
	id     string // Kind/ns/name, or "" for what no render holds
}

// objectOf maps a request path to the ID of the object it writes, or ""
// for what no render holds (Events, the Lease).
func (s *soak) objectOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) < 3 {
		return ""
	}
	rest := parts[2:]
	if parts[0] == "apis" {
		rest = parts[3:]
	}
	ns := ""
	if len(rest) > 2 && rest[0] == "namespaces" {
		ns, rest = rest[1], rest[2:]
	}
	if len(rest) < 2 {
		return ""
	}
	kind, ok := s.kinds[rest[0]]
	if !ok {
		return ""
	}
	if ns == "" {
		return kind + "/" + rest[1]
	}
	return kind + "/" + ns + "/" + rest[1]
}

// summary checks what the records show and writes the report.
func (s *soak) summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	host, _ := os.Hostname()
	p("### Soak: %s, %s", s.length, time.Now().UTC().Format("2006-01-02"))
	p("")
	p("Machine: %s, %d CPUs. Mesh: %d objects (HA, viz, %d services with a route and a split), two loops with --leader-elect and --interval=1m.", host, cpus(), len(s.revisions[0].ids), s.services)
	p("")

	// Requests by verb, per loop slot, from the proxies.
	var writes []loopWrite
	verbs := map[string]int{}
	refused := 0
	for i := range s.slots {
		s.mu.Unlock()
		s.take(i)
		s.mu.Lock()
		for _, r := range s.slots[i].taken {
			verb := r.Class
			if r.Class == "write" {
				verb = r.Method
			}
			verbs[verb]++
			if r.Class == "write" && r.Status >= 300 {
				// Refused (a guarded patch whose object moved on, a
				// conflict, the API server going away): no write.
				refused++
				continue
			}
			if r.Class == "write" {
				id := s.objectOf(r.Path)
				writes = append(writes, loopWrite{slot: i, at: r.At, method: r.Method, id: id})
			}
		}
	}
	slices.SortFunc(writes, func(a, b loopWrite) int { return a.at.Compare(b.at) })

	// Every write is for an object the latest good revision, or the one
	// before, holds; every delete for one it dropped.
	goodAt := func(t time.Time) (cur, prev map[string]bool) {
		for _, r := range s.revisions {
			if r.at.After(t) {
				break
			}
			if r.good {
				prev, cur = cur, r.ids
			}
		}
		return cur, prev
	}
	for _, w := range writes {
		if w.id == "" || strings.Contains(w.id, "/meshctl/") {
			continue // the inventory, the Lease, Events, the status
		}
		cur, prev := goodAt(w.at)
		switch w.method {
		case "DELETE":
			if cur[w.id] && (prev == nil || prev[w.id]) {
				s.violations = append(s.violations, fmt.Sprintf("%s: a loop deleted %s, which the current revision holds", w.at.Sub(s.began).Round(time.Second), w.id))
			}
		default:
			if !cur[w.id] && !prev[w.id] {
				s.violations = append(s.violations, fmt.Sprintf("%s: a loop wrote %s, which no recent good revision holds", w.at.Sub(s.began).Round(time.Second), w.id))
			}
		}
	}

	// Edits and corrections.
	var lat, quiet []time.Duration
	missed, byWhat := 0, map[string]int{}
	var perFix []int
	writesTo := func(id string, from, to time.Time) int {
		n := 0
		for _, w := range writes {
			if w.id == id && !w.at.Before(from) && !w.at.After(to) {
				n++
			}
		}
		return n
	}
	maxPer, sumPer, keyEdits := 0, 0, 0
	for _, e := range s.edits {
		byWhat[e.what]++
		if e.keptCopy {
			keyEdits++
		}
		if e.fixedAt.IsZero() {
			missed++
			continue
		}
		lat = append(lat, e.fixedAt.Sub(e.at))
		if !s.duringFault(e.at, e.fixedAt) {
			quiet = append(quiet, e.fixedAt.Sub(e.at))
		}
		n := writesTo(e.id, e.at, e.fixedAt.Add(2*time.Second))
		perFix = append(perFix, n)
		maxPer = max(maxPer, n)
		sumPer += n
		// One apply per edit; an edit whose correction the server refuses
		// (an item's key edited into a duplicate) adds a repair and the
		// apply that folds the repair's fields into meshctl's.
		if n > e.times+2 {
			s.violations = append(s.violations, fmt.Sprintf("%s: %d writes to correct %d edits of %s", e.at.Sub(s.began).Round(time.Second), n, e.times, e.id))
		}
	}
	slices.Sort(lat)
	slices.Sort(quiet)
	pctOf := func(lat []time.Duration, q float64) string {
		if len(lat) == 0 {
			return "-"
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*q))].Round(time.Millisecond).String()
	}
	pct := func(q float64) string { return pctOf(lat, q) }
	p("| edits made | corrected | missed | p50 | p99 | max | writes per correction (mean, max) | edits the server refused |")
	p("|---|---|---|---|---|---|---|---|")
	p("| %d (%d edits, %d bursts of 5, %d deletes, %d probes) | %d | %d | %s | %s | %s | %.2f, %d | %d |",
		len(s.edits), byWhat["edit"], byWhat["burst"], byWhat["delete"], byWhat["probe"], len(lat), missed, pct(0.5), pct(0.99), pct(1), float64(sumPer)/float64(max(1, len(perFix))), maxPer, s.rejected)
	p("")
	p("- Outside the faults (edits neither made nor corrected while a fault was being recovered from): %d corrections, p50 %s, p99 %s, max %s.", len(quiet), pctOf(quiet, 0.5), pctOf(quiet, 0.99), pctOf(quiet, 1))
	p("- %d of the corrected edits changed a list item's key (a port number, a mount path): the rendered item came back beside the edited copy, which server-side apply leaves to its editor.", keyEdits)

	// Co-owners: kubectl's entries cost one write each, another tool's none.
	cost := map[string][]int{}
	for _, c := range s.coOwns {
		cost[c.manager] = append(cost[c.manager], writesTo(c.id, c.at, c.at.Add(10*time.Second)))
	}
	for _, m := range []string{"kubectl", "argocd-controller"} {
		sum, most := 0, 0
		for _, n := range cost[m] {
			sum += n
			most = max(most, n)
		}
		bound := map[string]int{"kubectl": 1, "argocd-controller": 0}[m]
		if most > bound {
			s.violations = append(s.violations, fmt.Sprintf("a co-owner %s's apply cost up to %d loop writes (at most %d allowed)", m, most, bound))
		}
		p("- Co-owner %s: %d server-side applies of meshctl's values; loop writes within 10 s: %d in all, at most %d for one.", m, len(cost[m]), sum, most)
	}
	p("- Labels of other managers added: %d; /scale writes kept: %d Deployments scaled at the end. None reverted unless listed below.", len(s.others), len(s.scaled))
	good, broken := 0, 0
	for _, r := range s.revisions[1:] {
		if r.good {
			good++
		} else {
			broken++
		}
	}
	p("- Revisions committed: %d good, %d broken (nothing pruned on their strength).", good, broken)
	p("- Converged after the load stopped: `meshctl diff` exit 0 in %s.", s.convergedIn.Round(100*time.Millisecond))
	p("")
	p("| fault | at | back (new leader / API ready) | first correction after | notes |")
	p("|---|---|---|---|---|")
	for _, f := range s.faults {
		note := ""
		switch {
		case f.writesBeforeKilled > 0:
			note = fmt.Sprintf("killed %s after %d of a revision's %d writes; %s took over", f.leader, f.writesBeforeKilled, 2*s.churned10(), f.newLeader)
		case strings.HasPrefix(f.what, "kill"):
			note = fmt.Sprintf("killed %s; %s took over", f.leader, f.newLeader)
		}
		p("| %s | %s | %s | %s | %s |", f.what, f.at.Sub(s.began).Round(time.Second), since(f.at, f.back), since(f.at, f.fixedAt), note)
	}
	p("")
	verbList := []string{"list", "watch", "get", "discovery", "dryrun", "PATCH", "POST", "PUT", "DELETE"}
	var vs []string
	for _, v := range verbList {
		vs = append(vs, fmt.Sprintf("%s %d", v, verbs[v]))
	}
	p("- The loops' requests by verb (both processes, all generations, at their proxies): %s. Of the writes, %d were refused (the guard of a takeover or repair whose object had moved on, or the API server going away) and are not counted as writes above.", strings.Join(vs, ", "), refused)
	var sv []string
	for _, v := range slices.Sorted(maps.Keys(s.serverVerbs)) {
		sv = append(sv, fmt.Sprintf("%s %.0f", v, s.serverVerbs[v]))
	}
	p("- The API server's requests by verb (apiserver_request_total, every client, summed over its restarts): %s.", strings.Join(sv, ", "))
	p("- The loops' logs, warnings and errors by message: %s.", s.logStats())
	p("")
	p("%s", s.rssReport())
	return b.String()
}

// logStats counts the warnings and errors in every loop process's log by
// message; a recovered panic is a violation.
func (s *soak) logStats() string {
	n, first := map[string]int{}, map[string]string{}
	for _, logf := range s.logs {
		f, err := os.Open(logf)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct {
				Level, Msg, Error string
			}
			if json.Unmarshal(sc.Bytes(), &line) != nil || line.Level != "WARN" && line.Level != "ERROR" {
				continue
			}
			// Messages that differ only in a revision are one message.
			m := line.Level + " " + revisionID.ReplaceAllString(line.Msg, "sha256:…")
			n[m]++
			if _, ok := first[m]; !ok && line.Error != "" {
				first[m] = abbreviated(revisionID.ReplaceAllString(line.Error, "sha256:…"), 200)
			}
			if strings.Contains(line.Msg, "panic") {
				s.violations = append(s.violations, fmt.Sprintf("%s: %s", logf, sc.Text()))
			}
		}
		f.Close()
	}
	if len(n) == 0 {
		return "none"
	}
	var out []string
	for m, k := range n {
		entry := fmt.Sprintf("%q ×%d", m, k)
		if e := first[m]; e != "" {
			entry += fmt.Sprintf(" (the first: %q)", e)
		}
		out = append(out, entry)
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// revisionID is a revision in a log message.
var revisionID = regexp.MustCompile(`sha256:[0-9a-f]{64}`)

// abbreviated is s cut to at most n bytes, marked when cut.
func abbreviated(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func cpus() int {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(raw), "processor\t:")
}

// rssReport lists resident memory over time for each loop process, and
// checks each one that resynced as leader and ran 90 s more: at its end
// within 20% of what it was after its first resync.
func (s *soak) rssReport() string {
	procs := map[[2]int][]rssSample{}
	for _, x := range s.rss {
		k := [2]int{x.slot, x.gen}
		procs[k] = append(procs[k], x)
	}
	var lines []string
	judged := 0
	for _, k := range slices.SortedFunc(maps.Keys(procs), func(a, b [2]int) int { return a[0]*1000 + a[1] - b[0]*1000 - b[1] }) {
		samples := procs[k]
		var pts []string
		step := max(1, len(samples)/8)
		for i := 0; i < len(samples)-1; i += step {
			pts = append(pts, fmt.Sprintf("%s %.0f", samples[i].at.Sub(s.began).Round(time.Second), samples[i].mib))
		}
		end := samples[len(samples)-1]
		pts = append(pts, fmt.Sprintf("%s %.0f", end.at.Sub(s.began).Round(time.Second), end.mib))
		line := fmt.Sprintf("- loop-%d-%d, MiB at run time: %s", k[0], k[1], strings.Join(pts, ", "))
		t, resynced := firstResync(s.logOf[k])
		var base *rssSample
		for i := range samples {
			if resynced && !samples[i].at.Before(t) {
				base = &samples[i]
				break
			}
		}
		switch {
		case base == nil:
			line += "; it never resynced as leader"
		case end.at.Sub(base.at) < 90*time.Second:
			line += fmt.Sprintf("; first resync at %s, too near its end to judge", base.at.Sub(s.began).Round(time.Second))
		default:
			judged++
			verdict := "within 20%"
			if end.mib > base.mib*1.2 {
				verdict = "MORE than 20% above"
				s.violations = append(s.violations, fmt.Sprintf("loop-%d-%d: RSS %.0f MiB at the end, %.0f MiB after its first resync", k[0], k[1], end.mib, base.mib))
			}
			line += fmt.Sprintf("; %.0f MiB after its first resync (at %s), %.0f MiB at its end: %s", base.mib, base.at.Sub(s.began).Round(time.Second), end.mib, verdict)
		}
		lines = append(lines, line+".")
	}
	if judged == 0 {
		s.violations = append(s.violations, "no loop ran 90 s past its first resync as leader: memory not judged")
	}
	return strings.Join(lines, "\n")
}

// firstResync is when a loop's JSON log first says it applied at a
// resync.
func firstResync(logf string) (time.Time, bool) {
	if logf == "" {
		return time.Time{}, false
	}
	f, err := os.Open(logf)
	if err != nil {
		return time.Time{}, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Time    time.Time `json:"time"`
			Msg     string    `json:"msg"`
			Trigger string    `json:"trigger"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "applied" && line.Trigger == "resync" {
			return line.Time, true
		}
	}
	return time.Time{}, false
}

// TestSoakObjectOf: the soak names the object a loop's write is for from
// its path, as the inventory names it.
func TestSoakObjectOf(t *testing.T) {
	s := &soak{kinds: map[string]string{"httproutes": "HTTPRoute", "clusterroles": "ClusterRole", "configmaps": "ConfigMap"}}
	for path, want := range map[string]string{
		"/apis/policy.linkerd.io/v1beta3/namespaces/soak-1/httproutes/svc-7.get-items": "HTTPRoute/soak-1/svc-7.get-items",
		"/apis/rbac.authorization.k8s.io/v1/clusterroles/linkerd-destination":          "ClusterRole/linkerd-destination",
		"/api/v1/namespaces/linkerd/configmaps/linkerd-config":                         "ConfigMap/linkerd/linkerd-config",
		"/api/v1/namespaces/meshctl/events":                                            "",
		"/apis/coordination.k8s.io/v1/namespaces/meshctl/leases/meshctl-reconciler":    "",
		"/apis/policy.linkerd.io/v1beta3":                                              "",
		"/api":                                                                         "",
	} {
		if got := s.objectOf(path); got != want {
			t.Errorf("objectOf(%s) = %q, want %q", path, got, want)
		}
	}
}

// TestSoakLogStats: the summary groups warnings and errors by message,
// a revision's hash aside, with the first error of each, and counts a
// panic as a violation.
func TestSoakLogStats(t *testing.T) {
	rev := func(c string) string { return "sha256:" + strings.Repeat(c, 64) }
	lines := []string{
		`{"level":"INFO","msg":"applied"}`,
		`{"level":"ERROR","msg":"applying revision ` + rev("a") + `","error":"Patch \"https://127.0.0.1/x\": connection refused"}`,
		`{"level":"ERROR","msg":"applying revision ` + rev("b") + `","error":"later"}`,
		`{"level":"WARN","msg":"recording status"}`,
		`{"level":"ERROR","msg":"panic in correct"}`,
	}
	logf := filepath.Join(t.TempDir(), "loop.log")
	if err := os.WriteFile(logf, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &soak{logs: []string{logf}}
	got := s.logStats()
	want := `"ERROR applying revision sha256:…" ×2 (the first: "Patch \"https://127.0.0.1/x\": connection refused"), "ERROR panic in correct" ×1, "WARN recording status" ×1`
	if got != want {
		t.Errorf("logStats:\n got %s\nwant %s", got, want)
	}
	if len(s.violations) != 1 || !strings.Contains(s.violations[0], "panic in correct") {
		t.Errorf("violations %q, want the panic", s.violations)
	}
}
