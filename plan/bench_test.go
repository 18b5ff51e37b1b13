package plan_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/internal/testbin"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

// benchRuns is how many timed runs each tool gets per case (times b.N,
// which `make bench` sets to 1 with -benchtime 1x).
const benchRuns = 5

// kubectlManager is kubectl's field manager in the benchmark. It is not
// "kubectl", which meshctl takes fields over from, so that neither tool's
// no-op apply undoes the other's.
const kubectlManager = "kubectl-bench"

// bigMesh is the default mesh plus n services, each with a route and a
// retry budget, spread over 10 meshed namespaces, written to a file.
func bigMesh(b *testing.B, n int) string {
	var src strings.Builder
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&src, "namespaces: \"shop-%d\": {inject: \"enabled\", create: true}\n", i)
	}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&src, "services: \"shop-%d/svc-%d\": {model: \"serviceprofile\", routes: [{name: \"GET /items\", method: \"GET\", pathRegex: \"/items(/.*)?\", isRetryable: true, timeout: \"300ms\"}], retryBudget: {}}\n", i%10, i)
	}
	path := filepath.Join(b.TempDir(), "mesh.cue")
	if err := os.WriteFile(path, []byte(src.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// buildMeshctl builds the CLI stamped with version, so that meshctl is
// timed as a user runs it: a process that loads mesh.cue, renders and
// applies.
func buildMeshctl(b *testing.B, version string) string {
	bin := filepath.Join(b.TempDir(), "meshctl")
	out, err := exec.Command("go", "build", "-ldflags", "-X main.version="+version, "-o", bin, "../cmd/meshctl").CombinedOutput()
	if err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// benchVersion is meshctl's version in the benchmark: the checkout's, as
// `make build` stamps it.
func benchVersion() string {
	out, err := exec.Command("git", "describe", "--tags", "--always", "--dirty").Output()
	if v := strings.TrimSpace(string(out)); err == nil && v != "" {
		return v
	}
	return "bench"
}

// outcome is one command's run.
type outcome struct {
	code           int
	stdout, stderr string
	took           time.Duration
	cpu            time.Duration // the process's own, user and system
}

// run runs a command and times it, process start included. An exit code
// above 1 (an error rather than "differences found") fails the benchmark.
func run(b *testing.B, env []string, name string, args ...string) outcome {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	err := cmd.Run()
	o := outcome{took: time.Since(began), stdout: stdout.String(), stderr: stderr.String()}
	if cmd.ProcessState != nil {
		o.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if ee, ok := err.(*exec.ExitError); ok {
		o.code = ee.ExitCode()
	} else if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	if o.code > 1 {
		b.Fatalf("%s %s: exit %d\n%s%s", filepath.Base(name), strings.Join(args, " "), o.code, o.stdout, testbin.LastLines(o.stderr, 20))
	}
	return o
}

// benchMesh is one mesh on the benchmark's cluster, with the three ways of
// applying it: the meshctl CLI, kubectl on the YAML of the same render, and
// the meshctl library on the rendered set.
type benchMesh struct {
	name       string
	ctx        context.Context
	cluster    *testcluster.Cluster
	meshctl    string
	kubectl    string
	kubectlEnv []string
	path       string // mesh.cue
	file       string // the render as YAML, for kubectl
	lib        *apply.Client
	set        apply.Set
	// created is how many objects a first apply creates: all but the
	// Namespaces and CRDs, which reset leaves in place.
	created int
}

// meshctlApply runs `meshctl apply -o json` and returns the change set's
// counts as well as the time.
func (m *benchMesh) meshctlApply(b *testing.B) (outcome, cliResult) {
	o := run(b, nil, m.meshctl, "apply", "-o", "json", "--kubeconfig="+m.cluster.Kubeconfig, "--meshctl-namespace="+m.lib.Namespace(), m.path)
	var res cliResult
	if o.code != 0 || json.Unmarshal([]byte(o.stdout), &res) != nil {
		b.Fatalf("meshctl apply: exit %d\n%s%s", o.code, o.stdout, testbin.LastLines(o.stderr, 20))
	}
	return o, res
}

// cliResult is what the benchmark reads of `meshctl apply -o json`.
type cliResult struct {
	Writes  int            `json:"writes"`
	DryRuns int            `json:"dryRuns"`
	Summary map[string]int `json:"summary"`
}

func (m *benchMesh) meshctlDiff(b *testing.B) outcome {
	o := run(b, nil, m.meshctl, "diff", "--kubeconfig="+m.cluster.Kubeconfig, "--meshctl-namespace="+m.lib.Namespace(), m.path)
	if o.code != 0 {
		b.Fatalf("meshctl diff exited %d on a no-op:\n%s", o.code, o.stdout)
	}
	return o
}

// kubectlRun runs kubectl on the render's YAML, as kubectl-bench.
func (m *benchMesh) kubectlRun(b *testing.B, verb string, extra ...string) outcome {
	args := append([]string{verb, "--server-side", "--force-conflicts", "--field-manager=" + kubectlManager,
		"--kubeconfig=" + m.cluster.Kubeconfig, "-f", m.file}, extra...)
	return run(b, m.kubectlEnv, m.kubectl, args...)
}

func (m *benchMesh) kubectlApply(b *testing.B) outcome {
	o := m.kubectlRun(b, "apply")
	if o.code != 0 {
		b.Fatalf("kubectl apply exited %d:\n%s", o.code, o.stderr)
	}
	return o
}

func (m *benchMesh) kubectlDiff(b *testing.B) outcome {
	o := m.kubectlRun(b, "diff")
	if o.code != 0 {
		b.Fatalf("kubectl diff exited %d on a no-op:\n%s", o.code, testbin.LastLines(o.stdout, 40))
	}
	return o
}

func (m *benchMesh) libApply(b *testing.B, o apply.Options) (time.Duration, *apply.Result) {
	o.Prune = true
	began := time.Now()
	res, err := m.lib.Apply(m.ctx, m.set, o)
	took := time.Since(began)
	if err != nil {
		b.Fatal(err)
	}
	return took, res
}

func (m *benchMesh) libDiff(b *testing.B) time.Duration {
	began := time.Now()
	d, err := m.lib.Diff(m.ctx, m.set, apply.DiffOptions{})
	took := time.Since(began)
	if err != nil || d.Changed() {
		b.Fatalf("diff on a no-op: changed=%v err=%v", d != nil && d.Changed(), err)
	}
	return took
}

// settle brings the cluster to where both tools' applies are no-ops: each
// tool has applied the render once, and every workload is ready, so that
// controllers are idle when the timing starts.
func (m *benchMesh) settle(b *testing.B) {
	m.kubectlApply(b)
	m.libApply(b, apply.Options{Wait: true, Timeout: 3 * time.Minute})
}

// resettable is what a first apply creates: the render less its Namespaces
// and CRDs (whose deletion is slow: namespaces wait for every object in
// them, CRDs for their instances), and meshctl's inventory.
func (m *benchMesh) resettable() []*unstructured.Unstructured {
	var objs []*unstructured.Unstructured
	for _, st := range m.set.Stages {
		for _, u := range st.Objects {
			if u.GetKind() != "Namespace" && u.GetKind() != "CustomResourceDefinition" {
				objs = append(objs, u)
			}
		}
	}
	inv := &unstructured.Unstructured{}
	inv.SetAPIVersion("v1")
	inv.SetKind("ConfigMap")
	inv.SetNamespace(m.lib.Namespace())
	inv.SetName(apply.InventoryName)
	return append(objs, inv)
}

// withDependents are the kinds in a render whose objects controllers make
// dependents of: ReplicaSets and Pods, ControllerRevisions, Jobs,
// EndpointSlices.
var withDependents = map[string]bool{
	"Deployment": true, "ReplicaSet": true, "DaemonSet": true, "StatefulSet": true,
	"Job": true, "CronJob": true, "Service": true,
}

// reset deletes what a first apply creates and waits until all of it is
// gone: every object is polled until the API server no longer has it.
// Objects of withDependents kinds are deleted in the foreground, so they
// go only after their dependents; the rest, which have none, are deleted
// at once (in the foreground, each would wait for the garbage collector,
// which the controller manager's client-side rate limit holds to about 15
// objects a second here: a minute and more per reset of 1,000 objects).
func (m *benchMesh) reset(b *testing.B) {
	kube := m.lib.Kube()
	objs := m.resettable()
	g, ctx := errgroup.WithContext(m.ctx)
	g.SetLimit(16)
	for _, u := range objs {
		policy := metav1.DeletePropagationBackground
		if withDependents[u.GetKind()] {
			policy = metav1.DeletePropagationForeground
		}
		g.Go(func() error {
			err := kube.Delete(ctx, u.DeepCopy(), client.PropagationPolicy(policy))
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("%s delete failed: %w", apply.ID(u), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	g, ctx = errgroup.WithContext(m.ctx)
	g.SetLimit(16)
	for _, u := range objs {
		g.Go(func() error {
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(u.GroupVersionKind())
			err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
				err := kube.Get(ctx, client.ObjectKeyFromObject(u), got)
				if apierrors.IsNotFound(err) {
					return true, nil
				}
				return false, err
			})
			if err != nil {
				return fmt.Errorf("%s still there after deletion (finalizers %v): %w", apply.ID(u), got.GetFinalizers(), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

// samples are one case's timed runs, by tool.
type samples map[string][]time.Duration

// stats are the minimum and the median of d.
func stats(d []time.Duration) (lo, median time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[0], s[n/2]
	}
	return s[0], (s[n/2-1] + s[n/2]) / 2
}

// report puts a case's figures on its benchmark line, and each run in its
// log. ns/op is hidden: it would add the tools' times together.
func (s samples) report(b *testing.B, objects int) {
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(objects), "objects")
	for _, tool := range []string{"meshctl", "kubectl", "meshctl-lib"} {
		if len(s[tool]) == 0 {
			continue
		}
		lo, med := stats(s[tool])
		b.ReportMetric(lo.Seconds(), tool+"-min-s")
		b.ReportMetric(med.Seconds(), tool+"-median-s")
		var runs []string
		for _, d := range s[tool] {
			runs = append(runs, fmt.Sprintf("%.2f", d.Seconds()))
		}
		b.Logf("%s runs (s): %s", tool, strings.Join(runs, " "))
	}
	_, m := stats(s["meshctl"])
	_, k := stats(s["kubectl"])
	b.ReportMetric(m.Seconds()/k.Seconds(), "meshctl/kubectl-median")
}

// row is the case's line in the summary table.
func (s samples) row(mesh, op string) string {
	cell := func(tool string) string {
		if len(s[tool]) == 0 {
			return ""
		}
		lo, med := stats(s[tool])
		return fmt.Sprintf("%.2f s / %.2f s", lo.Seconds(), med.Seconds())
	}
	mlo, mmed := stats(s["meshctl"])
	klo, kmed := stats(s["kubectl"])
	return fmt.Sprintf("| %s | %s | %s | %s | **%.2f** | %.2f | %s |", mesh, op, cell("meshctl"), cell("kubectl"),
		mmed.Seconds()/kmed.Seconds(), mlo.Seconds()/klo.Seconds(), cell("meshctl-lib"))
}

// BenchmarkCluster measures meshctl against kubectl on the same rendered
// objects and the same real API server: a first apply, a no-op apply and a
// no-op diff, for the default mesh and a 1,000-service one.
//
// kubectl is the one testbin builds from the API server's sources,
// running `kubectl apply --server-side` and `kubectl diff --server-side` on
// the YAML of the same render. Runs interleave (meshctl, kubectl,
// meshctl-lib, then again), so drift in the machine's load hits every tool
// alike. Before each timed first apply, everything the previous run
// created is deleted and gone. A no-op apply that writes anything fails the
// benchmark. Each case reports each tool's minimum and median over
// benchRuns runs, and the parent prints a summary table for BENCHMARKS.md.
func BenchmarkCluster(b *testing.B) {
	bins, err := testbin.Find()
	if err != nil {
		b.Fatalf("the comparison needs the pinned kubectl: %v", err)
	}
	ctrllog.SetLogger(logr.Discard()) // the library's log: results are checked here
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer cancel()
	cluster := shared.Get(b)
	// meshctl's cache of validated services (schema.CacheDir) is the
	// benchmark's own: filled by the warm-up, as a user's is by the apply
	// before, since the file does not change between runs.
	b.Setenv("MESHCTL_CACHE", b.TempDir())
	version := benchVersion()
	meshctl := buildMeshctl(b, version)
	// kubectl's discovery cache is its own, and warm after the first
	// run, as it is for a user; kuberc preferences are off.
	kubectlEnv := []string{"KUBERC=off", "KUBECACHEDIR=" + b.TempDir()}
	kv := run(b, kubectlEnv, bins.Kubectl, "version", "--client", "-o", "json")
	var kver struct {
		ClientVersion struct{ GitVersion string } `json:"clientVersion"`
	}
	if err := json.Unmarshal([]byte(kv.stdout), &kver); err != nil || kver.ClientVersion.GitVersion != testbin.KubernetesVersion {
		b.Fatalf("%s is kubectl %q, want %s (rebuild with `make testbin`): %v", bins.Kubectl, kver.ClientVersion.GitVersion, testbin.KubernetesVersion, err)
	}
	fmt.Printf("BenchmarkCluster: kubectl %s (%s), meshctl %s, %d timed runs per tool and case\n", kver.ClientVersion.GitVersion, bins.Kubectl, version, benchRuns*b.N)

	meshes := []struct {
		name string
		path func() string
	}{
		{"default", func() string { return "../mesh.cue" }},
		{"1000-services", func() string { return bigMesh(b, 1000) }},
	}
	table := []string{
		"| mesh | operation | meshctl min / median | kubectl min / median | meshctl ÷ kubectl (median) | (min) | meshctl-lib min / median |",
		"|---|---|---|---|---|---|---|",
	}
	for _, mc := range meshes {
		m := setupMesh(ctx, b, cluster, mc.name, mc.path(), version)
		m.meshctl, m.kubectl, m.kubectlEnv = meshctl, bins.Kubectl, kubectlEnv
		m.warmUp(b)

		var first, noopApply, noopDiff samples
		b.Run(mc.name+"/first-apply", func(b *testing.B) { first = m.firstApplies(b) })
		m.settle(b)
		b.Run(mc.name+"/noop-apply", func(b *testing.B) { noopApply = m.noopApplies(b) })
		b.Run(mc.name+"/noop-diff", func(b *testing.B) { noopDiff = m.noopDiffs(b) })
		if b.Failed() {
			return
		}
		if first == nil || noopApply == nil || noopDiff == nil {
			continue // -bench left a case out
		}
		label := fmt.Sprintf("%s (%d objects)", mc.name, m.set.Count())
		table = append(table, first.row(label, "first apply"), noopApply.row(mc.name, "no-op apply"), noopDiff.row(mc.name, "no-op diff"))
	}
	// Printed rather than logged: a parent benchmark's log shows only
	// with -v, and is cut to 10 lines.
	fmt.Printf("BenchmarkCluster: min / median of each tool's runs:\n%s\n", strings.Join(table, "\n"))
}

// firstApplies times first applies, each after a full reset, and what
// each run cost in processor time, the client's and the cluster's.
func (m *benchMesh) firstApplies(b *testing.B) samples {
	s := samples{}
	cpu := map[string][]cpuRun{}
	for i := 0; i < benchRuns*b.N; i++ {
		b.StopTimer()
		m.reset(b)
		b.StartTimer()
		before := m.clusterCPU(b)
		o, res := m.meshctlApply(b)
		cpu["meshctl"] = append(cpu["meshctl"], m.cpuSince(b, before, o))
		if res.Summary["created"] != m.created {
			b.Fatalf("meshctl's first apply created %d objects, want %d: the reset left some behind (%v)", res.Summary["created"], m.created, res.Summary)
		}
		s["meshctl"] = append(s["meshctl"], o.took)

		b.StopTimer()
		m.reset(b)
		b.StartTimer()
		before = m.clusterCPU(b)
		o = m.kubectlApply(b)
		cpu["kubectl"] = append(cpu["kubectl"], m.cpuSince(b, before, o))
		s["kubectl"] = append(s["kubectl"], o.took)
	}
	s.report(b, m.set.Count())
	reportCPU(b, m.name, s, cpu)
	return s
}

// cpuRun is the processor time one timed run cost: the client process's
// own, and each cluster component's (kube-apiserver, etcd, ...) while the
// client ran.
type cpuRun struct {
	client  time.Duration
	cluster map[string]time.Duration
}

func (r cpuRun) clusterTotal() time.Duration {
	var t time.Duration
	for _, d := range r.cluster {
		t += d
	}
	return t
}

func (m *benchMesh) clusterCPU(b *testing.B) map[string]time.Duration {
	t, err := m.cluster.CPUTime()
	if err != nil {
		b.Fatal(err)
	}
	return t
}

func (m *benchMesh) cpuSince(b *testing.B, before map[string]time.Duration, o outcome) cpuRun {
	r := cpuRun{client: o.cpu, cluster: m.clusterCPU(b)}
	for name, d := range before {
		r.cluster[name] -= d
	}
	return r
}

// reportCPU prints each tool's median processor time per run, and the
// least wall time the cluster's share alone needs on this machine's CPUs
// (its CPU time over their number) as a fraction of kubectl's median: no
// client that sends these requests can be faster than that here.
func reportCPU(b *testing.B, mesh string, s samples, cpu map[string][]cpuRun) {
	median := func(runs []cpuRun, of func(cpuRun) time.Duration) time.Duration {
		var d []time.Duration
		for _, r := range runs {
			d = append(d, of(r))
		}
		_, med := stats(d)
		return med
	}
	for _, tool := range []string{"meshctl", "kubectl"} {
		runs := cpu[tool]
		client := median(runs, func(r cpuRun) time.Duration { return r.client })
		cluster := median(runs, cpuRun.clusterTotal)
		var parts []string
		for _, name := range []string{"kube-apiserver", "etcd", "kube-controller-manager"} {
			d := median(runs, func(r cpuRun) time.Duration { return r.cluster[name] })
			parts = append(parts, fmt.Sprintf("%s %.2f s", name, d.Seconds()))
		}
		b.ReportMetric(client.Seconds(), tool+"-client-cpu-s")
		b.ReportMetric(cluster.Seconds(), tool+"-cluster-cpu-s")
		fmt.Printf("BenchmarkCluster: %s, first apply, median CPU per %s run: client %.2f s, cluster %.2f s (%s)\n",
			mesh, tool, client.Seconds(), cluster.Seconds(), strings.Join(parts, ", "))
	}
	floor := median(cpu["meshctl"], cpuRun.clusterTotal) / time.Duration(runtime.NumCPU())
	_, k := stats(s["kubectl"])
	b.ReportMetric(floor.Seconds()/k.Seconds(), "cluster-floor/kubectl")
	fmt.Printf("BenchmarkCluster: %s, first apply: the cluster's CPU for meshctl's requests needs at least %.2f s of wall on %d CPUs, %.2f of kubectl's median, with a client that costs nothing\n",
		mesh, floor.Seconds(), runtime.NumCPU(), floor.Seconds()/k.Seconds())
}

// noopApplies times applies to a cluster that matches, failing on any
// write, and reports the most server dry-runs a meshctl run made: objects
// in sync with their live copy need none.
func (m *benchMesh) noopApplies(b *testing.B) samples {
	s := samples{}
	dryRuns := 0
	for i := 0; i < benchRuns*b.N; i++ {
		o, res := m.meshctlApply(b)
		if res.Writes != 0 {
			b.Fatalf("meshctl's no-op apply wrote %d objects: %v", res.Writes, res.Summary)
		}
		dryRuns = max(dryRuns, res.DryRuns)
		s["meshctl"] = append(s["meshctl"], o.took)
		s["kubectl"] = append(s["kubectl"], m.kubectlApply(b).took)
		took, lib := m.libApply(b, apply.Options{})
		if lib.Writes != 0 {
			b.Fatalf("the library's no-op apply wrote %d objects: %v", lib.Writes, lib.Summary)
		}
		dryRuns = max(dryRuns, lib.DryRuns)
		s["meshctl-lib"] = append(s["meshctl-lib"], took)
	}
	s.report(b, m.set.Count())
	b.ReportMetric(0, "meshctl-writes")
	b.ReportMetric(float64(dryRuns), "meshctl-dry-runs")
	fmt.Printf("BenchmarkCluster: %s, no-op apply: 0 writes, at most %d server dry-runs per meshctl run (%d objects)\n", m.name, dryRuns, m.set.Count())
	m.countNoopRequests(b)
	return s
}

// countNoopRequests runs one more no-op `meshctl apply`, untimed, through a
// proxy that records its requests at the wire, and fails the benchmark on
// a write or on a kind listed more than once.
func (m *benchMesh) countNoopRequests(b *testing.B) {
	proxy := m.cluster.StartProxy(b)
	o := run(b, nil, m.meshctl, "apply", "-o", "json", "--kubeconfig="+proxy.Kubeconfig, "--meshctl-namespace="+m.lib.Namespace(), m.path)
	if o.code != 0 {
		b.Fatalf("meshctl apply through the proxy: exit %d\n%s", o.code, testbin.LastLines(o.stderr, 20))
	}
	byClass := map[string]int{}
	lists := map[string]int{}
	for _, r := range proxy.Take() {
		byClass[r.Class]++
		if r.Class == "write" {
			b.Errorf("no-op apply wrote: %s %s", r.Method, r.Path)
		}
		if r.Class == "list" {
			lists[r.Collection()]++
		}
	}
	for collection, n := range lists {
		if n > 1 {
			b.Errorf("no-op apply listed %s %d times", collection, n)
		}
	}
	fmt.Printf("BenchmarkCluster: %s, no-op apply at the wire: %d LISTs of %d kinds, %d GETs, %d dry-runs, %d writes, %d discovery requests\n",
		m.name, byClass["list"], len(lists), byClass["get"], byClass["dryrun"], byClass["write"], byClass["discovery"])
}

// noopDiffs times diffs against a cluster that matches.
func (m *benchMesh) noopDiffs(b *testing.B) samples {
	s := samples{}
	for i := 0; i < benchRuns*b.N; i++ {
		s["meshctl"] = append(s["meshctl"], m.meshctlDiff(b).took)
		s["kubectl"] = append(s["kubectl"], m.kubectlDiff(b).took)
		s["meshctl-lib"] = append(s["meshctl-lib"], m.libDiff(b))
	}
	s.report(b, m.set.Count())
	return s
}

// setupMesh renders the mesh at path for the cluster, with its inventory
// and certificates in the namespace bench-<name>, and applies it once, so
// that its Namespaces and CRDs exist. version must be the CLI's, or the
// two would rewrite each other's inventory.
func setupMesh(ctx context.Context, b *testing.B, cluster *testcluster.Cluster, name, path, version string) *benchMesh {
	sm, err := schema.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	// The CLI's limits rather than the test cluster's (200 QPS): with QPS
	// unset, apply.New sets meshctl's own.
	cfg := rest.CopyConfig(cluster.Config)
	cfg.QPS, cfg.Burst = 0, 0
	c, err := apply.New(cfg, "bench-"+name)
	if err != nil {
		b.Fatal(err)
	}
	m := &benchMesh{name: name, ctx: ctx, cluster: cluster, path: path, lib: c}
	if m.set, _, err = plan.ForCluster(ctx, sm, plan.Cluster{Client: c}, version); err != nil {
		b.Fatal(err)
	}
	m.file = writeYAML(b, m.set)
	m.created = len(m.resettable()) - 1 // less the inventory, which is not in the change set
	m.libApply(b, apply.Options{})
	return m
}

// warmUp runs each tool once, untimed, so that no tool's first timed run
// pays for a cold page cache or an empty discovery cache. kubectl runs
// with -v=3, at which client-go logs every wait over 50 ms in its
// client-side rate limiter; the count is printed, to show whether
// kubectl's fixed limits (5 QPS, burst 10 per REST client) held it back.
func (m *benchMesh) warmUp(b *testing.B) {
	m.meshctlApply(b)
	throttled := func(o outcome) int { return strings.Count(o.stderr, "Waited before sending request") }
	a := m.kubectlRun(b, "apply", "-v=3")
	d := m.kubectlRun(b, "diff", "-v=3")
	if a.code != 0 || d.code > 1 {
		b.Fatalf("kubectl warm-up: apply exit %d, diff exit %d\n%s", a.code, d.code, testbin.LastLines(a.stderr+d.stderr, 20))
	}
	fmt.Printf("BenchmarkCluster: %s, %d objects: kubectl's client-side rate limiter held a request back over 50 ms %d times in an apply, %d in a diff (-v=3)\n",
		m.name, m.set.Count(), throttled(a), throttled(d))
}

// writeYAML writes the render for kubectl; it holds private keys, so it
// lives in a 0600 file in a temporary directory.
func writeYAML(b *testing.B, set apply.Set) string {
	var docs []string
	for _, st := range set.Stages {
		for _, u := range st.Objects {
			y, err := yaml.Marshal(u.Object)
			if err != nil {
				b.Fatal(err)
			}
			docs = append(docs, string(y))
		}
	}
	path := filepath.Join(b.TempDir(), "mesh.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(docs, "---\n")), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}
