package apply_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
)

// env is one test's corner of the shared cluster: its own inventory
// namespace and its own object namespace, so tests do not see each other.
type env struct {
	t    *testing.T
	ctx  context.Context
	c    *apply.Client
	ns   string // where the test's objects live
	kube client.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	name = strings.TrimRight(name, "-")
	c, err := apply.New(config(t), "inv-"+name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &env{t: t, ctx: ctx, c: c, ns: name, kube: c.Kube()}
}

func obj(apiVersion, kind, ns, name string, fields map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	for k, v := range fields {
		u.Object[k] = v
	}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetLabels(map[string]string{apply.LabelManagedBy: apply.ManagedByMeshctl})
	return u
}

func (e *env) namespace() *unstructured.Unstructured {
	return obj("v1", "Namespace", "", e.ns, nil)
}

func (e *env) configMap(name, value string) *unstructured.Unstructured {
	return obj("v1", "ConfigMap", e.ns, name, map[string]any{"data": map[string]any{"k": value}})
}

func (e *env) secret(name, value string) *unstructured.Unstructured {
	return obj("v1", "Secret", e.ns, name, map[string]any{"type": "Opaque", "stringData": map[string]any{"password": value}})
}

func (e *env) deployment(name string, replicas int64) *unstructured.Unstructured {
	labels := map[string]any{"app": name}
	return obj("apps/v1", "Deployment", e.ns, name, map[string]any{"spec": map[string]any{
		"replicas": replicas,
		"selector": map[string]any{"matchLabels": labels},
		"template": map[string]any{
			"metadata": map[string]any{"labels": labels},
			"spec": map[string]any{"containers": []any{map[string]any{
				"name": "app", "image": "example.invalid/app:1",
			}}},
		},
	}})
}

func set(stages ...[]*unstructured.Unstructured) apply.Set {
	s := apply.Set{Version: "test"}
	for i, objs := range stages {
		s.Stages = append(s.Stages, apply.Stage{Name: fmt.Sprintf("s%d", i+1), Objects: objs})
	}
	return s
}

func (e *env) apply(s apply.Set, o apply.Options) *apply.Result {
	e.t.Helper()
	o.Prune = true
	res, err := e.c.Apply(e.ctx, s, o)
	if err != nil {
		e.t.Fatalf("apply: %v", err)
	}
	return res
}

func (e *env) diff(s apply.Set) *apply.DiffResult {
	e.t.Helper()
	res, err := e.c.Diff(e.ctx, s, apply.DiffOptions{})
	if err != nil {
		e.t.Fatalf("diff: %v", err)
	}
	return res
}

func (e *env) get(apiVersion, kind, ns, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	err := e.kube.Get(e.ctx, types.NamespacedName{Namespace: ns, Name: name}, u)
	return u, err
}

func actions(r *apply.Result) map[string]apply.Action {
	m := map[string]apply.Action{}
	for _, en := range r.Entries {
		m[en.ID] = en.Action
	}
	return m
}

func diffActions(r *apply.DiffResult) map[string]apply.Action {
	m := map[string]apply.Action{}
	for _, o := range r.Objects {
		m[o.ID] = o.Action
	}
	return m
}

func (e *env) resourceVersions(s apply.Set) map[string]string {
	rvs := map[string]string{}
	for _, st := range s.Stages {
		for _, u := range st.Objects {
			live, err := e.get(u.GetAPIVersion(), u.GetKind(), u.GetNamespace(), u.GetName())
			if err != nil {
				e.t.Fatal(err)
			}
			// Controllers keep writing a workload's status, so its
			// generation (bumped by every spec write) stands in for it.
			if u.GetKind() == "Deployment" {
				rvs[apply.ID(u)] = fmt.Sprintf("generation %d", live.GetGeneration())
				continue
			}
			rvs[apply.ID(u)] = live.GetResourceVersion()
		}
	}
	inv, err := e.get("v1", "ConfigMap", e.c.Namespace(), apply.InventoryName)
	if err != nil {
		e.t.Fatal(err)
	}
	rvs["inventory"] = inv.GetResourceVersion()
	return rvs
}

func TestApplyTwiceWritesNothing(t *testing.T) {
	e := newEnv(t)
	s := set([]*unstructured.Unstructured{e.namespace()},
		[]*unstructured.Unstructured{e.configMap("a", "1"), e.secret("s", "hunter2"), e.deployment("web", 2)})
	first := e.apply(s, apply.Options{})
	if first.Summary[apply.Created] != 4 {
		t.Fatalf("first apply: %v, want 4 created", first.Entries)
	}
	before := e.resourceVersions(s)
	second := e.apply(s, apply.Options{})
	if second.Writes != 0 || second.DryRuns != 0 || second.Summary[apply.Unchanged] != 4 {
		t.Fatalf("second apply wrote %d objects, dry-ran %d: %v", second.Writes, second.DryRuns, second.Entries)
	}
	after := e.resourceVersions(s)
	for id, rv := range before {
		if after[id] != rv {
			t.Errorf("%s: resourceVersion %s → %s on a no-op apply", id, rv, after[id])
		}
	}
	if d := e.diff(s); d.Changed() {
		t.Errorf("diff after apply reports changes: %v", diffActions(d))
	}
}

func TestEditShowsInDiffAndApplyMakesIt(t *testing.T) {
	e := newEnv(t)
	s := set([]*unstructured.Unstructured{e.namespace()},
		[]*unstructured.Unstructured{e.configMap("a", "old"), e.configMap("b", "same")})
	e.apply(s, apply.Options{})

	s2 := set([]*unstructured.Unstructured{e.namespace()},
		[]*unstructured.Unstructured{e.configMap("a", "new"), e.configMap("b", "same")})
	d := e.diff(s2)
	got := diffActions(d)
	idA := "ConfigMap/" + e.ns + "/a"
	if got[idA] != apply.Configured || d.Summary[apply.Configured] != 1 || d.Summary[apply.Unchanged] != 2 {
		t.Fatalf("diff: %v, want only %s configured", got, idA)
	}
	for _, o := range d.Objects {
		if o.ID == idA && (!strings.Contains(o.Diff, "-  k: old") || !strings.Contains(o.Diff, "+  k: new")) {
			t.Errorf("diff of %s does not show the change:\n%s", idA, o.Diff)
		}
	}
	res := e.apply(s2, apply.Options{})
	if actions(res)[idA] != apply.Configured || res.Writes != 1 {
		t.Fatalf("apply: %v, want exactly %s configured", res.Entries, idA)
	}
	live, _ := e.get("v1", "ConfigMap", e.ns, "a")
	if v, _, _ := unstructured.NestedString(live.Object, "data", "k"); v != "new" {
		t.Errorf("live data.k = %q, want new", v)
	}
}

func TestRemovedObjectIsPrunedAndNothingElse(t *testing.T) {
	e := newEnv(t)
	ns := e.namespace()
	all := []*unstructured.Unstructured{e.configMap("keep1", "x"), e.configMap("keep2", "x"), e.configMap("keep3", "x"), e.configMap("gone", "x")}
	e.apply(set([]*unstructured.Unstructured{ns}, all), apply.Options{})
	// An object meshctl never applied, in the same namespace.
	foreign := e.configMap("foreign", "x")
	if err := e.kube.Create(e.ctx, foreign); err != nil {
		t.Fatal(err)
	}
	next := set([]*unstructured.Unstructured{ns}, all[:3])
	if d := diffActions(e.diff(next)); d["ConfigMap/"+e.ns+"/gone"] != apply.Deleted || len(d) != 5 {
		t.Errorf("diff: %v, want gone listed as deleted", d)
	}
	res := e.apply(next, apply.Options{})
	if a := actions(res); a["ConfigMap/"+e.ns+"/gone"] != apply.Deleted || res.Summary[apply.Deleted] != 1 {
		t.Fatalf("apply: %v, want exactly gone deleted", res.Entries)
	}
	for _, name := range []string{"keep1", "keep2", "keep3", "foreign"} {
		if _, err := e.get("v1", "ConfigMap", e.ns, name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := e.get("v1", "ConfigMap", e.ns, "gone"); !apierrors.IsNotFound(err) {
		t.Errorf("gone still exists: %v", err)
	}
	inv, err := e.c.ReadInventory(e.ctx)
	if err != nil || len(inv.Objects) != 4 || len(inv.Pending) != 0 {
		t.Errorf("inventory %+v (%v), want 4 committed objects", inv, err)
	}
}

func TestOutOfBandEditIsRestored(t *testing.T) {
	e := newEnv(t)
	s := set([]*unstructured.Unstructured{e.namespace()}, []*unstructured.Unstructured{e.configMap("a", "declared")})
	e.apply(s, apply.Options{})
	live, _ := e.get("v1", "ConfigMap", e.ns, "a")
	unstructured.SetNestedField(live.Object, "edited", "data", "k")
	if err := e.kube.Update(e.ctx, live, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	if d := e.diff(s); !d.Changed() {
		t.Fatal("diff does not see the out-of-band edit")
	}
	res := e.apply(s, apply.Options{})
	if res.Writes != 1 {
		t.Errorf("apply: %v, want one object configured", res.Entries)
	}
	live, _ = e.get("v1", "ConfigMap", e.ns, "a")
	if v, _, _ := unstructured.NestedString(live.Object, "data", "k"); v != "declared" {
		t.Errorf("data.k = %q after apply, want declared", v)
	}
	if e.diff(s).Changed() {
		t.Error("diff still reports changes after apply")
	}
}

func TestFieldsOfOtherManagersStayTheirs(t *testing.T) {
	e := newEnv(t)
	s := set([]*unstructured.Unstructured{e.namespace()}, []*unstructured.Unstructured{e.deployment("web", 1)})
	e.apply(s, apply.Options{})

	// An autoscaler scales through the scale subresource, and another
	// controller adds a label of its own.
	scale := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "autoscaling/v1", "kind": "Scale",
		"metadata": map[string]any{"name": "web", "namespace": e.ns},
		"spec":     map[string]any{"replicas": int64(4)},
	}}
	dep, _ := e.get("apps/v1", "Deployment", e.ns, "web")
	if err := e.kube.SubResource("scale").Update(e.ctx, dep, client.WithSubResourceBody(scale), client.FieldOwner("horizontal-pod-autoscaler")); err != nil {
		t.Fatal(err)
	}
	patch := []byte(fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":%q,"labels":{"team":"payments"}}}`, e.ns))
	if err := e.kube.Patch(e.ctx, dep, client.RawPatch(types.ApplyPatchType, patch), client.FieldOwner("team-controller")); err != nil {
		t.Fatal(err)
	}
	if d := e.diff(s); d.Changed() {
		t.Errorf("diff reports changes to fields other managers own: %v", diffActions(d))
	}
	// Replicas are the autoscaler's: the Deployment is in sync without
	// them, so it is neither dry-run nor written.
	res := e.apply(s, apply.Options{})
	if res.Writes != 0 || res.DryRuns != 0 {
		t.Errorf("apply wrote %d objects, dry-ran %d: %v", res.Writes, res.DryRuns, res.Entries)
	}
	dep, _ = e.get("apps/v1", "Deployment", e.ns, "web")
	if r, _, _ := unstructured.NestedInt64(dep.Object, "spec", "replicas"); r != 4 {
		t.Errorf("replicas = %d, want the autoscaler's 4", r)
	}
	if dep.GetLabels()["team"] != "payments" {
		t.Errorf("labels %v lost the other manager's label", dep.GetLabels())
	}
}

func TestSecretsAreMasked(t *testing.T) {
	e := newEnv(t)
	s := set([]*unstructured.Unstructured{e.namespace()}, []*unstructured.Unstructured{e.secret("db", "first-password")})
	// Created: the whole object is shown, masked.
	d := e.diff(s)
	e.apply(s, apply.Options{})
	s2 := set([]*unstructured.Unstructured{e.namespace()}, []*unstructured.Unstructured{e.secret("db", "second-password")})
	d2 := e.diff(s2)
	if !d2.Changed() {
		t.Fatal("diff misses the Secret change")
	}
	var text strings.Builder
	d.WriteText(&text)
	d2.WriteText(&text)
	out := text.String()
	for _, leak := range []string{"first-password", "second-password", "Zmlyc3Qtc", "c2Vjb25kLXBhc3N3b3Jk"} {
		if strings.Contains(out, leak) {
			t.Errorf("diff output leaks %q:\n%s", leak, out)
		}
	}
	if !strings.Contains(out, "*** (before)") || !strings.Contains(out, "*** (after)") {
		t.Errorf("diff output does not mark the masked change:\n%s", out)
	}
}

func TestEmptyRenderAndMassDeletionRefuse(t *testing.T) {
	e := newEnv(t)
	var objs []*unstructured.Unstructured
	for _, name := range []string{"a", "b", "c", "d", "e", "f"} {
		objs = append(objs, e.configMap(name, "1"))
	}
	first := set([]*unstructured.Unstructured{e.namespace()}, objs)
	e.apply(first, apply.Options{})
	inv, _ := e.c.ReadInventory(e.ctx)
	before := e.resourceVersions(first)

	_, err := e.c.Apply(e.ctx, apply.Set{Version: "test"}, apply.Options{Prune: true})
	if !errors.Is(err, apply.ErrPruneRefused) || !strings.Contains(err.Error(), "render is empty") {
		t.Fatalf("empty render: err = %v, want a refusal", err)
	}
	// Keeping a (changed) and adding "new" while dropping the other 5 of 7
	// inventoried objects is over the default 50%: refused before anything
	// is written, so "new" is not created and a is not changed.
	refused := set([]*unstructured.Unstructured{e.namespace()}, []*unstructured.Unstructured{e.configMap("a", "2"), e.configMap("new", "1")})
	_, err = e.c.Apply(e.ctx, refused, apply.Options{Prune: true})
	if !errors.Is(err, apply.ErrPruneRefused) || !strings.Contains(err.Error(), "--max-deletions=50%") {
		t.Fatalf("mass deletion: err = %v, want a refusal", err)
	}
	if _, err := e.get("v1", "ConfigMap", e.ns, "new"); !apierrors.IsNotFound(err) {
		t.Errorf("a refused run created ConfigMap new: %v", err)
	}
	if d := cmp.Diff(before, e.resourceVersions(first)); d != "" {
		t.Errorf("a refused run wrote objects (-before +after):\n%s", d)
	}
	after, _ := e.c.ReadInventory(e.ctx)
	if len(after.Objects) != len(inv.Objects) || len(after.Pending) != 0 {
		t.Errorf("a refused run changed the inventory: %+v", after)
	}
	// With a higher limit it goes through.
	lim, _ := apply.ParseLimit("5")
	res := e.apply(refused, apply.Options{MaxDeletions: lim})
	if res.Summary[apply.Deleted] != 5 || res.Summary[apply.Created] != 1 || res.Summary[apply.Configured] != 1 {
		t.Errorf("with --max-deletions=5: %v", res.Entries)
	}
}

func TestKilledRunIsCleanedUpByNextRun(t *testing.T) {
	e := newEnv(t)
	base := []*unstructured.Unstructured{e.configMap("a", "1"), e.configMap("b", "1")}
	e.apply(set([]*unstructured.Unstructured{e.namespace()}, base), apply.Options{})

	// A run that adds "half" in stage 2 and dies in stage 3 on an object
	// the server rejects, as a run killed between stages would.
	bad := e.configMap("Invalid_Name", "1")
	_, err := e.c.Apply(e.ctx, set(
		[]*unstructured.Unstructured{e.namespace()},
		append(append([]*unstructured.Unstructured{}, base...), e.configMap("half", "1")),
		[]*unstructured.Unstructured{bad},
	), apply.Options{Prune: true})
	if err == nil {
		t.Fatal("the broken run succeeded")
	}
	if _, err := e.get("v1", "ConfigMap", e.ns, "half"); err != nil {
		t.Fatalf("stage 2 of the broken run did not create half: %v", err)
	}
	inv, _ := e.c.ReadInventory(e.ctx)
	if len(inv.Pending) == 0 {
		t.Fatalf("the broken run left no pending record: %+v", inv)
	}
	// The next run declares the old set: half is cleaned up.
	res := e.apply(set([]*unstructured.Unstructured{e.namespace()}, base), apply.Options{})
	if actions(res)["ConfigMap/"+e.ns+"/half"] != apply.Deleted {
		t.Errorf("next run: %v, want half deleted", res.Entries)
	}
	if _, err := e.get("v1", "ConfigMap", e.ns, "half"); !apierrors.IsNotFound(err) {
		t.Errorf("half survived: %v", err)
	}
	inv, _ = e.c.ReadInventory(e.ctx)
	if len(inv.Pending) != 0 || len(inv.Objects) != 3 {
		t.Errorf("inventory after cleanup: %+v", inv)
	}
}

func TestPruneKeepsAnnotatedAndInUseObjects(t *testing.T) {
	e := newEnv(t)
	ns := e.namespace()
	kept := e.configMap("kept", "1")
	kept.SetAnnotations(map[string]string{apply.AnnotationPrune: "disabled"})
	filler := []*unstructured.Unstructured{e.configMap("f1", "1"), e.configMap("f2", "1"), e.configMap("f3", "1"), e.configMap("f4", "1")}
	e.apply(set([]*unstructured.Unstructured{ns}, append([]*unstructured.Unstructured{kept}, filler...)), apply.Options{})
	if err := e.kube.Create(e.ctx, e.configMap("users-own", "1")); err != nil {
		t.Fatal(err)
	}
	// Drop the namespace and the annotated object, keep the fillers in
	// another namespace so the render is not empty.
	other := obj("v1", "Namespace", "", e.ns+"-b", nil)
	var moved []*unstructured.Unstructured
	for _, f := range filler {
		m := f.DeepCopy()
		m.SetNamespace(other.GetName())
		moved = append(moved, m)
	}
	res := e.apply(set([]*unstructured.Unstructured{other}, moved), apply.Options{ForcePrune: true})
	a := actions(res)
	if a["ConfigMap/"+e.ns+"/kept"] != apply.Skipped || a["Namespace/"+e.ns] != apply.Skipped {
		t.Fatalf("apply: %v, want the annotated object and the namespace kept", res.Entries)
	}
	for _, en := range res.Entries {
		if en.ID == "Namespace/"+e.ns && !strings.Contains(en.Reason, "ConfigMap/"+e.ns+"/users-own") {
			t.Errorf("namespace kept without naming what it holds: %q", en.Reason)
		}
	}
	for _, id := range []struct{ kind, ns, name string }{{"Namespace", "", e.ns}, {"ConfigMap", e.ns, "kept"}, {"ConfigMap", e.ns, "users-own"}} {
		live, err := e.get("v1", id.kind, id.ns, id.name)
		if err != nil || live.GetDeletionTimestamp() != nil {
			t.Errorf("%s %s was deleted by the prune: %v", id.kind, id.name, err)
		}
	}
}

func TestTakeOverKubectlAndHelmObjects(t *testing.T) {
	e := newEnv(t)
	if err := e.kube.Create(e.ctx, e.namespace()); err != nil {
		t.Fatal(err)
	}
	old := e.configMap("cfg", "from-helm")
	old.SetLabels(map[string]string{"helm.sh/chart": "linkerd-control-plane-1.0", apply.LabelManagedBy: "Helm"})
	old.SetAnnotations(map[string]string{
		"kubectl.kubernetes.io/last-applied-configuration": `{"data":{"k":"from-helm"}}`,
		"meta.helm.sh/release-name":                        "linkerd-control-plane",
	})
	unstructured.SetNestedField(old.Object, "stale", "data", "removed-key")
	if err := e.kube.Create(e.ctx, old, client.FieldOwner("helm")); err != nil {
		t.Fatal(err)
	}
	s := set([]*unstructured.Unstructured{e.namespace()}, []*unstructured.Unstructured{e.configMap("cfg", "from-meshctl")})
	e.apply(s, apply.Options{})
	live, _ := e.get("v1", "ConfigMap", e.ns, "cfg")
	if _, ok := live.GetLabels()["helm.sh/chart"]; ok {
		t.Errorf("stale Helm label kept: %v", live.GetLabels())
	}
	if live.GetLabels()[apply.LabelManagedBy] != apply.ManagedByMeshctl {
		t.Errorf("managed-by = %q", live.GetLabels()[apply.LabelManagedBy])
	}
	for k := range live.GetAnnotations() {
		t.Errorf("stale annotation kept: %s", k)
	}
	if _, ok, _ := unstructured.NestedString(live.Object, "data", "removed-key"); ok {
		t.Error("field that only Helm set survived the takeover")
	}
	for _, mf := range live.GetManagedFields() {
		if mf.Manager == "helm" {
			t.Errorf("helm still manages fields: %+v", mf)
		}
	}
	if res := e.apply(s, apply.Options{}); res.Writes != 0 {
		t.Errorf("second apply after takeover wrote: %v", res.Entries)
	}
}

func TestImmutableFieldNeedsForce(t *testing.T) {
	e := newEnv(t)
	sec := func(name, v string, force bool) *unstructured.Unstructured {
		s := e.secret(name, v)
		s.Object["immutable"] = true
		if force {
			s.SetAnnotations(map[string]string{apply.AnnotationForce: "enabled"})
		}
		return s
	}
	e.apply(set([]*unstructured.Unstructured{e.namespace()}, []*unstructured.Unstructured{sec("frozen", "one", false), sec("annotated", "one", true)}), apply.Options{})
	frozen, _ := e.get("v1", "Secret", e.ns, "frozen")
	annotated, _ := e.get("v1", "Secret", e.ns, "annotated")

	// Without --force: the error names the field and the way out, and the
	// object is left as it was.
	s2 := set([]*unstructured.Unstructured{e.namespace()}, []*unstructured.Unstructured{sec("frozen", "two", false)})
	_, err := e.c.Apply(e.ctx, s2, apply.Options{Prune: true, ForcePrune: true})
	for _, want := range []string{"data: Forbidden: field is immutable", "--force", apply.AnnotationForce} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to say %q", err, want)
		}
	}
	if after, _ := e.get("v1", "Secret", e.ns, "frozen"); after.GetResourceVersion() != frozen.GetResourceVersion() || after.GetUID() != frozen.GetUID() {
		t.Errorf("the refused Secret changed: resourceVersion %s → %s", frozen.GetResourceVersion(), after.GetResourceVersion())
	}

	// The annotation recreates that object alone, without --force.
	s3 := set([]*unstructured.Unstructured{e.namespace()}, []*unstructured.Unstructured{sec("frozen", "one", false), sec("annotated", "two", true)})
	res := e.apply(s3, apply.Options{})
	if after, _ := e.get("v1", "Secret", e.ns, "annotated"); res.Writes != 1 || after.GetUID() == annotated.GetUID() {
		t.Errorf("%s: enabled did not recreate: %v (uid %s → %s)", apply.AnnotationForce, res.Entries, annotated.GetUID(), after.GetUID())
	}

	// --force recreates.
	res = e.apply(s2, apply.Options{Force: true, ForcePrune: true})
	after, _ := e.get("v1", "Secret", e.ns, "frozen")
	if res.Summary[apply.Created] != 1 || after.GetUID() == frozen.GetUID() {
		t.Errorf("--force did not recreate: %v (uid %s → %s)", res.Entries, frozen.GetUID(), after.GetUID())
	}
	if v, _, _ := unstructured.NestedString(after.Object, "data", "password"); v != "dHdv" {
		t.Errorf("recreated Secret holds %q, want two (base64 dHdv)", v)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	e := newEnv(t)
	s := set([]*unstructured.Unstructured{e.namespace()}, []*unstructured.Unstructured{e.configMap("a", "1")})
	res := e.apply(s, apply.Options{DryRun: true})
	if res.Summary[apply.Created] != 2 {
		t.Errorf("dry run: %v, want 2 created", res.Entries)
	}
	if _, err := e.get("v1", "Namespace", "", e.ns); !apierrors.IsNotFound(err) {
		t.Errorf("dry run created the namespace: %v", err)
	}
	if inv, err := e.c.ReadInventory(e.ctx); inv != nil || err != nil {
		t.Errorf("dry run wrote an inventory: %+v %v", inv, err)
	}
}

func TestWaitReportsPendingPods(t *testing.T) {
	e := newEnv(t)
	d := e.deployment("spread", 4)
	spec := d.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	spec["affinity"] = map[string]any{"podAntiAffinity": map[string]any{
		"requiredDuringSchedulingIgnoredDuringExecution": []any{map[string]any{
			"labelSelector": map[string]any{"matchLabels": map[string]any{"app": "spread"}},
			"topologyKey":   "kubernetes.io/hostname",
		}},
	}}
	s := set([]*unstructured.Unstructured{e.namespace()}, []*unstructured.Unstructured{d})
	e.apply(s, apply.Options{})
	// Wait, however long a busy machine takes, for the state the wait must
	// explain: 3 replicas ready, one per node, and the 4th unschedulable.
	err := wait.PollUntilContextCancel(e.ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		live, err := e.get("apps/v1", "Deployment", e.ns, "spread")
		if err != nil {
			return false, nil
		}
		ready, _, _ := unstructured.NestedInt64(live.Object, "status", "readyReplicas")
		return ready == 3, nil
	})
	if err != nil {
		t.Fatalf("3 of the 4 replicas never became ready: %v", err)
	}
	var progress syncBuffer
	_, err = e.c.Apply(e.ctx, s, apply.Options{Prune: true, Wait: true, Timeout: 10 * time.Second, ReportEvery: 200 * time.Millisecond, Progress: &progress})
	if err == nil {
		t.Fatal("4 replicas with required anti-affinity on 3 nodes became ready")
	}
	// A long wait says what it is waiting for while it waits.
	if p := progress.String(); !regexp.MustCompile(`stage s2: still waiting after \d+s:\n  Deployment/\S+/spread: 3/4 replicas ready`).MatchString(p) {
		t.Errorf("progress during the wait:\n%s", p)
	}
	for _, want := range []string{"3/4 replicas ready", "Pending", "anti-affinity"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

// syncBuffer is a strings.Builder that a reporting goroutine may write to
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestUnownedNamespaceIsReleasedNotDeleted(t *testing.T) {
	e := newEnv(t)
	// A namespace someone else made; mesh.cue only meshes it.
	theirs := obj("v1", "Namespace", "", e.ns, nil)
	theirs.SetLabels(map[string]string{"team": "platform"})
	if err := e.kube.Create(e.ctx, theirs, client.FieldOwner("platform-team")); err != nil {
		t.Fatal(err)
	}
	meshed := &unstructured.Unstructured{}
	meshed.SetAPIVersion("v1")
	meshed.SetKind("Namespace")
	meshed.SetName(e.ns)
	meshed.SetAnnotations(map[string]string{"linkerd.io/inject": "enabled", apply.AnnotationPrune: "disabled"})
	keep := obj("v1", "Namespace", "", e.ns+"-keep", nil)
	e.apply(set([]*unstructured.Unstructured{meshed, keep}), apply.Options{})
	live, _ := e.get("v1", "Namespace", "", e.ns)
	if live.GetAnnotations()["linkerd.io/inject"] != "enabled" || live.GetLabels()["team"] != "platform" {
		t.Fatalf("namespace not meshed, or the owner's label lost: %v %v", live.GetAnnotations(), live.GetLabels())
	}
	// Remove it from the mesh: the namespace stays, meshctl's annotation
	// goes, and diff says so first.
	d := e.diff(set([]*unstructured.Unstructured{keep}))
	var nsDiff string
	for _, o := range d.Objects {
		if o.ID == "Namespace/"+e.ns {
			nsDiff = o.Diff
		}
	}
	if diffActions(d)["Namespace/"+e.ns] != apply.Configured || !strings.Contains(nsDiff, "-    linkerd.io/inject: enabled") || strings.Contains(nsDiff, "-    team: platform") {
		t.Errorf("diff of the release: %v\n%s", diffActions(d), nsDiff)
	}
	res := e.apply(set([]*unstructured.Unstructured{keep}), apply.Options{})
	if a := actions(res)["Namespace/"+e.ns]; a != apply.Configured {
		t.Fatalf("apply: %v", res.Entries)
	}
	live, err := e.get("v1", "Namespace", "", e.ns)
	if err != nil || live.GetDeletionTimestamp() != nil {
		t.Fatalf("namespace deleted: %v", err)
	}
	if _, ok := live.GetAnnotations()["linkerd.io/inject"]; ok {
		t.Errorf("inject annotation kept: %v", live.GetAnnotations())
	}
	if live.GetLabels()["team"] != "platform" {
		t.Errorf("the platform team's label was removed: %v", live.GetLabels())
	}
}

func TestHelmReplicasAreTakenOverNotDropped(t *testing.T) {
	e := newEnv(t)
	if err := e.kube.Create(e.ctx, e.namespace()); err != nil {
		t.Fatal(err)
	}
	// Helm installed it with 3 replicas; mesh.cue says 3 too.
	if err := e.kube.Create(e.ctx, e.deployment("web", 3), client.FieldOwner("helm")); err != nil {
		t.Fatal(err)
	}
	s := set([]*unstructured.Unstructured{e.namespace()}, []*unstructured.Unstructured{e.deployment("web", 3)})
	e.apply(s, apply.Options{})
	dep, _ := e.get("apps/v1", "Deployment", e.ns, "web")
	if r, _, _ := unstructured.NestedInt64(dep.Object, "spec", "replicas"); r != 3 {
		t.Errorf("replicas = %d after taking over Helm's Deployment, want 3", r)
	}
	if res := e.apply(s, apply.Options{}); res.Writes != 0 {
		t.Errorf("second apply after the takeover wrote: %v", res.Entries)
	}
}

func TestDiffNeverShowsLastAppliedSecretData(t *testing.T) {
	e := newEnv(t)
	if err := e.kube.Create(e.ctx, e.namespace()); err != nil {
		t.Fatal(err)
	}
	old := e.secret("issuer", "old-key-material")
	old.SetAnnotations(map[string]string{
		"kubectl.kubernetes.io/last-applied-configuration": `{"stringData":{"password":"old-key-material"}}`,
		"note": "from linkerd install",
	})
	if err := e.kube.Create(e.ctx, old, client.FieldOwner("kubectl-client-side-apply")); err != nil {
		t.Fatal(err)
	}
	s := set([]*unstructured.Unstructured{e.namespace()}, []*unstructured.Unstructured{e.secret("issuer", "new-key-material")})
	var out strings.Builder
	d := e.diff(s)
	d.WriteText(&out)
	if !d.Changed() || strings.Contains(out.String(), "key-material") || strings.Contains(out.String(), "a2V5LW1hdGVyaWFs") {
		t.Errorf("diff (changed=%v) leaks Secret data:\n%s", d.Changed(), out.String())
	}
}

func TestCRDWithOwnedCustomResourcesIsKept(t *testing.T) {
	e := newEnv(t)
	group := e.ns + ".example.com"
	crd := obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "widgets."+group, map[string]any{"spec": map[string]any{
		"group": group, "scope": "Namespaced",
		"names": map[string]any{"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
		"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
			"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
	}})
	cm := e.configMap("owner", "x")
	e.apply(set([]*unstructured.Unstructured{crd, e.namespace()}, []*unstructured.Unstructured{cm}), apply.Options{})
	owner, _ := e.get("v1", "ConfigMap", e.ns, "owner")
	// A controller's custom resource, owned by an object of its own.
	w := obj(group+"/v1", "Widget", e.ns, "w", nil)
	w.SetLabels(nil)
	w.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: owner.GetUID()}})
	if err := e.kube.Create(e.ctx, w); err != nil {
		t.Fatal(err)
	}
	res := e.apply(set([]*unstructured.Unstructured{e.namespace()}, []*unstructured.Unstructured{cm}), apply.Options{ForcePrune: true})
	if a := actions(res)["CustomResourceDefinition/widgets."+group]; a != apply.Skipped {
		t.Errorf("CRD: %v, want kept", res.Entries)
	}
	if _, err := e.get(group+"/v1", "Widget", e.ns, "w"); err != nil {
		t.Errorf("the controller's Widget is gone: %v", err)
	}
}

