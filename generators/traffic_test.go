package generators

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshctl/meshctl/schema"
)

// renderTraffic renders src and keeps the objects in namespace shop (the
// services' own) and the smi extension's.
func renderTraffic(t *testing.T, src string) []Object {
	t.Helper()
	objs, err := Render(load(t, src), Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	var out []Object
	for _, o := range objs {
		switch o.Object.GetNamespace() {
		case "shop", smiNamespace:
			out = append(out, o)
		}
	}
	return out
}

func TestTrafficWeights(t *testing.T) {
	tests := []struct {
		name string
		svc  string
		want []backend
	}{
		{"a split alone, as written", `{port: 80, split: {books: 90, "books-v2": 10}}`,
			[]backend{{"books", 90}, {"books-v2", 10}}},
		{"a canary 90/10 under a 10% fault", `{port: 80, split: {books: 90, "books-v2": 10}, fault: {percent: 10, status: 500}}`,
			[]backend{{"books", 810}, {"books-v2", 90}, {"books-fault", 100}}},
		{"a blue/green 100/0 under a 5% fault", `{port: 80, split: {"books-blue": 100, "books-green": 0}, fault: {percent: 5, status: 503}}`,
			[]backend{{"books-blue", 950}, {"books-green", 0}, {"books-fault", 50}}},
		{"a fault alone keeps the rest on the service", `{port: 80, fault: {percent: 10, status: 500}}`,
			[]backend{{"books", 900}, {"books-fault", 100}}},
		{"a fractional fault rounds to tenths, remainders to the largest, ties by name", `{port: 80, split: {a: 50, b: 50}, fault: {percent: 12.34, status: 500}}`,
			[]backend{{"a", 439}, {"b", 438}, {"books-fault", 123}}},
		{"a half tenth rounds up; what is left goes to the largest remainders", `{port: 80, split: {a: 33, b: 33, c: 34}, fault: {percent: 0.05, status: 500}}`,
			[]backend{{"a", 330}, {"b", 330}, {"c", 339}, {"books-fault", 1}}},
		{"a tiny fault is at least one tenth", `{port: 80, fault: {percent: 0.01, status: 500}}`,
			[]backend{{"books", 999}, {"books-fault", 1}}},
		{"a full fault", `{port: 80, split: {books: 90, "books-v2": 10}, fault: {percent: 100, status: 500}}`,
			[]backend{{"books", 0}, {"books-v2", 0}, {"books-fault", 1000}}},
		{"neither", `{port: 80}`, nil},
		{"serviceprofile without a port renders both", `{model: "serviceprofile", split: {books: 90, "books-v2": 10}, fault: {percent: 10, status: 500}}`,
			[]backend{{"books", 810}, {"books-v2", 90}, {"books-fault", 100}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t, `services: "shop/books": `+tc.svc)
			got := serviceBackends("books", m.Services["shop/books"])
			if d := cmp.Diff(tc.want, got, cmp.AllowUnexported(backend{})); d != "" {
				t.Errorf("backends (-want +got):\n%s", d)
			}
			if activeFault(m.Services["shop/books"]) != nil {
				var sum int64
				for _, b := range got {
					sum += b.weight
				}
				if sum != faultScale {
					t.Errorf("weights sum to %d, want %d", sum, faultScale)
				}
			}
		})
	}
}

func TestRouteNames(t *testing.T) {
	route := func(names ...string) []schema.Route {
		var out []schema.Route
		for _, n := range names {
			out = append(out, schema.Route{Name: n})
		}
		return out
	}
	long := strings.Repeat("very long route ", 6)
	longSlug, _ := slug(long)
	tests := []struct {
		name   string
		routes []schema.Route
		want   []string
	}{
		{"slugs", route("GET /books", "POST /books/{id}"), []string{"books.get-books", "books.post-books-id"}},
		{"a shared slug gets hashes", route("GET /books", "get-books"),
			[]string{"books.get-books-" + shortHash("GET /books"), "books.get-books-" + shortHash("get-books")}},
		{"an empty slug is the hash", route("/"), []string{"books." + shortHash("/")}},
		{"a long slug is cut and hashed", route(long), []string{"books." + longSlug + "-" + shortHash(long)}},
		{"identical names by position", route("x", "x"), []string{"books.x-" + shortHash("x"), "books.x-" + shortHash("x") + "-2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := routeNames("books", tc.routes)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("names (-want +got):\n%s", d)
			}
			for _, n := range got {
				_, s, _ := strings.Cut(n, ".")
				if len(s) > 63 || strings.HasPrefix(s, "-") || strings.HasSuffix(s, "-") {
					t.Errorf("%q: %q is not a DNS label", n, s)
				}
			}
		})
	}
}

