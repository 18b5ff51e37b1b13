package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/drift"
	"github.com/meshctl/meshctl/drift/source"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
)

// pipelineMesh meshes shop, whose pods the cluster autoscaler may evict,
// and splits shop/web (headless on the test's cluster) and shop/api, to a
// backend that does not exist.
const pipelineMesh = `namespaces: shop: {inject: "enabled", safeToEvict: true}
services: "shop/web": {port: 80, split: {web: 90, "web-v2": 10}}
services: "shop/api": {port: 80, split: {api: 90, "api-v2": 10}}
`

// pipelineWarnings are what every entry point must say of pipelineMesh on
// the test's cluster: shop/web is headless, and shop/api-v2 does not exist.
var pipelineWarnings = []string{"Service shop/web is headless", "split backend Service shop/api-v2 does not exist"}

// TestEveryEntryPointRunsOneSequence holds the entry points of the apply
// verb together: the CLI on one cluster, the CLI on a fleet (the same mesh
// with one cluster declared) and the reconcile loop, each in turn on a
// cluster of the test's own that does not serve MutatingAdmissionPolicy,
// through a proxy that records every request. Each
//   - gives the same warnings (a headless Service, a split backend that
//     does not exist);
//   - runs the same after-apply step: the safeToEvict fallback annotates
//     the pod template of a Deployment created just before it ran;
//   - once in sync, asks the server for reads only: no write, no dry-run,
//     and no kind listed twice.
func TestEveryEntryPointRunsOneSequence(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{Full: true, Nodes: 1, APIServerFlags: []string{
		"--runtime-config=admissionregistration.k8s.io/v1/mutatingadmissionpolicies=false,admissionregistration.k8s.io/v1/mutatingadmissionpolicybindings=false",
		"--disable-admission-plugins=MutatingAdmissionPolicy",
	}})
	ctx := t.Context()
	kube := cluster.Client
	// The app's own manifests: its namespace, a headless Service.
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, svc := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 80}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "shop"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}},
	} {
		if _, err := kube.CoreV1().Services("shop").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	proxy := cluster.StartProxy(t)
	kc := "--kubeconfig=" + proxy.Kubeconfig
	dir := t.TempDir()
	single := writeMesh(t, filepath.Join(dir), pipelineMesh)
	fleetDir := filepath.Join(dir, "fleet")
	fleet := writeMesh(t, mkdir(t, fleetDir), pipelineMesh+`clusters: one: context: "proxy"`+"\ncontrolPlane: identity: trustAnchor: keyCluster: \"one\"\n")

	for _, tc := range []struct {
		name, mesh, prefix string
	}{
		{"the CLI on one cluster", single, ""},
		{"the CLI on a fleet", fleet, "[one] "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			workload := createWorkload(t, kube, tc.name)
			code, out, errOut := runCLI("apply", kc, tc.mesh)
			if code != exitOK {
				t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
			}
			for _, w := range pipelineWarnings {
				if !hasLine(errOut, tc.prefix+"warning: ", w) {
					t.Errorf("no warning about %q on stderr:\n%s", w, errOut)
				}
			}
			annotatedBySafeToEvict(t, kube, workload)
			proxy.Take()
			code, out, errOut = runCLI("apply", kc, tc.mesh)
			if code != exitOK {
				t.Fatalf("no-op apply: exit %d\n%s%s", code, out, errOut)
			}
			onlyReads(t, "no-op apply", proxy.Take())
		})
	}

	t.Run("the reconcile loop", func(t *testing.T) {
		workload := createWorkload(t, kube, "the loop")
		cfg, err := clientcmd.BuildConfigFromFlags("", proxy.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		c, err := apply.New(cfg, "")
		if err != nil {
			t.Fatal(err)
		}
		src, err := source.Parse("", single, "", t.TempDir(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		metrics := drift.NewMetrics()
		l, err := drift.New(drift.Options{Config: cfg, Client: c, Source: src, Version: version, Interval: 2 * time.Second,
			Poll: 200 * time.Millisecond, Metrics: metrics, MetricsAddr: "0", HealthAddr: "0", Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		lctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { _ = l.Run(lctx) })
		defer wg.Wait()
		defer cancel()
		var st *drift.Status
		until(t, "the loop to record the mesh in sync", func() bool {
			st, _ = drift.ReadStatus(ctx, c.Kube(), c.Namespace())
			return st != nil && st.State == drift.StateInSync && len(st.Warnings) > 0
		})
		for _, w := range pipelineWarnings {
			if !slices.ContainsFunc(st.Warnings, func(s string) bool { return strings.Contains(s, w) }) {
				t.Errorf("the loop's status has no warning about %q: %q", w, st.Warnings)
			}
		}
		annotatedBySafeToEvict(t, kube, workload)
		// One whole resync, at the wire.
		resyncs := func() float64 {
			return counter(t, metrics, "meshctl_reconciles_total", `trigger="resync"`, `result="success"`)
		}
		base := resyncs()
		until(t, "a resync", func() bool { return resyncs() > base })
		proxy.Take()
		base = resyncs()
		until(t, "the next resync", func() bool { return resyncs() > base })
		onlyReads(t, "a resync in sync", proxy.Take())
	})
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// createWorkload creates a Deployment in shop, as the app's manifests
// would, for an entry point's after-apply step to find.
func createWorkload(t *testing.T, kube kubernetes.Interface, name string) string {
	t.Helper()
	n := strings.ToLower(strings.ReplaceAll(name, " ", "-"))
	labels := map[string]string{"app": n}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: "shop"}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}}}},
	}}
	if _, err := kube.AppsV1().Deployments("shop").Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return n
}

