package testcluster

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

// TestFullCluster starts the full cluster and checks what it promises:
// nodes in zones, a Deployment that rolls out with one pod per node under
// required anti-affinity, pod IPs from the loopback CIDR, and no endpoints
// for those pods: the EndpointSlice controller tries, and the API server
// refuses loopback addresses, so nothing ever dials a pod.
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
	err = wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		got, err := c.Client.AppsV1().Deployments("default").Get(ctx, "spread", metav1.GetOptions{})
		return err == nil && got.Status.AvailableReplicas == 3, nil
	})
	if err != nil {
		t.Fatalf("deployment not available: %v", err)
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

	// A Service selecting the pods: once the EndpointSlice controller has
	// tried to publish them (it says so in an event on the Service), its
	// slices hold no endpoint.
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "spread", Namespace: "default"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	if _, err := c.Client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		events, err := c.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.kind=Service,involvedObject.name=spread,reason=FailedToUpdateEndpointSlices",
		})
		return err == nil && len(events.Items) > 0 && strings.Contains(events.Items[0].Message, "loopback"), nil
	})
	if err != nil {
		t.Fatalf("the EndpointSlice controller never reported refusing the loopback pod IPs: %v", err)
	}
	slices, err := c.Client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=spread"})
	if err != nil {
		t.Fatal(err)
	}
	for _, sl := range slices.Items {
		if len(sl.Endpoints) != 0 {
			t.Errorf("EndpointSlice %s holds endpoints %+v; pods must never become endpoints", sl.Name, sl.Endpoints)
		}
	}

	// CPUTime names every component, and the API server's time grows as
	// it serves.
	before, err := c.CPUTime()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"} {
		if _, ok := before[name]; !ok {
			t.Errorf("CPUTime has no %s: %v", name, before)
		}
	}
	if before["kube-apiserver"] <= 0 {
		t.Errorf("kube-apiserver has used %s of CPU after serving this test", before["kube-apiserver"])
	}
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		for range 20 {
			if _, err := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); err != nil {
				return false, err
			}
		}
		after, err := c.CPUTime()
		return err == nil && after["kube-apiserver"] > before["kube-apiserver"], err
	})
	if err != nil {
		t.Fatalf("kube-apiserver's CPU time never grew past %s: %v", before["kube-apiserver"], err)
	}
}
