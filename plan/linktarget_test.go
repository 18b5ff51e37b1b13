package plan

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/schema"
)

// TestGatewayWithoutAddress: a link whose target's gateway never gets an
// address fails, once its wait is over, with that reason, not with the
// client error a request cut short by the wait's deadline gives.
func TestGatewayWithoutAddress(t *testing.T) {
	c := testcluster.StartForTest(t, testcluster.Options{})
	ctx := context.Background()
	for _, ns := range []string{"linkerd", mcNamespace} {
		if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: linkerdConfigName, Namespace: "linkerd"}, Data: map[string]string{"values": "identityTrustDomain: cluster.local\nclusterDomain: cluster.local\n"}}
	if _, err := c.Client.CoreV1().ConfigMaps("linkerd").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: mcGateway, Namespace: mcNamespace},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Name: mcGatewayPort, Port: 4143}}},
	}
	if _, err := c.Client.CoreV1().Services(mcNamespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ac, err := apply.New(c.Config, "")
	if err != nil {
		t.Fatal(err)
	}
	// Waits of several lengths, so that the deadline falls at different
	// points of the poll: each ends with the reason.
	for _, w := range []time.Duration{1200 * time.Millisecond, 2 * time.Second, 2700 * time.Millisecond} {
		_, err = ReadLinkTarget(ctx, &Member{Name: "east", Client: ac}, schema.Link{From: "west", To: "east", Gateway: true}, LinkOptions{Wait: w})
		if !errors.Is(err, ErrLinkTargetNotReady) || !strings.Contains(err.Error(), "has no address yet") || strings.Contains(err.Error(), "rate limiter") {
			t.Errorf("wait %s: %v, want the gateway's missing address", w, err)
		}
	}
}
