package apply

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// desiredWeb is a Deployment as a render holds it.
const desiredWeb = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app.kubernetes.io/managed-by: meshctl}
  creationTimestamp: null
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  strategy: {}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: example.invalid/app:1
        args: [--port=8080]
        ports: [{name: http, containerPort: 8080}]
        env: [{name: A, value: "1"}, {name: B, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}]
        volumeMounts: [{name: tmp, mountPath: /tmp}]
      volumes: [{name: tmp, emptyDir: {}}]
status: {}
`

// liveWeb is desiredWeb as the API server holds it once meshctl applied
// it: defaults filled in, a status, and the managed fields the server
// recorded, meshctl's and the controller manager's.
const liveWeb = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app.kubernetes.io/managed-by: meshctl}
  generation: 1
  resourceVersion: "42"
  managedFields:
  - manager: meshctl
    operation: Apply
    apiVersion: apps/v1
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata: {f:labels: {f:app.kubernetes.io/managed-by: {}}}
      f:spec:
        f:replicas: {}
        f:selector: {}
        f:strategy: {}
        f:template:
          f:metadata: {f:labels: {f:app: {}}}
          f:spec:
            f:containers:
              k:{"name":"app"}:
                .: {}
                f:args: {}
                f:env:
                  k:{"name":"A"}: {.: {}, f:name: {}, f:value: {}}
                  k:{"name":"B"}: {.: {}, f:name: {}, f:valueFrom: {f:fieldRef: {}}}
                f:image: {}
                f:name: {}
                f:ports:
                  k:{"containerPort":8080,"protocol":"TCP"}: {.: {}, f:containerPort: {}, f:name: {}}
                f:volumeMounts:
                  k:{"mountPath":"/tmp"}: {.: {}, f:mountPath: {}, f:name: {}}
            f:volumes:
              k:{"name":"tmp"}: {.: {}, f:emptyDir: {}, f:name: {}}
  - manager: kube-controller-manager
    operation: Update
    subresource: status
    apiVersion: apps/v1
    fieldsType: FieldsV1
    fieldsV1:
      f:status: {f:replicas: {}, f:readyReplicas: {}}
spec:
  replicas: 2
  revisionHistoryLimit: 10
  progressDeadlineSeconds: 600
  selector: {matchLabels: {app: web}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: example.invalid/app:1
        args: [--port=8080]
        ports: [{name: http, containerPort: 8080, protocol: TCP}]
        env: [{name: A, value: "1"}, {name: B, valueFrom: {fieldRef: {apiVersion: v1, fieldPath: metadata.namespace}}}]
        volumeMounts: [{name: tmp, mountPath: /tmp}]
        imagePullPolicy: IfNotPresent
        terminationMessagePath: /dev/termination-log
      volumes: [{name: tmp, emptyDir: {}}]
      restartPolicy: Always
status: {replicas: 2, readyReplicas: 2}
`

func fromYAML(t *testing.T, s string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(s), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

func setField(path ...string) func(v any) func(*unstructured.Unstructured) {
	return func(v any) func(*unstructured.Unstructured) {
		return func(u *unstructured.Unstructured) {
			if v == nil {
				unstructured.RemoveNestedField(u.Object, path...)
				return
			}
			if err := unstructured.SetNestedField(u.Object, v, path...); err != nil {
				panic(err)
			}
		}
	}
}

// container returns a function that edits the first container.
func container(edit func(c map[string]any)) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		edit(cs[0].(map[string]any))
		unstructured.SetNestedSlice(u.Object, cs, "spec", "template", "spec", "containers")
	}
}

// entries edits the managed-fields entries.
func entries(edit func([]metav1.ManagedFieldsEntry) []metav1.ManagedFieldsEntry) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) { u.SetManagedFields(edit(u.GetManagedFields())) }
}

