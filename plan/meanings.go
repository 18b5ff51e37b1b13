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
// counts, PDBs, webhook failure policies, canary weights, fault injection,
// meshed namespaces and the Linkerd version, after any change of the trust
// anchor or issuer, which comes first. old may be nil.
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
		n, o := new.Services[key], old.Services[key]
		if line := splitChange(o.Split, n.Split); line != "" {
			out = append(out, key+" "+line)
		}
		switch {
		case o.Fault == nil && n.Fault != nil:
			out = append(out, fmt.Sprintf("%s fault injection on: %g%% of requests answered %d", key, n.Fault.Percent, n.Fault.Status))
		case o.Fault != nil && n.Fault == nil:
			out = append(out, fmt.Sprintf("%s fault injection off", key))
		case o.Fault != nil && n.Fault != nil && *o.Fault != *n.Fault:
			out = append(out, fmt.Sprintf("%s fault injection %g%%→%g%%, status %d→%d", key, o.Fault.Percent, n.Fault.Percent, o.Fault.Status, n.Fault.Status))
		}
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

// splitChange describes a traffic split's change: "canary weight 10→50
// (books-v2)", or the split appearing or going.
func splitChange(old, new map[string]int) string {
	switch {
	case len(old) == 0 && len(new) == 0:
		return ""
	case len(old) == 0:
		return "traffic split on: " + weights(new)
	case len(new) == 0:
		return "traffic split off (was " + weights(old) + ")"
	}
	var parts []string
	for _, b := range sortedKeys(new) {
		if ow, ok := old[b]; !ok || ow != new[b] {
			parts = append(parts, fmt.Sprintf("%s %d→%d", b, old[b], new[b]))
		}
	}
	for _, b := range sortedKeys(old) {
		if _, ok := new[b]; !ok {
			parts = append(parts, fmt.Sprintf("%s %d→removed", b, old[b]))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "canary weight " + strings.Join(parts, ", ")
}

func weights(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
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
