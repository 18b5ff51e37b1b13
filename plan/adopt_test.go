package plan_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/internal/testbin"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
)

// upstreamCerts makes certificates the way `linkerd install` does (FACTS
// §6): one self-signed ECDSA CA that is both the trust anchor and the
// issuer, and a self-signed RSA-2048 serving pair per webhook.
func upstreamCerts(t *testing.T) *certs.Bundle {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "identity.linkerd.cluster.local"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, ca, ca, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	b := &certs.Bundle{
		TrustAnchorsPEM: caPEM,
		Issuer:          &certs.KeyPair{CertPEM: caPEM, KeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))},
		Webhooks:        map[string]certs.KeyPair{},
	}
	for i, svc := range generators.WebhookServices {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		host := svc + ".linkerd.svc"
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
			NotBefore: now.Add(-time.Minute), NotAfter: now.Add(365 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true}
		d, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		b.Webhooks[svc] = certs.KeyPair{
			CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})),
			KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})),
		}
	}
	return b
}

// installUpstream installs the default control plane with b's
// certificates the way `linkerd install | kubectl apply -f -` does: one
// YAML stream, client-side applied by the pinned kubectl.
func installUpstream(t *testing.T, cluster *testcluster.Cluster, b *certs.Bundle) {
	t.Helper()
	objs, err := generators.Render(mustLoadSource(t, "mesh.cue", "{}"), generators.Inputs{Certs: b})
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	for _, o := range objs {
		y, err := yaml.Marshal(o.Object.Object)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(y))
	}
	path := filepath.Join(t.TempDir(), "linkerd.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(docs, "---\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	bins, err := testbin.Find()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bins.Kubectl, "--kubeconfig="+cluster.Kubeconfig, "apply", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

// trustData reads what the mesh's trust lives in.
func trustData(t *testing.T, ctx context.Context, cluster *testcluster.Cluster) map[string]string {
	t.Helper()
	out := map[string]string{}
	cm, err := cluster.Client.CoreV1().ConfigMaps("linkerd").Get(ctx, "linkerd-identity-trust-roots", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out["trust-roots ca-bundle.crt"] = cm.Data["ca-bundle.crt"]
	for _, name := range []string{"linkerd-identity-issuer", "linkerd-proxy-injector-k8s-tls", "linkerd-sp-validator-k8s-tls", "linkerd-policy-validator-k8s-tls"} {
		s, err := cluster.Client.CoreV1().Secrets("linkerd").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range s.Data {
			out[name+" "+k] = string(v)
		}
	}
	hook, err := cluster.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "linkerd-proxy-injector-webhook-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out["injector caBundle"] = string(hook.Webhooks[0].ClientConfig.CABundle)
	return out
}

// TestTakeOverKeepsTrust: an install made as upstream's CLI makes it is
// taken over without touching its trust: diff shows no change to the
// anchor or issuer, and after apply the trust roots, the issuer and the
// webhook pairs are byte for byte what they were.
func TestTakeOverKeepsTrust(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	installUpstream(t, cluster, upstreamCerts(t))
	before := trustData(t, ctx, cluster)

	c, err := apply.New(cluster.Config, "")
	if err != nil {
		t.Fatal(err)
	}
	m := mustLoadSource(t, "mesh.cue", "{}")
	dry, _, err := plan.ForCluster(ctx, m, plan.Cluster{Client: c, DryRun: true}, "test")
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Diff(ctx, dry, apply.DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range d.Objects {
		if (o.Name == "linkerd-identity-trust-roots" || o.Name == "linkerd-identity-issuer") && (strings.Contains(o.Diff, "*** (after)") || strings.Contains(o.Diff, "+  ca-bundle.crt")) {
			t.Errorf("diff replaces %s:\n%s", o.ID, o.Diff)
		}
	}
	if meanings := plan.Meanings(nil, m, d); len(meanings) > 0 && strings.HasPrefix(meanings[0], "trust anchor changes") {
		t.Errorf("diff says the trust anchor changes: %q", meanings)
	}

	set, notes, err := plan.ForCluster(ctx, m, plan.Cluster{Client: c}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) == 0 || !strings.Contains(strings.Join(notes, "\n"), "adopted the existing trust anchor and issuer") {
		t.Errorf("notes %q do not say the trust was adopted", notes)
	}
	if _, err := c.Apply(ctx, set, apply.Options{Prune: true}); err != nil {
		t.Fatal(err)
	}
	after := trustData(t, ctx, cluster)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed on takeover", k)
		}
	}
	kept, err := cluster.Client.CoreV1().Secrets("meshctl").Get(ctx, plan.CertificatesSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := kept.Data["trust-anchor.key"]; ok || string(kept.Data["trust-anchors.pem"]) != before["trust-roots ca-bundle.crt"] {
		t.Errorf("%s does not record the adopted anchor without a key: keys %v", plan.CertificatesSecret, keys(kept.Data))
	}
	if d, err := c.Diff(ctx, set, apply.DiffOptions{}); err != nil || d.Changed() {
		t.Errorf("diff after the takeover: changed=%v err=%v", d != nil && d.Changed(), err)
	}
}

// TestTakeOverRefusesWhatItCannotAdopt: an issuer kept by something else
// (the kubernetes.io/tls scheme) is not frozen: meshctl refuses, names the
// mesh.cue settings that make the choice explicit, and writes nothing.
func TestTakeOverRefusesWhatItCannotAdopt(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := upstreamCerts(t)
	if _, err := cluster.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Client.CoreV1().ConfigMaps("linkerd").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "linkerd-identity-trust-roots"},
		Data: map[string]string{"ca-bundle.crt": b.TrustAnchorsPEM}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Client.CoreV1().Secrets("linkerd").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "linkerd-identity-issuer"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": []byte(b.Issuer.CertPEM), "tls.key": []byte(b.Issuer.KeyPEM), "ca.crt": []byte(b.TrustAnchorsPEM)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := apply.New(cluster.Config, "")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = plan.ForCluster(ctx, mustLoadSource(t, "mesh.cue", "{}"), plan.Cluster{Client: c}, "test")
	if !errors.Is(err, plan.ErrCannotAdopt) {
		t.Fatalf("err = %v, want a refusal to adopt", err)
	}
	for _, want := range []string{"kubernetes.io/tls", `trustAnchor: source: "external", issuer: source: "secret"`, `issuer: {source: "certManager"`, "mTLS between old and new pods would fail"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q:\n%v", want, err)
		}
	}
	if _, err := cluster.Client.CoreV1().Secrets("meshctl").Get(ctx, plan.CertificatesSecret, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a refused takeover stored certificates: %v", err)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
