package testbin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDirAndFind(t *testing.T) {
	t.Setenv(EnvDir, "")
	t.Setenv("XDG_CACHE_HOME", "/cache")
	if got, want := Dir(), "/cache/meshctl/testbin/k8s-"+KubernetesVersion+"_etcd-"+EtcdVersion+"_kwok-"+KwokVersion; got != want {
		t.Errorf("Dir() = %q, want %q", got, want)
	}

	dir := t.TempDir()
	t.Setenv(EnvDir, dir)
	_, err := Find()
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "make testbin") {
		t.Fatalf("Find on an empty directory: %v", err)
	}
	for _, f := range In(dir).all() {
		if err := os.WriteFile(f, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p, err := Find()
	if err != nil || p.APIServer != filepath.Join(dir, "kube-apiserver") || p.Kubectl != filepath.Join(dir, "kubectl") ||
		p.Prometheus != filepath.Join(dir, "prometheus-"+PrometheusVersion) {
		t.Fatalf("Find on a full directory: %+v, %v", p, err)
	}
}

// A cache built before kubectl, or Prometheus, joined it lacks only that
// file: Find says so, and Build's only step left to run is its own.
func TestCacheWithoutOne(t *testing.T) {
	tests := []struct {
		name    string
		missing func(Paths) string
		step    string
	}{
		{"kubectl", func(p Paths) string { return p.Kubectl }, "kubectl " + KubernetesVersion},
		{"prometheus", func(p Paths) string { return p.Prometheus }, "prometheus " + PrometheusVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv(EnvDir, dir)
			p := In(dir)
			missing := tc.missing(p)
			for _, f := range p.all() {
				if f == missing {
					continue
				}
				if err := os.WriteFile(f, nil, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Find()
			if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), missing+" not found") || !strings.Contains(err.Error(), "make testbin") {
				t.Fatalf("Find without %s: %v", tc.name, err)
			}
			var left []string
			for _, s := range (&builder{}).steps(p, t.TempDir()) {
				if !exists(s.have...) {
					left = append(left, s.name)
				}
			}
			if diff := cmp.Diff([]string{tc.step}, left); diff != "" {
				t.Errorf("steps left to run (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKubernetesGoMod(t *testing.T) {
	upstream := `module k8s.io/kubernetes

go 1.25.0

require (
	k8s.io/api v0.0.0
	k8s.io/kubectl v0.0.0
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/kubectl => ./staging/src/k8s.io/kubectl
	github.com/example/fork => github.com/example/fork v1.2.3
)
`
	want := `module meshctl.local/testbin/kubernetes

go 1.26.0

require k8s.io/kubernetes ` + KubernetesVersion + `

replace (
	k8s.io/api => k8s.io/api ` + StagingVersion + `
	k8s.io/kubectl => k8s.io/kubectl ` + StagingVersion + `
)

tool (
	k8s.io/kubernetes/cmd/kube-apiserver
	k8s.io/kubernetes/cmd/kube-controller-manager
	k8s.io/kubernetes/cmd/kube-scheduler
	k8s.io/kubernetes/cmd/kubectl
)
`
	got, n, err := kubernetesGoMod([]byte(upstream))
	if err != nil || n != 2 {
		t.Fatalf("kubernetesGoMod: n=%d, err=%v", n, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("go.mod (-want +got):\n%s", diff)
	}

	_, _, err = kubernetesGoMod([]byte("module k8s.io/kubernetes\n"))
	if want := "found no staging replaces in k8s.io/kubernetes " + KubernetesVersion + " go.mod"; err == nil || err.Error() != want {
		t.Errorf("without staging replaces: %v, want %q", err, want)
	}
}

// Files Build linked in from the cache directory are dropped rather than
// renamed (a no-op between two links to one file), so that the partial
// directory ends empty.
func TestMoveInto(t *testing.T) {
	dir, partial := t.TempDir(), t.TempDir()
	from, to := In(partial), In(dir)
	for _, f := range to.all() {
		if f == to.Kubectl {
			continue
		}
		if err := os.WriteFile(f, []byte("old"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, f := range to.all() {
		if exists(f) {
			if err := os.Link(f, from.all()[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(from.Kubectl, []byte("new"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := moveInto(from, to); err != nil {
		t.Fatal(err)
	}
	left, err := os.ReadDir(partial)
	if err != nil || len(left) != 0 {
		t.Errorf("partial directory holds %v (%v), want nothing", left, err)
	}
	if got, err := os.ReadFile(to.Kubectl); err != nil || string(got) != "new" {
		t.Errorf("kubectl = %q, %v; want the new build", got, err)
	}
	if got, err := os.ReadFile(to.APIServer); err != nil || string(got) != "old" {
		t.Errorf("kube-apiserver = %q, %v; want the cached one", got, err)
	}
}
