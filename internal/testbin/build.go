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

	steps := []struct {
		name string
		have []string
		run  func() error
	}{
		{"kube-apiserver, kube-controller-manager and kube-scheduler " + KubernetesVersion,
			[]string{p.APIServer, p.ControllerManager, p.Scheduler},
			func() error { return b.kubernetes(filepath.Join(src, "kubernetes"), partial) }},
		{"etcd " + EtcdVersion, []string{p.Etcd},
			func() error { return b.etcd(filepath.Join(src, "etcd"), p.Etcd) }},
		{"kwok " + KwokVersion, []string{p.Kwok},
			func() error { return b.kwok(partial) }},
		{"kwok stages (node/fast, node/heartbeat-with-lease, pod/fast)", []string{p.KwokStages},
			func() error { return b.stages(p.KwokStages) }},
	}
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
	final := In(dir)
	for i, f := range p.all() {
		if err := os.Rename(f, final.all()[i]); err != nil {
			return Paths{}, err
		}
	}
	_ = os.Remove(partial)
	fmt.Fprintf(log, "testbin: done in %s: %s\n", time.Since(b.start).Round(time.Second), dir)
	return Find()
}

type builder struct {
	ctx   context.Context
	log   io.Writer
	start time.Time
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

// kubernetes builds the three control-plane binaries from a scratch module
// that requires k8s.io/kubernetes and points each staging module, which
// kubernetes' own go.mod replaces with a local path, at its published
// version.
func (b *builder) kubernetes(src, out string) error {
	kdir, err := b.modDir("k8s.io/kubernetes@" + KubernetesVersion)
	if err != nil {
		return err
	}
	gomod, err := os.ReadFile(filepath.Join(kdir, "go.mod"))
	if err != nil {
		return err
	}
	var mod strings.Builder
	fmt.Fprintf(&mod, "module meshctl.local/testbin/kubernetes\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n", KubernetesVersion)
	n := 0
	for _, line := range strings.Split(string(gomod), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[1] == "=>" && strings.HasPrefix(f[2], "./staging/") {
			fmt.Fprintf(&mod, "\t%s => %s %s\n", f[0], f[0], StagingVersion)
			n++
		}
	}
	mod.WriteString(")\n")
	if n == 0 {
		return fmt.Errorf("found no staging replaces in k8s.io/kubernetes %s go.mod", KubernetesVersion)
	}
	tools := `//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
)
`
	if err := writeFiles(src, map[string]string{"go.mod": mod.String(), "tools.go": tools}); err != nil {
		return err
	}
	fmt.Fprintf(b.log, "testbin:   resolving modules (%d staging replaces)\n", n)
	if _, err := b.goCmd(src, nil, "mod", "tidy"); err != nil {
		return err
	}
	major, minor, _ := strings.Cut(strings.TrimPrefix(KubernetesVersion, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	var ld []string
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		ld = append(ld, "-X", pkg+".gitVersion="+KubernetesVersion, "-X", pkg+".gitMajor="+major,
			"-X", pkg+".gitMinor="+minor, "-X", pkg+".gitTreeState=clean")
	}
	fmt.Fprintf(b.log, "testbin:   compiling (the slow part: several minutes on 2 cores)\n")
	_, err = b.goCmd(src, nil, "build", "-o", out+string(os.PathSeparator),
		"-ldflags", "-s -w "+strings.Join(ld, " "),
		"k8s.io/kubernetes/cmd/kube-apiserver",
		"k8s.io/kubernetes/cmd/kube-controller-manager",
		"k8s.io/kubernetes/cmd/kube-scheduler")
	return err
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
