package apply_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/internal/testbin"
)

// kubectl runs the pinned kubectl (built by make testbin from the same
// sources as the API server) against the package's cluster.
func kubectl(t *testing.T, args ...string) {
	t.Helper()
	bins, err := testbin.Find()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bins.Kubectl, append([]string{"--kubeconfig=" + shared.Get(t).Kubeconfig}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestTakeOverFromKubectl: objects that real kubectl created, with
// server-side apply and with client-side apply, are taken over by meshctl's
// first apply: kubectl's fields become meshctl's (so a field only kubectl
// set is removed), its last-applied copy goes, and a second apply writes
// nothing.
func TestTakeOverFromKubectl(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	manifest := func(name string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n  namespace: " + e.ns +
			"\n  labels:\n    app.kubernetes.io/managed-by: kubectl\ndata:\n  k: from-kubectl\n  stale: only-kubectl-sets-this\n"
	}
	ns := "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + e.ns + "\n"
	for name, mode := range map[string]string{"ssa": "--server-side", "csa": "--server-side=false"} {
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(ns+"---\n"+manifest(name)), 0o600); err != nil {
			t.Fatal(err)
		}
		kubectl(t, "apply", mode, "-f", path)
	}
	csa, _ := e.get("v1", "ConfigMap", e.ns, "csa")
	if _, ok := csa.GetAnnotations()["kubectl.kubernetes.io/last-applied-configuration"]; !ok {
		t.Fatalf("kubectl client-side apply left no last-applied annotation: %v", csa.GetAnnotations())
	}

	s := set([]*unstructured.Unstructured{e.namespace()}, []*unstructured.Unstructured{e.configMap("ssa", "from-meshctl"), e.configMap("csa", "from-meshctl")})
	e.apply(s, apply.Options{})
	for _, name := range []string{"ssa", "csa"} {
		live, _ := e.get("v1", "ConfigMap", e.ns, name)
		data, _, _ := unstructured.NestedStringMap(live.Object, "data")
		if len(data) != 1 || data["k"] != "from-meshctl" {
			t.Errorf("%s: data %v, want only k: from-meshctl", name, data)
		}
		if live.GetLabels()[apply.LabelManagedBy] != apply.ManagedByMeshctl {
			t.Errorf("%s: labels %v", name, live.GetLabels())
		}
		if len(live.GetAnnotations()) != 0 {
			t.Errorf("%s: annotations kept: %v", name, live.GetAnnotations())
		}
		for _, mf := range live.GetManagedFields() {
			if strings.HasPrefix(mf.Manager, "kubectl") {
				t.Errorf("%s: %s still manages fields (%s)", name, mf.Manager, mf.Operation)
			}
		}
	}
	before := e.resourceVersions(s)
	if res := e.apply(s, apply.Options{}); res.Writes != 0 {
		t.Errorf("second apply after the takeover wrote: %v", res.Entries)
	}
	if after := e.resourceVersions(s); before["ConfigMap/"+e.ns+"/csa"] != after["ConfigMap/"+e.ns+"/csa"] || before["ConfigMap/"+e.ns+"/ssa"] != after["ConfigMap/"+e.ns+"/ssa"] {
		t.Errorf("second apply changed resourceVersions: %v → %v", before, after)
	}
}
