package apply

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestListQueries(t *testing.T) {
	obj := func(apiVersion, kind, ns, name string, managed bool) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		u.SetNamespace(ns)
		u.SetName(name)
		if managed {
			u.SetLabels(map[string]string{LabelManagedBy: ManagedByMeshctl})
		}
		return u
	}
	svc := schema.GroupVersionKind{Version: "v1", Kind: "Service"}
	cm := schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	role := schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "Role"}
	node := schema.GroupVersionKind{Version: "v1", Kind: "Node"}
	objs := []*unstructured.Unstructured{
		obj("v1", "Service", "linkerd", "a", true),
		obj("v1", "Service", "linkerd", "b", true),
		obj("v1", "ConfigMap", "linkerd", "c", true),
		obj("v1", "ConfigMap", "linkerd-viz", "d", true),
		obj("rbac.authorization.k8s.io/v1", "Role", "linkerd", "e", true),
		obj("rbac.authorization.k8s.io/v1", "Role", "linkerd", "f", false),
	}
	for _, tc := range []struct {
		name string
		wide []schema.GroupVersionKind
		want []listQuery
	}{
		{
			name: "one LIST per kind, narrowed where the objects allow",
			want: []listQuery{
				{gvk: svc, namespace: "linkerd", selector: true},
				{gvk: cm, namespace: "", selector: true},
				{gvk: role, namespace: "linkerd", selector: false},
			},
		},
		{
			name: "a wide kind is listed whole, once, and a kind no object has is listed too",
			wide: []schema.GroupVersionKind{svc, node, svc},
			want: []listQuery{
				{gvk: svc},
				{gvk: node},
				{gvk: cm, namespace: "", selector: true},
				{gvk: role, namespace: "linkerd", selector: false},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, listQueries(objs, tc.wide...), cmp.AllowUnexported(listQuery{})); d != "" {
				t.Errorf("listQueries (-want +got):\n%s", d)
			}
		})
	}
}
