// Command demo runs meshctl's main job on a throwaway local cluster:
//
//  1. start etcd, kube-apiserver, the controller manager, the scheduler and
//     kwok with 3 fake nodes in 3 zones, all on 127.0.0.1;
//  2. meshctl apply --wait, stage by stage;
//  3. change an object behind meshctl's back: meshctl diff shows it (exit 1);
//  4. meshctl apply restores it: meshctl diff exits 0;
//  5. start meshctl reconcile, change the object again, and watch the loop
//     correct it live, with the latency from the edit to the correction;
//  6. meshctl status shows the loop in sync; SIGTERM stops it cleanly;
//  7. tear everything down.
//
// It runs the meshctl binary given by -meshctl, as a user would.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshctl/meshctl/internal/testcluster"
)

func main() {
	meshctl := flag.String("meshctl", "bin/meshctl", "the meshctl binary")
	mesh := flag.String("mesh", "mesh.cue", "the mesh to apply")
	flag.Parse()
	if err := run(*meshctl, *mesh); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("\n\033[1m==> %s\033[0m\n", fmt.Sprintf(format, args...))
}

func run(meshctl, mesh string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	step("Starting a throwaway cluster on 127.0.0.1: 3 fake nodes in zones zone-a, zone-b, zone-c")
	fmt.Println("    Pods are simulated by kwok: they are scheduled and marked Running, but run no containers.")
	c, err := testcluster.Start(ctx, testcluster.Options{Full: true, Nodes: 3, Log: os.Stdout})
	if err != nil {
		return err
	}
	defer func() {
		step("Tearing down the cluster")
		c.Stop()
		fmt.Println("    done")
	}()
	kc := "--kubeconfig=" + c.Kubeconfig

	step("meshctl apply --wait %s", mesh)
	if code := sh(meshctl, "apply", "--wait", "--timeout=3m", kc, mesh); code != 0 {
		return fmt.Errorf("meshctl apply exited %d", code)
	}
	deps, err := c.Client.AppsV1().Deployments("linkerd").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, d := range deps.Items {
		fmt.Printf("    %-26s %d/%d available\n", d.Name, d.Status.AvailableReplicas, d.Status.Replicas)
	}

	step("meshctl check %s: linkerd check's checks, measured against mesh.cue", mesh)
	if code := sh(meshctl, "check", kc, mesh); code != 0 {
		return fmt.Errorf("meshctl check exited %d, want 0", code)
	}

	step("Changing linkerd-identity's log level behind meshctl's back (as kubectl edit would)")
	d, err := c.Client.AppsV1().Deployments("linkerd").Get(ctx, "linkerd-identity", metav1.GetOptions{})
	if err != nil {
		return err
	}
	changed := false
	for i, a := range d.Spec.Template.Spec.Containers[0].Args {
		if a == "-log-level=info" {
			d.Spec.Template.Spec.Containers[0].Args[i] = "-log-level=debug"
			changed = true
		}
	}
	if !changed {
		return errors.New("linkerd-identity has no -log-level=info argument to change")
	}
	if _, err := c.Client.AppsV1().Deployments("linkerd").Update(ctx, d, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		return err
	}

	step("meshctl diff %s: shows the drift and exits 1", mesh)
	if code := sh(meshctl, "diff", kc, mesh); code != 1 {
		return fmt.Errorf("meshctl diff exited %d, want 1", code)
	}
	fmt.Println("    exit code 1: differences")

	step("meshctl apply %s: restores it", mesh)
	if code := sh(meshctl, "apply", kc, mesh); code != 0 {
		return fmt.Errorf("meshctl apply exited %d", code)
	}

	step("meshctl diff %s: in sync", mesh)
	if code := sh(meshctl, "diff", kc, mesh); code != 0 {
		return fmt.Errorf("meshctl diff exited %d, want 0", code)
	}
	fmt.Println("    exit code 0: the cluster matches mesh.cue")

	return reconcileDemo(ctx, c, meshctl, mesh)
}

