package testbin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Build makes sure the binaries exist in Dir, building whatever is missing
// from the Go module proxy. Progress goes to log.
func Build(ctx context.Context, log io.Writer) (Paths, error) {
	if p, err := Find(); err == nil {
		fmt.Fprintf(log, "testbin: cached in %s\n", p.Dir)
		return p, nil
	}
	dir := Dir()
	partial := dir + ".partial"
	src := dir + ".src"
	if err := os.MkdirAll(partial, 0o755); err != nil {
		return Paths{}, err
	}
	p := In(partial)
	// Files a previous, interrupted build finished are kept; so are any
	// already in dir.
	for i, f := range In(dir).all() {
		if exists(f) && !exists(p.all()[i]) {
			if err := os.Link(f, p.all()[i]); err != nil {
				return Paths{}, err
			}
		}
	}
	b := &builder{ctx: ctx, log: log, start: time.Now()}
	steps := b.steps(p, src)
	for i, s := range steps {
		if exists(s.have...) {
			fmt.Fprintf(log, "testbin: [%d/%d] %s: already built\n", i+1, len(steps), s.name)
			continue
		}
		fmt.Fprintf(log, "testbin: [%d/%d] building %s\n", i+1, len(steps), s.name)
		if err := s.run(); err != nil {
			return Paths{}, fmt.Errorf("building %s: %w", s.name, err)
		}
	}
	// Move the files in one by one: dir may be a directory of the user's
	// ($MESHCTL_TESTBIN), so it is never removed or replaced whole.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Paths{}, err
	}
	if err := moveInto(p, In(dir)); err != nil {
		return Paths{}, err
	}
	_ = os.Remove(partial)
	fmt.Fprintf(log, "testbin: done in %s: %s\n", time.Since(b.start).Round(time.Second), dir)
	return Find()
}

// moveInto moves the files of from into to, one by one.
func moveInto(from, to Paths) error {
	dst := to.all()
	for i, f := range from.all() {
		if sameFile(f, dst[i]) {
			// Linked in from dir by Build: rename(2) between two links
			// to one file does nothing, and would leave it behind.
			if err := os.Remove(f); err != nil {
				return err
			}
			continue
		}
		if err := os.Rename(f, dst[i]); err != nil {
			return err
		}
	}
	return nil
}

type builder struct {
	ctx   context.Context
	log   io.Writer
	start time.Time
	// kubeModule is set once the k8s.io/kubernetes scratch module is
	// written and tidied in this run.
	kubeModule bool
}

// step builds the files in have; Build skips it when they all exist.
type step struct {
	name string
	have []string
	run  func() error
}

// steps are the build steps for the files in p, with sources under src.
func (b *builder) steps(p Paths, src string) []step {
	kube := filepath.Join(src, "kubernetes")
	return []step{
		{"kube-apiserver, kube-controller-manager and kube-scheduler " + KubernetesVersion,
			[]string{p.APIServer, p.ControllerManager, p.Scheduler},
			func() error { return b.kubernetes(kube, p.Dir, controlPlaneCmds...) }},
		// A step of its own, so that a cache from before kubectl joined it
		// builds only kubectl.
		{"kubectl " + KubernetesVersion, []string{p.Kubectl},
			func() error { return b.kubernetes(kube, p.Dir, kubectlCmd) }},
		{"etcd " + EtcdVersion, []string{p.Etcd},
			func() error { return b.etcd(filepath.Join(src, "etcd"), p.Etcd) }},
		{"kwok " + KwokVersion, []string{p.Kwok},
			func() error { return b.kwok(p.Dir) }},
		{"kwok stages (node/fast, node/heartbeat-with-lease, pod/fast)", []string{p.KwokStages},
			func() error { return b.stages(p.KwokStages) }},
		{"prometheus " + PrometheusVersion, []string{p.Prometheus},
			func() error { return b.prometheus(filepath.Join(src, "prometheus"), p.Prometheus) }},
	}
}

