package generators

// The schema of Linkerd's own HTTPRoute (policy.linkerd.io), a Gateway API
// HTTPRoute with fewer filters. v1beta1 is v1alpha1 under a new name;
// v1beta2 checks parent and backend ports and gives backendRefs their
// group, kind and weight; v1beta3 adds timeouts.

// httpRouteSchema is HTTPRoute at the given version.
func httpRouteSchema(version string) *schemaNode {
	return root(typeMeta(props{
		"spec": object("Routes HTTP requests to a Server or Service by their path, method, headers and query.", props{
			"hostnames": array("Hostnames the route matches in the Host header; all when empty.",
				str("", pattern(patHostname), minLen(1), maxLen(253)), maxItems(16)),
			"parentRefs": array("The Servers or Services the route attaches to.",
				parentRef(version == "v1beta2" || version == "v1beta3", ""), maxItems(32)),
			"rules": array("Rules matching requests, with their filters and backends.",
				httpRouteRule(version), maxItems(16),
				defJSON(`[{"matches":[{"path":{"type":"PathPrefix","value":"/"}}]}]`)),
		}),
		"status": object("Which parents accepted the route.", props{
			"parents": routeParentStatuses(),
		}, required("parents")),
	}, "apiVersion"), required("spec"))
}

// parentRef points at the route's parent; checkedPort bounds its port
// (from v1beta2 on, and always in status).
func parentRef(checkedPort bool, desc string) schemaNode {
	port := integer("The port of the parent the route attaches to.")
	if checkedPort {
		port = portField("The port of the parent the route attaches to.")
	}
	return object(desc, props{
		"group":       groupField("Group of the parent.", def("policy.linkerd.io")),
		"kind":        kindField("Kind of the parent: Server, or Service for outbound routes.", def("Gateway")),
		"name":        nameField("Name of the parent."),
		"namespace":   namespaceLabel("Namespace of the parent; the route's own when empty."),
		"port":        port,
		"sectionName": str("A section of the parent, such as a listener name.", pattern(patSubdomain), minLen(1), maxLen(253)),
	}, required("name"))
}

// routeParentStatuses is status.parents: one entry per parent that a
// controller has seen.
func routeParentStatuses() schemaNode {
	condition := object("", props{
		"lastTransitionTime": str("When the condition last changed status.", format("date-time")),
		"message":            str("A human-readable message about the transition.", maxLen(32768)),
		"observedGeneration": integer("The route's generation the condition was set for.", format("int64"), minimum(0)),
		"reason":             str("A CamelCase reason for the condition's last transition.", pattern(patReason), minLen(1), maxLen(1024)),
		"status":             str("Status of the condition.", enum("True", "False", "Unknown")),
		"type":               str("Type of the condition.", pattern(patCondType), maxLen(316)),
	}, required("lastTransitionTime", "message", "reason", "status", "type"))
	return array("The parents the route is attached to, and the route's state at each.", object("", props{
		"conditions":     array("The route's state at this parent.", condition, minItems(1), maxItems(8), listMap("type")),
		"controllerName": str("The controller that wrote this entry.", pattern(patController), minLen(1), maxLen(253)),
		"parentRef":      parentRef(true, "The parent this entry is about."),
	}, required("controllerName", "parentRef")), maxItems(32))
}

// httpRouteRule is one of spec.rules.
func httpRouteRule(version string) schemaNode {
	p := props{
		"matches": array("Conditions on requests; a request matching any of them matches the rule.",
			httpRouteMatch(), maxItems(8), defJSON(`[{"path":{"type":"PathPrefix","value":"/"}}]`)),
		"filters": array("Filters applied to requests that match the rule.",
			httpRouteFilter(false), maxItems(16)),
	}
	if version == "v1alpha1" || version == "v1beta1" {
		p["backendRefs"] = array("Where matching requests are sent.", object("", props{
			"filters":   array("Filters applied to requests sent to this backend.", httpRouteFilter(true), maxItems(16)),
			"name":      str("Name of the backend Service."),
			"namespace": str("Namespace of the backend Service.", def("default")),
			"port":      integer("Port of the backend Service."),
		}))
	} else {
		p["backendRefs"] = array("Where matching requests are sent, split by weight.", backendRef(), maxItems(16))
	}
	if version == "v1beta3" {
		p["timeouts"] = object("Timeouts for requests that match the rule.", props{
			"backendRequest": str("Timeout for each request to a backend, retries included.", format("duration")),
			"request":        str("Timeout for the whole request, from the client's side.", format("duration")),
		})
	}
	return object("", p)
}

