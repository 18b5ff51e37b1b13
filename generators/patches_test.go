package generators

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/meshctl/meshctl/schema"
)

// patchFixture are a few rendered objects, as the generators make them.
const patchFixture = `
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: linkerd-destination, namespace: linkerd, labels: {app: destination}}
  spec:
    replicas: 1
    template:
      spec:
        containers:
        - {name: linkerd-proxy, image: proxy}
        - {name: destination, image: controller, env: [{name: A, value: a}]}
        - {name: policy, image: policy}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: linkerd-identity, namespace: linkerd, labels: {app: identity}}
  spec: {replicas: 1}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: linkerd-config, namespace: linkerd}
  data: {values: "x", keep: "y"}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: linkerd-policy}
  rules: []
- apiVersion: linkerd.io/v1alpha2
  kind: ServiceProfile
  metadata: {name: books.shop.svc.cluster.local, namespace: shop}
  spec:
    routes:
    - {name: GET /books, condition: {method: GET, pathRegex: /books}}
    - {name: POST /books, condition: {method: POST, pathRegex: /books}, isRetryable: true}
    retryBudget: {retryRatio: 0.2, minRetriesPerSecond: 10, ttl: 10s}
`

// fixtureObjects decodes patchFixture; stage i+1 tells the objects apart.
func fixtureObjects(t *testing.T) []Object {
	t.Helper()
	var list []map[string]any
	decodeYAML(t, patchFixture, &list)
	objs := make([]Object, len(list))
	for i, m := range list {
		objs[i] = Object{Stage: Stage(i + 1), Object: &unstructured.Unstructured{Object: m}}
	}
	return objs
}

// yamlObject decodes one object as the tests write it.
func yamlObject(t *testing.T, src string) map[string]any {
	t.Helper()
	var m map[string]any
	decodeYAML(t, src, &m)
	return m
}