func TestInSync(t *testing.T) {
	none := func(*unstructured.Unstructured) {}
	for _, tc := range []struct {
		name          string
		desired, live func(*unstructured.Unstructured)
		want          string // "" for in sync, else why not
	}{
		{name: "as applied", desired: none, live: none},
		{name: "numbers of other Go types", desired: setField("spec", "replicas")(2.0), live: setField("spec", "replicas")(float64(2))},
		{name: "another manager's fields, status and the rest stripped", desired: none, live: func(u *unstructured.Unstructured) {
			unstructured.RemoveNestedField(u.Object, "status")
			mfs := u.GetManagedFields()
			mfs[1].FieldsV1 = nil
			u.SetManagedFields(append(mfs, metav1.ManagedFieldsEntry{Manager: "hpa", Operation: metav1.ManagedFieldsOperationUpdate, Subresource: "scale", APIVersion: "apps/v1"}))
		}},
		// The server's merge may move it: the server is asked.
		{name: "another manager's env item", desired: none, live: container(func(c map[string]any) {
			c["env"] = append(c["env"].([]any), map[string]any{"name": "C", "value": "3"})
		}), want: "spec.template.spec.containers.0.env: live holds items of other managers"},
		{name: "another manager's label", desired: none, live: setField("metadata", "labels", "team")("payments")},

		{name: "an image changed in live", desired: none, live: container(func(c map[string]any) { c["image"] = "example.invalid/app:2" }),
			want: "spec.template.spec.containers.0.image: differs"},
		{name: "a new env item", desired: container(func(c map[string]any) {
			c["env"] = append(c["env"].([]any), map[string]any{"name": "C", "value": "3"})
		}), live: none, want: "spec.template.spec.containers.0.env: desired has 3 items, meshctl owns 2"},
		{name: "an env item dropped", desired: container(func(c map[string]any) { c["env"] = c["env"].([]any)[:1] }), live: none,
			want: "spec.template.spec.containers.0.env: desired has 1 items, meshctl owns 2"},
		{name: "an env item gone from live", desired: none, live: container(func(c map[string]any) { c["env"] = c["env"].([]any)[1:] }),
			want: "spec.template.spec.containers.0.env.0: not in live"},
		{name: "env items in another order in live", desired: none, live: container(func(c map[string]any) {
			e := c["env"].([]any)
			c["env"] = []any{e[1], e[0]}
		}), want: "spec.template.spec.containers.0.env.1: in another order in live"},
		{name: "atomic args changed", desired: container(func(c map[string]any) { c["args"] = []any{"--port=9090"} }), live: none,
			want: "spec.template.spec.containers.0.args: differs"},
		{name: "atomic args longer in live", desired: none, live: container(func(c map[string]any) { c["args"] = []any{"--port=8080", "-v"} }),
			want: "spec.template.spec.containers.0.args: differs"},
		{name: "a field left in an atomic value that apply would drop", desired: none, live: container(func(c map[string]any) {
			c["env"].([]any)[1].(map[string]any)["valueFrom"].(map[string]any)["fieldRef"].(map[string]any)["resourceVersion"] = "1"
		}), want: "spec.template.spec.containers.0.env.1.valueFrom.fieldRef: differs"},
		{name: "an atomic map emptied", desired: setField("spec", "selector")(map[string]any{}), live: none,
			want: "spec.selector: differs"},
		{name: "a port of another protocol", desired: container(func(c map[string]any) {
			c["ports"] = []any{map[string]any{"name": "http", "containerPort": int64(8080), "protocol": "UDP"}}
		}), live: none, want: "spec.template.spec.containers.0.ports.0: no key of meshctl's matches"},
		{name: "a label deleted in live", desired: none, live: setField("metadata", "labels")(map[string]any{}),
			want: "metadata.labels.app.kubernetes.io/managed-by: not in live"},
		{name: "replicas left to an autoscaler but still meshctl's", desired: setField("spec", "replicas")(nil), live: none,
			want: "spec: meshctl owns .replicas, which desired lacks"},
		// Turning HA off drops several fields meshctl owned from one
		// object. Leaving the library's iterator early panicked here
		// (issue 20): the first is named, and nothing panics.
		{name: "two owned fields with sets below them that desired lacks", desired: func(u *unstructured.Unstructured) {
			unstructured.RemoveNestedField(u.Object, "spec", "template", "spec", "containers")
			unstructured.RemoveNestedField(u.Object, "spec", "template", "spec", "volumes")
		}, live: none, want: "spec.template.spec: meshctl owns .containers, which desired lacks"},
		{name: "two owned leaves that desired lacks", desired: func(u *unstructured.Unstructured) {
			unstructured.RemoveNestedField(u.Object, "spec", "replicas")
			unstructured.RemoveNestedField(u.Object, "spec", "strategy")
		}, live: none, want: "spec: meshctl owns .replicas, which desired lacks"},
		{name: "an empty map that live lacks", desired: none, live: func(u *unstructured.Unstructured) {
			vs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "volumes")
			delete(vs[0].(map[string]any), "emptyDir")
			unstructured.SetNestedSlice(u.Object, vs, "spec", "template", "spec", "volumes")
		}, want: "spec.template.spec.volumes.0.emptyDir: not in live"},
		{name: "a null", desired: setField("spec", "paused")(nil), live: none},
		{name: "a field set to null", desired: func(u *unstructured.Unstructured) { u.Object["spec"].(map[string]any)["paused"] = nil }, live: none,
			want: "spec.paused: not meshctl's"},
		{name: "meshctl's entry at another version", desired: none, live: entries(func(m []metav1.ManagedFieldsEntry) []metav1.ManagedFieldsEntry {
			m[0].APIVersion = "apps/v1beta2"
			return m
		}), want: "no meshctl apply entry at apps/v1"},
		{name: "meshctl's update only", desired: none, live: entries(func(m []metav1.ManagedFieldsEntry) []metav1.ManagedFieldsEntry {
			m[0].Operation = metav1.ManagedFieldsOperationUpdate
			return m
		}), want: "no meshctl apply entry at apps/v1"},
		{name: "kubectl's last-applied annotation", desired: none, live: setField("metadata", "annotations")(map[string]any{"kubectl.kubernetes.io/last-applied-configuration": "{}"}),
			want: "awaits takeover"},
		{name: "the annotation on an object takeover leaves alone", desired: setField("metadata", "annotations")(map[string]any{AnnotationPrune: "disabled"}),
			live: func(u *unstructured.Unstructured) {
				u.SetAnnotations(map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}", AnnotationPrune: "disabled"})
				// meshctl owns its annotation.
				mfs := u.GetManagedFields()
				mfs[0].FieldsV1.Raw = []byte(`{"f:metadata":{"f:annotations":{"f:meshctl.io/prune":{}},` + string(mfs[0].FieldsV1.Raw)[len(`{"f:metadata":{`):])
				u.SetManagedFields(mfs)
			}},
		{name: "Helm's stripped entry", desired: none, live: entries(func(m []metav1.ManagedFieldsEntry) []metav1.ManagedFieldsEntry {
			return append(m, metav1.ManagedFieldsEntry{Manager: "helm", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "apps/v1"})
		}), want: "awaits takeover"},
		{name: "being deleted", desired: none, live: func(u *unstructured.Unstructured) {
			now := metav1.Now()
			u.SetDeletionTimestamp(&now)
		}, want: "being deleted"},
		{name: "managed fields that do not parse", desired: none, live: entries(func(m []metav1.ManagedFieldsEntry) []metav1.ManagedFieldsEntry {
			m[0].FieldsV1.Raw = []byte(`{"spec":{}}`)
			return m
		}), want: "no meshctl apply entry at apps/v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, l := fromYAML(t, desiredWeb), fromYAML(t, liveWeb)
			tc.desired(d)
			tc.live(l)
			if got := NotInSync(d, l); got != tc.want {
				t.Errorf("notInSync = %q, want %q", got, tc.want)
			}
			if InSync(d, l) != (tc.want == "") {
				t.Errorf("InSync = %v", InSync(d, l))
			}
		})
	}
}

