package plan_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/plan"
)

// crdTestNamespace holds the custom resources of the CRD schema tests, away
// from the meshes the other tests apply.
const crdTestNamespace = "crd-schemas"

// linkerdKinds maps each Linkerd kind to its group and plural.
var linkerdKinds = map[string]schema.GroupResource{
	"AuthorizationPolicy":      {Group: "policy.linkerd.io", Resource: "authorizationpolicies"},
	"EgressNetwork":            {Group: "policy.linkerd.io", Resource: "egressnetworks"},
	"HTTPLocalRateLimitPolicy": {Group: "policy.linkerd.io", Resource: "httplocalratelimitpolicies"},
	"HTTPRoute":                {Group: "policy.linkerd.io", Resource: "httproutes"},
	"MeshTLSAuthentication":    {Group: "policy.linkerd.io", Resource: "meshtlsauthentications"},
	"NetworkAuthentication":    {Group: "policy.linkerd.io", Resource: "networkauthentications"},
	"ServerAuthorization":      {Group: "policy.linkerd.io", Resource: "serverauthorizations"},
	"Server":                   {Group: "policy.linkerd.io", Resource: "servers"},
	"ServiceProfile":           {Group: "linkerd.io", Resource: "serviceprofiles"},
	"ExternalWorkload":         {Group: "workload.linkerd.io", Resource: "externalworkloads"},
}