// reconcileDemo runs the loop and shows it correct an edit live.
func reconcileDemo(ctx context.Context, c *testcluster.Cluster, meshctl, mesh string) error {
	health, err := testcluster.FreeAddr()
	if err != nil {
		return err
	}
	metrics, err := testcluster.FreeAddr()
	if err != nil {
		return err
	}
	step("meshctl reconcile %s: the loop keeps the cluster matching the file", mesh)
	args := []string{"reconcile", "--kubeconfig=" + c.Kubeconfig, "--health-addr=" + health, "--metrics-addr=" + metrics, mesh}
	fmt.Printf("$ %s %s &\n", meshctl, strings.Join(args, " "))
	loop := exec.Command(meshctl, args...)
	loop.Stdout = os.Stdout
	loop.Stderr = &prefixer{prefix: "    [reconcile] "}
	if err := loop.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- loop.Wait() }()
	defer func() {
		if loop.ProcessState == nil {
			_ = loop.Process.Kill()
			<-exited
		}
	}()
	if err := waitFor(ctx, exited, 2*time.Minute, func() bool { return httpOK("http://" + health + "/readyz") }); err != nil {
		return fmt.Errorf("meshctl reconcile never became ready: %w", err)
	}

	step("Changing linkerd-identity's log level behind meshctl's back again")
	d, err := c.Client.AppsV1().Deployments("linkerd").Get(ctx, "linkerd-identity", metav1.GetOptions{})
	if err != nil {
		return err
	}
	args0 := slices.Clone(d.Spec.Template.Spec.Containers[0].Args)
	for i, a := range d.Spec.Template.Spec.Containers[0].Args {
		if a == "-log-level=info" {
			d.Spec.Template.Spec.Containers[0].Args[i] = "-log-level=debug"
		}
	}
	began := time.Now()
	edited, err := c.Client.AppsV1().Deployments("linkerd").Update(ctx, d, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
	if err != nil {
		return err
	}
	// Watched from the edit on: only what happened after it counts.
	w, err := c.Client.AppsV1().Deployments("linkerd").Watch(ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=linkerd-identity", ResourceVersion: edited.ResourceVersion})
	if err != nil {
		return err
	}
	defer w.Stop()
	fmt.Printf("    edited: resourceVersion %s, -log-level=debug\n", edited.ResourceVersion)
	timeout := time.After(time.Minute)
	for corrected := false; !corrected; {
		select {
		case ev := <-w.ResultChan():
			got, ok := ev.Object.(*appsv1.Deployment)
			if !ok || got.ResourceVersion == edited.ResourceVersion {
				continue
			}
			if slices.Equal(got.Spec.Template.Spec.Containers[0].Args, args0) {
				fmt.Printf("    corrected by the loop %s after the edit: resourceVersion %s, -log-level=info again\n",
					time.Since(began).Round(time.Millisecond), got.ResourceVersion)
				corrected = true
			}
		case <-timeout:
			return errors.New("the loop did not correct the edit within a minute")
		case err := <-exited:
			return fmt.Errorf("meshctl reconcile exited: %v", err)
		}
	}

	step("meshctl status: the loop's record")
	if code := sh(meshctl, "status", "--kubeconfig="+c.Kubeconfig); code != 0 {
		return fmt.Errorf("meshctl status exited %d", code)
	}

	step("Stopping the loop with SIGTERM")
	_ = loop.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			return fmt.Errorf("meshctl reconcile: %v", err)
		}
		fmt.Println("    stopped cleanly (exit 0)")
	case <-time.After(time.Minute):
		return errors.New("meshctl reconcile did not stop within a minute of SIGTERM")
	}
	return nil
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitFor polls cond until it holds, the process exits, or timeout.
func waitFor(ctx context.Context, exited chan error, timeout time.Duration, cond func() bool) error {
	deadline := time.After(timeout)
	for !cond() {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("exited: %v", err)
		case <-deadline:
			return fmt.Errorf("not within %s", timeout)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// prefixer indents another process's lines.
type prefixer struct {
	prefix string
	buf    []byte
}

func (p *prefixer) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			return len(b), nil
		}
		fmt.Println(p.prefix + string(p.buf[:i]))
		p.buf = p.buf[i+1:]
	}
}

// sh runs a command with its output shown (unchanged lines folded) and
// returns its exit code.
func sh(name string, args ...string) int {
	fmt.Printf("$ %s %s\n", name, strings.Join(args, " "))
	cmd := exec.Command(name, args...)
	cmd.Stdout = &folder{}
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	cmd.Stdout.(*folder).flush()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return -1
	}
	return 0
}

// folder prints output line by line, folding runs of "unchanged" lines
// into one count so the demo stays readable.
type folder struct {
	buf       []byte
	unchanged int
}

func (f *folder) Write(p []byte) (int, error) {
	f.buf = append(f.buf, p...)
	for {
		i := strings.IndexByte(string(f.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(f.buf[:i])
		f.buf = f.buf[i+1:]
		if strings.HasSuffix(line, " unchanged") && strings.Count(line, " ") == 1 {
			f.unchanged++
			continue
		}
		f.flushUnchanged()
		fmt.Println(line)
	}
}

func (f *folder) flushUnchanged() {
	if f.unchanged > 0 {
		fmt.Printf("    (%d unchanged objects)\n", f.unchanged)
		f.unchanged = 0
	}
}

func (f *folder) flush() {
	f.flushUnchanged()
	if len(f.buf) > 0 {
		fmt.Println(string(f.buf))
	}
}
