// Command demo runs meshctl's main job on a throwaway local cluster:
//
//  1. start etcd, kube-apiserver, the controller manager, the scheduler and
//     kwok with 3 fake nodes in 3 zones, all on 127.0.0.1;
//  2. meshctl apply --wait, stage by stage;
//  3. change an object behind meshctl's back: meshctl diff shows it (exit 1);
//  4. meshctl apply restores it: meshctl diff exits 0;
//  5. tear everything down.
//
// It runs the meshctl binary given by -meshctl, as a user would.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

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
	return nil
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
