package drift_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/drift"
	"github.com/meshctl/meshctl/drift/source"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

// defaultMesh is the repository's mesh.cue: the control plane and one
// meshed namespace with a service.
func defaultMesh(t testing.TB) string {
	b, err := os.ReadFile("../mesh.cue")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// authors is a second service: two more HTTPRoutes in booksapp.
const authors = `
services: "booksapp/authors": {
	routes: [{name: "GET /authors", method: "GET", pathRegex: "/authors"}]
}
`

type env struct {
	t       *testing.T
	ctx     context.Context
	cluster *testcluster.Cluster
	client  *apply.Client
	mesh    string // the mesh.cue the loop reads
	// as, when set, is who the loop acts as (the reconciler's
	// ServiceAccount); else the cluster's admin.
	as *rest.Config
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cluster := testcluster.StartForTest(t, testcluster.Options{})
	c, err := apply.New(rest.CopyConfig(cluster.Config), "")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: t.Context(), cluster: cluster, client: c, mesh: filepath.Join(t.TempDir(), "mesh.cue")}
	e.write(defaultMesh(t))
	return e
}

// recordedEnv is newEnv on a cluster of the test's own, with every request
// the loop and the env's client send recorded, after passing through
// wraps.
func recordedEnv(t *testing.T, wraps ...func(http.RoundTripper) http.RoundTripper) (*env, *testcluster.Recorder) {
	t.Helper()
	cluster := testcluster.StartForTest(t, testcluster.Options{})
	rec := &testcluster.Recorder{}
	cfg := rest.CopyConfig(cluster.Config)
	cfg.Wrap(rec.Wrap)
	for _, w := range wraps {
		cfg.Wrap(w)
	}
	c, err := apply.New(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: t.Context(), cluster: cluster, client: c, mesh: filepath.Join(t.TempDir(), "mesh.cue"), as: cfg}
	e.write(defaultMesh(t))
	return e, rec
}

// in is e for a subtest: failures end the subtest, not its parent.
func (e *env) in(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// write replaces mesh.cue atomically, as a ConfigMap volume or git-sync do.
func (e *env) write(text string) {
	e.t.Helper()
	tmp := e.mesh + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, e.mesh); err != nil {
		e.t.Fatal(err)
	}
}

type running struct {
	loop *drift.Loop
	stop func()
	logs *syncBuffer
}

// start runs a loop on the env's cluster until the test ends or stop.
func (e *env) start(o drift.Options) *running {
	e.t.Helper()
	cfg := rest.CopyConfig(e.cluster.Config)
	if e.as != nil {
		cfg = rest.CopyConfig(e.as)
	}
	if o.Client == nil {
		o.Client = e.client
	}
	src, err := source.Parse("", e.mesh, "", e.t.TempDir(), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	logs := &syncBuffer{}
	o.Config, o.Source = cfg, src
	o.Version = "test"
	o.Log = slog.New(slog.NewTextHandler(logs, nil))
	if o.Poll == 0 {
		o.Poll = 200 * time.Millisecond
	}
	if o.Debounce == 0 {
		o.Debounce = 100 * time.Millisecond
	}
	if o.MetricsAddr == "" {
		o.MetricsAddr = "127.0.0.1:0"
	}
	if o.HealthAddr == "" {
		o.HealthAddr = "127.0.0.1:0"
	}
	l, err := drift.New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					e.t.Errorf("loop: %v", err)
				}
			case <-time.After(2 * time.Minute):
				e.t.Errorf("loop did not stop within 2m after cancel")
			}
		})
	}
	e.t.Cleanup(func() {
		stop()
		if e.t.Failed() {
			e.t.Logf("loop log:\n%s", logs.String())
		}
	})
	select {
	case <-l.Served():
	case err := <-done:
		e.t.Fatalf("loop stopped at start: %v", err)
	}
	return &running{loop: l, stop: stop, logs: logs}
}

// until polls cond until it holds, failing the test after timeout.
func (e *env) until(what string, timeout time.Duration, cond func() (bool, error)) {
	e.t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(e.ctx, 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		ok, err := cond()
		last = err
		return ok && err == nil, nil
	})
	if err != nil {
		e.t.Fatalf("waiting for %s: %v (last error: %v)", what, err, last)
	}
}

