package plan

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/schema"
)

// Meanings reads a diff between two revisions of a mesh and says, a line
// each, what the changes that matter most mean: HA on or off, replica
// counts, PDBs, webhook failure policies, the Linkerd version, meshed
// namespaces, and each service's traffic model, canary, blue/green and
// fault (serviceChanges), after any change of the trust anchor or issuer,
// which comes first. old may be nil.
func Meanings(old, new *schema.Mesh, d *apply.DiffResult) []string {
	out := trustMeanings(old, new, d)
	workloads := workloadChanges(d)
	if old != nil && old.ControlPlane.HA != new.ControlPlane.HA {
		state := "HA off"
		if new.ControlPlane.HA {
			state = "HA on"
		}
		line := state
		if len(workloads) > 0 {
			line += ": " + strings.Join(workloads, ", ")
		}
		out = append(out, line)
	} else if len(workloads) > 0 {
		out = append(out, "control plane: "+strings.Join(workloads, ", "))
	}
	if old != nil && old.Linkerd.Version != new.Linkerd.Version {
		out = append(out, fmt.Sprintf("Linkerd %s→%s: control-plane and proxy images change; meshed pods pick up the new proxy when restarted", old.Linkerd.Version, new.Linkerd.Version))
	}
	if old != nil && old.CNI.Enabled != new.CNI.Enabled {
		out = append(out, map[bool]string{true: "CNI plugin on: proxy-init is replaced by the network validator", false: "CNI plugin off: pods go back to the proxy-init container (needs NET_ADMIN)"}[new.CNI.Enabled])
	}
	evict := safeToEvictChanges(d, old != nil)
	if old == nil {
		return append(out, evict...)
	}
	for _, ns := range sortedKeys(new.Namespaces) {
		if o, ok := old.Namespaces[ns]; !ok || o.Inject != new.Namespaces[ns].Inject {
			from := "absent"
			if ok {
				from = o.Inject
			}
			out = append(out, fmt.Sprintf("namespace %s: inject %s→%s (takes effect as pods restart)", ns, from, new.Namespaces[ns].Inject))
		}
	}
	for _, ns := range sortedKeys(old.Namespaces) {
		if _, ok := new.Namespaces[ns]; !ok {
			out = append(out, fmt.Sprintf("namespace %s leaves mesh.cue: meshctl stops managing its mesh settings", ns))
		}
	}
	out = append(out, evict...)
	// Services in either revision: one that leaves mesh.cue takes its split
	// and fault with it.
	services := maps.Clone(old.Services)
	maps.Copy(services, new.Services)
	for _, key := range sortedKeys(services) {
		o, inOld := old.Services[key]
		n, inNew := new.Services[key]
		out = append(out, serviceChanges(key, o, n, inOld && inNew)...)
	}
	return out
}

// safeToEvictChanges says, for each namespace whose safe-to-evict setting
// changes, what happens to its pods. With the admission policy (the diff
// holds it), only pods created from now on get the new value; without it,
// plan changes the pod templates, and their pods restart. An offline diff
// renders the policy, and says what a cluster without it would do.
func safeToEvictChanges(d *apply.DiffResult, offline bool) []string {
	policy := false
	for i := range d.Objects {
		o := &d.Objects[i]
		if o.Kind == "MutatingAdmissionPolicy" && o.Name == generators.SafeToEvictPolicy {
			policy = true
		}
	}
	var out []string
	for i := range d.Objects {
		o := &d.Objects[i]
		if o.Kind != "Namespace" || (o.Action != apply.Created && o.Action != apply.Configured) {
			continue
		}
		from, to := safeToEvictValue(o.Before()), safeToEvictValue(o.After())
		if from == to {
			continue
		}
		line := fmt.Sprintf("namespace %s: safe-to-evict %s→%s: ", o.Name, from, to)
		switch {
		case policy:
			line += "only new pods get the change, from MutatingAdmissionPolicy " + generators.SafeToEvictPolicy + "; running pods keep theirs until they restart"
			if offline {
				line += " (on a cluster without MutatingAdmissionPolicy, meshctl changes the pod templates instead, and their pods restart)"
			}
		default:
			line += "the cluster does not serve MutatingAdmissionPolicy, so meshctl changes the pod templates of its workloads, and their pods restart"
		}
		out = append(out, line)
	}
	return out
}

func safeToEvictValue(ns map[string]any) string {
	v, ok, _ := unstructured.NestedString(ns, "metadata", "annotations", generators.AnnotationSafeToEvict)
	if !ok {
		return "unset"
	}
	return v
}

// serviceChanges says, a line per change, how one service's traffic
// changes between two revisions: its model, its split and its fault. both
// is whether the service is in both revisions; a service that comes or
// goes says only what its split and fault do.
//
// A split reads as a canary: the shares of its canary backends, that is
// every backend but the primary. The primary is the Service itself when
// it is a backend (books in {books: 90, "books-v2": 10}), else the backend
// that had the largest share before (ties: the first by name), which is
// the stable version a canary is measured against. A split that moves
// all traffic from one backend to another (100/0 → 0/100) is a
// blue/green flip (the same backends before and after).
func serviceChanges(key string, o, n schema.Service, both bool) []string {
	var out []string
	if both && o.Model != n.Model {
		out = append(out, fmt.Sprintf("%s model %s → %s", key, o.Model, n.Model))
	}
	if line := splitChange(key, o.Split, n.Split); line != "" {
		out = append(out, key+" "+line)
	}
	if line := faultChange(o.Fault, n.Fault); line != "" {
		out = append(out, key+" "+line)
	}
	return out
}