// annotatedBySafeToEvict checks, on the server, that the fallback's field
// manager set the annotation on the Deployment's pod template.
func annotatedBySafeToEvict(t *testing.T, kube kubernetes.Interface, name string) {
	t.Helper()
	d, err := kube.AppsV1().Deployments("shop").Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"]; got != "true" {
		t.Errorf("Deployment shop/%s: the template's safe-to-evict is %q, want true", name, got)
	}
	if !slices.ContainsFunc(d.ManagedFields, func(f metav1.ManagedFieldsEntry) bool { return f.Manager == plan.SafeToEvictManager }) {
		t.Errorf("Deployment shop/%s: no field of %s", name, plan.SafeToEvictManager)
	}
}

// onlyReads fails on a write, a dry-run or a kind listed twice.
func onlyReads(t *testing.T, what string, reqs []testcluster.Request) {
	t.Helper()
	lists := map[string]int{}
	for _, r := range reqs {
		switch r.Class {
		case "write", "dryrun":
			t.Errorf("%s: %s %s %s", what, r.Class, r.Method, r.Path)
		case "list":
			lists[r.Collection()]++
		}
	}
	if len(lists) == 0 {
		t.Errorf("%s made no LIST at all (%d requests)", what, len(reqs))
	}
	for collection, n := range lists {
		if n > 1 {
			t.Errorf("%s listed %s %d times, want once", what, collection, n)
		}
	}
}

// hasLine reports a line of text that starts with prefix and holds s.
func hasLine(text, prefix, s string) bool {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) && strings.Contains(line, s) {
			return true
		}
	}
	return false
}

func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// counter sums the samples of a counter of the loop's registry whose
// labels hold every one of with (`name="value"`).
func counter(t *testing.T, m *drift.Metrics, name string, with ...string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, metric := range f.GetMetric() {
			var labels []string
			for _, l := range metric.GetLabel() {
				labels = append(labels, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			for _, w := range with {
				if !slices.Contains(labels, w) {
					continue next
				}
			}
			sum += metric.GetCounter().GetValue()
		}
	}
	return sum
}