func sameFile(a, b string) bool {
	ai, err := os.Stat(a)
	if err != nil {
		return false
	}
	bi, err := os.Stat(b)
	return err == nil && os.SameFile(ai, bi)
}

func exists(files ...string) bool {
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return false
		}
	}
	return true
}

// goCmd runs the go command in dir, printing a heartbeat every 30 s because
// compiling Kubernetes is quiet for minutes at a time.
func (b *builder) goCmd(dir string, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(b.ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		began := time.Now()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(b.log, "testbin:   still running go %s (%s)\n", args[0], time.Since(began).Round(time.Second))
			}
		}
	}()
	err := cmd.Run()
	close(done)
	if err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, LastLines(stderr.String(), 40))
	}
	return stdout.Bytes(), nil
}

// LastLines is the last n lines of s, for quoting a log in an error.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func writeFiles(dir string, files map[string]string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// modDir downloads a module and returns its directory in the module cache.
func (b *builder) modDir(mod string) (string, error) {
	out, err := b.goCmd(os.TempDir(), nil, "mod", "download", "-json", mod)
	if err != nil {
		return "", err
	}
	var info struct{ Dir, GoMod, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", err
	}
	if info.Error != "" {
		return "", fmt.Errorf("%s: %s", mod, info.Error)
	}
	return info.Dir, nil
}

// The commands built from k8s.io/kubernetes. They share one scratch module,
// so kubectl comes from the same sources as the API server.
var controlPlaneCmds = []string{
	"k8s.io/kubernetes/cmd/kube-apiserver",
	"k8s.io/kubernetes/cmd/kube-controller-manager",
	"k8s.io/kubernetes/cmd/kube-scheduler",
}

const kubectlCmd = "k8s.io/kubernetes/cmd/kubectl"

// kubernetes builds cmds, commands of k8s.io/kubernetes, into the directory
// out, from the scratch module in src.
func (b *builder) kubernetes(src, out string, cmds ...string) error {
	if err := b.kubernetesModule(src); err != nil {
		return err
	}
	fmt.Fprintf(b.log, "testbin:   compiling (the slow part: several minutes on 2 cores)\n")
	args := []string{"build", "-o", out + string(os.PathSeparator), "-ldflags", "-s -w " + kubernetesLDFlags()}
	_, err := b.goCmd(src, nil, append(args, cmds...)...)
	return err
}

// kubernetesModule writes and tidies, once per build, a scratch module that
// requires k8s.io/kubernetes and lists all four commands as its tools.
func (b *builder) kubernetesModule(src string) error {
	if b.kubeModule {
		return nil
	}
	kdir, err := b.modDir("k8s.io/kubernetes@" + KubernetesVersion)
	if err != nil {
		return err
	}
	gomod, err := os.ReadFile(filepath.Join(kdir, "go.mod"))
	if err != nil {
		return err
	}
	mod, n, err := kubernetesGoMod(gomod)
	if err != nil {
		return err
	}
	// Modules written before the tool directives listed the commands in a
	// tools.go, which the tool block replaces.
	if err := os.Remove(filepath.Join(src, "tools.go")); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := writeFiles(src, map[string]string{"go.mod": mod}); err != nil {
		return err
	}
	fmt.Fprintf(b.log, "testbin:   resolving modules (%d staging replaces)\n", n)
	if _, err := b.goCmd(src, nil, "mod", "tidy"); err != nil {
		return err
	}
	b.kubeModule = true
	return nil
}

