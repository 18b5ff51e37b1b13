// Package meshtest holds what the tests of several packages share about
// the meshes of examples/ and testdata/golden/: the walk of transitions
// between them (testdata/transitions), and what a test cluster must hold
// before each can be applied.
package meshtest

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/internal/rendertest"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/schema"
)

// Root is the repository's root directory.
func Root() string { return rendertest.Root() }

// Steps returns the meshes of testdata/transitions, in order, as paths
// relative to Root.
func Steps(t testing.TB) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(Root(), "testdata", "transitions"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, err := os.Stat(filepath.Join(Root(), line)); err != nil {
			t.Fatalf("testdata/transitions: %v", err)
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Name is a short name for a mesh of Steps: "golden/ha" or "examples/ha".
func Name(path string) string {
	return strings.TrimSuffix(strings.TrimPrefix(path, "testdata/"), ".cue")
}

// Prepare makes cluster hold what m takes from outside meshctl before it
// can be applied, as the clusters it is written for do: the Secret its
// trust anchor comes from, and stand-ins for the CRDs of cert-manager and
// the Prometheus Operator when m uses their kinds.
func Prepare(t testing.TB, cluster *testcluster.Cluster, m *schema.Mesh) {
	t.Helper()
	if m.ControlPlane.Identity.Issuer.Source == schema.SourceCertManager {
		cluster.StandInCRD(t, "cert-manager.io", "v1", "Certificate", "certificates")
	}
	if m.Viz.Prometheus.Operator {
		cluster.StandInCRD(t, "monitoring.coreos.com", "v1", "PodMonitor", "podmonitors")
	}
	if ref := m.ControlPlane.Identity.TrustAnchor.SecretRef; ref != nil {
		trustAnchorSecret(t, cluster, ref)
	}
}

// trustAnchorSecret creates the Secret a mesh takes its trust anchor from,
// as a platform team's PKI would, once.
func trustAnchorSecret(t testing.TB, cluster *testcluster.Cluster, ref *schema.SecretRef) {
	t.Helper()
	ctx := t.Context()
	if _, err := cluster.Client.CoreV1().Secrets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{}); err == nil {
		return
	}
	b, err := certs.Generate(certs.Options{ControlPlaneNamespace: "linkerd", TrustDomain: "cluster.local"})
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ref.Namespace}}
	if _, err := cluster.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: ref.Name, Namespace: ref.Namespace},
		Data: map[string][]byte{ref.Key: []byte(b.TrustAnchorsPEM)}}
	if _, err := cluster.Client.CoreV1().Secrets(ref.Namespace).Create(ctx, sec, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// Deployment is a one-replica Deployment of image, labelled app: name: a
// rollout's side, for tests that need its pod template to exist.
func Deployment(namespace, name, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

// RouteWeights are an HTTPRoute's backend weights by backend name, from
// its JSON as the API server returns it.
func RouteWeights(t testing.TB, route []byte) map[string]int64 {
	t.Helper()
	var r struct {
		Spec struct {
			Rules []struct {
				BackendRefs []struct {
					Name   string `json:"name"`
					Weight int64  `json:"weight"`
				} `json:"backendRefs"`
			} `json:"rules"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(route, &r); err != nil {
		t.Fatalf("an HTTPRoute's JSON: %v", err)
	}
	out := map[string]int64{}
	for _, rule := range r.Spec.Rules {
		for _, b := range rule.BackendRefs {
			out[b.Name] = b.Weight
		}
	}
	return out
}
