package generators

// The Gateway API route CRDs that Linkerd installs with installGatewayAPI
// (FACTS §4).
var gatewayCRDs = []crdSpec{
	{"gateway.networking.k8s.io", "HTTPRoute", "httproutes", nil, []crdVersion{{name: "v1", storage: true, status: true}, {name: "v1beta1", status: true}}},
	{"gateway.networking.k8s.io", "GRPCRoute", "grpcroutes", nil, []crdVersion{{name: "v1", storage: true, status: true}, {name: "v1alpha2", status: true, deprecated: true}}},
	{"gateway.networking.k8s.io", "TLSRoute", "tlsroutes", nil, []crdVersion{{name: "v1alpha2", storage: true, status: true}}},
	{"gateway.networking.k8s.io", "TCPRoute", "tcproutes", nil, []crdVersion{{name: "v1alpha2", storage: true, status: true}}},
}

// gatewayAPICRDs renders the Gateway API route CRDs.
func gatewayAPICRDs() []Object {
	ann := map[string]string{
		"gateway.networking.k8s.io/bundle-version": "v1.1.1",
		"gateway.networking.k8s.io/channel":        "experimental",
		"helm.sh/resource-policy":                  "keep",
	}
	var objs []Object
	for _, s := range gatewayCRDs {
		objs = append(objs, crd(s, ann))
	}
	return objs
}
