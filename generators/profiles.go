package generators

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshctl/meshctl/schema"
)

// profiles renders the linkerd.io/v1alpha2 ServiceProfiles (FACTS §12) of
// the serviceprofile and smi models; httproute services have none, since a
// ServiceProfile would hide their HTTPRoutes from the proxies.
//
//   - serviceprofile: routes, retryBudget, and the split and fault as
//     dstOverrides, whenever the service has any of them.
//   - smi: routes and retryBudget only, and only when it has one of them.
//     The linkerd-smi adaptor writes dstOverrides from the TrafficSplit
//     (smi.go) with a plain Update and creates the profile when there is
//     none (FACTS §17): meshctl never sets that field, so its server-side
//     apply neither fights the adaptor nor sees the field as drift.
//
// The profile is named after the Service's FQDN, in the Service's
// namespace, as Linkerd looks it up.
func profiles(m *schema.Mesh, _ Inputs) []Object {
	var out []Object
	for _, key := range serviceKeys(m) {
		svc := m.Services[key]
		if svc.Model != modelServiceProfile && svc.Model != modelSMI {
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
		if svc.Model == modelServiceProfile {
			if o := dstOverrides(m, ns, name, svc); len(o) > 0 {
				spec["dstOverrides"] = o
			}
		}
		if len(spec) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
		u.SetAPIVersion("linkerd.io/v1alpha2")
		u.SetKind("ServiceProfile")
		u.SetName(serviceFQDN(m, name, ns))
		u.SetNamespace(ns)
		out = append(out, Object{Stage: StageMeshConfig, Object: u})
	}
	return out
}

// serviceFQDN is <name>.<ns>.svc.<clusterDomain>.
func serviceFQDN(m *schema.Mesh, name, ns string) string {
	return fmt.Sprintf("%s.%s.svc.%s", name, ns, m.Linkerd.ClusterDomain)
}

// dstOverrides are the service's split and fault as weighted authorities.
// An authority names the service's port when it declares one; without one
// the destination controller adds the port the client asked for, as it
// does for the smi adaptor's authorities. The fault backend's authority
// always names the fault Service's port.
func dstOverrides(m *schema.Mesh, ns, name string, svc schema.Service) []any {
	backends := serviceBackends(name, svc)
	out := make([]any, 0, len(backends))
	for i, b := range backends {
		authority := serviceFQDN(m, b.name, ns)
		switch {
		case activeFault(svc) != nil && i == len(backends)-1:
			authority += fmt.Sprintf(":%d", faultServicePort(svc))
		case svc.Port != 0:
			authority += fmt.Sprintf(":%d", svc.Port)
		}
		out = append(out, map[string]any{"authority": authority, "weight": b.weight})
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