// splitChange is "canary books-v2 10% → 50%", "blue/green flipped to
// books-v2", or the split added or removed; "" when it is the same.
func splitChange(key string, old, new map[string]int) string {
	switch {
	case len(old) == 0 && len(new) == 0:
		return ""
	case len(old) == 0:
		return "split added: " + shares(new)
	case len(new) == 0:
		return "split removed (was " + shares(old) + ")"
	}
	if from, to := allOn(old), allOn(new); from != "" && to != "" && from != to && slices.Equal(sortedKeys(old), sortedKeys(new)) {
		return "blue/green flipped to " + to
	}
	primary := primaryBackend(key, old)
	var parts []string
	for _, b := range sortedKeys(new) {
		ow, ok := old[b]
		switch {
		case !ok:
			parts = append(parts, fmt.Sprintf("%s added at %d%%", b, new[b]))
		case ow != new[b] && b != primary:
			parts = append(parts, fmt.Sprintf("%s %d%% → %d%%", b, ow, new[b]))
		}
	}
	for _, b := range sortedKeys(old) {
		if _, ok := new[b]; !ok {
			parts = append(parts, fmt.Sprintf("%s %d%% removed", b, old[b]))
		}
	}
	if len(parts) == 0 {
		// Only the primary's share changed, which weights summing to 100
		// allow only with a backend added or removed, listed above.
		return ""
	}
	return "canary " + strings.Join(parts, ", ")
}

// primaryBackend is the backend a canary is measured against: the Service
// itself, or the one with the largest share.
func primaryBackend(key string, split map[string]int) string {
	_, name, _ := strings.Cut(key, "/")
	if _, ok := split[name]; ok {
		return name
	}
	best := ""
	for _, b := range sortedKeys(split) {
		if best == "" || split[b] > split[best] {
			best = b
		}
	}
	return best
}

// allOn is the backend that has all of a split's traffic, or "".
func allOn(split map[string]int) string {
	for b, w := range split {
		if w == 100 {
			return b
		}
	}
	return ""
}

func shares(split map[string]int) string {
	var parts []string
	for _, b := range sortedKeys(split) {
		parts = append(parts, fmt.Sprintf("%s %d%%", b, split[b]))
	}
	return strings.Join(parts, ", ")
}

// faultChange is "fault 10% 500s added", "… removed", "fault 10% → 20%
// (500s)", "fault 10% (500s → 503s)" or, both changed, "fault 10% 500s →
// 20% 503s"; "" when it is the same.
func faultChange(old, new *schema.Fault) string {
	switch {
	case old == nil && new == nil:
		return ""
	case old == nil:
		return fmt.Sprintf("fault %g%% %ds added", new.Percent, new.Status)
	case new == nil:
		return fmt.Sprintf("fault %g%% %ds removed", old.Percent, old.Status)
	case old.Percent == new.Percent && old.Status == new.Status:
		return ""
	case old.Status == new.Status:
		return fmt.Sprintf("fault %g%% → %g%% (%ds)", old.Percent, new.Percent, new.Status)
	case old.Percent == new.Percent:
		return fmt.Sprintf("fault %g%% (%ds → %ds)", new.Percent, old.Status, new.Status)
	}
	return fmt.Sprintf("fault %g%% %ds → %g%% %ds", old.Percent, old.Status, new.Percent, new.Status)
}

// workloadChanges lists replica changes of Deployments and StatefulSets,
// PDBs created or removed, and webhook failure-policy changes, in that
// order.
func workloadChanges(d *apply.DiffResult) []string {
	var replicas, policies []string
	pdbAdded, pdbRemoved := 0, 0
	policyChange := map[string]int{}
	for i := range d.Objects {
		o := &d.Objects[i]
		switch o.Kind {
		case "Deployment", "StatefulSet":
			if o.Action != apply.Configured {
				continue
			}
			b, bok, _ := unstructured.NestedInt64(o.Before(), "spec", "replicas")
			a, aok, _ := unstructured.NestedInt64(o.After(), "spec", "replicas")
			if !bok {
				b = 1
			}
			if !aok {
				a = 1
			}
			if a != b {
				replicas = append(replicas, fmt.Sprintf("%s replicas %d→%d", o.Name, b, a))
			}
		case "PodDisruptionBudget":
			switch o.Action {
			case apply.Created:
				pdbAdded++
			case apply.Deleted:
				pdbRemoved++
			}
		case "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration":
			if o.Action != apply.Configured {
				continue
			}
			if b, a := failurePolicy(o.Before()), failurePolicy(o.After()); b != a {
				policyChange[b+"→"+a]++
			}
		}
	}
	out := replicas
	if pdbRemoved > 0 {
		out = append(out, plural(pdbRemoved, "PDB")+" removed")
	}
	if pdbAdded > 0 {
		out = append(out, plural(pdbAdded, "PDB")+" added")
	}
	for _, change := range sortedKeys(policyChange) {
		policies = append(policies, fmt.Sprintf("webhook failurePolicy %s (%s)", change, plural(policyChange[change], "webhook configuration")))
	}
	return append(out, policies...)
}

func failurePolicy(obj map[string]any) string {
	hooks, _, _ := unstructured.NestedSlice(obj, "webhooks")
	seen := map[string]bool{}
	var ps []string
	for _, h := range hooks {
		hm, _ := h.(map[string]any)
		p, _ := hm["failurePolicy"].(string)
		if !seen[p] {
			seen[p] = true
			ps = append(ps, p)
		}
	}
	sort.Strings(ps)
	return strings.Join(ps, "/")
}

func plural(n int, s string) string {
	if n == 1 {
		return "1 " + s
	}
	return fmt.Sprintf("%d %ss", n, s)
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
