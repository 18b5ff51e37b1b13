package plan

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/schema"
)

// zoneLabel is the well-known label the scheduler spreads zones by.
const zoneLabel = "topology.kubernetes.io/zone"

// haWorkloads are the control-plane Deployments that HA spreads with
// per-node anti-affinity (FACTS §7).
const haWorkloads = "linkerd-destination, linkerd-identity and linkerd-proxy-injector"

// Warnings reads the cluster and says, a line each, what in it keeps the
// mesh from running as mesh.cue asks: today, HA on too few schedulable
// nodes or zones. They are warnings, not errors: the apply goes ahead, and
// the pods that cannot be placed stay Pending until the cluster grows.
func Warnings(ctx context.Context, m *schema.Mesh, c *apply.Client) []string {
	if !m.ControlPlane.HA {
		return nil
	}
	nodes := &corev1.NodeList{}
	if err := c.Kube().List(ctx, nodes); err != nil {
		return []string{fmt.Sprintf("HA: cannot list the cluster's nodes (%v), so whether %d replicas can be spread was not checked", err, m.ControlPlane.Replicas)}
	}
	return haPlacement(nodes.Items, m.ControlPlane.Replicas, m.ControlPlane.PodAntiAffinity)
}

// haPlacement is the pure part of Warnings: replicas per control-plane
// Deployment, spread one per node (required, when antiAffinity) and over
// zones (preferred).
func haPlacement(nodes []corev1.Node, replicas int, antiAffinity bool) []string {
	var ok, not []string
	zones := map[string]bool{}
	unlabelled := 0
	for _, n := range nodes {
		if why := unschedulable(n); why != "" {
			not = append(not, n.Name+" ("+why+")")
			continue
		}
		ok = append(ok, n.Name)
		if z := n.Labels[zoneLabel]; z != "" {
			zones[z] = true
		} else {
			unlabelled++
		}
	}
	var out []string
	if antiAffinity && len(ok) < replicas {
		line := fmt.Sprintf("HA: %s schedulable (%s)", count(len(ok), "node is", "nodes are"), listOrNone(ok))
		if len(not) > 0 {
			line += "; not schedulable: " + strings.Join(not, ", ")
		}
		line += fmt.Sprintf(". HA runs %d replicas each of %s with required per-node anti-affinity, so %s of each will stay Pending until %d nodes are schedulable",
			replicas, haWorkloads, count(replicas-len(ok), "replica", "replicas"), replicas)
		out = append(out, line)
	}
	want := min(replicas, 3)
	if len(ok) > 0 && len(zones) < want {
		names := sortedKeys(zones)
		line := fmt.Sprintf("HA: the schedulable nodes span %s (%s)", count(len(zones), "zone", "zones"), listOrNone(names))
		if unlabelled > 0 {
			line += fmt.Sprintf("; %s no %s label", count(unlabelled, "node has", "nodes have"), zoneLabel)
		}
		line += fmt.Sprintf(". The per-zone anti-affinity is only preferred: the pods schedule, but losing one zone can take down more than one of the %d replicas of %s", replicas, haWorkloads)
		out = append(out, line)
	}
	return out
}

// unschedulable says why new pods without tolerations cannot land on n,
// or "" when they can.
func unschedulable(n corev1.Node) string {
	if n.Spec.Unschedulable {
		return "cordoned"
	}
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			ready = c.Status == corev1.ConditionTrue
		}
	}
	if !ready {
		return "not Ready"
	}
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return "tainted " + t.Key + ":" + string(t.Effect)
		}
	}
	return ""
}

// count is "1 one" or "n many".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