// TestInSyncSetsAndCustomStatus: finalizers are a set list (v: values), and
// a custom resource's status is an ordinary field, unlike a built-in's.
func TestInSyncSetsAndCustomStatus(t *testing.T) {
	const desired = `
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, finalizers: [a.example.com/x, b.example.com/y]}
spec: {size: 1}
`
	const live = `
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
  finalizers: [a.example.com/x, other.example.com/z, b.example.com/y]
  managedFields:
  - manager: meshctl
    operation: Apply
    apiVersion: example.com/v1
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata: {f:finalizers: {v:"a.example.com/x": {}, v:"b.example.com/y": {}}}
      f:spec: {f:size: {}}
spec: {size: 1}
`
	for _, tc := range []struct {
		name          string
		desired, live func(*unstructured.Unstructured)
		want          string
	}{
		{name: "as applied"},
		{name: "a finalizer gone from live", live: func(u *unstructured.Unstructured) {
			u.SetFinalizers([]string{"a.example.com/x"})
		}, want: "metadata.finalizers: b.example.com/y missing or in another order in live"},
		{name: "a new finalizer", desired: func(u *unstructured.Unstructured) {
			u.SetFinalizers([]string{"a.example.com/x", "c.example.com/q"})
		}, want: "metadata.finalizers: c.example.com/q is not meshctl's"},
		{name: "a custom resource's status", desired: setField("status", "phase")("Ready"), want: "status: not meshctl's"},
		{name: "an empty status", desired: setField("status")(map[string]any{})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, l := fromYAML(t, desired), fromYAML(t, live)
			if tc.desired != nil {
				tc.desired(d)
			}
			if tc.live != nil {
				tc.live(l)
			}
			if got := NotInSync(d, l); got != tc.want {
				t.Errorf("notInSync = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestInSyncStringData: the server turns a Secret's stringData into data
// and keeps none, while the managed fields record stringData.
func TestInSyncStringData(t *testing.T) {
	const desired = `
apiVersion: v1
kind: Secret
metadata: {name: s, namespace: ns}
type: Opaque
stringData: {password: hunter2}
`
	const live = `
apiVersion: v1
kind: Secret
metadata:
  name: s
  namespace: ns
  managedFields:
  - manager: meshctl
    operation: Apply
    apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1: {f:stringData: {f:password: {}}, f:type: {}}
type: Opaque
data: {password: aHVudGVyMg==}
`
	for _, tc := range []struct {
		name string
		data string
		want string
	}{
		{name: "as applied", data: "aHVudGVyMg=="},
		{name: "data edited in live", data: "b3RoZXI=", want: "stringData.password: differs"},
		{name: "data that does not decode", data: "%%%", want: "stringData.password: not in live"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, l := fromYAML(t, desired), fromYAML(t, live)
			unstructured.SetNestedField(l.Object, tc.data, "data", "password")
			if got := NotInSync(d, l); got != tc.want {
				t.Errorf("notInSync = %q, want %q", got, tc.want)
			}
			if _, ok := l.Object["stringData"]; ok {
				t.Error("the live object was changed")
			}
		})
	}
}
