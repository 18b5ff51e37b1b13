package generators

// Schemas of the policy.linkerd.io kinds other than HTTPRoute: who may talk
// to what, and how fast.

// authorizationPolicySchema is AuthorizationPolicy v1alpha1.
func authorizationPolicySchema() *schemaNode {
	return root(props{
		"spec": object("Authorizes clients that meet all the required authentications to reach the target.", props{
			"targetRef": localRef("The Server, HTTPRoute, GRPCRoute or Namespace the policy applies to."),
			"requiredAuthenticationRefs": array("The authentications (MeshTLSAuthentication, NetworkAuthentication or ServiceAccount) a client must all meet.",
				object("", props{
					"group":     groupField("Group of the referent; empty for the core API group."),
					"kind":      kindField("Kind of the referent."),
					"name":      nameField("Name of the referent."),
					"namespace": str("Namespace of the referent; the policy's own when empty.", maxLen(253)),
				}, required("kind", "name"))),
		}, required("targetRef", "requiredAuthenticationRefs")),
	}, required("spec"))
}

// meshTLSAuthenticationSchema is MeshTLSAuthentication v1alpha1.
func meshTLSAuthenticationSchema() *schemaNode {
	return root(props{
		"spec": object("Authenticates meshed clients by their TLS identities: set identities or identityRefs.", props{
			"identities": array("Client identities (with * as a wildcard label) that are authenticated.",
				str(""), minItems(1)),
			"identityRefs": array("References to the ServiceAccounts whose identities are authenticated.",
				object("", props{
					"group":     groupField("Group of the referent; empty for the core API group."),
					"kind":      kindField("Kind of the referent, usually ServiceAccount."),
					"name":      nameField("Name of the referent; all of its kind when empty."),
					"namespace": str("Namespace of the referent; the authentication's own when empty.", maxLen(253)),
				}, required("kind")), minItems(1)),
		}, oneOfRequired("identities", "identityRefs")),
	}, required("spec"))
}

// networkAuthenticationSchema is NetworkAuthentication v1alpha1.
func networkAuthenticationSchema() *schemaNode {
	return root(props{
		"spec": object("Authenticates clients by their source IP address.", props{
			"networks": networks("The networks whose clients are authenticated."),
		}, required("networks")),
	}, required("spec"))
}

// serverAuthorizationSchema is ServerAuthorization, the same at v1alpha1
// and v1beta1.
func serverAuthorizationSchema() *schemaNode {
	client := object("The clients that are authorized.", props{
		"meshTLS": object("Authorizes meshed clients by their TLS identity.", props{
			"identities": array("Client identities (with * as a wildcard label).",
				str("", pattern(patIdentity))),
			"serviceAccounts": array("Client ServiceAccounts.", object("", props{
				"name":      str("Name of the ServiceAccount.", pattern(patDNSLabel)),
				"namespace": str("Namespace of the ServiceAccount; the authorization's own when empty.", pattern(patDNSLabel)),
			}, required("name"))),
			"unauthenticatedTLS": boolean("Authorizes TLS clients that have no mesh identity."),
		}),
		"networks":        networks("Limits the authorized clients to these networks."),
		"unauthenticated": boolean("Authorizes clients without an identity."),
	})
	return root(props{
		"spec": object("Authorizes clients to reach a set of Servers.", props{
			"client": client,
			"server": object("The Servers the authorization applies to: set name or selector.", props{
				"name":     str("Name of a Server in the same namespace.", pattern(patDNSLabel)),
				"selector": labelSelector("Selects Servers in the same namespace by their labels."),
			}, oneOfRequired("name", "selector")),
		}, required("server", "client")),
	}, required("spec"))
}

// serverSchema is Server at the given version. v1beta2 added
// externalWorkloadSelector, v1beta3 accessPolicy.
func serverSchema(version string) *schemaNode {
	p := props{
		"port":          intOrString("The port, by number or by the name of a container port."),
		"proxyProtocol": str("The protocol the proxy expects on the port: unknown (detected), HTTP/1, HTTP/2, gRPC, opaque or TLS.", def("unknown")),
	}
	specOpts := []opt{required("port")}
	switch version {
	case "v1alpha1":
		p["podSelector"] = labelSelector("Selects the pods the Server applies to.", oneOfRequired("matchExpressions", "matchLabels"))
		specOpts = []opt{required("podSelector", "port")}
	case "v1beta1":
		p["podSelector"] = labelSelector("Selects the pods the Server applies to.")
		specOpts = []opt{required("podSelector", "port")}
	default:
		p["podSelector"] = labelSelector("Selects the pods the Server applies to; set this or externalWorkloadSelector.")
		p["externalWorkloadSelector"] = labelSelector("Selects the ExternalWorkloads the Server applies to; set this or podSelector.")
		specOpts = append(specOpts, oneOfRequired("podSelector", "externalWorkloadSelector"))
	}
	if version == "v1beta3" {
		p["accessPolicy"] = str("The default policy for traffic that no authorization allows: deny, audit, all-unauthenticated, all-authenticated, cluster-unauthenticated, cluster-authenticated.", def("deny"))
	}
	return root(props{
		"spec": object("A port on a set of pods or external workloads, to which policies apply.", p, specOpts...),
	}, required("spec"))
}

// egressNetworkSchema is EgressNetwork v1alpha1.
func egressNetworkSchema() *schemaNode {
	return root(typeMeta(props{
		"spec": object("Networks outside the cluster that meshed clients reach, and whether they may.", props{
			"networks":      networks("The networks this EgressNetwork covers; all outside the cluster when empty."),
			"trafficPolicy": str("Whether traffic to these networks that no route matches is allowed.", enum("Allow", "Deny")),
		}, required("trafficPolicy")),
		"status": object("The policy controller's view of the EgressNetwork.", props{
			"conditions": conditions(false),
		}),
	}, "apiVerson"), required("spec"))
}

// httpLocalRateLimitPolicySchema is HTTPLocalRateLimitPolicy v1alpha1.
func httpLocalRateLimitPolicySchema() *schemaNode {
	rps := func(desc string) schemaNode {
		return object(desc, props{
			"requestsPerSecond": integer("The limit, in requests per second.", format("int64")),
		}, required("requestsPerSecond"))
	}
	clientRef := object("", props{
		"group":     groupField("Group of the referent; empty for the core API group."),
		"kind":      kindField("Kind of the referent, usually ServiceAccount."),
		"name":      nameField("Name of the referent."),
		"namespace": namespaceLabel("Namespace of the referent; the policy's own when empty."),
	}, required("kind", "name"))
	return root(props{
		"spec": object("Limits the HTTP requests a Server accepts per second, in each proxy.", props{
			"targetRef": localRef("The Server the limits apply to."),
			"total":     rps("The limit for all clients together."),
			"identity":  rps("The limit for each client identity."),
			"overrides": array("Limits for specific clients, in place of identity's.", object("", props{
				"clientRefs":        array("The clients, usually ServiceAccounts, this limit applies to.", clientRef),
				"requestsPerSecond": integer("The limit, in requests per second.", format("int64")),
			}, required("requestsPerSecond", "clientRefs"))),
		}, required("targetRef")),
		"status": object("The policy controller's view of the policy.", props{
			"conditions": conditions(false),
			"targetRef": object("The Server the policy was accepted for.", props{
				"group": groupField("Group of the referent.", def("policy.linkerd.io")),
				"kind":  kindField("Kind of the referent.", def("Server")),
				"name":  nameField("Name of the referent."),
			}, required("name")),
		}, required("targetRef")),
	}, required("spec"))
}