// TestWebhookConfigurationsGoLast: within a stage, admission webhook
// configurations are written after every other object, so they never guard
// objects of their own stage. The server's resourceVersions (etcd
// revisions, compared as numbers in this test only) say in which order the
// objects were written.
func TestWebhookConfigurationsGoLast(t *testing.T) {
	e := newEnv(t)
	hook := obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "", e.ns+"-guard", map[string]any{
		"webhooks": []any{map[string]any{
			"name":                    "guard.meshctl.io",
			"admissionReviewVersions": []any{"v1"},
			"sideEffects":             "None",
			"failurePolicy":           "Ignore",
			"clientConfig":            map[string]any{"service": map[string]any{"name": "guard", "namespace": e.ns}},
			// Matches nothing: the test is about order, not admission.
			"objectSelector": map[string]any{"matchLabels": map[string]any{"meshctl.io/never": "true"}},
			"rules": []any{map[string]any{
				"apiGroups": []any{""}, "apiVersions": []any{"v1"}, "operations": []any{"CREATE"}, "resources": []any{"configmaps"},
			}},
		}},
	})
	objs := []*unstructured.Unstructured{hook}
	for i := range 12 {
		objs = append(objs, e.configMap(fmt.Sprintf("cm-%02d", i), "1"))
	}
	e.apply(set([]*unstructured.Unstructured{e.namespace()}, objs), apply.Options{})
	t.Cleanup(func() { e.kube.Delete(context.Background(), hook) })
	rev := func(o *unstructured.Unstructured) uint64 {
		u, err := e.get(o.GetAPIVersion(), o.GetKind(), o.GetNamespace(), o.GetName())
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.ParseUint(u.GetResourceVersion(), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	hookRev := rev(hook)
	for _, u := range objs[1:] {
		if r := rev(u); r >= hookRev {
			t.Errorf("%s written at revision %d, after the webhook configuration (%d)", apply.ID(u), r, hookRev)
		}
	}
}

// TestForceNeverRecreatesCRDsOrDestroysInvalidObjects: --force recreates
// only objects the server refuses for immutable fields alone. A CRD is
// never recreated (that would delete every custom resource of its kind),
// and an object that is invalid for another reason is left in place.
func TestForceNeverRecreatesCRDsOrDestroysInvalidObjects(t *testing.T) {
	e := newEnv(t)
	group := e.ns + ".example.k8s.io"
	crd := func(scope string, ann map[string]string) *unstructured.Unstructured {
		u := obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "gadgets."+group, map[string]any{"spec": map[string]any{
			"group": group, "scope": scope,
			"names": map[string]any{"kind": "Gadget", "plural": "gadgets", "singular": "gadget", "listKind": "GadgetList"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		}})
		u.SetAnnotations(ann)
		return u
	}
	approved := map[string]string{"api-approved.kubernetes.io": "unapproved, meshctl test"}

	// A *.k8s.io CRD without the approval annotation: the error says what
	// the server wants, and does not advise --force.
	_, err := e.c.Apply(e.ctx, set([]*unstructured.Unstructured{crd("Namespaced", nil)}), apply.Options{Prune: true, Force: true})
	if err == nil || !strings.Contains(err.Error(), "api-approved.kubernetes.io") || !strings.Contains(err.Error(), "--force does not help") {
		t.Errorf("unapproved CRD: %v", err)
	}

	e.apply(set([]*unstructured.Unstructured{crd("Namespaced", approved), e.namespace()}, []*unstructured.Unstructured{e.configMap("cm", "1")}), apply.Options{})
	gadget := obj(group+"/v1", "Gadget", e.ns, "g", nil)
	if err := wait.PollUntilContextCancel(e.ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		return e.kube.Create(ctx, gadget.DeepCopy()) == nil, nil
	}); err != nil {
		t.Fatalf("creating a Gadget: %v", err)
	}
	before, _ := e.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "gadgets."+group)
	cmBefore, _ := e.get("v1", "ConfigMap", e.ns, "cm")

	// spec.scope is immutable: even with --force the CRD stays.
	_, err = e.c.Apply(e.ctx, set([]*unstructured.Unstructured{crd("Cluster", approved), e.namespace()}, []*unstructured.Unstructured{e.configMap("cm", "1")}), apply.Options{Prune: true, Force: true})
	if err == nil || !strings.Contains(err.Error(), "never deletes and recreates a CustomResourceDefinition") {
		t.Errorf("CRD scope change under --force: %v", err)
	}
	// The force annotation on a CRD is refused before anything is written.
	_, err = e.c.Apply(e.ctx, set([]*unstructured.Unstructured{crd("Namespaced", map[string]string{"api-approved.kubernetes.io": "unapproved, meshctl test", apply.AnnotationForce: "enabled"})}), apply.Options{Prune: true, ForcePrune: true})
	if err == nil || !strings.Contains(err.Error(), "never deletes and recreates a CustomResourceDefinition, whatever the flags say") {
		t.Errorf("CRD with the force annotation: %v", err)
	}
	after, err := e.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "gadgets."+group)
	if err != nil || after.GetUID() != before.GetUID() || after.GetDeletionTimestamp() != nil {
		t.Fatalf("the CRD was recreated or deleted: %v", err)
	}
	if _, err := e.get(group+"/v1", "Gadget", e.ns, "g"); err != nil {
		t.Errorf("the Gadget is gone: %v", err)
	}

	// A ConfigMap made invalid (a bad key) is not deleted by --force.
	bad := e.configMap("cm", "1")
	bad.Object["data"] = map[string]any{"not a valid key!": "x"}
	_, err = e.c.Apply(e.ctx, set([]*unstructured.Unstructured{crd("Namespaced", approved), e.namespace()}, []*unstructured.Unstructured{bad}), apply.Options{Prune: true, Force: true})
	if err == nil || !strings.Contains(err.Error(), "rejected the object as invalid") {
		t.Errorf("invalid ConfigMap under --force: %v", err)
	}
	if cm, err := e.get("v1", "ConfigMap", e.ns, "cm"); err != nil || cm.GetUID() != cmBefore.GetUID() || cm.GetResourceVersion() != cmBefore.GetResourceVersion() {
		t.Errorf("the ConfigMap was deleted or changed by a failed --force: %v", err)
	}
}

