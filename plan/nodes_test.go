package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func node(name, zone string, mutate ...func(*corev1.Node)) corev1.Node {
	n := corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
	if zone != "" {
		n.Labels[zoneLabel] = zone
	}
	for _, f := range mutate {
		f(&n)
	}
	return n
}

func cordoned(n *corev1.Node) { n.Spec.Unschedulable = true }
func notReady(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }
func tainted(n *corev1.Node) {
	n.Spec.Taints = []corev1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}}
}

func TestHAPlacement(t *testing.T) {
	const nodesLine = ". HA runs 3 replicas each of linkerd-destination, linkerd-identity and linkerd-proxy-injector with required per-node anti-affinity, so "
	const zonesLine = ". The per-zone anti-affinity is only preferred: the pods schedule, but losing one zone can take down more than one of the 3 replicas of linkerd-destination, linkerd-identity and linkerd-proxy-injector"
	tests := []struct {
		name         string
		nodes        []corev1.Node
		replicas     int
		antiAffinity bool
		want         []string
	}{
		{name: "three nodes in three zones", replicas: 3, antiAffinity: true,
			nodes: []corev1.Node{node("a", "z1"), node("b", "z2"), node("c", "z3")}},
		{name: "two nodes in two zones", replicas: 3, antiAffinity: true,
			nodes: []corev1.Node{node("a", "z1"), node("b", "z2")},
			want: []string{
				"HA: 2 nodes are schedulable (a, b)" + nodesLine + "1 replica of each will stay Pending until 3 nodes are schedulable",
				"HA: the schedulable nodes span 2 zones (z1, z2)" + zonesLine,
			}},
		{name: "a cordoned, an unready and a tainted node", replicas: 3, antiAffinity: true,
			nodes: []corev1.Node{node("a", "z1"), node("b", "z2", cordoned), node("c", "z3", notReady), node("d", "z3", tainted)},
			want: []string{
				"HA: 1 node is schedulable (a); not schedulable: b (cordoned), c (not Ready), d (tainted node-role.kubernetes.io/control-plane:NoSchedule)" + nodesLine + "2 replicas of each will stay Pending until 3 nodes are schedulable",
				"HA: the schedulable nodes span 1 zone (z1)" + zonesLine,
			}},
		{name: "three nodes in two zones", replicas: 3, antiAffinity: true,
			nodes: []corev1.Node{node("a", "z1"), node("b", "z2"), node("c", "z2")},
			want:  []string{"HA: the schedulable nodes span 2 zones (z1, z2)" + zonesLine}},
		{name: "nodes without zone labels", replicas: 3, antiAffinity: true,
			nodes: []corev1.Node{node("a", ""), node("b", ""), node("c", "z1")},
			want:  []string{"HA: the schedulable nodes span 1 zone (z1); 2 nodes have no topology.kubernetes.io/zone label" + zonesLine}},
		{name: "no anti-affinity: nodes do not matter, zones do", replicas: 3, antiAffinity: false,
			nodes: []corev1.Node{node("a", "z1"), node("b", "z2"), node("c", "z3")}},
		{name: "two replicas need two zones", replicas: 2, antiAffinity: true,
			nodes: []corev1.Node{node("a", "z1"), node("b", "z2")}},
		{name: "no nodes at all", replicas: 3, antiAffinity: true,
			want: []string{"HA: 0 nodes are schedulable (none)" + nodesLine + "3 replicas of each will stay Pending until 3 nodes are schedulable"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, haPlacement(tc.nodes, tc.replicas, tc.antiAffinity)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