// decodeYAML decodes with int64 numbers, as unstructured objects hold them.
func decodeYAML(t *testing.T, src string, into any) {
	t.Helper()
	data, err := sigsyaml.YAMLToJSON([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := utiljson.Unmarshal(data, into); err != nil {
		t.Fatal(err)
	}
}

func smp(target schema.PatchTarget, patch string) schema.Patch {
	return schema.Patch{Target: target, Patch: patch}
}

func TestApplyPatches(t *testing.T) {
	destination := schema.PatchTarget{Kind: "Deployment", Namespace: "linkerd", Name: "linkerd-destination"}
	config := schema.PatchTarget{Kind: "ConfigMap", Name: "linkerd-config"}
	tests := []struct {
		name    string
		patches []schema.Patch
		// want maps the ID of each object the patches change to the whole
		// object after them; every other object must stay as it was.
		want map[string]string
	}{
		{
			name: "strategic merge on a Deployment: replicas, a toleration, an env var in a named container",
			patches: []schema.Patch{smp(destination, `
spec:
  replicas: 3
  template:
    spec:
      tolerations: [{key: dedicated, operator: Exists}]
      containers:
      - name: destination
        env: [{name: B, value: b}]
`)},
			want: map[string]string{"Deployment/linkerd/linkerd-destination": `
apiVersion: apps/v1
kind: Deployment
metadata: {name: linkerd-destination, namespace: linkerd, labels: {app: destination}}
spec:
  replicas: 3
  template:
    spec:
      tolerations: [{key: dedicated, operator: Exists}]
      containers:
      - {name: linkerd-proxy, image: proxy}
      - {name: destination, image: controller, env: [{name: A, value: a}, {name: B, value: b}]}
      - {name: policy, image: policy}
`},
		},
		{
			name:    "strategic merge adds a container last, after linkerd-proxy and the rest",
			patches: []schema.Patch{smp(destination, `{"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "s"}]}}}}`)},
			want: map[string]string{"Deployment/linkerd/linkerd-destination": `
apiVersion: apps/v1
kind: Deployment
metadata: {name: linkerd-destination, namespace: linkerd, labels: {app: destination}}
spec:
  replicas: 1
  template:
    spec:
      containers:
      - {name: linkerd-proxy, image: proxy}
      - {name: destination, image: controller, env: [{name: A, value: a}]}
      - {name: policy, image: policy}
      - {name: sidecar, image: s}
`},
		},
		{
			name: "JSON 6902 add, replace and remove, in YAML",
			patches: []schema.Patch{smp(config, `
- {op: add, path: /data/added, value: "2026-01-01"}
- {op: replace, path: /data/values, value: z}
- {op: remove, path: /data/keep}
`)},
			want: map[string]string{"ConfigMap/linkerd/linkerd-config": `
apiVersion: v1
kind: ConfigMap
metadata: {name: linkerd-config, namespace: linkerd}
data: {values: z, added: "2026-01-01"}
`},
		},
		{
			name:    "JSON 6902 in JSON on a Deployment, with an integer",
			patches: []schema.Patch{smp(destination, `[{"op": "replace", "path": "/spec/replicas", "value": 5}]`)},
			want: map[string]string{"Deployment/linkerd/linkerd-destination": `
apiVersion: apps/v1
kind: Deployment
metadata: {name: linkerd-destination, namespace: linkerd, labels: {app: destination}}
spec:
  replicas: 5
  template:
    spec:
      containers:
      - {name: linkerd-proxy, image: proxy}
      - {name: destination, image: controller, env: [{name: A, value: a}]}
      - {name: policy, image: policy}
`},
		},
		{
			// Routes have names, but a CRD has no patch strategy: the list is
			// replaced whole, as a JSON merge patch does, and maps merge.
			name: "a merge on a ServiceProfile replaces its routes",
			patches: []schema.Patch{smp(schema.PatchTarget{Kind: "ServiceProfile"}, `
spec:
  routes:
  - {name: GET /books, timeout: 1s}
  retryBudget: {ttl: 20s}
`)},
			want: map[string]string{"ServiceProfile/shop/books.shop.svc.cluster.local": `
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: books.shop.svc.cluster.local, namespace: shop}
spec:
  routes:
  - {name: GET /books, timeout: 1s}
  retryBudget: {retryRatio: 0.2, minRetriesPerSecond: 10, ttl: 20s}
`},
		},
		{
			name:    "a $patch: replace element replaces a merged list",
			patches: []schema.Patch{smp(destination, "spec: {template: {spec: {containers: [{$patch: replace}, {name: only, image: o}]}}}")},
			want: map[string]string{"Deployment/linkerd/linkerd-destination": `
apiVersion: apps/v1
kind: Deployment
metadata: {name: linkerd-destination, namespace: linkerd, labels: {app: destination}}
spec: {replicas: 1, template: {spec: {containers: [{name: only, image: o}]}}}
`},
		},
		{
			name:    "null removes a field",
			patches: []schema.Patch{smp(config, "data: {keep: null}")},
			want: map[string]string{"ConfigMap/linkerd/linkerd-config": `
apiVersion: v1
kind: ConfigMap
metadata: {name: linkerd-config, namespace: linkerd}
data: {values: x}
`},
		},
		{
			name:    "labelSelector picks one Deployment of two",
			patches: []schema.Patch{smp(schema.PatchTarget{Kind: "Deployment", LabelSelector: "app in (identity, other)"}, "spec: {replicas: 2}")},
			want: map[string]string{"Deployment/linkerd/linkerd-identity": `
apiVersion: apps/v1
kind: Deployment
metadata: {name: linkerd-identity, namespace: linkerd, labels: {app: identity}}
spec: {replicas: 2}
`},
		},
		{
			name: "a name regex matches the whole name",
			patches: []schema.Patch{smp(schema.PatchTarget{Name: "linkerd-(identity|config)"},
				"metadata: {annotations: {team: mesh}}")},
			want: map[string]string{
				"Deployment/linkerd/linkerd-identity": `
apiVersion: apps/v1
kind: Deployment
metadata: {name: linkerd-identity, namespace: linkerd, labels: {app: identity}, annotations: {team: mesh}}
spec: {replicas: 1}
`,
				"ConfigMap/linkerd/linkerd-config": `
apiVersion: v1
kind: ConfigMap
metadata: {name: linkerd-config, namespace: linkerd, annotations: {team: mesh}}
data: {values: "x", keep: "y"}
`},
		},
		{
			name: "group and version select, the patch's own header is not merged",
			patches: []schema.Patch{smp(schema.PatchTarget{Group: "rbac.authorization.k8s.io", Version: "v1"}, `
apiVersion: v1
kind: Other
metadata: {name: ignored, namespace: ignored, labels: {a: b}}
`)},
			want: map[string]string{"ClusterRole/linkerd-policy": `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: linkerd-policy, labels: {a: b}}
rules: []
`},
		},
		{
			name: "with no target, the patch's header is the target",
			patches: []schema.Patch{smp(schema.PatchTarget{}, `
kind: ConfigMap
metadata: {name: linkerd-config, namespace: linkerd}
data: {date: 2026-01-01}
`)},
			want: map[string]string{"ConfigMap/linkerd/linkerd-config": `
apiVersion: v1
kind: ConfigMap
metadata: {name: linkerd-config, namespace: linkerd}
data: {values: "x", keep: "y", date: "2026-01-01"}
`},
		},
		{
			name: "two patches on one object apply in order",
			patches: []schema.Patch{
				smp(config, `[{op: add, path: /data/order, value: first}]`),
				smp(config, "data: {order: second}"),
				smp(config, `[{op: test, path: /data/order, value: second}, {op: copy, from: /data/order, path: /data/copy}]`),
			},
			want: map[string]string{"ConfigMap/linkerd/linkerd-config": `
apiVersion: v1
kind: ConfigMap
metadata: {name: linkerd-config, namespace: linkerd}
data: {values: "x", keep: "y", order: second, copy: second}
`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := fixtureObjects(t)
			got, err := applyPatches(&schema.Mesh{Patches: tc.patches}, fixtureObjects(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(before) {
				t.Fatalf("%d objects in, %d out", len(before), len(got))
			}
			for i, o := range got {
				if o.Stage != before[i].Stage || o.ID() != before[i].ID() {
					t.Errorf("object %d is %s at stage %v, was %s at stage %v", i, o.ID(), o.Stage, before[i].ID(), before[i].Stage)
				}
				want := before[i].Object.Object
				if src, ok := tc.want[o.ID()]; ok {
					want = yamlObject(t, src)
				}
				if d := cmp.Diff(want, o.Object.Object); d != "" {
					t.Errorf("%s (-want +got):\n%s", o.ID(), d)
				}
			}
			for id := range tc.want {
				objectByID(t, got, id)
			}
		})
	}
}

func TestApplyPatchesErrors(t *testing.T) {
	destination := schema.PatchTarget{Kind: "Deployment", Namespace: "linkerd", Name: "linkerd-destination"}
	config := schema.PatchTarget{Kind: "ConfigMap", Name: "linkerd-config"}
	ok := smp(config, "data: {a: b}")
	tests := []struct {
		name    string
		patches []schema.Patch
		want    string
		noMatch bool
	}{
		{
			name:    "a patch that matches nothing",
			patches: []schema.Patch{ok, smp(schema.PatchTarget{Kind: "Deployment", Namespace: "linkerd", Name: "linkerd-destinaton"}, "spec: {replicas: 2}")},
			want:    "patches[1] (Deployment linkerd/linkerd-destinaton): matches no rendered object (meshctl build lists them)",
			noMatch: true,
		},
		{
			name:    "a namespace never matches a cluster-scoped object",
			patches: []schema.Patch{smp(schema.PatchTarget{Kind: "ClusterRole", Namespace: ".*"}, "rules: []")},
			want:    "patches[0] (ClusterRole in namespace .*): matches no rendered object (meshctl build lists them)",
			noMatch: true,
		},
		{
			name:    "a label selector that matches nothing",
			patches: []schema.Patch{smp(schema.PatchTarget{Group: "apps", LabelSelector: "app=nope"}, "spec: {replicas: 2}")},
			want:    "patches[0] (apps any kind with labels app=nope): matches no rendered object (meshctl build lists them)",
			noMatch: true,
		},
		{
			name:    "the header as target matches exactly, not as a regex",
			patches: []schema.Patch{smp(schema.PatchTarget{}, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: linkerd-.*}\nspec: {replicas: 2}")},
			want:    "patches[0] (apps/v1 Deployment linkerd-.*, from the patch): matches no rendered object (meshctl build lists them)",
			noMatch: true,
		},
		{
			name:    "bad patch text",
			patches: []schema.Patch{smp(destination, "spec:\n  replicas: [1\n")},
			want:    "patches[0] (Deployment linkerd/linkerd-destination): patch is not valid YAML or JSON: yaml: line 1: did not find expected ',' or ']'",
		},
		{
			name:    "a scalar is no patch",
			patches: []schema.Patch{smp(destination, "replicas")},
			want:    "patches[0] (Deployment linkerd/linkerd-destination): patch is neither a strategic-merge patch (a YAML or JSON object) nor a JSON 6902 patch (a list of operations)",
		},
		{
			name:    "two documents",
			patches: []schema.Patch{smp(destination, "spec: {replicas: 2}\n---\nspec: {replicas: 3}\n")},
			want:    "patches[0] (Deployment linkerd/linkerd-destination): patch holds 2 YAML documents; write each as its own entry of patches",
		},
		{
			name:    "an unknown JSON 6902 operation",
			patches: []schema.Patch{smp(config, `[{"op": "upsert", "path": "/data/a", "value": "b"}]`)},
			want:    `patches[0] (ConfigMap linkerd-config): JSON 6902 patch, operation 0: op "upsert" is not add, remove, replace, move, copy or test`,
		},
		{
			name:    "a JSON 6902 operation without a path",
			patches: []schema.Patch{smp(config, `[{"op": "add", "path": "/data/a", "value": "b"}, {"op": "remove"}]`)},
			want:    `patches[0] (ConfigMap linkerd-config): JSON 6902 patch, operation 1 (remove): no path`,
		},
		{
			name:    "a JSON 6902 patch needs a target",
			patches: []schema.Patch{smp(schema.PatchTarget{}, `[{"op": "remove", "path": "/data"}]`)},
			want:    "patches[0] (any kind): a JSON 6902 patch needs a target: set at least its kind and name",
		},
		{
			name:    "no target and no header",
			patches: []schema.Patch{smp(schema.PatchTarget{}, "spec: {replicas: 2}")},
			want:    "patches[0] (any kind): the target is empty and the patch names no kind and metadata.name: set target",
		},
		{
			name:    "a bad regular expression",
			patches: []schema.Patch{smp(schema.PatchTarget{Kind: "Deployment", Name: "linkerd-(destination"}, "spec: {replicas: 2}")},
			want:    "patches[0] (Deployment linkerd-(destination): target.name is not a regular expression: error parsing regexp: missing closing ): `linkerd-(destination`",
		},
		{
			name:    "a bad label selector",
			patches: []schema.Patch{smp(schema.PatchTarget{LabelSelector: "app in (a"}, "spec: {replicas: 2}")},
			want:    "patches[0] (any kind with labels app in (a): target.labelSelector: unable to parse requirement: found '', expected: ',' or ')'",
		},
		{
			name:    "a JSON 6902 operation that does not apply names the object",
			patches: []schema.Patch{ok, smp(schema.PatchTarget{Kind: "ConfigMap"}, `[{"op": "remove", "path": "/data/nope"}]`)},
			want:    "patches[1] (ConfigMap) on ConfigMap/linkerd/linkerd-config: error in remove for path: '/data/nope': Unable to remove nonexistent key: nope: missing value",
		},
		{
			name:    "a kind change is refused",
			patches: []schema.Patch{smp(config, `[{"op": "replace", "path": "/kind", "value": "Secret"}]`)},
			want:    `patches[0] (ConfigMap linkerd-config) on ConfigMap/linkerd/linkerd-config: the patch changes the kind from "ConfigMap" to "Secret"; a patch may not change an object's apiVersion, kind, namespace or name, since meshctl's inventory, prune and apply stages know the object by them`,
		},
		{
			name:    "a move to another namespace is refused",
			patches: []schema.Patch{smp(destination, `[{"op": "replace", "path": "/metadata/namespace", "value": "other"}]`)},
			want:    `patches[0] (Deployment linkerd/linkerd-destination) on Deployment/linkerd/linkerd-destination: the patch changes the namespace from "linkerd" to "other"; a patch may not change an object's apiVersion, kind, namespace or name, since meshctl's inventory, prune and apply stages know the object by them`,
		},
		{
			name:    "a strategic merge cannot merge a list into a map",
			patches: []schema.Patch{smp(destination, "spec: {template: [1]}")},
			want:    "patches[0] (Deployment linkerd/linkerd-destination) on Deployment/linkerd/linkerd-destination: wrong node kind: expected MappingNode but got SequenceNode: node contents:\n[1]\n",
		},
		{
			name:    "deleting an object is refused",
			patches: []schema.Patch{smp(config, "$patch: delete")},
			want:    "patches[0] (ConfigMap linkerd-config) on ConfigMap/linkerd/linkerd-config: the patch deletes the object; turn it off in mesh.cue instead, so that meshctl prunes it",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := applyPatches(&schema.Mesh{Patches: tc.patches}, fixtureObjects(t))
			if err == nil {
				t.Fatalf("no error; objects %v", objectIDs(objs))
			}
			want := strings.Join(strings.Fields(tc.want), " ")
			if d := cmp.Diff(want, err.Error()); d != "" {
				t.Errorf("error (-want +got):\n%s", d)
			}
			var pe *PatchError
			if !errors.As(err, &pe) {
				t.Errorf("error is %T, not *PatchError", err)
			}
			if got := errors.Is(err, ErrPatchMatchesNothing); got != tc.noMatch {
				t.Errorf("errors.Is(err, ErrPatchMatchesNothing) = %v", got)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

// TestPatchErrorPosition: a position, once the loader records it, leads
// the line as in every other mesh.cue error.
func TestPatchErrorPosition(t *testing.T) {
	err := &PatchError{Index: 2, Pos: "mesh.cue:12:3", Target: "Deployment linkerd/x", Object: "Deployment/linkerd/x", Err: errors.New("boom")}
	if got, want := err.Error(), "mesh.cue:12:3: patches[2] (Deployment linkerd/x) on Deployment/linkerd/x: boom"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestRenderAppliesPatches: Render patches what the generators made, a
// ServiceProfile from services included, and returns a patch's error.
func TestRenderAppliesPatches(t *testing.T) {
	m := load(t, `
services: "shop/books": {
	model: "serviceprofile"
	routes: [{name: "GET /books", method: "GET", pathRegex: "/books"}, {name: "POST /books", method: "POST", pathRegex: "/books"}]
}
patches: [{
	target: {group: "linkerd.io", kind: "ServiceProfile", namespace: "shop"}
	patch: """
		spec:
		  routes:
		  - {name: all, condition: {pathRegex: /.*}}
		"""
}]
`)
	objs, err := Render(m, Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	sp := objectByID(t, objs, "ServiceProfile/shop/books.shop.svc.cluster.local")
	routes, _, _ := unstructured.NestedSlice(sp.Object, "spec", "routes")
	want := []any{map[string]any{"name": "all", "condition": map[string]any{"pathRegex": "/.*"}}}
	if d := cmp.Diff(want, routes); d != "" {
		t.Errorf("routes (-want +got):\n%s", d)
	}

	m.Patches[0].Target.Namespace = "books"
	if _, err := Render(m, Inputs{}); !errors.Is(err, ErrPatchMatchesNothing) {
		t.Errorf("Render with a patch that matches nothing: %v", err)
	}
}
