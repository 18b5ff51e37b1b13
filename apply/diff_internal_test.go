package apply

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestMaskSecrets(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		before, after         map[string]any
		wantBefore, wantAfter map[string]any
	}{
		{
			name:       "equal",
			before:     map[string]any{"data": map[string]any{"password": b64("hunter2")}},
			after:      map[string]any{"data": map[string]any{"password": b64("hunter2")}},
			wantBefore: map[string]any{"data": map[string]any{"password": "***"}},
			wantAfter:  map[string]any{"data": map[string]any{"password": "***"}},
		},
		{
			name:       "changed",
			before:     map[string]any{"data": map[string]any{"password": b64("hunter2"), "user": b64("admin")}},
			after:      map[string]any{"data": map[string]any{"password": b64("hunter3"), "user": b64("admin")}},
			wantBefore: map[string]any{"data": map[string]any{"password": "*** (before)", "user": "***"}},
			wantAfter:  map[string]any{"data": map[string]any{"password": "*** (after)", "user": "***"}},
		},
		{
			name:       "added key",
			before:     map[string]any{"data": map[string]any{"user": b64("admin")}},
			after:      map[string]any{"data": map[string]any{"user": b64("admin"), "password": b64("hunter2")}},
			wantBefore: map[string]any{"data": map[string]any{"user": "***"}},
			wantAfter:  map[string]any{"data": map[string]any{"user": "***", "password": "***"}},
		},
		{
			name:       "removed key",
			before:     map[string]any{"data": map[string]any{"user": b64("admin"), "password": b64("hunter2")}},
			after:      map[string]any{"data": map[string]any{"user": b64("admin")}},
			wantBefore: map[string]any{"data": map[string]any{"user": "***", "password": "***"}},
			wantAfter:  map[string]any{"data": map[string]any{"user": "***"}},
		},
		{
			name:       "stringData changed",
			before:     map[string]any{"stringData": map[string]any{"password": "hunter2", "user": "admin"}},
			after:      map[string]any{"stringData": map[string]any{"password": "hunter3", "user": "admin"}},
			wantBefore: map[string]any{"stringData": map[string]any{"password": "*** (before)", "user": "***"}},
			wantAfter:  map[string]any{"stringData": map[string]any{"password": "*** (after)", "user": "***"}},
		},
		{
			name:       "stringData becomes data",
			before:     map[string]any{"stringData": map[string]any{"password": "hunter2"}},
			after:      map[string]any{"data": map[string]any{"password": b64("hunter2")}},
			wantBefore: map[string]any{"stringData": map[string]any{"password": "***"}},
			wantAfter:  map[string]any{"data": map[string]any{"password": "***"}},
		},
		{
			name:      "created",
			after:     map[string]any{"data": map[string]any{"password": b64("hunter2")}, "stringData": map[string]any{"user": "admin"}},
			wantAfter: map[string]any{"data": map[string]any{"password": "***"}, "stringData": map[string]any{"user": "***"}},
		},
		{
			name:       "deleted",
			before:     map[string]any{"data": map[string]any{"password": b64("hunter2")}},
			wantBefore: map[string]any{"data": map[string]any{"password": "***"}},
		},
		{
			name:       "not a map: hidden whole",
			before:     map[string]any{"data": "hunter2"},
			after:      map[string]any{"data": map[string]any{"password": b64("hunter2")}},
			wantBefore: map[string]any{"data": "***"},
			wantAfter:  map[string]any{"data": "***"},
		},
		{
			name:       "no data",
			before:     map[string]any{"type": "Opaque"},
			after:      map[string]any{"type": "Opaque"},
			wantBefore: map[string]any{"type": "Opaque"},
			wantAfter:  map[string]any{"type": "Opaque"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			maskSecrets(tc.before, tc.after)
			if diff := cmp.Diff(tc.wantBefore, tc.before); diff != "" {
				t.Errorf("before (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantAfter, tc.after); diff != "" {
				t.Errorf("after (-want +got):\n%s", diff)
			}
		})
	}
}

func secretObject(ns, name string, data, stringData map[string]string, annotations map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetAPIVersion("v1")
	u.SetKind("Secret")
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetAnnotations(annotations)
	if data != nil {
		m := map[string]any{}
		for k, v := range data {
			m[k] = b64(v)
		}
		u.Object["data"] = m
	}
	if stringData != nil {
		m := map[string]any{}
		for k, v := range stringData {
			m[k] = v
		}
		u.Object["stringData"] = m
	}
	return u
}

func TestSecretDiffText(t *testing.T) {
	lastApplied := `{"apiVersion":"v1","kind":"Secret","data":{"password":"` + b64("hunter1") + `"},"stringData":{"token":"s3cret"}}`
	before := secretObject("shop", "db", map[string]string{"password": "hunter1", "user": "admin", "old": "gone-value"}, nil,
		map[string]string{corev1.LastAppliedConfigAnnotation: lastApplied})
	after := secretObject("shop", "db", map[string]string{"password": "hunter2", "user": "admin", "new": "fresh-value"},
		map[string]string{"token": "s3cret-too"}, nil)
	d := ObjectDiff{Entry: entryFor(after, "control-plane", Configured)}
	d.setTexts(before.Object, after.Object)
	want := `--- live/Secret/shop/db
+++ merged/Secret/shop/db
@@ -1,12 +1,12 @@
 apiVersion: v1
 data:
-  old: '***'
-  password: '*** (before)'
+  new: '***'
+  password: '*** (after)'
   user: '***'
 kind: Secret
 metadata:
-  annotations:
-    kubectl.kubernetes.io/last-applied-configuration: '***'
   name: db
   namespace: shop
+stringData:
+  token: '***'
 ` + "\n"
	if diff := cmp.Diff(want, d.Diff); diff != "" {
		t.Errorf("diff text (-want +got):\n%s", diff)
	}
	for _, leak := range []string{"hunter", "admin", "value", "s3cret", b64("hunter1"), b64("hunter2"), b64("admin")} {
		if strings.Contains(d.Diff, leak) {
			t.Errorf("diff leaks %q", leak)
		}
	}
	// The inputs are left as they were.
	if got, _, _ := unstructured.NestedString(after.Object, "data", "password"); got != b64("hunter2") {
		t.Errorf("setTexts changed its input: password = %q", got)
	}
}

