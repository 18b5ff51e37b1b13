package plan_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

// bigMesh is the default mesh plus n services, each with a route and a
// retry budget, spread over 10 meshed namespaces, written to a file.
func bigMesh(b *testing.B, n int) string {
	var src strings.Builder
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&src, "namespaces: \"shop-%d\": {inject: \"enabled\", create: true}\n", i)
	}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&src, "services: \"shop-%d/svc-%d\": {routes: [{name: \"GET /items\", method: \"GET\", pathRegex: \"/items(/.*)?\", isRetryable: true, timeout: \"300ms\"}], retryBudget: {}}\n", i%10, i)
	}
	path := filepath.Join(b.TempDir(), "mesh.cue")
	if err := os.WriteFile(path, []byte(src.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// buildMeshctl builds the CLI, so that meshctl is timed as a user runs it:
// a process that loads mesh.cue, renders and applies.
func buildMeshctl(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "meshctl")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/meshctl").CombinedOutput()
	if err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// run runs a command and returns its exit code.
func run(b *testing.B, name string, args ...string) int {
	out, err := exec.Command(name, args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		if ee.ExitCode() > 1 {
			b.Fatalf("%s %s: exit %d\n%s", filepath.Base(name), strings.Join(args, " "), ee.ExitCode(), out)
		}
		return ee.ExitCode()
	} else if err != nil {
		b.Fatalf("%s: %v\n%s", name, err, out)
	}
	return 0
}

// BenchmarkCluster measures meshctl against kubectl on the same rendered
// objects and the same real API server: a first apply (every object but
// the Namespaces and CRDs deleted beforehand, untimed), a no-op apply and
// a no-op diff. kubectl runs as `kubectl apply --server-side` and
// `kubectl diff --server-side` on the YAML of the same render.
func BenchmarkCluster(b *testing.B) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		b.Fatal("kubectl is needed for the comparison: ", err)
	}
	cluster := shared.Get(b)
	meshctl := buildMeshctl(b)
	meshes := []struct {
		name string
		path func() string
	}{
		{"default", func() string { return "../mesh.cue" }},
		{"1000-services", func() string { return bigMesh(b, 1000) }},
	}
	for _, mc := range meshes {
		path := mc.path()
		m, err := schema.Load(path)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		cfg, err := clientcmd.BuildConfigFromFlags("", cluster.Kubeconfig)
		if err != nil {
			b.Fatal(err)
		}
		c, err := apply.New(cfg, "bench-"+mc.name)
		if err != nil {
			b.Fatal(err)
		}
		set, _, err := plan.ForCluster(ctx, m, plan.Cluster{Client: c}, "bench")
		if err != nil {
			b.Fatal(err)
		}
		file := writeYAML(b, set)
		kube := c.Kube()
		opts := apply.Options{Prune: true}
		reset := func() {
			b.StopTimer()
			deleteObjects(b, kube, set, c.Namespace())
			b.StartTimer()
		}
		mustApply := func() *apply.Result {
			res, err := c.Apply(ctx, set, opts)
			if err != nil {
				b.Fatal(err)
			}
			return res
		}
		kubectlRun := func(args ...string) int {
			return run(b, kubectl, append(args, "--kubeconfig="+cluster.Kubeconfig, "-f", file)...)
		}
		kubectlApply := func() {
			if code := kubectlRun("apply", "--server-side", "--force-conflicts", "--field-manager=kubectl-bench"); code != 0 {
				b.Fatalf("kubectl apply exited %d", code)
			}
		}
		cli := func(args ...string) int {
			return run(b, meshctl, append(args, "--kubeconfig="+cluster.Kubeconfig, "--namespace="+c.Namespace(), path)...)
		}
		mustApply()

		b.Run(mc.name+"/meshctl/first-apply", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				reset()
				if code := cli("apply"); code != 0 {
					b.Fatalf("meshctl apply exited %d", code)
				}
			}
			b.ReportMetric(float64(set.Count()), "objects")
		})
		b.Run(mc.name+"/meshctl/noop-apply", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if code := cli("apply"); code != 0 {
					b.Fatalf("meshctl apply exited %d", code)
				}
			}
		})
		b.Run(mc.name+"/meshctl/noop-diff", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if code := cli("diff"); code != 0 {
					b.Fatalf("meshctl diff exited %d on a no-op", code)
				}
			}
		})
		// The library alone: no process start, no CUE, no render.
		b.Run(mc.name+"/meshctl-lib/noop-apply", func(b *testing.B) {
			writes := 0
			for i := 0; i < b.N; i++ {
				writes += mustApply().Writes
			}
			b.ReportMetric(float64(writes)/float64(b.N), "writes/op")
		})
		b.Run(mc.name+"/meshctl-lib/noop-diff", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				d, err := c.Diff(ctx, set, apply.DiffOptions{})
				if err != nil || d.Changed() {
					b.Fatalf("diff: changed=%v err=%v", d != nil && d.Changed(), err)
				}
			}
		})
		b.Run(mc.name+"/kubectl/first-apply", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				reset()
				kubectlApply()
			}
		})
		b.Run(mc.name+"/kubectl/noop-apply", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				kubectlApply()
			}
		})
		b.Run(mc.name+"/kubectl/noop-diff", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if code := kubectlRun("diff", "--server-side", "--force-conflicts", "--field-manager=kubectl-bench"); code != 0 {
					b.Fatalf("kubectl diff exited %d on a no-op", code)
				}
			}
		})
	}
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

// deleteObjects removes everything but Namespaces and CRDs (whose deletion
// is slow and would dominate), and the inventory, so the next apply is a
// first apply.
func deleteObjects(b *testing.B, kube client.Client, set apply.Set, invNamespace string) {
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(16)
	for _, st := range set.Stages {
		for _, u := range st.Objects {
			if u.GetKind() == "Namespace" || u.GetKind() == "CustomResourceDefinition" {
				continue
			}
			g.Go(func() error {
				err := kube.Delete(ctx, u.DeepCopy(), client.PropagationPolicy("Background"))
				if apierrors.IsNotFound(err) {
					return nil
				}
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: invNamespace, Name: apply.InventoryName}}
	if err := kube.Delete(context.Background(), cm); err != nil && !apierrors.IsNotFound(err) {
		b.Fatal(err)
	}
}
