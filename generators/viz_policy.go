package generators

import (
	"fmt"

	"github.com/meshctl/meshctl/schema"
)

// Linkerd's policy API versions that viz uses (FACTS §10.3).
const (
	policyGroup       = "policy.linkerd.io"
	serverVersion     = policyGroup + "/v1beta3"
	authPolicyVersion = policyGroup + "/v1alpha1"
)

// vizPolicy renders the Servers and AuthorizationPolicies that let web
// query metrics-api and the API server reach tap and tap-injector, the
// authentications they require, and metrics-api's ServiceProfile.
// Prometheus's own policy is vizprom.go's.
func vizPolicy(m *schema.Mesh) []Object {
	ann := map[string]string{annotationCreated: createdBy(m)}
	objs := []Object{
		vizServer("metrics-api", "metrics-api", "http", "HTTP/1", ann),
		vizAuthorizationPolicy("metrics-api", "metrics-api", "metrics-api", "MeshTLSAuthentication", "metrics-api-web", ann),
		vizResource(authPolicyVersion, "MeshTLSAuthentication", "metrics-api-web", vizNamespace, vizLabels("metrics-api"), ann, map[string]any{
			"identityRefs": []any{map[string]any{"kind": "ServiceAccount", "name": "web"}},
		}),
		vizServer("tap-api", "tap", "apiserver", "TLS", ann),
		vizAuthorizationPolicy("tap", "tap", "tap-api", "NetworkAuthentication", "kube-api-server", ann),
		vizServer("tap-injector-webhook", "tap-injector", "tap-injector", "TLS", ann),
		vizAuthorizationPolicy("tap-injector", "tap-injector", "tap-injector-webhook", "NetworkAuthentication", "kube-api-server", ann),
	}
	// The API server's and the kubelet's addresses cannot be discovered,
	// so both allow every network; nothing refers to kubelet upstream
	// either, it is there for users' policies.
	for _, name := range []string{"kube-api-server", "kubelet"} {
		objs = append(objs, vizResource(authPolicyVersion, "NetworkAuthentication", name, vizNamespace,
			map[string]string{labelExtension: "viz"}, ann, map[string]any{
				"networks": []any{map[string]any{"cidr": "0.0.0.0/0"}, map[string]any{"cidr": "::/0"}},
			}))
	}
	return append(objs, metricsAPIProfile(m))
}

// vizServer renders a Server on the named port of component c's pods.
func vizServer(name, c, port, protocol string, ann map[string]string) Object {
	return vizResource(serverVersion, "Server", name, vizNamespace, vizLabels(c), ann, map[string]any{
		"podSelector":   map[string]any{"matchLabels": vizMatchLabels(c)},
		"port":          port,
		"proxyProtocol": protocol,
	})
}

// vizAuthorizationPolicy authorizes clients with authentication authKind
// authName to Server server.
func vizAuthorizationPolicy(name, c, server, authKind, authName string, ann map[string]string) Object {
	return vizResource(authPolicyVersion, "AuthorizationPolicy", name, vizNamespace, vizLabels(c), ann, map[string]any{
		"targetRef": map[string]any{"group": policyGroup, "kind": "Server", "name": server},
		"requiredAuthenticationRefs": []any{
			map[string]any{"group": policyGroup, "kind": authKind, "name": authName},
		},
	})
}

// metricsAPIProfile names metrics-api's routes, so its metrics are per route.
func metricsAPIProfile(m *schema.Mesh) Object {
	var routes []any
	for _, r := range []string{"StatSummary", "TopRoutes", "ListPods", "ListServices", "SelfCheck", "Gateways", "Edges"} {
		path := "/api/v1/" + r
		routes = append(routes, map[string]any{
			"name":      "POST " + path,
			"condition": map[string]any{"method": "POST", "pathRegex": path},
		})
	}
	return vizResource("linkerd.io/v1alpha2", "ServiceProfile",
		fmt.Sprintf("metrics-api.%s.svc.%s", vizNamespace, m.Linkerd.ClusterDomain), vizNamespace,
		map[string]string{labelExtension: "viz"}, nil, map[string]any{"routes": routes})
}

// vizMatchLabels is component c's pod selector, as an unstructured value.
func vizMatchLabels(c string) map[string]any { return anyMap(vizLabels(c)) }
