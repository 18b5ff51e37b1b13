package generators

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshctl/meshctl/schema"
)

// profiles renders a linkerd.io/v1alpha2 ServiceProfile for each service
// that declares routes or a retry budget. The profile is named after the
// Service's FQDN, in the Service's namespace, as Linkerd looks it up.
func profiles(m *schema.Mesh, _ Inputs) []Object {
	keys := make([]string, 0, len(m.Services))
	for k := range m.Services {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Object
	for _, key := range keys {
		svc := m.Services[key]
		if len(svc.Routes) == 0 && svc.RetryBudget == nil {
			continue
		}
		ns, name, _ := strings.Cut(key, "/")
		spec := map[string]any{}
		if len(svc.Routes) > 0 {
			routes := make([]any, 0, len(svc.Routes))
			for _, r := range svc.Routes {
				routes = append(routes, profileRoute(r))
			}
			spec["routes"] = routes
		}
		if rb := svc.RetryBudget; rb != nil {
			spec["retryBudget"] = map[string]any{
				"retryRatio":          rb.RetryRatio,
				"minRetriesPerSecond": int64(rb.MinRetriesPerSecond),
				"ttl":                 rb.TTL,
			}
		}
		u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
		u.SetAPIVersion("linkerd.io/v1alpha2")
		u.SetKind("ServiceProfile")
		u.SetName(fmt.Sprintf("%s.%s.svc.%s", name, ns, m.Linkerd.ClusterDomain))
		u.SetNamespace(ns)
		out = append(out, Object{Stage: StageMeshConfig, Object: u})
	}
	return out
}

func profileRoute(r schema.Route) map[string]any {
	cond := map[string]any{"pathRegex": r.PathRegex}
	if r.Method != "" {
		cond["method"] = r.Method
	}
	route := map[string]any{"name": r.Name, "condition": cond}
	if r.IsRetryable {
		route["isRetryable"] = true
	}
	if r.Timeout != "" {
		route["timeout"] = r.Timeout
	}
	if len(r.ResponseClasses) > 0 {
		classes := make([]any, 0, len(r.ResponseClasses))
		for _, rc := range r.ResponseClasses {
			c := map[string]any{}
			if st := rc.Condition.Status; st != nil {
				s := map[string]any{}
				if st.Min != 0 {
					s["min"] = int64(st.Min)
				}
				if st.Max != 0 {
					s["max"] = int64(st.Max)
				}
				c["status"] = s
			}
			class := map[string]any{"condition": c}
			if rc.IsFailure {
				class["isFailure"] = true
			}
			classes = append(classes, class)
		}
		route["responseClasses"] = classes
	}
	return route
}