// crdClient applies the rendered CRDs (only they, with an inventory of
// this test's own) and returns a way to create a custom resource in
// crdTestNamespace, with unknown fields an error.
func crdClient(t *testing.T) func(kind, version string, spec map[string]any) (*unstructured.Unstructured, error) {
	t.Helper()
	cluster := shared.Get(t)
	ctx, c := connect(t, "meshctl-crd-schemas")
	set, err := plan.Offline(mustLoadSource(t, "mesh.cue", "{}"), "test")
	if err != nil {
		t.Fatal(err)
	}
	var crds []*unstructured.Unstructured
	if len(set.Stages) == 0 || set.Stages[0].Name != "crds" {
		t.Fatalf("the render starts with no crds stage: %v", stageNames(set))
	}
	for _, o := range set.Stages[0].Objects {
		if o.GetKind() == "CustomResourceDefinition" && strings.HasSuffix(o.GetName(), "linkerd.io") {
			crds = append(crds, o)
		}
	}
	if len(crds) != len(linkerdKinds) {
		t.Fatalf("rendered %d Linkerd CRDs, want %d", len(crds), len(linkerdKinds))
	}
	only := apply.Set{Version: "test", Stages: []apply.Stage{{Name: "crds", Objects: crds}}}
	if _, err := c.Apply(ctx, only, apply.Options{Wait: true, Timeout: time.Minute}); err != nil {
		t.Fatalf("applying the CRDs: %v", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: crdTestNamespace}}
	if err := c.Kube().Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	// The deprecated versions' warnings are expected: keep them out of the log.
	cfg := rest.CopyConfig(cluster.Config)
	cfg.WarningHandler = rest.NoWarnings{}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	create := func(kind, version string, spec map[string]any) (*unstructured.Unstructured, error) {
		gr, ok := linkerdKinds[kind]
		if !ok {
			t.Fatalf("unknown kind %s", kind)
		}
		u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
		u.SetAPIVersion(gr.Group + "/" + version)
		u.SetKind(kind)
		u.SetGenerateName(strings.ToLower(kind) + "-" + version + "-")
		res := gr.WithVersion(version)
		return dyn.Resource(res).Namespace(crdTestNamespace).Create(ctx, u, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
	}
	return create
}

// validSpec is a custom resource of the kind that upstream's CRDs accept at
// the version, using most of what the schema has.
func validSpec(kind, version string) map[string]any {
	type m = map[string]any
	type l = []any
	switch kind {
	case "AuthorizationPolicy":
		return m{"targetRef": m{"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"},
			"requiredAuthenticationRefs": l{m{"group": "policy.linkerd.io", "kind": "MeshTLSAuthentication", "name": "web-clients"},
				m{"kind": "ServiceAccount", "name": "default", "namespace": "other"}}}
	case "EgressNetwork":
		return m{"networks": l{m{"cidr": "0.0.0.0/0", "except": l{"10.0.0.0/8"}}}, "trafficPolicy": "Allow"}
	case "HTTPLocalRateLimitPolicy":
		return m{"targetRef": m{"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"},
			"total": m{"requestsPerSecond": 100}, "identity": m{"requestsPerSecond": 20},
			"overrides": l{m{"requestsPerSecond": 50, "clientRefs": l{m{"kind": "ServiceAccount", "name": "batch"}}}}}
	case "HTTPRoute":
		return httpRouteSpec(version)
	case "MeshTLSAuthentication":
		return m{"identities": l{"*.web.serviceaccount.identity.linkerd.cluster.local"}}
	case "NetworkAuthentication":
		return m{"networks": l{m{"cidr": "10.0.0.0/8", "except": l{"10.1.0.0/16"}}}}
	case "ServerAuthorization":
		return m{"server": m{"selector": m{"matchLabels": m{"app": "web"}}},
			"client": m{"meshTLS": m{"serviceAccounts": l{m{"name": "web"}}}, "networks": l{m{"cidr": "10.0.0.0/8"}}}}
	case "Server":
		spec := m{"podSelector": m{"matchExpressions": l{m{"key": "app", "operator": "In", "values": l{"web"}}}}, "port": 8080}
		switch version {
		case "v1beta2":
			spec["port"], spec["proxyProtocol"] = "http", "HTTP/1"
		case "v1beta3":
			spec["accessPolicy"] = "all-authenticated"
		}
		return spec
	case "ServiceProfile":
		return m{"routes": l{m{"name": "GET /books", "condition": m{"method": "GET", "pathRegex": "/books", "not": l{m{"method": "HEAD"}}},
			"isRetryable": true, "timeout": "1s",
			"responseClasses": l{m{"condition": m{"status": m{"min": 500, "max": 599}}, "isFailure": true}}}},
			"retryBudget":  m{"retryRatio": 0.2, "minRetriesPerSecond": 10, "ttl": "10s"},
			"dstOverrides": l{m{"authority": "web.shop.svc.cluster.local:8080", "weight": "500m"}},
			"opaquePorts":  l{"3306"}}
	case "ExternalWorkload":
		tls := "meshTLS"
		if version == "v1alpha1" {
			tls = "meshTls"
		}
		return m{tls: m{"identity": "spiffe://root.linkerd.cluster.local/vm", "serverName": "vm.cluster.local"},
			"ports": l{m{"name": "http", "port": 80}}, "workloadIPs": l{m{"ip": "192.0.2.10"}}}
	}
	panic("no valid spec for " + kind)
}

// httpRouteSpec is a valid HTTPRoute: weights from v1beta2, timeouts from
// v1beta3.
func httpRouteSpec(version string) map[string]any {
	type m = map[string]any
	type l = []any
	backend := m{"name": "web", "port": 8080}
	rule := m{
		"matches": l{m{"path": m{"type": "PathPrefix", "value": "/api"}, "method": "GET",
			"headers": l{m{"name": "x-canary", "value": "true"}}, "queryParams": l{m{"name": "v", "value": "2"}}}},
		"filters": l{m{"type": "RequestHeaderModifier", "requestHeaderModifier": m{"set": l{m{"name": "x-mesh", "value": "linkerd"}}}}},
	}
	if version == "v1beta2" || version == "v1beta3" {
		backend["weight"] = 90
	}
	if version == "v1beta3" {
		rule["timeouts"] = m{"request": "10s", "backendRequest": "2s"}
	}
	rule["backendRefs"] = l{backend}
	return m{"parentRefs": l{m{"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"}},
		"hostnames": l{"web.example.com"}, "rules": l{rule}}
}

// servedVersions are the versions each Linkerd CRD serves (FACTS §4).
var servedVersions = map[string][]string{
	"AuthorizationPolicy":      {"v1alpha1"},
	"EgressNetwork":            {"v1alpha1"},
	"HTTPLocalRateLimitPolicy": {"v1alpha1"},
	"HTTPRoute":                {"v1alpha1", "v1beta1", "v1beta2", "v1beta3"},
	"MeshTLSAuthentication":    {"v1alpha1"},
	"NetworkAuthentication":    {"v1alpha1"},
	"ServerAuthorization":      {"v1alpha1", "v1beta1"},
	"Server":                   {"v1alpha1", "v1beta1", "v1beta2", "v1beta3"},
	"ServiceProfile":           {"v1alpha1", "v1alpha2"},
	"ExternalWorkload":         {"v1alpha1", "v1beta1"},
}

// TestLinkerdCRDsAcceptValidResources: with the rendered CRDs, the API
// server accepts a valid resource of every Linkerd kind at every served
// version, with no field unknown to the schema, and fills in upstream's
// defaults.
func TestLinkerdCRDsAcceptValidResources(t *testing.T) {
	create := crdClient(t)
	n := 0
	for _, kind := range slices.Sorted(maps.Keys(servedVersions)) {
		for _, v := range servedVersions[kind] {
			n++
			t.Run(kind+"/"+v, func(t *testing.T) {
				if _, err := create(kind, v, validSpec(kind, v)); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
	if n != 19 {
		t.Errorf("%d kind versions, want 19", n)
	}

	// Upstream's defaults are filled in.
	srv, err := create("Server", "v1beta3", map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{"app": "web"}}, "port": 8080})
	if err != nil {
		t.Fatal(err)
	}
	route, err := create("HTTPRoute", "v1beta3", map[string]any{"parentRefs": []any{map[string]any{"kind": "Server", "name": "web-http"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		obj  *unstructured.Unstructured
		path []string
		want string
	}{
		{srv, []string{"spec", "proxyProtocol"}, "unknown"},
		{srv, []string{"spec", "accessPolicy"}, "deny"},
		{route, []string{"spec", "parentRefs"}, "[map[group:policy.linkerd.io kind:Server name:web-http]]"},
		{route, []string{"spec", "rules"}, "[map[matches:[map[path:map[type:PathPrefix value:/]]]]]"},
	} {
		got, _, _ := unstructured.NestedFieldNoCopy(c.obj.Object, c.path...)
		if fmt.Sprint(got) != c.want {
			t.Errorf("%s %s: %v, want %s", c.obj.GetKind(), strings.Join(c.path, "."), got, c.want)
		}
	}
}

// TestLinkerdCRDsRejectInvalidResources: the API server rejects what
// upstream's CRDs reject, for every Linkerd kind (bad enums, missing
// required fields, wrong types, bounds, oneOf), and the error names the
// field.
func TestLinkerdCRDsRejectInvalidResources(t *testing.T) {
	create := crdClient(t)
	kinds := map[string]bool{}
	for _, tc := range invalidCases() {
		kinds[tc.kind] = true
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			_, err := create(tc.kind, tc.version, tc.spec)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid error naming %q, got %v", tc.want, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not say %q:\n%v", tc.want, err)
			}
		})
	}
	if len(kinds) != len(linkerdKinds) {
		t.Errorf("cases cover %d of the %d Linkerd kinds", len(kinds), len(linkerdKinds))
	}
}

// invalidCase is a custom resource the API server must reject, and what
// its error must say.
type invalidCase struct {
	name, kind, version string
	spec                map[string]any
	want                string
}

// invalidCases are, for every Linkerd kind, resources that upstream's CRDs
// reject: bad enums, missing required fields, wrong types, bounds, oneOf.
func invalidCases() []invalidCase {
	type m = map[string]any
	type l = []any
	with := func(kind, version string, change func(spec m)) m {
		spec := validSpec(kind, version)
		change(spec)
		return spec
	}
	return []invalidCase{
		{"missing targetRef", "AuthorizationPolicy", "v1alpha1",
			with("AuthorizationPolicy", "v1alpha1", func(s m) { delete(s, "targetRef") }),
			`spec.targetRef: Required value`},
		{"refs not a list", "AuthorizationPolicy", "v1alpha1",
			with("AuthorizationPolicy", "v1alpha1", func(s m) { s["requiredAuthenticationRefs"] = "web-clients" }),
			`spec.requiredAuthenticationRefs: Invalid value: "string": spec.requiredAuthenticationRefs in body must be of type array`},
		{"bad trafficPolicy", "EgressNetwork", "v1alpha1",
			with("EgressNetwork", "v1alpha1", func(s m) { s["trafficPolicy"] = "Maybe" }),
			`spec.trafficPolicy: Unsupported value: "Maybe": supported values: "Allow", "Deny"`},
		{"missing trafficPolicy", "EgressNetwork", "v1alpha1",
			with("EgressNetwork", "v1alpha1", func(s m) { delete(s, "trafficPolicy") }),
			`spec.trafficPolicy: Required value`},
		{"rps not a number", "HTTPLocalRateLimitPolicy", "v1alpha1",
			with("HTTPLocalRateLimitPolicy", "v1alpha1", func(s m) { s["total"] = m{"requestsPerSecond": "lots"} }),
			`spec.total.requestsPerSecond: Invalid value: "string": spec.total.requestsPerSecond in body must be of type integer`},
		{"targetRef without kind", "HTTPLocalRateLimitPolicy", "v1alpha1",
			with("HTTPLocalRateLimitPolicy", "v1alpha1", func(s m) { s["targetRef"] = m{"name": "web-http"} }),
			`spec.targetRef.kind: Required value`},
		{"bad method", "HTTPRoute", "v1beta3",
			with("HTTPRoute", "v1beta3", func(s m) { s["rules"] = l{m{"matches": l{m{"method": "FETCH"}}}} }),
			`spec.rules[0].matches[0].method: Unsupported value: "FETCH"`},
		{"filter without type", "HTTPRoute", "v1alpha1",
			with("HTTPRoute", "v1alpha1", func(s m) { s["rules"] = l{m{"filters": l{m{"requestHeaderModifier": m{"remove": l{"x-a"}}}}}} }),
			`spec.rules[0].filters[0].type: Required value`},
		{"backend port out of range", "HTTPRoute", "v1beta2",
			with("HTTPRoute", "v1beta2", func(s m) { s["rules"] = l{m{"backendRefs": l{m{"name": "web", "port": 70000}}}} }),
			`spec.rules[0].backendRefs[0].port: Invalid value: 70000: spec.rules[0].backendRefs[0].port in body should be less than or equal to 65535`},
		{"hostname not a list", "HTTPRoute", "v1beta1",
			with("HTTPRoute", "v1beta1", func(s m) { s["hostnames"] = "web.example.com" }),
			`spec.hostnames: Invalid value: "string": spec.hostnames in body must be of type array`},
		{"neither identities nor refs", "MeshTLSAuthentication", "v1alpha1",
			m{}, `"spec" must validate one and only one schema (oneOf). Found none valid`},
		{"identities not a list", "MeshTLSAuthentication", "v1alpha1",
			m{"identities": "*.web"}, `spec.identities: Invalid value: "string": spec.identities in body must be of type array`},
		{"missing networks", "NetworkAuthentication", "v1alpha1",
			m{}, `spec.networks: Required value`},
		{"cidr not a string", "NetworkAuthentication", "v1alpha1",
			m{"networks": l{m{"cidr": 10}}}, `spec.networks[0].cidr: Invalid value: "integer": spec.networks[0].cidr in body must be of type string`},
		{"missing client", "ServerAuthorization", "v1beta1",
			with("ServerAuthorization", "v1beta1", func(s m) { delete(s, "client") }),
			`spec.client: Required value`},
		{"bad operator", "ServerAuthorization", "v1alpha1",
			with("ServerAuthorization", "v1alpha1", func(s m) {
				s["server"] = m{"selector": m{"matchExpressions": l{m{"key": "app", "operator": "Like"}}}}
			}),
			`spec.server.selector.matchExpressions[0].operator: Unsupported value: "Like": supported values: "In", "NotIn", "Exists", "DoesNotExist"`},
		{"missing port", "Server", "v1beta3",
			with("Server", "v1beta3", func(s m) { delete(s, "port") }),
			`spec.port: Required value`},
		{"port a boolean", "Server", "v1beta1",
			with("Server", "v1beta1", func(s m) { s["port"] = true }),
			`spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string`},
		{"two selectors", "Server", "v1beta2",
			with("Server", "v1beta2", func(s m) { s["externalWorkloadSelector"] = m{"matchLabels": m{"app": "vm"}} }),
			`"spec" must validate one and only one schema (oneOf). Found 2 valid alternatives`},
		{"retryBudget without ttl", "ServiceProfile", "v1alpha2",
			with("ServiceProfile", "v1alpha2", func(s m) { s["retryBudget"] = m{"retryRatio": 0.2, "minRetriesPerSecond": 10} }),
			`spec.retryBudget.ttl: Required value`},
		{"v1alpha1 without routes", "ServiceProfile", "v1alpha1",
			m{"opaquePorts": l{"3306"}}, `spec.routes: Required value`},
		{"weight not a quantity", "ServiceProfile", "v1alpha2",
			m{"dstOverrides": l{m{"authority": "web:80", "weight": "half"}}}, `spec.dstOverrides[0].weight: Invalid value: "half": spec.dstOverrides[0].weight in body should match`},
		{"three workload IPs", "ExternalWorkload", "v1beta1",
			with("ExternalWorkload", "v1beta1", func(s m) { s["workloadIPs"] = l{m{"ip": "192.0.2.1"}, m{"ip": "192.0.2.2"}, m{"ip": "192.0.2.3"}} }),
			`spec.workloadIPs: Too many: 3: must have at most 2 items`},
		{"port 0", "ExternalWorkload", "v1alpha1",
			with("ExternalWorkload", "v1alpha1", func(s m) { s["ports"] = l{m{"port": 0}} }),
			`spec.ports[0].port: Invalid value: 0: spec.ports[0].port in body should be greater than or equal to 1`},
		{"missing meshTLS", "ExternalWorkload", "v1beta1",
			with("ExternalWorkload", "v1beta1", func(s m) { delete(s, "meshTLS") }),
			`spec.meshTLS: Required value`},
	}
}
