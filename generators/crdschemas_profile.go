package generators

// Schemas of ServiceProfile (linkerd.io) and ExternalWorkload
// (workload.linkerd.io).

// serviceProfileSchema is ServiceProfile at the given version: v1alpha1
// requires routes, v1alpha2 does not.
func serviceProfileSchema(version string) *schemaNode {
	spec := object("Per-route metrics, retries and timeouts for a Service, and traffic splits.", props{
		"dstOverrides": array("Sends the Service's traffic to these authorities instead, split by weight.", object("", props{
			"authority": str("The authority (host:port) that receives a share of the traffic."),
			"weight": intOrString("The share of the traffic, as a quantity (for example 500m).",
				pattern(patQuantity), anyOfIntOrString()),
		})),
		"opaquePorts": array("Ports whose traffic is proxied as opaque TCP.", str("")),
		"retryBudget": object("How many retries the Service's clients may add to their traffic.", props{
			"minRetriesPerSecond": integer("Retries allowed each second whatever the ratio.", format("int32")),
			"retryRatio":          number("Retries allowed as a share of the original requests.", format("float")),
			"ttl":                 str("The window over which the ratio is computed, as a duration."),
		}, required("minRetriesPerSecond", "retryRatio", "ttl")),
		"routes": array("The Service's routes, each defined by a request condition.", profileRouteSchema()),
	})
	if version == "v1alpha1" {
		spec.Required = []string{"routes"}
	}
	return root(props{"spec": spec})
}

// anyOfIntOrString is the anyOf that an int-or-string quantity carries.
func anyOfIntOrString() opt {
	return func(n *schemaNode) {
		n.AnyOf = []schemaNode{{Type: "integer"}, {Type: "string"}}
	}
}

// profileRouteSchema is one of a ServiceProfile's routes. Its request conditions
// nest (all, any, not), which a structural schema cannot express, so the
// nested ones stay open, as upstream has them.
func profileRouteSchema() schemaNode {
	nested := openObject("")
	return object("", props{
		"condition": object("The requests that belong to this route.", props{
			"all":       array("Conditions that must all hold.", nested),
			"any":       array("Conditions of which one must hold.", nested),
			"method":    str("The request's method."),
			"not":       array("Conditions that must not hold.", nested),
			"pathRegex": str("A regular expression the whole path must match."),
		}),
		"isRetryable": boolean("Whether failed requests on this route are retried."),
		"name":        str("Name of the route, used in metrics."),
		"responseClasses": array("Which responses count as failures.", object("", props{
			"condition": object("The responses this class covers.", props{
				"all":    array("Conditions that must all hold.", nested),
				"any":    array("Conditions of which one must hold.", nested),
				"not":    openObject("A condition that must not hold."),
				"status": object("A range of HTTP status codes.", props{"max": integer("Highest status code.", format("int32")), "min": integer("Lowest status code.", format("int32"))}),
			}),
			"isFailure": boolean("Whether responses in this class are failures."),
		}, required("condition"))),
		"timeout": str("Timeout for requests on this route, as a duration."),
	}, required("name", "condition"))
}

// externalWorkloadSchema is ExternalWorkload at the given version: v1beta1
// renamed meshTls to meshTLS and allows two workload IPs.
func externalWorkloadSchema(version string) *schemaNode {
	meshTLS, ips := "meshTLS", int64(2)
	if version == "v1alpha1" {
		meshTLS, ips = "meshTls", 1
	}
	return root(typeMeta(props{
		"spec": object("A workload outside the cluster that joins the mesh.", props{
			meshTLS: object("The workload's TLS identity in the mesh.", props{
				"identity":   str("The workload's mesh identity.", minLen(1), maxLen(253)),
				"serverName": str("The TLS server name the workload's proxy answers to.", minLen(1), maxLen(253)),
			}, required("identity", "serverName")),
			"ports": array("The ports the workload serves on.", object("", props{
				"name":     str("Name of the port, for Services that target it by name."),
				"port":     portField("Number of the port."),
				"protocol": str("Protocol of the port.", def("TCP")),
			}, required("port"))),
			"workloadIPs": array("The workload's IP addresses.", object("", props{
				"ip": str("An IP address."),
			}), maxItems(ips)),
		}, required(meshTLS)),
		"status": object("The state of the workload.", props{
			"conditions": conditions(true),
		}),
	}, "apiVerson"), required("spec"))
}
