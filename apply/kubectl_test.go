package apply_test

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/internal/testbin"
	"github.com/meshctl/meshctl/internal/testcluster"
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

// TestCoOwnersCostOneWrite: `kubectl apply --server-side` of what meshctl
// already applied leaves kubectl co-owning meshctl's fields. The next
// apply drops kubectl's entry with one JSON patch (no dry-run, no apply),
// reports the object unchanged and taken over, and writes nothing after.
// Another tool's co-ownership (a second GitOps controller) costs nothing
// and stays; a kubectl entry that owns more than meshctl's fields goes
// through the full takeover, which removes the extra field.
func TestCoOwnersCostOneWrite(t *testing.T) {
	e := newEnv(t)
	rec := &testcluster.Recorder{}
	cfg := config(t)
	cfg.Wrap(rec.Wrap)
	c, err := apply.New(cfg, e.c.Namespace())
	if err != nil {
		t.Fatal(err)
	}
	s := set([]*unstructured.Unstructured{e.namespace()}, []*unstructured.Unstructured{e.configMap("same", "v"), e.configMap("other", "v"), e.configMap("more", "v")})
	if _, err := c.Apply(e.ctx, s, apply.Options{Prune: true}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	manifest := func(name, extra string) string {
		path := filepath.Join(dir, name+".yaml")
		text := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n  namespace: " + e.ns +
			"\n  labels:\n    " + apply.LabelManagedBy + ": " + apply.ManagedByMeshctl + "\ndata:\n  k: v\n" + extra
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	kubectl(t, "apply", "--server-side", "-f", manifest("same", ""))
	kubectl(t, "apply", "--server-side", "--field-manager=argocd-controller", "-f", manifest("other", ""))
	kubectl(t, "apply", "--server-side", "-f", manifest("more", "  extra: only-kubectl\n"))
	rvOther := func() string {
		live, err := e.get("v1", "ConfigMap", e.ns, "other")
		if err != nil {
			t.Fatal(err)
		}
		return live.GetResourceVersion()
	}
	before := rvOther()

	// The check's comparison agrees with diff and apply: co-owned by
	// kubectl is in sync; an entry that owns more is not.
	drifted, err := c.Drifted(e.ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range drifted {
		ids = append(ids, d.ID)
	}
	if !slices.Equal(ids, []string{"ConfigMap/" + e.ns + "/more"}) {
		t.Errorf("drifted: %v, want only the ConfigMap kubectl owns more of", drifted)
	}

	rec.Take()
	d, err := c.Diff(e.ctx, s, apply.DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range d.Objects {
		if o.Name == "same" && (o.Action != apply.Unchanged || o.Reason != "apply will take over kubectl's fields") {
			t.Errorf("diff: %s %s (%s), want unchanged (apply will take over kubectl's fields)", o.ID, o.Action, o.Reason)
		}
	}
	for _, r := range rec.Take() {
		if r.Class == "dryrun" && !strings.HasSuffix(r.Path, "/more") {
			t.Errorf("diff dry-ran %s %s", r.Method, r.Path)
		}
	}

	res, err := c.Apply(e.ctx, s, apply.Options{Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]apply.Entry{}
	for _, en := range res.Entries {
		byName[en.Name] = en
	}
	if en := byName["same"]; en.Action != apply.Unchanged || !slices.Equal(en.TookOverFrom, []string{"kubectl"}) || en.String() != "ConfigMap/"+e.ns+"/same unchanged (took over kubectl's fields)" {
		t.Errorf("same: %s, from %v", en, en.TookOverFrom)
	}
	if en := byName["other"]; en.Action != apply.Unchanged || en.TookOverFrom != nil {
		t.Errorf("other: %s, from %v", en, en.TookOverFrom)
	}
	if en := byName["more"]; en.Action != apply.Configured {
		t.Errorf("more: %s, want configured", en)
	}
	if res.TakenOver != 1 || !strings.HasSuffix(res.SummaryLine(), ", 1 taken over") {
		t.Errorf("taken over %d, summary %q", res.TakenOver, res.SummaryLine())
	}
	perObject := map[string][]string{}
	for _, r := range rec.Take() {
		if r.Class == "write" || r.Class == "dryrun" || r.Class == "get" {
			name := r.Path[strings.LastIndex(r.Path, "/")+1:]
			perObject[name] = append(perObject[name], r.Class+" "+r.Method)
		}
	}
	if got := perObject["same"]; !slices.Equal(got, []string{"write PATCH"}) {
		t.Errorf("requests for same: %v, want one write", got)
	}
	if got := perObject["other"]; len(got) != 0 {
		t.Errorf("requests for other: %v, want none", got)
	}
	if rvOther() != before {
		t.Error("other: resourceVersion changed; another tool's co-ownership should cost nothing")
	}

	for name, want := range map[string]string{"same": "", "other": "argocd-controller", "more": ""} {
		live, err := e.get("v1", "ConfigMap", e.ns, name)
		if err != nil {
			t.Fatal(err)
		}
		var managers []string
		for _, mf := range live.GetManagedFields() {
			managers = append(managers, mf.Manager)
		}
		if slices.Contains(managers, "kubectl") || want != "" && !slices.Contains(managers, want) || !slices.Contains(managers, apply.FieldManager) {
			t.Errorf("%s: managers %v, want meshctl%s and no kubectl", name, managers, map[bool]string{true: " and " + want}[want != ""])
		}
		if data, _, _ := unstructured.NestedStringMap(live.Object, "data"); len(data) != 1 {
			t.Errorf("%s: data %v, want only k", name, data)
		}
	}
	rvs := e.resourceVersions(s)
	if res, err := c.Apply(e.ctx, s, apply.Options{Prune: true}); err != nil || res.Writes != 0 {
		t.Fatalf("second apply: %v, writes %v", err, res)
	}
	if after := e.resourceVersions(s); !maps.Equal(rvs, after) {
		t.Errorf("second apply changed resourceVersions: %v → %v", rvs, after)
	}
}