func TestCleanDropsServerFieldsAndLastApplied(t *testing.T) {
	in := map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{
			"name": "web", "namespace": "shop", "uid": "u", "resourceVersion": "7", "generation": int64(2),
			"creationTimestamp": "2026-01-01T00:00:00Z", "managedFields": []any{map[string]any{"manager": "meshctl"}},
			"annotations": map[string]any{corev1.LastAppliedConfigAnnotation: `{"data":{"k":"v"}}`, "team": "payments"},
		},
		"data":   map[string]any{"k": "v"},
		"status": map[string]any{"x": "y"},
	}
	want := map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{
			"name": "web", "namespace": "shop",
			"annotations": map[string]any{corev1.LastAppliedConfigAnnotation: "***", "team": "payments"},
		},
		"data": map[string]any{"k": "v"},
	}
	if diff := cmp.Diff(want, clean(in)); diff != "" {
		t.Errorf("clean (-want +got):\n%s", diff)
	}
	if clean(nil) != nil {
		t.Error("clean(nil) is not nil")
	}
}

func configMapObject(ns, name, value string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"data": map[string]any{"k": value}}}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

func TestCompareSets(t *testing.T) {
	oldSet := Set{Stages: []Stage{{Name: "control-plane", Objects: []*unstructured.Unstructured{
		configMapObject("shop", "same", "1"),
		configMapObject("shop", "changed", "1"),
		configMapObject("shop", "gone", "1"),
		secretObject("shop", "db", map[string]string{"password": "hunter1"}, nil, nil),
		secretObject("shop", "api", map[string]string{"token": "t0ken"}, nil, nil),
	}}}}
	newSet := Set{Stages: []Stage{
		{Name: "crds", Objects: []*unstructured.Unstructured{configMapObject("shop", "new", "1")}},
		{Name: "control-plane", Objects: []*unstructured.Unstructured{
			configMapObject("shop", "same", "1"),
			configMapObject("shop", "changed", "2"),
			secretObject("shop", "db", map[string]string{"password": "hunter2"}, nil, nil),
			secretObject("shop", "api", map[string]string{"token": "t0ken"}, nil, nil),
			secretObject("shop", "fresh", map[string]string{"token": "n3w-token"}, nil, nil),
		}},
	}}
	res := CompareSets(oldSet, newSet)

	type line struct {
		ID     string
		Stage  string
		Action Action
	}
	var got []line
	for _, o := range res.Objects {
		got = append(got, line{o.ID, o.Stage, o.Action})
	}
	want := []line{
		{"ConfigMap/shop/new", "crds", Created},
		{"ConfigMap/shop/same", "control-plane", Unchanged},
		{"ConfigMap/shop/changed", "control-plane", Configured},
		{"Secret/shop/db", "control-plane", Configured},
		{"Secret/shop/api", "control-plane", Unchanged},
		{"Secret/shop/fresh", "control-plane", Created},
		{"ConfigMap/shop/gone", "prune", Deleted},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[Action]int{Created: 2, Configured: 2, Unchanged: 2, Deleted: 1}, res.Summary); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if !res.Changed() {
		t.Error("Changed() = false")
	}

	byID := map[string]*ObjectDiff{}
	for i := range res.Objects {
		byID[res.Objects[i].ID] = &res.Objects[i]
	}
	if d := byID["ConfigMap/shop/same"]; d.Diff != "" || d.Before() != nil || d.After() != nil {
		t.Errorf("unchanged object keeps a diff %q or its objects", d.Diff)
	}
	wantDB := `--- base/Secret/shop/db
+++ head/Secret/shop/db
@@ -1,6 +1,6 @@
 apiVersion: v1
 data:
-  password: '*** (before)'
+  password: '*** (after)'
 kind: Secret
 metadata:
   name: db
`
	if diff := cmp.Diff(wantDB, byID["Secret/shop/db"].Diff); diff != "" {
		t.Errorf("Secret diff (-want +got):\n%s", diff)
	}
	if got, _, _ := unstructured.NestedString(byID["Secret/shop/fresh"].After(), "data", "token"); got != "***" {
		t.Errorf("created Secret's After() token = %q, want ***", got)
	}
	var text strings.Builder
	res.WriteText(&text)
	for _, leak := range []string{"hunter", "t0ken", "n3w-token", b64("hunter1"), b64("hunter2"), b64("t0ken"), b64("n3w-token")} {
		if strings.Contains(text.String(), leak) {
			t.Errorf("output leaks %q:\n%s", leak, text.String())
		}
	}
	if !strings.Contains(text.String(), "2 to create, 2 to configure, 1 to delete, 2 unchanged\n") {
		t.Errorf("output lacks the summary line:\n%s", text.String())
	}
}

func TestCompareSetsSame(t *testing.T) {
	s := Set{Stages: []Stage{{Name: "crds", Objects: []*unstructured.Unstructured{configMapObject("shop", "a", "1")}}}}
	res := CompareSets(s, s)
	if res.Changed() {
		t.Errorf("Changed() = true for the same set: %+v", res.Objects)
	}
	if diff := cmp.Diff(map[Action]int{Unchanged: 1}, res.Summary); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
}