// TestEditedListKeyIsRepaired: an edit out of band that changes the key of
// a list item meshctl renders (a Service port's number) makes the rendered
// item a duplicate of the edited one, and the server refuses the apply.
// Apply repairs the object (its rendered fields written whole), applies
// it, leaves no repair manager behind, and the next apply writes nothing.
func TestEditedListKeyIsRepaired(t *testing.T) {
	e := newEnv(t)
	svc := obj("v1", "Service", e.ns, "web", map[string]any{"spec": map[string]any{
		"selector": map[string]any{"app": "web"},
		"ports": []any{
			map[string]any{"name": "http", "port": int64(80), "protocol": "TCP"},
			map[string]any{"name": "admin", "port": int64(9000), "protocol": "TCP"},
		},
	}})
	s := set([]*unstructured.Unstructured{e.namespace()}, []*unstructured.Unstructured{svc})
	e.apply(s, apply.Options{})
	edited, err := e.get("v1", "Service", e.ns, "web")
	if err != nil {
		t.Fatal(err)
	}
	patch := client.RawPatch(types.JSONPatchType, []byte(`[{"op":"replace","path":"/spec/ports/0/port","value":81}]`))
	if err := e.kube.Patch(e.ctx, edited, patch, client.FieldOwner("intruder")); err != nil {
		t.Fatal(err)
	}
	for _, d := range e.diff(s).Objects {
		if d.Name == "web" && (d.Action != apply.Configured || !strings.HasPrefix(d.Reason, "apply will repair it") || !strings.Contains(d.Diff, "port: 81")) {
			t.Errorf("diff of web: %s (%s)\n%s", d.Action, d.Reason, d.Diff)
		}
	}
	// apply --dry-run (and the loop's detect mode) says the same.
	dry := e.apply(s, apply.Options{DryRun: true})
	for _, x := range dry.Entries {
		if x.Name == "web" && (x.Action != apply.Configured || !strings.HasPrefix(x.Reason, "apply will repair it")) {
			t.Errorf("apply --dry-run of web: %s", x)
		}
	}
	res := e.apply(s, apply.Options{})
	var en apply.Entry
	for _, x := range res.Entries {
		if x.Name == "web" {
			en = x
		}
	}
	if en.Action != apply.Configured || !strings.HasPrefix(en.Reason, "repaired:") {
		t.Errorf("web: %s, want configured and repaired", en)
	}
	live, err := e.get("v1", "Service", e.ns, "web")
	if err != nil {
		t.Fatal(err)
	}
	ports, _, _ := unstructured.NestedSlice(live.Object, "spec", "ports")
	var got []string
	for _, p := range ports {
		m := p.(map[string]any)
		got = append(got, fmt.Sprintf("%v:%v", m["name"], m["port"]))
	}
	if !slices.Equal(got, []string{"http:80", "admin:9000"}) {
		t.Errorf("ports after the repair: %v, want http:80 admin:9000", got)
	}
	for _, mf := range live.GetManagedFields() {
		if mf.Manager == apply.RepairManager {
			t.Errorf("the repair's entry outlived the apply: %s %s", mf.Manager, mf.Operation)
		}
	}
	if !apply.InSync(svc, live) {
		t.Errorf("not in sync after the repair: %s", apply.NotInSync(svc, live))
	}
	rvs := e.resourceVersions(s)
	if res := e.apply(s, apply.Options{}); res.Writes != 0 {
		t.Errorf("the apply after the repair wrote: %v", res.Entries)
	}
	if after := e.resourceVersions(s); !maps.Equal(rvs, after) {
		t.Errorf("resourceVersions changed: %v → %v", rvs, after)
	}

	// A render the server refuses on its own is not "repaired": its
	// error stays.
	bad := svc.DeepCopy()
	_ = unstructured.SetNestedSlice(bad.Object, []any{
		map[string]any{"name": "http", "port": int64(80), "protocol": "TCP"},
		map[string]any{"name": "http", "port": int64(9000), "protocol": "TCP"},
	}, "spec", "ports")
	if _, err := e.c.Apply(e.ctx, set([]*unstructured.Unstructured{e.namespace()}, []*unstructured.Unstructured{bad}), apply.Options{Prune: true}); err == nil || !strings.Contains(err.Error(), "Duplicate value") {
		t.Errorf("apply of an invalid render: %v, want the server's Duplicate value", err)
	}
}