func TestFaultName(t *testing.T) {
	long := strings.Repeat("a", 60)
	tests := []struct{ in, want string }{
		{"books", "books-fault"},
		{strings.Repeat("a", 57), strings.Repeat("a", 57) + "-fault"},
		{long, strings.Repeat("a", 48) + "-" + shortHash(long) + "-fault"},
	}
	for _, tc := range tests {
		got := faultName(tc.in)
		if got != tc.want || len(got) > 63 {
			t.Errorf("faultName(%q) = %q (%d), want %q", tc.in, got, len(got), tc.want)
		}
	}
}

func TestGatewayDuration(t *testing.T) {
	tests := []struct{ in, want string }{
		{"300ms", "300ms"}, {"1.5s", "1s500ms"}, {"90s", "1m30s"}, {"1h30m", "1h30m"},
		{"10s", "10s"}, {"1500us", "2ms"}, {"0s", "0s"}, {"100us", "0s"},
	}
	for _, tc := range tests {
		if got := gatewayDuration(tc.in); got != tc.want {
			t.Errorf("gatewayDuration(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// specOf is obj's spec as a plain map, for cmp.
func specOf(t *testing.T, objs []Object, id string) map[string]any {
	t.Helper()
	s, _ := objectByID(t, objs, id).Object["spec"].(map[string]any)
	return s
}

type m = map[string]any

func TestHTTPRouteModel(t *testing.T) {
	parent := func(port int64) []any {
		p := m{"group": "core", "kind": "Service", "name": "books"}
		if port != 0 {
			p["port"] = port
		}
		return []any{p}
	}
	catchAll := []any{m{"path": m{"type": "PathPrefix", "value": "/"}}}
	canary := []any{m{"name": "books", "port": int64(7002), "weight": int64(90)}, m{"name": "books-v2", "port": int64(7002), "weight": int64(10)}}
	tests := []struct {
		name  string
		svc   string
		specs map[string]m
		ann   map[string]map[string]string
	}{
		{
			name: "routes and a canary: every rule carries the split",
			svc: `{port: 7002, split: {books: 90, "books-v2": 10}, routes: [
				{name: "GET /books", method: "GET", pathRegex: "/books(/.*)?", isRetryable: true, timeout: "1.5s"},
				{name: "POST /books", method: "POST", pathRegex: "/books"}]}`,
			specs: map[string]m{
				"HTTPRoute/shop/books.get-books": {"parentRefs": parent(7002), "rules": []any{m{
					"matches":     []any{m{"method": "GET", "path": m{"type": "RegularExpression", "value": "/books(/.*)?"}}},
					"timeouts":    m{"request": "1s500ms"},
					"backendRefs": canary,
				}}},
				"HTTPRoute/shop/books.post-books": {"parentRefs": parent(7002), "rules": []any{m{
					"matches":     []any{m{"method": "POST", "path": m{"type": "RegularExpression", "value": "/books"}}},
					"backendRefs": canary,
				}}},
				"HTTPRoute/shop/books": {"parentRefs": parent(7002), "rules": []any{m{"matches": catchAll, "backendRefs": canary}}},
			},
			ann: map[string]map[string]string{"HTTPRoute/shop/books.get-books": {"retry.linkerd.io/http": "5xx"}},
		},
		{
			name: "routes without a port attach to every port and send to the parent",
			svc:  `{routes: [{name: "GET /books", pathRegex: "/books"}]}`,
			specs: map[string]m{
				"HTTPRoute/shop/books.get-books": {"parentRefs": parent(0), "rules": []any{m{
					"matches": []any{m{"path": m{"type": "RegularExpression", "value": "/books"}}},
				}}},
				"HTTPRoute/shop/books": {"parentRefs": parent(0), "rules": []any{m{"matches": catchAll}}},
			},
		},
		{
			name: "a fault alone: one catch-all route and the fault backend",
			svc:  `{port: 7002, fault: {percent: 10, status: 500}}`,
			specs: map[string]m{
				"HTTPRoute/shop/books": {"parentRefs": parent(7002), "rules": []any{m{"matches": catchAll, "backendRefs": []any{
					m{"name": "books", "port": int64(7002), "weight": int64(900)},
					m{"name": "books-fault", "port": int64(7002), "weight": int64(100)},
				}}}},
				"ConfigMap/shop/books-fault": nil, "Deployment/shop/books-fault": nil, "Service/shop/books-fault": nil,
			},
		},
		{
			name:  "nothing to route",
			svc:   `{port: 7002}`,
			specs: map[string]m{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := renderTraffic(t, `services: "shop/books": `+tc.svc)
			if d := cmp.Diff(sortedKeys(tc.specs), objectIDs(objs)); d != "" {
				t.Fatalf("objects (-want +got):\n%s", d)
			}
			for id, want := range tc.specs {
				if !strings.HasPrefix(id, "HTTPRoute/") {
					continue
				}
				o := objectByID(t, objs, id)
				if o.GetAPIVersion() != "policy.linkerd.io/v1beta3" {
					t.Errorf("%s: apiVersion %s", id, o.GetAPIVersion())
				}
				if d := cmp.Diff(want, m(specOf(t, objs, id))); d != "" {
					t.Errorf("%s spec (-want +got):\n%s", id, d)
				}
				if d := cmp.Diff(tc.ann[id], o.GetAnnotations()); d != "" {
					t.Errorf("%s annotations (-want +got):\n%s", id, d)
				}
			}
		})
	}
}

func TestServiceProfileModel(t *testing.T) {
	route := m{"name": "GET /books", "condition": m{"method": "GET", "pathRegex": "/books"}, "isRetryable": true,
		"responseClasses": []any{m{"condition": m{"status": m{"min": int64(500), "max": int64(599)}}, "isFailure": true}}}
	budget := m{"retryRatio": 0.2, "minRetriesPerSecond": int64(10), "ttl": "10s"}
	const fqdn = "ServiceProfile/shop/books.shop.svc.cluster.local"
	tests := []struct {
		name string
		svc  string
		want map[string]m
	}{
		{
			name: "routes, budget, canary and fault with a port",
			svc: `{model: "serviceprofile", port: 7002, retryBudget: {}, split: {books: 90, "books-v2": 10}, fault: {percent: 10, status: 500},
				routes: [{name: "GET /books", method: "GET", pathRegex: "/books", isRetryable: true, responseClasses: [{condition: status: {min: 500, max: 599}}]}]}`,
			want: map[string]m{fqdn: {"routes": []any{route}, "retryBudget": budget, "dstOverrides": []any{
				m{"authority": "books.shop.svc.cluster.local:7002", "weight": int64(810)},
				m{"authority": "books-v2.shop.svc.cluster.local:7002", "weight": int64(90)},
				m{"authority": "books-fault.shop.svc.cluster.local:7002", "weight": int64(100)},
			}}, "ConfigMap/shop/books-fault": nil, "Deployment/shop/books-fault": nil, "Service/shop/books-fault": nil},
		},
		{
			name: "without a port the client's port is used, and the fault Service's is named",
			svc:  `{model: "serviceprofile", split: {"books-blue": 100, "books-green": 0}, fault: {percent: 5, status: 503}}`,
			want: map[string]m{fqdn: {"dstOverrides": []any{
				m{"authority": "books-blue.shop.svc.cluster.local", "weight": int64(950)},
				m{"authority": "books-green.shop.svc.cluster.local", "weight": int64(0)},
				m{"authority": "books-fault.shop.svc.cluster.local:80", "weight": int64(50)},
			}}, "ConfigMap/shop/books-fault": nil, "Deployment/shop/books-fault": nil, "Service/shop/books-fault": nil},
		},
		{
			name: "a budget alone",
			svc:  `{model: "serviceprofile", retryBudget: {}}`,
			want: map[string]m{fqdn: {"retryBudget": budget}},
		},
		{
			name: "nothing to say",
			svc:  `{model: "serviceprofile", port: 80}`,
			want: map[string]m{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := renderTraffic(t, `services: "shop/books": `+tc.svc)
			if d := cmp.Diff(sortedKeys(tc.want), objectIDs(objs)); d != "" {
				t.Fatalf("objects (-want +got):\n%s", d)
			}
			if want, ok := tc.want[fqdn]; ok {
				if d := cmp.Diff(want, m(specOf(t, objs, fqdn))); d != "" {
					t.Errorf("spec (-want +got):\n%s", d)
				}
			}
		})
	}
}

func TestFaultBackend(t *testing.T) {
	objs := renderTraffic(t, `services: "shop/books": {port: 7002, fault: {percent: 10, status: 418}}`)
	for _, o := range objs {
		if strings.HasSuffix(o.ID(), "/books-fault") && o.Stage != StageExtensions {
			t.Errorf("%s in stage %s, want extensions (ready before traffic shifts)", o.ID(), o.Stage)
		}
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	fromUnstructured(t, objectByID(t, objs, "ConfigMap/shop/books-fault"), &cm)
	conf := cm.Data[faultConfigKey]
	for _, want := range []string{"listen 8080;", "return 418 ", "listen 8081;", "pid /tmp/nginx.pid;"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nginx.conf lacks %q:\n%s", want, conf)
		}
	}
	var svc struct {
		Spec struct {
			Selector map[string]string `json:"selector"`
			Ports    []struct {
				Port       int32  `json:"port"`
				TargetPort string `json:"targetPort"`
			} `json:"ports"`
		} `json:"spec"`
	}
	fromUnstructured(t, objectByID(t, objs, "Service/shop/books-fault"), &svc)
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 7002 || svc.Spec.Ports[0].TargetPort != "http" {
		t.Errorf("fault Service ports %+v, want 7002 → http", svc.Spec.Ports)
	}
	d := objectByID(t, objs, "Deployment/shop/books-fault")
	tmpl, _, _ := unstructured.NestedMap(d.Object, "spec", "template")
	ann, _, _ := unstructured.NestedStringMap(tmpl, "metadata", "annotations")
	if ann["linkerd.io/inject"] != "enabled" || ann["checksum/config"] != sha256Hex([]byte(conf)) {
		t.Errorf("pod annotations %v: want meshed, with the config's checksum", ann)
	}
	labels, _, _ := unstructured.NestedStringMap(tmpl, "metadata", "labels")
	if d := cmp.Diff(svc.Spec.Selector, labels); d != "" {
		t.Errorf("the Service does not select the pods (-selector +labels):\n%s", d)
	}
	containers, _, _ := unstructured.NestedSlice(tmpl, "spec", "containers")
	c := containers[0].(map[string]any)
	sc := c["securityContext"].(map[string]any)
	if sc["readOnlyRootFilesystem"] != true || sc["runAsNonRoot"] != true || sc["allowPrivilegeEscalation"] != false {
		t.Errorf("securityContext %v", sc)
	}
	if drop, _, _ := unstructured.NestedStringSlice(sc, "capabilities", "drop"); !slices.Equal(drop, []string{"ALL"}) {
		t.Errorf("capabilities drop %v, want ALL", drop)
	}
	if lim, _, _ := unstructured.NestedStringMap(c, "resources", "limits"); lim["memory"] == "" || lim["cpu"] == "" {
		t.Errorf("limits %v, want cpu and memory", lim)
	}
	mounts := fmt.Sprint(c["volumeMounts"])
	if !strings.Contains(mounts, "mountPath:/tmp") {
		t.Errorf("no writable /tmp: %s", mounts)
	}

	// Changing the status rolls the pod; removing the fault removes all.
	other := renderTraffic(t, `services: "shop/books": {port: 7002, fault: {percent: 10, status: 503}}`)
	otherAnn, _, _ := unstructured.NestedStringMap(objectByID(t, other, "Deployment/shop/books-fault").Object, "spec", "template", "metadata", "annotations")
	if otherAnn["checksum/config"] == ann["checksum/config"] {
		t.Error("a new status does not change the pod template")
	}
	if ids := objectIDs(renderTraffic(t, `services: "shop/books": {port: 7002}`)); len(ids) != 0 {
		t.Errorf("without the fault: %v, want nothing", ids)
	}
}

func fromUnstructured(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		t.Fatal(err)
	}
}

// everyModel is a mesh with each model and each feature it allows.
const everyModel = `namespaces: shop: {}
services: {
	"shop/h-routes": {port: 80, routes: [{name: "GET /", pathRegex: "/.*", isRetryable: true, timeout: "1s"}]}
	"shop/h-all": {port: 80, routes: [{name: "GET /", method: "GET", pathRegex: "/.*"}], split: {"h-all": 90, "h-all-v2": 10}, fault: {percent: 10, status: 500}}
	"shop/h-split": {port: 80, split: {"h-split": 100, "h-split-v2": 0}}
	"shop/h-fault": {port: 80, fault: {percent: 1, status: 503}}
	"shop/p-routes": {model: "serviceprofile", routes: [{name: "GET /", pathRegex: "/.*", responseClasses: [{condition: status: min: 500}]}], retryBudget: {}}
	"shop/p-all": {model: "serviceprofile", port: 80, routes: [{name: "GET /", pathRegex: "/.*"}], split: {"p-all": 90, "p-all-v2": 10}, fault: {percent: 10, status: 500}}
	"shop/s-routes": {model: "smi", routes: [{name: "GET /", pathRegex: "/.*"}], retryBudget: {}}
	"shop/s-all": {model: "smi", port: 80, routes: [{name: "GET /", pathRegex: "/.*"}], split: {"s-all": 90, "s-all-v2": 10}, fault: {percent: 10, status: 500}}
	"shop/s-split": {model: "smi", split: {"s-split": 50, "s-split-v2": 50}}
}
`

// TestNoServiceMixesModels: a service whose ServiceProfile has routes and
// that also has HTTPRoutes would lose the routes to the profile (FACTS
// §12); and an smi service's profile never carries dstOverrides, which are
// the adaptor's.
func TestNoServiceMixesModels(t *testing.T) {
	mesh := load(t, everyModel)
	objs := renderTraffic(t, everyModel)
	profiled, routed, split := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, o := range objs {
		u := o.Object
		switch u.GetKind() {
		case "ServiceProfile":
			name, _, _ := strings.Cut(u.GetName(), ".")
			key := u.GetNamespace() + "/" + name
			if _, ok := specOf(t, objs, o.ID())["routes"]; ok {
				profiled[key] = true
			}
			if _, ok := specOf(t, objs, o.ID())["dstOverrides"]; ok && mesh.Services[key].Model != modelServiceProfile {
				t.Errorf("%s: dstOverrides on a %s service", o.ID(), mesh.Services[key].Model)
			}
		case "HTTPRoute":
			parents, _, _ := unstructured.NestedSlice(u.Object, "spec", "parentRefs")
			for _, p := range parents {
				routed[u.GetNamespace()+"/"+p.(map[string]any)["name"].(string)] = true
			}
		case "TrafficSplit":
			split[u.GetNamespace()+"/"+u.GetName()] = true
		}
	}
	for key, svc := range mesh.Services {
		if profiled[key] && routed[key] {
			t.Errorf("%s has a ServiceProfile with routes and HTTPRoutes", key)
		}
		want := map[string][3]bool{ // profiled, routed, split
			modelHTTPRoute:      {false, len(svc.Routes) > 0 || len(svc.Split) > 0 || svc.Fault != nil, false},
			modelServiceProfile: {len(svc.Routes) > 0, false, false},
			modelSMI:            {len(svc.Routes) > 0, false, len(svc.Split) > 0 || svc.Fault != nil},
		}[svc.Model]
		if got := [3]bool{profiled[key], routed[key], split[key]}; got != want {
			t.Errorf("%s (%s): profile with routes, HTTPRoutes, TrafficSplit = %v, want %v", key, svc.Model, got, want)
		}
	}
}

// TestTrafficObjectsAreAdmitted checks every custom resource the traffic
// models render against the rendered CRDs' schemas, as the API server
// would: no unknown fields (which it would drop), and a valid object.
func TestTrafficObjectsAreAdmitted(t *testing.T) {
	all, err := Render(load(t, everyModel), Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	crds := renderedCRDs(t, all)
	n := 0
	for _, o := range all {
		switch o.Object.GetKind() {
		case "HTTPRoute", "ServiceProfile", "TrafficSplit":
			if o.Object.GetNamespace() != "shop" {
				continue
			}
			n++
			for _, p := range admit(t, crds, o.Object) {
				t.Errorf("%s: %s", o.ID(), p)
			}
		}
	}
	if n < 12 {
		t.Errorf("checked %d objects, want every route, profile and split of the mesh", n)
	}

	// The check itself: what the API server would refuse or drop.
	bad := objectByID(t, all, "HTTPRoute/shop/h-all").DeepCopy()
	rules, _, _ := unstructured.NestedSlice(bad.Object, "spec", "rules")
	rules[0].(map[string]any)["backendRefs"].([]any)[0].(map[string]any)["weight"] = int64(-1)
	rules[0].(map[string]any)["mirror"] = true
	_ = unstructured.SetNestedSlice(bad.Object, rules, "spec", "rules")
	got := strings.Join(admit(t, crds, bad), "\n")
	for _, want := range []string{"unknown field spec.rules[0].mirror", "weight"} {
		if !strings.Contains(got, want) {
			t.Errorf("a broken HTTPRoute passes: want %q in\n%s", want, got)
		}
	}
}

// renderedCRDs are the rendered CRDs, by group and kind.
func renderedCRDs(t *testing.T, objs []Object) map[string]*apiextv1.CustomResourceDefinition {
	t.Helper()
	out := map[string]*apiextv1.CustomResourceDefinition{}
	for _, o := range objs {
		if o.Object.GetKind() != "CustomResourceDefinition" {
			continue
		}
		c := &apiextv1.CustomResourceDefinition{}
		fromUnstructured(t, o.Object, c)
		out[c.Spec.Group+"/"+c.Spec.Names.Kind] = c
	}
	return out
}

// admit is what the API server says of obj: unknown fields it would prune,
// then schema errors after defaulting.
func admit(t *testing.T, crds map[string]*apiextv1.CustomResourceDefinition, obj *unstructured.Unstructured) []string {
	t.Helper()
	gvk := obj.GroupVersionKind()
	c, ok := crds[gvk.Group+"/"+gvk.Kind]
	if !ok {
		return []string{"no CRD rendered for " + gvk.String()}
	}
	var v *apiextv1.CustomResourceDefinitionVersion
	for i := range c.Spec.Versions {
		if c.Spec.Versions[i].Name == gvk.Version && c.Spec.Versions[i].Served {
			v = &c.Spec.Versions[i]
		}
	}
	if v == nil {
		return []string{"version not served: " + gvk.Version}
	}
	internal := &apiextensions.JSONSchemaProps{}
	if err := apiextv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, internal, nil); err != nil {
		t.Fatal(err)
	}
	structural, err := structuralschema.NewStructural(internal)
	if err != nil {
		t.Fatal(err)
	}
	u := obj.DeepCopy().Object
	var problems []string
	for _, p := range pruning.PruneWithOptions(u, structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}) {
		problems = append(problems, "unknown field "+p)
	}
	defaulting.Default(u, structural)
	validator, _, err := validation.NewSchemaValidator(internal)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range validation.ValidateCustomResource(nil, u, validator) {
		problems = append(problems, e.Error())
	}
	return problems
}
