package testbin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	if err != nil || p.APIServer != filepath.Join(dir, "kube-apiserver") {
		t.Fatalf("Find on a full directory: %+v, %v", p, err)
	}
}