// status reads the loop's record from the cluster.
func (e *env) status() *drift.Status {
	e.t.Helper()
	st, err := drift.ReadStatus(e.ctx, e.client.Kube(), e.client.Namespace())
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// inSync waits until the loop records the revision of the current file as
// applied and in sync.
func (e *env) inSync(timeout time.Duration) *drift.Status {
	e.t.Helper()
	var st *drift.Status
	e.until("the loop to record the mesh in sync", timeout, func() (bool, error) {
		st = e.status()
		return st != nil && st.State == drift.StateInSync && st.Revision == e.revision(), nil
	})
	return st
}

// revision is what a path source calls the current file.
func (e *env) revision() string {
	src, err := source.Parse("", e.mesh, "", e.t.TempDir(), rest.CopyConfig(e.cluster.Config))
	if err != nil {
		e.t.Fatal(err)
	}
	snap, err := src.Fetch(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return snap.Revision
}

func (e *env) configMap(ns, name string) (*corev1.ConfigMap, error) {
	return e.cluster.Client.CoreV1().ConfigMaps(ns).Get(e.ctx, name, metav1.GetOptions{})
}

// intrude changes linkerd-config's data as another field manager, taking
// the field from meshctl, as `kubectl apply --server-side --force-conflicts`
// would.
func (e *env) intrude(value string) {
	e.t.Helper()
	patch := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"linkerd-config","namespace":"linkerd"},"data":{"values":%q}}`, value)
	force := true
	if _, err := e.cluster.Client.CoreV1().ConfigMaps("linkerd").Patch(e.ctx, "linkerd-config", types.ApplyPatchType, []byte(patch),
		metav1.PatchOptions{FieldManager: "intruder", Force: &force}); err != nil {
		e.t.Fatal(err)
	}
}

// scrape reads one sample from a /metrics page: the sum of the series of
// name whose labels contain every one of with.
func scrape(t testing.TB, addr, name string, with ...string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
next:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, w := range with {
			if !strings.Contains(line, w) {
				continue next
			}
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// metricAtLeast waits until a loop's metric reaches min.
func (e *env) metricAtLeast(addr, name string, min float64, with ...string) {
	e.t.Helper()
	e.until(fmt.Sprintf("%s%v >= %v", name, with, min), time.Minute, func() (bool, error) {
		return scrape(e.t, addr, name, with...) >= min, nil
	})
}

func get(t testing.TB, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestLoopKeepsTheClusterMatchingTheFile(t *testing.T) {
	e := newEnv(t)
	r := e.start(drift.Options{Interval: time.Hour})
	first := e.inSync(3 * time.Minute)
	if first.LastApplyTime == nil || first.Objects == 0 {
		t.Fatalf("status after the first apply: %+v", first)
	}
	want, err := e.configMap("linkerd", "linkerd-config")
	if err != nil {
		t.Fatal(err)
	}
	if code := get(t, "http://"+r.loop.HealthAddr+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d once in sync, want 200", code)
	}
	if code := get(t, "http://"+r.loop.HealthAddr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", code)
	}

	t.Run("an out-of-band edit is corrected", func(t *testing.T) {
		e := e.in(t)
		e.intrude("edited by hand")
		e.until("linkerd-config's data to be restored", time.Minute, func() (bool, error) {
			cm, err := e.configMap("linkerd", "linkerd-config")
			return err == nil && cm.Data["values"] == want.Data["values"], err
		})
		// The loop counts a correction once the server has it: wait.
		e.metricAtLeast(r.loop.MetricsAddr, "meshctl_drift_corrections_total", 1, `kind="ConfigMap"`)
	})

	t.Run("a deletion is corrected", func(t *testing.T) {
		e := e.in(t)
		if err := e.cluster.Client.CoreV1().ConfigMaps("linkerd").Delete(e.ctx, "linkerd-config", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.until("linkerd-config to be recreated", time.Minute, func() (bool, error) {
			cm, err := e.configMap("linkerd", "linkerd-config")
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return err == nil && cm.UID != want.UID && cm.Data["values"] == want.Data["values"], err
		})
	})

	t.Run("Events record the corrections", func(t *testing.T) {
		e := e.in(t)
		e.event("Corrected", "ConfigMap/linkerd/linkerd-config")
	})

	t.Run("a change to the file is applied, and a removal pruned", func(t *testing.T) {
		e := e.in(t)
		e.write(defaultMesh(t) + authors)
		e.inSync(2 * time.Minute)
		if _, ok := e.route("authors"); !ok {
			t.Fatal("HTTPRoute booksapp/authors missing after the file declared it")
		}
		e.write(defaultMesh(t))
		e.inSync(2 * time.Minute)
		e.until("HTTPRoute booksapp/authors to be pruned", time.Minute, func() (bool, error) {
			_, ok := e.route("authors")
			return !ok, nil
		})
	})

	t.Run("a broken file changes nothing", func(t *testing.T) {
		e := e.in(t)
		before := e.inventoryVersions()
		e.write(defaultMesh(t) + "\ncontrolPlane: replicas: \"three\"\n")
		broken := e.revision()
		var st *drift.Status
		e.until("the loop to record the broken revision", time.Minute, func() (bool, error) {
			st = e.status()
			return st.FailedRevision == broken, nil
		})
		if st.State != drift.StateFailing || !strings.Contains(st.LastError, e.mesh+":14:") {
			t.Errorf("status for a broken file: state %q, error %q; want failing with the position in %s", st.State, st.LastError, e.mesh)
		}
		if st.Revision == broken {
			t.Errorf("the broken revision %s is recorded as applied", broken)
		}
		// Drift is still corrected from the last good render.
		e.intrude("edited while the file is broken")
		e.until("linkerd-config's data to be restored", time.Minute, func() (bool, error) {
			cm, err := e.configMap("linkerd", "linkerd-config")
			return err == nil && cm.Data["values"] == want.Data["values"], err
		})
		after := e.inventoryVersions()
		for id, rv := range before {
			if id == "ConfigMap/linkerd/linkerd-config" {
				continue
			}
			if after[id] != rv {
				t.Errorf("%s changed (resourceVersion %s → %s) while the file was broken", id, rv, after[id])
			}
		}
		if n := scrape(t, r.loop.MetricsAddr, "meshctl_errors_total", `where="render"`); n < 1 {
			t.Errorf("meshctl_errors_total{where=render} = %v after a broken file", n)
		}
		e.write(defaultMesh(t))
		e.inSync(time.Minute)
	})
}

// event waits for an Event on the inventory with reason, whose message
// holds text.
func (e *env) event(reason, text string) {
	e.t.Helper()
	e.until("a "+reason+" Event on the inventory", time.Minute, func() (bool, error) {
		evs, err := e.cluster.Client.CoreV1().Events(e.client.Namespace()).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		var seen []string
		for _, ev := range evs.Items {
			if ev.Reason == reason && ev.InvolvedObject.Name == apply.InventoryName && strings.Contains(ev.Message, text) {
				return true, nil
			}
			seen = append(seen, ev.Reason+": "+ev.Message)
		}
		return false, fmt.Errorf("events: %q", seen)
	})
}

// route reports whether HTTPRoute booksapp/name exists.
func (e *env) route(name string) (string, bool) {
	e.t.Helper()
	raw, err := e.cluster.Client.Discovery().RESTClient().Get().
		AbsPath("/apis/policy.linkerd.io/v1beta3/namespaces/booksapp/httproutes", name).DoRaw(e.ctx)
	if apierrors.IsNotFound(err) {
		return "", false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return string(raw), true
}

// inventoryVersions reads every inventoried object's resourceVersion.
func (e *env) inventoryVersions() map[string]string {
	e.t.Helper()
	inv, err := e.client.ReadInventory(e.ctx)
	if err != nil || inv == nil {
		e.t.Fatalf("inventory: %v", err)
	}
	out := map[string]string{}
	for _, r := range inv.Objects {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(r.APIVersion)
		u.SetKind(r.Kind)
		err := e.client.Kube().Get(e.ctx, client.ObjectKey{Namespace: r.Namespace, Name: r.Name}, u)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			e.t.Fatalf("reading %s: %v", r.ID(), err)
		}
		out[r.ID()] = u.GetResourceVersion()
	}
	return out
}

// syncBuffer is a log sink tests read while the loop writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serverWrites sums the API server's own count of requests that write,
// and of those dry-run, leaving out Leases and Events (the API server and
// leader election renew Leases on their own).
func serverWrites(t testing.TB, cluster *testcluster.Cluster) (writes, dryRuns float64) {
	t.Helper()
	raw, err := cluster.Client.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		if strings.Contains(line, `resource="leases"`) || strings.Contains(line, `resource="events"`) {
			continue
		}
		write := false
		for _, v := range []string{`verb="POST"`, `verb="PUT"`, `verb="PATCH"`, `verb="APPLY"`, `verb="DELETE"`, `verb="DELETECOLLECTION"`} {
			write = write || strings.Contains(line, v)
		}
		if !write {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		if strings.Contains(line, `dry_run="All"`) {
			dryRuns += v
		} else {
			writes += v
		}
	}
	return writes, dryRuns
}

func TestNoopResyncWritesNothing(t *testing.T) {
	e := newEnv(t)
	r := e.start(drift.Options{Interval: time.Second})
	e.inSync(3 * time.Minute)
	resyncs := func() float64 {
		return scrape(t, r.loop.MetricsAddr, "meshctl_reconciles_total", `trigger="resync"`, `result="success"`)
	}
	// One resync first, so that anything the first apply left to settle
	// has settled.
	base := resyncs()
	e.until("a resync", time.Minute, func() (bool, error) { return resyncs() > base, nil })
	w0, d0 := serverWrites(t, e.cluster)
	base = resyncs()
	e.until("three more resyncs", 2*time.Minute, func() (bool, error) { return resyncs() >= base+3, nil })
	w1, d1 := serverWrites(t, e.cluster)
	if w1 != w0 || d1 != d0 {
		t.Errorf("no-op resyncs made %v writes and %v dry-runs on the server, want none", w1-w0, d1-d0)
	}
}

func TestDetectModeReportsAndWritesNothing(t *testing.T) {
	e := newEnv(t)
	// The mesh is applied first, as a person or CI would with meshctl apply.
	m, err := (&plan.Loader{}).Load(e.mesh)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.Apply(e.ctx, m, plan.Single(&plan.Member{Client: e.client}), plan.ApplyOptions{Apply: apply.Options{Prune: true}, Version: "test"}); err != nil {
		t.Fatal(err)
	}
	r := e.start(drift.Options{Mode: drift.Detect, Interval: time.Hour})
	e.inSync(2 * time.Minute)
	e.intrude("edited by hand")
	edited, err := e.configMap("linkerd", "linkerd-config")
	if err != nil {
		t.Fatal(err)
	}
	var st *drift.Status
	e.until("the loop to record the drift", time.Minute, func() (bool, error) {
		st = e.status()
		return st.State == drift.StateDrifted && strings.Contains(strings.Join(st.Drifted, ","), "ConfigMap/linkerd/linkerd-config"), nil
	})
	if n := scrape(t, r.loop.MetricsAddr, "meshctl_drift_detected_total", `kind="ConfigMap"`); n < 1 {
		t.Errorf("meshctl_drift_detected_total{kind=ConfigMap} = %v", n)
	}
	if n := scrape(t, r.loop.MetricsAddr, "meshctl_drift_corrections_total"); n != 0 {
		t.Errorf("detect mode corrected %v objects", n)
	}
	e.event("Drifted", "linkerd-config")
	now, err := e.configMap("linkerd", "linkerd-config")
	if err != nil {
		t.Fatal(err)
	}
	if now.ResourceVersion != edited.ResourceVersion || now.Data["values"] != "edited by hand" {
		t.Errorf("detect mode wrote linkerd-config: resourceVersion %s → %s", edited.ResourceVersion, now.ResourceVersion)
	}
}

// holder is who holds the reconciler's Lease.
func (e *env) holder() string {
	l, err := e.cluster.Client.CoordinationV1().Leases(e.client.Namespace()).Get(e.ctx, "meshctl-reconciler", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func TestOnlyTheLeaderWrites(t *testing.T) {
	e := newEnv(t)
	lease := drift.LeaseOptions{Duration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 300 * time.Millisecond}
	a := e.start(drift.Options{LeaderElect: true, Lease: lease, Identity: "replica-a", Interval: time.Hour})
	e.until("replica-a to hold the Lease", time.Minute, func() (bool, error) { return e.holder() == "replica-a", nil })
	e.inSync(3 * time.Minute)
	orig, err := e.configMap("linkerd", "linkerd-config")
	if err != nil {
		t.Fatal(err)
	}
	b := e.start(drift.Options{LeaderElect: true, Lease: lease, Identity: "replica-b", Interval: time.Hour})
	if code := get(t, "http://"+b.loop.HealthAddr+"/readyz"); code != http.StatusOK {
		t.Errorf("standby /readyz = %d, want 200", code)
	}

	e.intrude("edited by hand")
	e.until("replica-a to correct the edit", time.Minute, func() (bool, error) {
		cm, err := e.configMap("linkerd", "linkerd-config")
		return err == nil && cm.Data["values"] == orig.Data["values"], err
	})
	e.metricAtLeast(a.loop.MetricsAddr, "meshctl_drift_corrections_total", 1)
	if n := scrape(t, b.loop.MetricsAddr, "meshctl_reconciles_total") + scrape(t, b.loop.MetricsAddr, "meshctl_drift_corrections_total"); n != 0 {
		t.Errorf("the standby reconciled or corrected %v times", n)
	}
	if n := scrape(t, b.loop.MetricsAddr, "meshctl_leader"); n != 0 {
		t.Errorf("standby meshctl_leader = %v", n)
	}

	a.stop()
	e.until("replica-b to take the Lease", time.Minute, func() (bool, error) { return e.holder() == "replica-b", nil })
	e.until("replica-b to lead", time.Minute, func() (bool, error) {
		return scrape(t, b.loop.MetricsAddr, "meshctl_reconciles_total", `result="success"`) >= 1, nil
	})
	e.intrude("edited again")
	e.until("replica-b to correct the edit", time.Minute, func() (bool, error) {
		cm, err := e.configMap("linkerd", "linkerd-config")
		return err == nil && cm.Data["values"] == orig.Data["values"], err
	})
	e.metricAtLeast(b.loop.MetricsAddr, "meshctl_drift_corrections_total", 1)
}

// TestLoopRecoversFromARestart: after kube-apiserver or etcd restarts
// under a running loop (its connections drop, its watches end), an edit is
// still corrected and the loop records itself in sync.
func TestLoopRecoversFromARestart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		restart func(*testcluster.Cluster, context.Context) error
	}{
		{"kube-apiserver", (*testcluster.Cluster).RestartAPIServer},
		{"etcd", (*testcluster.Cluster).RestartEtcd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.start(drift.Options{Interval: time.Hour})
			e.inSync(3 * time.Minute)
			orig, err := e.configMap("linkerd", "linkerd-config")
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.restart(e.cluster, e.ctx); err != nil {
				t.Fatal(err)
			}
			e.intrude("edited after the restart")
			e.until("the edit to be corrected after the restart", 2*time.Minute, func() (bool, error) {
				cm, err := e.configMap("linkerd", "linkerd-config")
				return err == nil && cm.Data["values"] == orig.Data["values"], err
			})
			if st := e.status(); st.State != drift.StateInSync {
				t.Errorf("status after the restart: %q (%s)", st.State, st.LastError)
			}
		})
	}
}

// TestLoopKeepsWatchingWhenWatchesExpire: when every watch ends after a
// second (its stream cut, as a server's timeout or a load balancer's idle
// limit ends it), the loop's informers watch again and again: while
// nothing changes it writes nothing and lists nothing again, and an edit
// made after many expiries is still corrected. Requests are counted at the
// wire. (kube-apiserver's --min-request-timeout does not do it: client-go's
// reflectors ask for a timeout of their own, 5 to 10 minutes.)
func TestLoopKeepsWatchingWhenWatchesExpire(t *testing.T) {
	e, rec := recordedEnv(t, func(next http.RoundTripper) http.RoundTripper { return cutWatches{next: next, after: time.Second} })
	e.start(drift.Options{Interval: time.Hour})
	e.inSync(3 * time.Minute)
	orig, err := e.configMap("linkerd", "linkerd-config")
	if err != nil {
		t.Fatal(err)
	}
	// Every watch ends within a few seconds: wait until the loop has
	// watched each kind again several times.
	rec.Take()
	watches := func(reqs []testcluster.Request) map[string]int {
		n := map[string]int{}
		for _, r := range reqs {
			if r.Class == "watch" {
				n[r.Collection()]++
			}
		}
		return n
	}
	var quiet []testcluster.Request
	e.until("every watch to have been made again three times", 2*time.Minute, func() (bool, error) {
		quiet = append(quiet, rec.Take()...)
		n := watches(quiet)
		for _, k := range n {
			if k < 3 {
				return false, nil
			}
		}
		return len(n) > 0, nil
	})
	lists, writes := 0, 0
	for _, r := range quiet {
		switch r.Class {
		case "list":
			lists++
		case "write", "dryrun":
			writes++
		}
	}
	t.Logf("while quiet: %d requests, %d LISTs, watches by collection %v", len(quiet), lists, watches(quiet))
	if writes > 0 {
		t.Errorf("while nothing changed and watches expired, the loop wrote %d times", writes)
	}
	// A watch that ends is resumed from its last resourceVersion: no kind
	// is listed again for each expiry.
	if n := watches(quiet); lists > len(n) {
		t.Errorf("%d LISTs for %d watched collections over %d watches: expired watches are listed again", lists, len(n), len(quiet)-lists)
	}
	e.intrude("edited after many expiries")
	e.until("the edit to be corrected", time.Minute, func() (bool, error) {
		cm, err := e.configMap("linkerd", "linkerd-config")
		return err == nil && cm.Data["values"] == orig.Data["values"], err
	})
}

// cutWatches ends every watch's stream after a while.
type cutWatches struct {
	next  http.RoundTripper
	after time.Duration
}

func (c cutWatches) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if w := r.URL.Query().Get("watch"); err != nil || (w != "true" && w != "1") {
		return resp, err
	}
	body := resp.Body
	timer := time.AfterFunc(c.after, func() { body.Close() })
	resp.Body = cutBody{ReadCloser: body, timer: timer}
	return resp, nil
}

type cutBody struct {
	io.ReadCloser
	timer *time.Timer
}

func (b cutBody) Close() error {
	b.timer.Stop()
	return b.ReadCloser.Close()
}

// TestLoopSurvivesAPanic: a panic in one step (here a render, made to
// panic on a marker) is a bug, recovered: logged with its stack, counted,
// recorded in the status and as an Event, and the loop goes on keeping the
// cluster from the last good render.
func TestLoopSurvivesAPanic(t *testing.T) {
	e := newEnv(t)
	loader := &plan.Loader{}
	load := func(path string) (*schema.Mesh, error) {
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), "// panic here") {
			panic("range function continued iteration after function for loop body returned false")
		}
		return loader.Load(path)
	}
	r := e.start(drift.Options{Interval: time.Hour, Load: load})
	e.inSync(3 * time.Minute)
	want, err := e.configMap("linkerd", "linkerd-config")
	if err != nil {
		t.Fatal(err)
	}
	e.write(defaultMesh(t) + "\n// panic here\n")
	bad := e.revision()
	var st *drift.Status
	e.until("the loop to record the panic", time.Minute, func() (bool, error) {
		st = e.status()
		return st.FailedRevision == bad, nil
	})
	if st.State != drift.StateFailing || !strings.Contains(st.LastError, "internal error in render: range function continued iteration") {
		t.Errorf("status after a panic: state %q, error %q", st.State, st.LastError)
	}
	if n := scrape(t, r.loop.MetricsAddr, "meshctl_errors_total", `where="panic"`); n != 1 {
		t.Errorf(`meshctl_errors_total{where="panic"} = %v, want 1`, n)
	}
	if logs := r.logs.String(); !strings.Contains(logs, "recovered from a panic") || !strings.Contains(logs, "runtime/debug.Stack") {
		t.Errorf("the log holds no panic with its stack:\n%s", logs)
	}
	e.event("Panicked", "internal error in render")
	// Still keeping the cluster, from the last good render.
	e.intrude("edited after the panic")
	e.until("linkerd-config's data to be restored", time.Minute, func() (bool, error) {
		cm, err := e.configMap("linkerd", "linkerd-config")
		return err == nil && cm.Data["values"] == want.Data["values"], err
	})
	e.write(defaultMesh(t))
	e.inSync(time.Minute)
}

// TestLoopRotatesACertificateThatFallsDue: the rotation policy runs on a
// timer of its own. The loop starts on an issuer that falls due a few
// seconds later (signed short-lived with the stored anchor, as time
// passing would leave it); with the source unchanged and no restart, the
// loop rotates it before it expires, records an Event and a metric, and
// the cluster runs on the new issuer.
func TestLoopRotatesACertificateThatFallsDue(t *testing.T) {
	e := newEnv(t)
	m, err := (&plan.Loader{}).Load(e.mesh)
	if err != nil {
		t.Fatal(err)
	}
	// An issuer made to last 12 minutes is due a third of its life before
	// it expires: made 7m30s ago, it falls due 30 s from now, and expires
	// 4m30s from now.
	o := generators.CertOptions(m, time.Now().Add(-7*time.Minute-30*time.Second))
	o.IssuerLifetime = 12 * time.Minute
	b, err := certs.Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cluster.Client.CoreV1().Namespaces().Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.client.Namespace()}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: plan.CertificatesSecret, Namespace: e.client.Namespace()}, Data: b.Data()}
	if _, err := e.cluster.Client.CoreV1().Secrets(e.client.Namespace()).Create(e.ctx, sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	old := issuerOf(t, b.Issuer.CertPEM)
	r := e.start(drift.Options{Interval: time.Hour})
	e.inSync(time.Minute)
	e.until("the issuer to be rotated", 2*time.Minute, func() (bool, error) {
		s, err := e.cluster.Client.CoreV1().Secrets("linkerd").Get(e.ctx, "linkerd-identity-issuer", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return !bytes.Equal(s.Data["crt.pem"], []byte(b.Issuer.CertPEM)), nil
	})
	if now := time.Now(); !now.Before(old.NotAfter) {
		t.Errorf("rotated at %s, after the old issuer expired at %s", now, old.NotAfter)
	}
	s, err := e.cluster.Client.CoreV1().Secrets("linkerd").Get(e.ctx, "linkerd-identity-issuer", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fresh := issuerOf(t, string(s.Data["crt.pem"]))
	if time.Until(fresh.NotAfter) < 300*24*time.Hour || fresh.CheckSignatureFrom(issuerOf(t, b.Anchor.CertPEM)) != nil {
		t.Errorf("the new issuer expires %s and is signed by the anchor: %v", fresh.NotAfter, fresh.CheckSignatureFrom(issuerOf(t, b.Anchor.CertPEM)))
	}
	e.event("Rotated", "issuer rotated by policy")
	if n := scrape(t, r.loop.MetricsAddr, "meshctl_certificate_rotations_total", `certificate="issuer"`); n != 1 {
		t.Errorf(`meshctl_certificate_rotations_total{certificate="issuer"} = %v, want 1`, n)
	}
	if n := scrape(t, r.loop.MetricsAddr, "meshctl_certificate_expiry_timestamp_seconds", `certificate="issuer"`); n != float64(fresh.NotAfter.Unix()) {
		t.Errorf(`meshctl_certificate_expiry_timestamp_seconds{certificate="issuer"} = %v, want %d`, n, fresh.NotAfter.Unix())
	}
	if n := scrape(t, r.loop.MetricsAddr, "meshctl_reconciles_total", `trigger="rotation"`, `result="success"`); n < 1 {
		t.Errorf("no reconcile was triggered by the rotation timer")
	}
}

func issuerOf(t *testing.T, pemText string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLoopAppliesAReviewedRemoval: a revision that turns viz (with its
// dashboards) and tracing off would prune more than half the inventory,
// the default deletion budget. Without a word in
// mesh.cue the loop refuses it, writes nothing, and says how to go on; the
// same change with prune.maxDeletions, reviewed with it, is applied and
// pruned.
func TestLoopAppliesAReviewedRemoval(t *testing.T) {
	e := newEnv(t)
	e.write(defaultMesh(t) + `
viz: {enabled: true, grafana: {enabled: true, url: "http://grafana.monitoring:3000", namespace: "monitoring"}}
tracing: {enabled: true, collector: deploy: true}
`)
	e.start(drift.Options{Interval: time.Hour})
	e.inSync(3 * time.Minute)
	before := e.inventoryVersions()

	e.write(defaultMesh(t))
	refused := e.revision()
	var st *drift.Status
	e.until("the loop to refuse the removal", time.Minute, func() (bool, error) {
		st = e.status()
		return st.State == drift.StateFailing && strings.Contains(st.LastError, "prune refused"), nil
	})
	if !strings.Contains(st.LastError, "prune.maxDeletions") {
		t.Errorf("the refusal does not say how to go on: %s", st.LastError)
	}
	after := e.inventoryVersions()
	for id, rv := range before {
		if after[id] != rv {
			t.Errorf("%s changed (resourceVersion %s → %s) on a refused revision", id, rv, after[id])
		}
	}
	if st.Revision == refused {
		t.Errorf("the refused revision is recorded as applied")
	}

	e.write(defaultMesh(t) + "\nprune: maxDeletions: \"100%\"\n")
	st = e.inSync(2 * time.Minute)
	if _, err := e.configMap("linkerd-viz", "prometheus-config"); !apierrors.IsNotFound(err) {
		t.Errorf("viz's objects were not pruned: %v", err)
	}
	inv, err := e.client.ReadInventory(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range inv.Objects {
		if r.Namespace == "linkerd-viz" {
			t.Errorf("%s still inventoried after viz was turned off", r.ID())
		}
	}
}

// TestLoopTakesOverACoOwnerWithOneWrite: a second GitOps tool that
// server-side applies the values meshctl owns costs the loop nothing, and
// a `kubectl apply --server-side` of the same values costs it one write,
// which drops kubectl's entry; neither is a dry-run or a re-apply.
func TestLoopTakesOverACoOwnerWithOneWrite(t *testing.T) {
	e, rec := recordedEnv(t)
	cluster := e.cluster
	e.start(drift.Options{Interval: time.Hour})
	e.inSync(3 * time.Minute)
	live, err := e.configMap("linkerd", "linkerd-config")
	if err != nil {
		t.Fatal(err)
	}
	coOwn := func(manager string) {
		t.Helper()
		ac := corev1ac.ConfigMap(live.Name, live.Namespace).WithLabels(live.Labels).WithAnnotations(live.Annotations).WithData(live.Data)
		if _, err := cluster.Client.CoreV1().ConfigMaps(live.Namespace).Apply(e.ctx, ac, metav1.ApplyOptions{FieldManager: manager}); err != nil {
			t.Fatal(err)
		}
	}
	managers := func() []string {
		cm, err := e.configMap("linkerd", "linkerd-config")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, mf := range cm.ManagedFields {
			out = append(out, mf.Manager)
		}
		return out
	}
	rec.Take()
	coOwn("argocd-controller")
	coOwn("kubectl")
	e.until("kubectl's entry to be dropped", time.Minute, func() (bool, error) {
		return !slices.Contains(managers(), "kubectl"), nil
	})
	var writes []string
	for _, r := range rec.Take() {
		if (r.Class == "write" || r.Class == "dryrun") && strings.Contains(r.Path, "/configmaps/linkerd-config") {
			writes = append(writes, r.Class+" "+r.Method)
		}
	}
	if !slices.Equal(writes, []string{"write PATCH"}) {
		t.Errorf("the loop sent %v for the co-owned linkerd-config, want one write", writes)
	}
	if m := managers(); !slices.Contains(m, "argocd-controller") || !slices.Contains(m, apply.FieldManager) {
		t.Errorf("managers after the takeover: %v, want meshctl and argocd-controller kept", m)
	}
}

// TestTakingOverOnABrokenRevision: a replica that takes the Lease while
// mesh.cue does not render keeps correcting drift from the revision that
// is applied, which it loaded while standing by; it applies nothing else
// and prunes nothing. Without that, the mesh went unkept until the file was
// fixed whenever the leader changed (or led again after the API server went
// away) at the wrong moment.
func TestTakingOverOnABrokenRevision(t *testing.T) {
	e := newEnv(t)
	lease := drift.LeaseOptions{Duration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 300 * time.Millisecond}
	a := e.start(drift.Options{LeaderElect: true, Lease: lease, Identity: "replica-a", Interval: time.Hour})
	e.until("replica-a to hold the Lease", time.Minute, func() (bool, error) { return e.holder() == "replica-a", nil })
	good := e.inSync(3 * time.Minute).Revision
	orig, err := e.configMap("linkerd", "linkerd-config")
	if err != nil {
		t.Fatal(err)
	}
	b := e.start(drift.Options{LeaderElect: true, Lease: lease, Identity: "replica-b", Interval: time.Hour})
	e.until("replica-b to load the revision while standing by", time.Minute, func() (bool, error) {
		return strings.Contains(b.logs.String(), `msg="standing by with revision" revision=`+good), nil
	})
	e.write(defaultMesh(t) + "\ncontrolPlane: {\n")
	e.until("replica-a to record the broken revision", time.Minute, func() (bool, error) {
		return e.status().FailedRevision != "", nil
	})
	// Every record written from here on is watched: none may say that no
	// revision is applied.
	w, err := e.cluster.Client.CoreV1().ConfigMaps(e.client.Namespace()).Watch(e.ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + plan.LoopRecordName})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var (
		mu      sync.Mutex
		records []*corev1.ConfigMap
	)
	go func() {
		for ev := range w.ResultChan() {
			if cm, ok := ev.Object.(*corev1.ConfigMap); ok {
				mu.Lock()
				records = append(records, cm)
				mu.Unlock()
			}
		}
	}()
	a.stop()
	e.until("replica-b to take the Lease", time.Minute, func() (bool, error) { return e.holder() == "replica-b", nil })
	e.intrude("edited while mesh.cue is broken")
	e.until("replica-b to correct the edit", time.Minute, func() (bool, error) {
		cm, err := e.configMap("linkerd", "linkerd-config")
		return err == nil && cm.Data["values"] == orig.Data["values"], err
	})
	// Every record says so, from the takeover on: the applied revision
	// and the one that does not render.
	e.until("the status to record the applied and the failed revision", time.Minute, func() (bool, error) {
		st := e.status()
		return st.State == drift.StateFailing && st.Revision == good && st.FailedRevision != "", nil
	})
	last, err := e.cluster.Client.CoreV1().ConfigMaps(e.client.Namespace()).Get(e.ctx, plan.LoopRecordName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.until("the watch to deliver the last record", time.Minute, func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return len(records) > 0 && records[len(records)-1].ResourceVersion == last.ResourceVersion, nil
	})
	mu.Lock()
	defer mu.Unlock()
	for _, cm := range records {
		var rec plan.LoopRecord
		if err := json.Unmarshal([]byte(cm.Data[plan.LoopRecordKey]), &rec); err != nil || rec.Revision != good {
			t.Errorf("a record during the takeover says revision %q (%v), want %q", rec.Revision, err, good)
		}
	}
	if !strings.Contains(b.logs.String(), "keeping the applied revision") {
		t.Error("replica-b did not say it keeps the applied revision")
	}
}

// A term whose apply the server refuses (here one new HTTPRoute, which a
// ValidatingAdmissionPolicy denies, as a policy engine or webhook would)
// still keeps every other object of the render, one by one, while the
// apply is tried again; once the refusal ends, the apply goes through.
// Before, such a term corrected nothing until an apply succeeded.
func TestATermWhoseApplyIsRefusedStillCorrects(t *testing.T) {
	e := newEnv(t)
	a := e.start(drift.Options{Interval: time.Hour})
	e.inSync(3 * time.Minute)
	a.stop()
	orig, err := e.configMap("linkerd", "linkerd-config")
	if err != nil {
		t.Fatal(err)
	}

	lift := e.refuseAuthors()

	// A new term on a revision that adds authors: its apply is refused.
	e.write(defaultMesh(t) + authors)
	// Polls are an hour apart: only the term's first apply and its
	// resyncs (every 20 s, from the end of the first) try the revision.
	b := e.start(drift.Options{Interval: 20 * time.Second, Poll: time.Hour})
	e.until("the record to say the apply is refused", 3*time.Minute, func() (bool, error) {
		st := e.status()
		return st != nil && st.State == drift.StateFailing && strings.Contains(st.LastError, refusal), nil
	})
	if code := get(t, "http://"+b.loop.HealthAddr+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d while no apply has succeeded, want 503", code)
	}
	// An edit of another object of the render is corrected all the same,
	// by the drift worker, well before the first resync.
	e.intrude("edited while the apply is refused")
	e.until("the edit to be corrected", time.Minute, func() (bool, error) {
		cm, err := e.configMap("linkerd", "linkerd-config")
		return err == nil && cm.Data["values"] == orig.Data["values"], err
	})
	if !strings.Contains(b.logs.String(), `msg="drift corrected" object=ConfigMap/linkerd/linkerd-config`) {
		t.Errorf("the correction was not the drift worker's; log:\n%s", b.logs.String())
	}
	if _, ok := e.route("authors"); ok {
		t.Fatal("the refused route exists")
	}

	// The refusal ends: the next resync applies the revision.
	lift()
	e.inSync(3 * time.Minute)
	if _, ok := e.route("authors.get-authors"); !ok {
		t.Error("the revision's routes were not applied once the refusal ended")
	}
	if code := get(t, "http://"+b.loop.HealthAddr+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d once the apply succeeded, want 200", code)
	}
}

// refusal is what refuseAuthors's policy answers.
const refusal = "routes of authors are refused by this test"

// refuseAuthors makes the API server refuse every write of an HTTPRoute
// of authors, as a policy engine or a webhook would, with a
// ValidatingAdmissionPolicy; lift removes its binding.
func (e *env) refuseAuthors() (lift func()) {
	e.t.Helper()
	t := e.t
	adm := e.cluster.Client.AdmissionregistrationV1()
	fail := admissionregistrationv1.Fail
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "refuse-authors"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
						Rule:       admissionregistrationv1.Rule{APIGroups: []string{"policy.linkerd.io"}, APIVersions: []string{"*"}, Resources: []string{"httproutes"}},
					},
				}},
			},
			Validations: []admissionregistrationv1.Validation{{
				Expression: "!object.metadata.name.startsWith('authors')",
				Message:    refusal,
			}},
		},
	}
	if _, err := adm.ValidatingAdmissionPolicies().Create(e.ctx, policy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "refuse-authors"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        "refuse-authors",
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
	if _, err := adm.ValidatingAdmissionPolicyBindings().Create(e.ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The API server loads policies in the background: a dry-run create
	// says when the refusal is in force.
	probe := `{"apiVersion":"policy.linkerd.io/v1beta3","kind":"HTTPRoute","metadata":{"name":"authors-probe","namespace":"booksapp"},"spec":{}}`
	refused := func() (bool, error) {
		raw, err := e.cluster.Client.Discovery().RESTClient().Post().
			AbsPath("/apis/policy.linkerd.io/v1beta3/namespaces/booksapp/httproutes").Param("dryRun", "All").
			SetHeader("Content-Type", "application/json").Body([]byte(probe)).DoRaw(e.ctx)
		if err == nil || !strings.Contains(string(raw), refusal) {
			return false, fmt.Errorf("the probe was not refused by the policy: %v: %s", err, raw)
		}
		return true, nil
	}
	e.until("the policy to refuse routes of authors", time.Minute, refused)
	return func() {
		t.Helper()
		if err := adm.ValidatingAdmissionPolicyBindings().Delete(e.ctx, "refuse-authors", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// A revision whose apply failed is tried again at every poll, also while
// the source's newest revision does not render: before, the broken file
// stopped the retries until the next resync.
func TestAFailedApplyIsRetriedWhileTheSourceIsBroken(t *testing.T) {
	e := newEnv(t)
	a := e.start(drift.Options{Interval: time.Hour})
	e.inSync(3 * time.Minute)
	a.stop()
	lift := e.refuseAuthors()
	e.write(defaultMesh(t) + authors)
	// Resyncs are an hour apart: only the polls retry.
	r := e.start(drift.Options{Interval: time.Hour})
	e.until("the record to say the apply is refused", 3*time.Minute, func() (bool, error) {
		st := e.status()
		return st != nil && st.State == drift.StateFailing && strings.Contains(st.LastError, refusal), nil
	})
	e.write(defaultMesh(t) + authors + "\ncontrolPlane: {\n")
	e.until("the record to name the broken revision", time.Minute, func() (bool, error) {
		return e.status().FailedRevision != "", nil
	})
	lift()
	e.until("the kept revision to be applied", 3*time.Minute, func() (bool, error) {
		_, ok := e.route("authors.get-authors")
		return ok && e.status().LastApplyTime != nil, nil
	})
	st := e.status()
	if st.State != drift.StateFailing || st.FailedRevision == "" || st.Revision == "" || !strings.Contains(st.LastError, "does not render") {
		t.Errorf("after the retry, the record is %+v: want the kept revision applied, and the broken one still named as the error", st)
	}
	if !strings.Contains(r.logs.String(), `msg=applied trigger=retry`) {
		t.Errorf("no retry applied the kept revision; log:\n%s", r.logs.String())
	}
}