// backendRef is a weighted backend of a rule, from v1beta2 on.
func backendRef() schemaNode {
	return object("", props{
		"filters":   array("Filters applied to requests sent to this backend.", httpRouteFilter(true), maxItems(16)),
		"group":     groupField("Group of the backend; empty for the core API group.", def("")),
		"kind":      kindField("Kind of the backend.", def("Service")),
		"name":      nameField("Name of the backend."),
		"namespace": namespaceLabel("Namespace of the backend; the route's own when empty."),
		"port":      portField("Port of the backend Service."),
		"weight":    integer("Share of the requests the backend receives, relative to the others.", format("int32"), minimum(0), maximum(1000000), def(1)),
	}, required("name"))
}

// httpRouteMatch is one of a rule's matches.
func httpRouteMatch() schemaNode {
	return object("", props{
		"headers": array("Headers the request must have.", object("", props{
			"name":  headerName("Name of the header."),
			"type":  str("How the value is matched.", enum("Exact", "RegularExpression"), def("Exact")),
			"value": str("The value to match.", minLen(1), maxLen(4096)),
		}, required("name", "value")), maxItems(16), listMap("name")),
		"method": str("The request's method.", enum("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")),
		"path": object("The request's path.", props{
			"type":  str("How the path is matched.", enum("Exact", "PathPrefix", "RegularExpression"), def("PathPrefix")),
			"value": str("The path to match.", maxLen(1024), def("/")),
		}, defJSON(`{"type":"PathPrefix","value":"/"}`)),
		"queryParams": array("Query parameters the request must have.", object("", props{
			"name":  str("Name of the query parameter.", minLen(1), maxLen(256)),
			"type":  str("How the value is matched.", enum("Exact", "RegularExpression"), def("Exact")),
			"value": str("The value to match.", minLen(1), maxLen(1024)),
		}, required("name", "value")), maxItems(16), listMap("name")),
	})
}

func headerName(desc string) schemaNode {
	return str(desc, pattern(patHeaderName), minLen(1), maxLen(256))
}

// httpRouteFilter is a rule's filter or, with onBackend, a backend's, which
// can also modify response headers.
func httpRouteFilter(onBackend bool) schemaNode {
	types := []string{"RequestHeaderModifier", "RequestRedirect"}
	p := props{
		"requestHeaderModifier": headerModifier("Changes the request's headers."),
		"requestRedirect":       requestRedirect(),
	}
	if onBackend {
		types = []string{"RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect"}
		p["responseHeaderModifier"] = headerModifier("Changes the response's headers.")
	}
	p["type"] = str("The kind of filter; the field of the same name holds its settings.", enum(types...))
	return object("", p, required("type"))
}

// headerModifier adds, sets and removes headers.
func headerModifier(desc string) schemaNode {
	header := object("", props{
		"name":  headerName("Name of the header."),
		"value": str("Value of the header.", minLen(1), maxLen(4096)),
	}, required("name", "value"))
	return object(desc, props{
		"add":    array("Headers added to the ones present.", header, maxItems(16), listMap("name")),
		"remove": array("Names of headers removed.", str(""), maxItems(16)),
		"set":    array("Headers set, replacing the ones present.", header, maxItems(16), listMap("name")),
	})
}

// requestRedirect answers the request with a redirect.
func requestRedirect() schemaNode {
	return object("Answers the request with a redirect.", props{
		"hostname": str("Hostname of the redirect's location; the request's when empty.", pattern(patSubdomain), minLen(1), maxLen(253)),
		"path": object("How the redirect's path is made from the request's.", props{
			"replaceFullPath":    str("The path that replaces the request's.", maxLen(1024)),
			"replacePrefixMatch": str("The prefix that replaces the matched path prefix.", maxLen(1024)),
			"type":               str("Which of the other fields applies.", enum("ReplaceFullPath", "ReplacePrefixMatch")),
		}, required("type")),
		"port":       portField("Port of the redirect's location."),
		"scheme":     str("Scheme of the redirect's location.", enum("http", "https")),
		"statusCode": integer("HTTP status code of the redirect.", enum(301, 302), def(302)),
	})
}