// kubernetesGoMod is the scratch module's go.mod, given k8s.io/kubernetes'
// own: it points each staging module, which kubernetes replaces with a
// local path, at its published version, and lists the commands as tools
// (a main package cannot be imported from a tools.go). n is the number of
// staging replaces.
func kubernetesGoMod(kubernetesMod []byte) (mod string, n int, err error) {
	var w strings.Builder
	fmt.Fprintf(&w, "module meshctl.local/testbin/kubernetes\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n", KubernetesVersion)
	for _, line := range strings.Split(string(kubernetesMod), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[1] == "=>" && strings.HasPrefix(f[2], "./staging/") {
			fmt.Fprintf(&w, "\t%s => %s %s\n", f[0], f[0], StagingVersion)
			n++
		}
	}
	if n == 0 {
		return "", 0, fmt.Errorf("found no staging replaces in k8s.io/kubernetes %s go.mod", KubernetesVersion)
	}
	w.WriteString(")\n\ntool (\n")
	for _, c := range slices.Concat(controlPlaneCmds, []string{kubectlCmd}) {
		fmt.Fprintf(&w, "\t%s\n", c)
	}
	w.WriteString(")\n")
	return w.String(), n, nil
}

// kubernetesLDFlags stamp KubernetesVersion where `--version` and
// `kubectl version` read it.
func kubernetesLDFlags() string {
	major, minor, _ := strings.Cut(strings.TrimPrefix(KubernetesVersion, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	var ld []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		ld = append(ld, "-X", pkg+".gitVersion="+KubernetesVersion, "-X", pkg+".gitMajor="+major,
			"-X", pkg+".gitMinor="+minor, "-X", pkg+".gitTreeState=clean")
	}
	return strings.Join(ld, " ")
}

// etcd builds etcd's server main package from a scratch module: the etcd
// module itself carries replace directives, so `go install @version` refuses it.
func (b *builder) etcd(src, out string) error {
	mod := fmt.Sprintf("module meshctl.local/testbin/etcd\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n", EtcdVersion)
	tools := "//go:build tools\n\npackage tools\n\nimport _ \"go.etcd.io/etcd/server/v3/etcdmain\"\n"
	if err := writeFiles(src, map[string]string{"go.mod": mod, "tools.go": tools}); err != nil {
		return err
	}
	if _, err := b.goCmd(src, nil, "mod", "tidy"); err != nil {
		return err
	}
	_, err := b.goCmd(src, nil, "build", "-o", out, "-ldflags", "-s -w", "go.etcd.io/etcd/server/v3")
	return err
}

func (b *builder) kwok(out string) error {
	_, err := b.goCmd(os.TempDir(), []string{"GOBIN=" + out, "GOFLAGS="}, "install", "-ldflags", "-s -w", "sigs.k8s.io/kwok/cmd/kwok@"+KwokVersion)
	return err
}

// prometheus builds the Prometheus server into out, by way of GOBIN=bin:
// go install names the binary after its package, and out carries the
// version. The web UI's assets are not in the module (they are built with
// npm), so the UI pages are missing; the HTTP API, all tests need, is not.
func (b *builder) prometheus(bin, out string) error {
	ld := "-s -w -X github.com/prometheus/common/version.Version=" + PrometheusVersion
	fmt.Fprintf(b.log, "testbin:   compiling (several minutes on 2 cores)\n")
	_, err := b.goCmd(os.TempDir(), []string{"GOBIN=" + bin, "GOFLAGS="}, "install", "-ldflags", ld,
		"github.com/prometheus/prometheus/cmd/prometheus@"+PrometheusVersion)
	if err != nil {
		return err
	}
	return os.Rename(filepath.Join(bin, "prometheus"), out)
}

// stages copies kwok's shipped node and pod stages into one file.
func (b *builder) stages(out string) error {
	dir, err := b.modDir("sigs.k8s.io/kwok@" + KwokVersion)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, f := range []string{
		"node/fast/node-initialize.yaml",
		"node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
		"pod/fast/pod-ready.yaml",
		"pod/fast/pod-complete.yaml",
		"pod/fast/pod-delete.yaml",
	} {
		data, err := os.ReadFile(filepath.Join(dir, "kustomize", "stage", f))
		if err != nil {
			return err
		}
		fmt.Fprintf(&buf, "---\n# kwok %s kustomize/stage/%s\n", KwokVersion, f)
		buf.Write(bytes.TrimSpace(data))
		buf.WriteString("\n")
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}
