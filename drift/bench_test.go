package drift_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
	meshschema "github.com/meshctl/meshctl/schema"
)

// benchMeshText is the default control plane and n services with a
// ServiceProfile each (one object per service), in 10 meshed namespaces.
func benchMeshText(n int) string {
	var src strings.Builder
	for i := range 10 {
		fmt.Fprintf(&src, "namespaces: \"bench-%d\": {inject: \"enabled\", create: true}\n", i)
	}
	for i := range n {
		fmt.Fprintf(&src, "services: \"bench-%d/svc-%d\": {model: \"serviceprofile\", routes: [{name: \"GET /items/%d\", method: \"GET\", pathRegex: \"/items/%d(/.*)?\"}]}\n", i%10, i, i, i)
	}
	return src.String()
}

// benchMesh writes a mesh of about objects managed objects.
func benchMesh(b *testing.B, objects int) (path string, count int) {
	base := countObjects(b, benchMeshText(0))
	text := benchMeshText(objects - base)
	path = filepath.Join(b.TempDir(), "mesh.cue")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	return path, countObjects(b, text)
}

func countObjects(b *testing.B, text string) int {
	path := filepath.Join(b.TempDir(), "count.cue")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	m, err := meshschema.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	set, err := plan.Offline(m, "bench")
	if err != nil {
		b.Fatal(err)
	}
	return set.Count()
}

// reconciler is a `meshctl reconcile` process.
type reconciler struct {
	// parts are the last sample's RssAnon (heap, stacks) and RssFile (the
	// binary's pages), in MiB.
	parts           map[string]float64
	cmd             *exec.Cmd
	exited          chan error
	health, metrics string
	logf            string
}

func startReconciler(b *testing.B, bin, kubeconfig, mesh string, extra ...string) *reconciler {
	addr := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	// The log stays after the run, with the GC trace, for a second look.
	r := &reconciler{parts: map[string]float64{}, health: addr(), metrics: addr(), logf: filepath.Join(os.TempDir(), fmt.Sprintf("meshctl-bench-%s-%s.log", strings.ReplaceAll(b.Name(), "/", "-"), strings.Join(extra, ""))), exited: make(chan error, 1)}
	logw, err := os.Create(r.logf)
	if err != nil {
		b.Fatal(err)
	}
	args := append([]string{"reconcile", "--kubeconfig=" + kubeconfig, "--health-addr=" + r.health, "--metrics-addr=" + r.metrics,
		"--log-format=json", "--meshctl-namespace=meshctl"}, extra...)
	r.cmd = exec.Command(bin, append(args, mesh)...)
	r.cmd.Env = append(os.Environ(), "GODEBUG=gctrace=1")
	r.cmd.Stdout, r.cmd.Stderr = logw, logw
	if err := r.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { r.exited <- r.cmd.Wait(); logw.Close() }()
	b.Cleanup(r.stop)
	deadline := time.Now().Add(20 * time.Minute)
	for !httpReady("http://" + r.health + "/readyz") {
		select {
		case err := <-r.exited:
			log, _ := os.ReadFile(r.logf)
			b.Fatalf("meshctl reconcile exited: %v\n%s", err, log)
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Fatal("meshctl reconcile not ready within 20 minutes")
		}
	}
	return r
}

// stop ends the process with SIGTERM, as Kubernetes would.
func (r *reconciler) stop() {
	if r.cmd.ProcessState != nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(time.Minute):
		_ = r.cmd.Process.Kill()
	}
}

func httpReady(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// rss is the process's resident set and its peak, in MiB.
func (r *reconciler) rss(b *testing.B) (now, peak float64) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			now = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		case "RssAnon:", "RssFile:":
			r.parts[f[0]] = kb / 1024
		}
	}
	return now, peak
}

// BenchmarkDrift measures the reconcile loop as a process, against a real
// API server: the latency from an out-of-band edit to its correction over
// 50 edits, the writes and dry-runs of no-op resyncs (the API server's own
// request counts), and resident memory with 1,000 and 10,000 managed
// objects. Run it with -benchtime 1x.
func BenchmarkDrift(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "meshctl")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/meshctl").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	var rows []string
	for _, size := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("objects=%d", size), func(b *testing.B) {
			for range b.N {
				rows = append(rows, benchDrift(b, bin, size))
			}
		})
	}
	fmt.Println("| managed objects | correction p50 | p99 | no-op resyncs: writes | dry-runs | RSS at rest | RSS in a resync | peak RSS (first apply) |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Println(r)
	}
}

