package apply_test

import (
	"fmt"
	"strconv"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
)

// cache is a LiveObjects holding the given objects.
type cache map[string]*unstructured.Unstructured

func (c cache) Live(gvk schema.GroupVersionKind, ns, name string) (*unstructured.Unstructured, bool) {
	u, ok := c[gvk.Kind+"/"+ns+"/"+name]
	return u, ok
}

// TestApplyObjectsLeavesTheInventoryAlone: the reconcile loop's re-apply of
// one drifted object corrects it without reading or writing the inventory.
func TestApplyObjectsLeavesTheInventoryAlone(t *testing.T) {
	e := newEnv(t)
	a := e.configMap("a", "declared")
	e.apply(set([]*unstructured.Unstructured{e.namespace()}, []*unstructured.Unstructured{a, e.configMap("b", "declared")}), apply.Options{})
	inv, _ := e.get("v1", "ConfigMap", e.c.Namespace(), apply.InventoryName)
	synced, _ := e.get("v1", "ConfigMap", e.ns, "a")

	edit := func() {
		t.Helper()
		live, _ := e.get("v1", "ConfigMap", e.ns, "a")
		unstructured.SetNestedField(live.Object, "edited", "data", "k")
		if err := e.kube.Update(e.ctx, live, client.FieldOwner("kubectl-edit")); err != nil {
			t.Fatal(err)
		}
	}
	value := func() string {
		live, _ := e.get("v1", "ConfigMap", e.ns, "a")
		v, _, _ := unstructured.NestedString(live.Object, "data", "k")
		return v
	}
	run := func(o apply.Options, objs ...*unstructured.Unstructured) []apply.Action {
		t.Helper()
		entries, err := e.c.ApplyObjects(e.ctx, "s2", objs, o)
		if err != nil {
			t.Fatal(err)
		}
		var got []apply.Action
		for _, en := range entries {
			got = append(got, en.Action)
		}
		return got
	}

	edit()
	if got := run(apply.Options{DryRun: true}, a); fmt.Sprint(got) != "[configured]" || value() != "edited" {
		t.Errorf("dry run: %v, data.k = %q; want configured, and nothing written", got, value())
	}
	// A cache that still holds the object as it was before the edit is
	// trusted: no round trip, nothing to do.
	if got := run(apply.Options{Live: cache{"ConfigMap/" + e.ns + "/a": synced}}, a); fmt.Sprint(got) != "[unchanged]" || value() != "edited" {
		t.Errorf("with an in-sync cache: %v, data.k = %q", got, value())
	}
	if got := run(apply.Options{}, a); fmt.Sprint(got) != "[configured]" || value() != "declared" {
		t.Errorf("re-apply: %v, data.k = %q; want configured and declared", got, value())
	}
	if got := run(apply.Options{}, a); fmt.Sprint(got) != "[unchanged]" {
		t.Errorf("second re-apply: %v", got)
	}
	if after, _ := e.get("v1", "ConfigMap", e.c.Namespace(), apply.InventoryName); after.GetResourceVersion() != inv.GetResourceVersion() {
		t.Errorf("the inventory was written: resourceVersion %s → %s", inv.GetResourceVersion(), after.GetResourceVersion())
	}
}

// TestRolesGoBeforeBindings: within a stage, every Role and ClusterRole is
// written before any binding, so that a non-admin applier passes RBAC's
// escalation check. resourceVersions are etcd revisions; they are compared
// as numbers in tests only.
func TestRolesGoBeforeBindings(t *testing.T) {
	e := newEnv(t)
	rules := []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"configmaps"}, "verbs": []any{"get"}}}
	var objs, roles, bindings []*unstructured.Unstructured
	for i := range 6 {
		name := fmt.Sprintf("%s-%d", e.ns, i)
		cr := obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", name, map[string]any{"rules": rules})
		r := obj("rbac.authorization.k8s.io/v1", "Role", e.ns, name, map[string]any{"rules": rules})
		subjects := []any{map[string]any{"kind": "ServiceAccount", "name": "default", "namespace": e.ns}}
		crb := obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", name, map[string]any{
			"roleRef": map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}, "subjects": subjects})
		rb := obj("rbac.authorization.k8s.io/v1", "RoleBinding", e.ns, name, map[string]any{
			"roleRef": map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}, "subjects": subjects})
		// Bindings first in the render: the order must come from apply.
		objs = append(objs, crb, rb, e.configMap(name, "1"), cr, r)
		roles = append(roles, cr, r)
		bindings = append(bindings, crb, rb)
		t.Cleanup(func() {
			e.kube.Delete(e.ctx, crb)
			e.kube.Delete(e.ctx, cr)
		})
	}
	e.apply(set([]*unstructured.Unstructured{e.namespace()}, objs), apply.Options{})
	rev := func(u *unstructured.Unstructured) uint64 {
		live, err := e.get(u.GetAPIVersion(), u.GetKind(), u.GetNamespace(), u.GetName())
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.ParseUint(live.GetResourceVersion(), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var lastRole uint64
	for _, r := range roles {
		lastRole = max(lastRole, rev(r))
	}
	for _, b := range bindings {
		if n := rev(b); n < lastRole {
			t.Errorf("%s written at revision %d, before the last role (%d)", apply.ID(b), n, lastRole)
		}
	}
}
