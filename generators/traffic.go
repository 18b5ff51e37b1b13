package generators

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshctl/meshctl/schema"
)

// Linkerd's own HTTPRoute, at the version 2.19 stores (FACTS §13).
const policyHTTPRouteAPIVersion = "policy.linkerd.io/v1beta3"

// annotationRetryHTTP lists the statuses a route's requests are retried on
// (FACTS §14); the policy controller reads it from the HTTPRoute.
const annotationRetryHTTP = "retry.linkerd.io/http"

// traffic renders the fault backends of every model, and each httproute
// service's routes, split and fault as policy.linkerd.io HTTPRoutes
// (FACTS §13, §14). The serviceprofile and smi models are in profiles.go
// and smi.go; a service renders in one model only, so the proxies never get
// a ServiceProfile that hides its Service's HTTPRoutes (FACTS §12).
func traffic(m *schema.Mesh, _ Inputs) []Object {
	objs := faultBackends(m)
	for _, key := range serviceKeys(m) {
		svc := m.Services[key]
		if svc.Model != modelHTTPRoute {
			continue
		}
		ns, name, _ := strings.Cut(key, "/")
		objs = append(objs, httpRoutes(ns, name, svc)...)
	}
	return objs
}

// httpRoutes are one service's HTTPRoutes: one per route, because the
// retry annotation applies to a whole HTTPRoute, named <service>.<slug>
// (routeNames); and one named after the service with the default match.
//
// The catch-all is rendered whenever any other is: once a Service has an
// HTTPRoute the policy controller drops its default route, so requests that
// match no route would otherwise fail. It also carries the split and the
// fault. Every route carries them too, since a rule without backendRefs
// goes to the parent Service alone (FACTS §13) and would skip them.
func httpRoutes(ns, name string, svc schema.Service) []Object {
	backends := serviceBackends(name, svc)
	if len(svc.Routes) == 0 && len(backends) == 0 {
		return nil
	}
	var objs []Object
	names := routeNames(name, svc.Routes)
	for i, r := range svc.Routes {
		match := map[string]any{"path": map[string]any{"type": "RegularExpression", "value": r.PathRegex}}
		if r.Method != "" {
			match["method"] = r.Method
		}
		rule := map[string]any{"matches": []any{match}}
		if r.Timeout != "" {
			rule["timeouts"] = map[string]any{"request": gatewayDuration(r.Timeout)}
		}
		var ann map[string]string
		if r.IsRetryable {
			ann = map[string]string{annotationRetryHTTP: "5xx"}
		}
		objs = append(objs, httpRoute(ns, names[i], name, svc, backends, ann, rule))
	}
	catchAll := map[string]any{"matches": []any{
		map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/"}},
	}}
	return append(objs, httpRoute(ns, name, name, svc, backends, nil, catchAll))
}

// httpRoute is one HTTPRoute with one rule, attached to the service (on
// its port, when it names one) and sending to the backends, if any.
func httpRoute(ns, name, service string, svc schema.Service, backends []backend, ann map[string]string, rule map[string]any) Object {
	parent := map[string]any{"group": "core", "kind": "Service", "name": service}
	if svc.Port != 0 {
		parent["port"] = int64(svc.Port)
	}
	if len(backends) > 0 {
		refs := make([]any, 0, len(backends))
		// Backends are rendered only with a port (activeSplit,
		// activeFault), and the fault Service listens on the same one.
		for _, b := range backends {
			refs = append(refs, map[string]any{"name": b.name, "port": int64(svc.Port), "weight": b.weight})
		}
		rule["backendRefs"] = refs
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
		"parentRefs": []any{parent},
		"rules":      []any{rule},
	}}}
	u.SetAPIVersion(policyHTTPRouteAPIVersion)
	u.SetKind("HTTPRoute")
	u.SetName(name)
	u.SetNamespace(ns)
	if ann != nil {
		u.SetAnnotations(ann)
	}
	return Object{Stage: StageMeshConfig, Object: u}
}

// gatewayDuration writes a Go duration as the Gateway API's duration
// (GEP-2257: whole hours, minutes, seconds and milliseconds, such as
// "1h30m" or "1500ms"), which the policy controller parses; the schema
// takes Go's syntax ("1.5s"). It rounds to the millisecond; zero (and
// anything below) is "0s", which means no timeout.
func gatewayDuration(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil {
		return s // the schema checked the syntax
	}
	d = d.Round(time.Millisecond)
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if n := d / u.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.unit
		}
	}
	return b.String()
}
