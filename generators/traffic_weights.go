package generators

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/meshctl/meshctl/schema"
)

// The traffic models a service can pick (schema #Service.model).
const (
	modelHTTPRoute      = "httproute"
	modelServiceProfile = "serviceprofile"
	modelSMI            = "smi"
)

// faultScale is what the weights of a service with a fault sum to: the
// fault takes its share first, in tenths of a percent, and the split's
// backends share the rest as the split says (README, "Traffic").
const faultScale = 1000

// backend is one weighted destination of a service's traffic.
type backend struct {
	name   string
	weight int64
}

// serviceKeys are the mesh's services, "namespace/name", sorted.
func serviceKeys(m *schema.Mesh) []string {
	keys := make([]string, 0, len(m.Services))
	for k := range m.Services {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// activeFault is the fault that renders, or nil. The httproute and smi
// models route to the fault backend on the Service's own port (a Service
// backendRef needs one; the linkerd-smi adaptor writes authorities without
// one), so there a fault without a port renders nothing rather than an
// object Linkerd would reject; schema/mesh.cue asks for the port.
func activeFault(svc schema.Service) *schema.Fault {
	if svc.Fault == nil || (svc.Port == 0 && svc.Model != modelServiceProfile) {
		return nil
	}
	return svc.Fault
}

// activeSplit is the split that renders, or nil. HTTPRoute backendRefs to
// a Service need a port (the policy controller marks one without it
// invalid), so the httproute model renders no split without one.
func activeSplit(svc schema.Service) map[string]int {
	if svc.Port == 0 && svc.Model == modelHTTPRoute {
		return nil
	}
	return svc.Split
}

// serviceBackends is where the service's traffic goes: the split's
// backends in name order, then the fault backend; nil when the service has
// neither. Without a fault the split's weights are as written (they sum to
// 100); with one they are scaled to sum to faultScale (see faultWeights).
func serviceBackends(name string, svc schema.Service) []backend {
	split, fault := activeSplit(svc), activeFault(svc)
	if fault == nil {
		if len(split) == 0 {
			return nil
		}
		out := make([]backend, 0, len(split))
		for _, n := range sortedKeys(split) {
			out = append(out, backend{n, int64(split[n])})
		}
		return out
	}
	if len(split) == 0 {
		split = map[string]int{name: 100}
	}
	f := faultWeight(fault.Percent)
	return append(distribute(faultScale-f, split), backend{faultName(name), f})
}

// faultWeight is the fault's share of faultScale: percent rounded to the
// nearest tenth (half away from zero), and at least one tenth, so that a
// declared fault never renders as none.
func faultWeight(percent float64) int64 {
	w := int64(math.Round(percent * faultScale / 100))
	return min(max(w, 1), faultScale)
}

// distribute shares total among the split's backends in proportion to
// their weights, in whole numbers that sum to total exactly: each gets the
// floor of its exact share, and what is left goes one by one to the largest
// remainders, ties to the backend first by name.
func distribute(total int64, split map[string]int) []backend {
	names := sortedKeys(split)
	var sum int64
	for _, n := range names {
		sum += int64(split[n])
	}
	out := make([]backend, len(names))
	rem := make([]int64, len(names))
	var given int64
	for i, n := range names {
		out[i].name = n
		if sum > 0 {
			exact := total * int64(split[n])
			out[i].weight, rem[i] = exact/sum, exact%sum
		}
		given += out[i].weight
	}
	order := make([]int, len(names))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rem[order[a]] > rem[order[b]] })
	for i := int64(0); sum > 0 && i < total-given; i++ {
		out[order[i]].weight++
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// faultSuffix ends the names of a service's fault backend objects.
const faultSuffix = "-fault"

// faultName is the name of the fault backend's ConfigMap, Deployment and
// Service: <service>-fault, shortened with a hash when it would not fit a
// DNS label.
func faultName(service string) string { return dnsLabel(service, faultSuffix) }

// dnsLabel is base+suffix when that fits a DNS label (63 characters), and
// otherwise base cut short plus a hash of all of base, so that two long
// names that start alike stay apart.
func dnsLabel(base, suffix string) string {
	const max = 63
	if len(base)+len(suffix) <= max {
		return base + suffix
	}
	h := shortHash(base)
	keep := max - len(suffix) - len(h) - 1
	return strings.TrimRight(base[:keep], "-") + "-" + h + suffix
}

// shortHash is 8 hex digits of FNV-1a: stable names, not security.
func shortHash(s string) string {
	h := fnv.New32a()
	h.Write([]byte(s))
	return fmt.Sprintf("%08x", h.Sum32())
}

// maxSlug bounds a route's slug, so that it stays one DNS label even with
// a hash appended.
const maxSlug = 54

// slug is a DNS-label form of a route name ("GET /books" → "get-books"),
// and whether it is the whole name's (false when cut at maxSlug).
func slug(name string) (string, bool) {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
			continue
		}
		dash = true
	}
	s := b.String()
	if len(s) <= maxSlug {
		return s, true
	}
	return strings.TrimRight(s[:maxSlug], "-"), false
}

// routeNames are the HTTPRoute names of a service's routes:
// <service>.<slug>. A dot cannot occur in a Service name, so no route name
// equals another service's, or its catch-all route (named after the
// service alone). A slug that is empty, cut short or shared by two routes
// of the service gets a hash of the route's name; identical route names
// are told apart by their position (1-based).
func routeNames(service string, routes []schema.Route) []string {
	slugs := make([]string, len(routes))
	exact := make([]bool, len(routes))
	count := map[string]int{}
	for i, r := range routes {
		slugs[i], exact[i] = slug(r.Name)
		count[slugs[i]]++
	}
	out := make([]string, len(routes))
	taken := map[string]bool{}
	for i, r := range routes {
		s := slugs[i]
		if s == "" || !exact[i] || count[s] > 1 {
			s = strings.TrimPrefix(s+"-"+shortHash(r.Name), "-")
		}
		if taken[s] {
			s = fmt.Sprintf("%s-%d", s, i+1)
		}
		taken[s] = true
		out[i] = service + "." + s
	}
	return out
}