func benchDrift(b *testing.B, bin string, size int) string {
	ctx := b.Context()
	cluster, err := testcluster.Start(ctx, testcluster.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer cluster.Stop()
	mesh, count := benchMesh(b, size)
	// The latency is measured at the default resync interval, so that no
	// resync competes with the corrections; the resyncs are measured
	// after, by a second process resyncing every 3 s.
	r := startReconciler(b, bin, cluster.Kubeconfig, mesh)
	b.Logf("%d managed objects in sync; the loop's log and GC trace: %s", count, r.logf)

	// Latency: 50 edits, one at a time, each to a different
	// ServiceProfile, from the moment the edit is sent until a watch shows
	// the loop's correction. One watch serves them all, opened once and
	// warmed by an edit that is not counted, so that its start is not
	// timed.
	dyn, err := dynamic.NewForConfig(cluster.Config)
	if err != nil {
		b.Fatal(err)
	}
	sp := dyn.Resource(schema.GroupVersionResource{Group: "linkerd.io", Version: "v1alpha2", Resource: "serviceprofiles"})
	list, err := sp.List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	edits := 50
	if len(list.Items) < edits+1 {
		b.Fatalf("%d ServiceProfiles, want at least %d", len(list.Items), edits+1)
	}
	w, err := sp.Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	patch := []byte(`{"spec":{"routes":[{"name":"edited by hand","condition":{"method":"GET","pathRegex":"/edited"}}]}}`)
	edit := func(obj unstructured.Unstructured) time.Duration {
		routes, _, _ := unstructured.NestedSlice(obj.Object, "spec", "routes")
		want, _ := json.Marshal(routes)
		began := time.Now()
		edited, err := sp.Namespace(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "intruder"})
		if err != nil {
			b.Fatal(err)
		}
		timeout := time.After(time.Minute)
		for {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					b.Fatal("the watch closed")
				}
				u, ok := ev.Object.(*unstructured.Unstructured)
				if !ok || u.GetName() != obj.GetName() || u.GetNamespace() != obj.GetNamespace() || u.GetResourceVersion() == edited.GetResourceVersion() {
					continue
				}
				got, _, _ := unstructured.NestedSlice(u.Object, "spec", "routes")
				if g, _ := json.Marshal(got); string(g) == string(want) {
					return time.Since(began)
				}
			case <-timeout:
				b.Fatalf("the edit to %s/%s not corrected within a minute", obj.GetNamespace(), obj.GetName())
			}
		}
	}
	step := len(list.Items) / (edits + 1)
	edit(list.Items[0]) // warm-up
	var lat []time.Duration
	for i := 1; i <= edits; i++ {
		lat = append(lat, edit(list.Items[i*step]))
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[(len(lat)*99+99)/100-1]

	r.stop()
	r = startReconciler(b, bin, cluster.Kubeconfig, mesh, "--interval=3s")

	// No-op resyncs: the API server's count of writes and dry-runs
	// across three resyncs.
	resyncs := func() float64 {
		return scrape(b, r.metrics, "meshctl_reconciles_total", `trigger="resync"`)
	}
	waitB(b, func() bool { return resyncs() >= 1 })
	w0, d0 := serverWrites(b, cluster)
	base := resyncs()
	waitB(b, func() bool { return resyncs() >= base+3 })
	w1, d1 := serverWrites(b, cluster)
	// Resident memory over two resync intervals, sampled: its least is the
	// loop at rest, its most the loop in a resync.
	var rest, busy, peak float64
	for deadline := time.Now().Add(6 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		now, hwm := r.rss(b)
		if rest == 0 || now < rest {
			rest = now
		}
		busy, peak = max(busy, now), hwm
	}
	b.Logf("last sample: RssAnon %.0f MiB, RssFile %.0f MiB", r.parts["RssAnon:"], r.parts["RssFile:"])
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(count), "objects")
	b.ReportMetric(float64(p50.Milliseconds()), "p50-ms")
	b.ReportMetric(float64(p99.Milliseconds()), "p99-ms")
	b.ReportMetric(w1-w0, "resync-writes")
	b.ReportMetric(d1-d0, "resync-dryruns")
	b.ReportMetric(rest, "rss-rest-MiB")
	b.ReportMetric(busy, "rss-resync-MiB")
	b.ReportMetric(peak, "peak-rss-MiB")
	return fmt.Sprintf("| %d | %s | %s | %v | %v | %.0f MiB | %.0f MiB | %.0f MiB |", count, p50.Round(time.Millisecond), p99.Round(time.Millisecond), w1-w0, d1-d0, rest, busy, peak)
}

func waitB(b *testing.B, cond func() bool) {
	deadline := time.Now().Add(5 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("condition not met within 5 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
