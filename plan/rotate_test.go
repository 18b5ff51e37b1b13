package plan_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

func render(t *testing.T, m *schema.Mesh, b *certs.Bundle) apply.Set {
	t.Helper()
	objs, err := generators.Render(m, generators.Inputs{Certs: b})
	if err != nil {
		t.Fatal(err)
	}
	return plan.Stages(objs, "test")
}

// TestIssuerRotationMeaning: a new issuer signed by the same anchor reads
// as a scheduled rotation, first; one signed by another anchor does not.
func TestIssuerRotationMeaning(t *testing.T) {
	m := mustLoadSource(t, "mesh.cue", "{}")
	opts := generators.CertOptions(m, time.Now())
	b1, err := certs.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := certs.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := certs.Reissue(*b1.Anchor, opts)
	if err != nil {
		t.Fatal(err)
	}
	rotated, foreign := *b1, *b1
	rotated.Issuer, foreign.Issuer = &kp, b2.Issuer
	got := plan.Meanings(nil, m, apply.CompareSets(render(t, m, b1), render(t, m, &rotated)))
	if len(got) < 2 || !strings.HasPrefix(got[0], "scheduled issuer rotation: ") || !strings.Contains(got[0], "workloads keep working, since the anchor does not change") ||
		!strings.HasPrefix(got[1], "issuer changes: ") {
		t.Errorf("a rotation under the same anchor reads %q", got)
	}
	got = plan.Meanings(nil, m, apply.CompareSets(render(t, m, b1), render(t, m, &foreign)))
	if len(got) == 0 || !strings.HasPrefix(got[0], "issuer changes: ") {
		t.Errorf("an issuer from another anchor reads %q", got)
	}
}

// storeCertificates writes b as meshctl's certificate Secret, as an
// earlier run would have.
func storeCertificates(t *testing.T, ctx context.Context, cluster *testcluster.Cluster, b *certs.Bundle) {
	t.Helper()
	if _, err := cluster.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: apply.DefaultNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: plan.CertificatesSecret, Labels: map[string]string{apply.LabelManagedBy: apply.ManagedByMeshctl},
		Annotations: map[string]string{apply.AnnotationPrune: "disabled"}}, Type: corev1.SecretTypeOpaque, Data: b.Data()}
	if _, err := cluster.Client.CoreV1().Secrets(apply.DefaultNamespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func storedVersion(t *testing.T, ctx context.Context, cluster *testcluster.Cluster) (*corev1.Secret, string) {
	t.Helper()
	s, err := cluster.Client.CoreV1().Secrets(apply.DefaultNamespace).Get(ctx, plan.CertificatesSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s, s.ResourceVersion
}

func firstCert(t *testing.T, p []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(p)
	if block == nil {
		t.Fatalf("no PEM in %q", p)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// noKeys fails when s holds a private key.
func noKeys(t *testing.T, what, s string, b *certs.Bundle) {
	t.Helper()
	if strings.Contains(s, "PRIVATE KEY") || (b.Issuer != nil && b.Issuer.KeyPEM != "" && strings.Contains(s, strings.TrimSpace(b.Issuer.KeyPEM))) {
		t.Errorf("%s holds a private key:\n%s", what, s)
	}
}

// TestIssuerRotatesByPolicy: an issuer a few minutes from expiry (made
// with the clock set back) shows as rotating in a diff, is re-signed by
// the same anchor on apply and stored once, and a second apply rotates
// and writes nothing.
func TestIssuerRotatesByPolicy(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := mustLoadSource(t, "mesh.cue", "{}")
	opts := generators.CertOptions(m, time.Now().Add(-7*time.Minute))
	// 3 minutes left, under the default threshold, 3m20s.
	opts.IssuerLifetime, opts.WebhookLifetime = 10*time.Minute, 10*time.Minute
	old, err := certs.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	storeCertificates(t, ctx, cluster, old)
	c, err := apply.New(cluster.Config, "")
	if err != nil {
		t.Fatal(err)
	}
	// The mesh as an earlier run applied it, with the old issuer.
	if _, err := c.Apply(ctx, render(t, m, old), apply.Options{Prune: true}); err != nil {
		t.Fatal(err)
	}
	_, rv0 := storedVersion(t, ctx, cluster)

	dry, notes, err := plan.ForCluster(ctx, m, plan.Cluster{Client: c, DryRun: true}, "test")
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Diff(ctx, dry, apply.DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	changed := false
	for _, o := range d.Objects {
		if o.Kind == "Secret" && o.Namespace == "linkerd" && o.Name == "linkerd-identity-issuer" {
			changed = o.Action == apply.Configured && strings.Contains(o.Diff, "*** (after)")
		}
	}
	if !changed {
		t.Errorf("the diff does not show linkerd-identity-issuer changing")
	}
	meanings := plan.Meanings(nil, m, d)
	if len(meanings) < 2 || !strings.HasPrefix(meanings[0], "scheduled issuer rotation: ") || !strings.HasPrefix(meanings[1], "issuer changes: ") {
		t.Errorf("meanings %q", meanings)
	}
	var text bytes.Buffer
	d.WriteText(&text)
	noKeys(t, "the diff", text.String(), old)
	noKeys(t, "the dry run's notes", strings.Join(notes, "\n"), old)
	if _, rv := storedVersion(t, ctx, cluster); rv != rv0 {
		t.Error("a dry run updated the certificates")
	}
	if w := plan.CertificateWarnings(ctx, m, c); len(w) != 0 {
		t.Errorf("warnings for what meshctl rotates: %q", w)
	}

	set, notes, err := plan.ForCluster(ctx, m, plan.Cluster{Client: c}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Join(notes, "\n"); !strings.Contains(n, "rotated the issuer identity.linkerd.cluster.local, expiring ") || !strings.Contains(n, "signed by the same anchor") {
		t.Errorf("notes %q do not say the issuer rotated", notes)
	}
	noKeys(t, "the notes", strings.Join(notes, "\n"), old)
	if _, err := c.Apply(ctx, set, apply.Options{Prune: true}); err != nil {
		t.Fatal(err)
	}
	live, err := cluster.Client.CoreV1().Secrets("linkerd").Get(ctx, "linkerd-identity-issuer", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(live.Data["crt.pem"]) == old.Issuer.CertPEM || string(live.Data["key.pem"]) == old.Issuer.KeyPEM {
		t.Fatal("linkerd-identity-issuer still holds the old issuer")
	}
	roots := x509.NewCertPool()
	roots.AddCert(firstCert(t, []byte(old.TrustAnchorsPEM)))
	issuer := firstCert(t, live.Data["crt.pem"])
	if _, err := issuer.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("the new issuer does not chain to the same anchor: %v", err)
	}
	if left := time.Until(issuer.NotAfter); left < 364*24*time.Hour {
		t.Errorf("the new issuer has %v left", left)
	}
	cm, err := cluster.Client.CoreV1().ConfigMaps("linkerd").Get(ctx, "linkerd-identity-trust-roots", metav1.GetOptions{})
	if err != nil || cm.Data["ca-bundle.crt"] != old.TrustAnchorsPEM {
		t.Errorf("the trust roots changed (%v)", err)
	}
	// The webhook pairs rotate by the same policy, and their caBundles
	// follow.
	mwc, err := cluster.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "linkerd-proxy-injector-webhook-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	injector := old.Webhooks["linkerd-proxy-injector"].CertPEM
	if ca := string(mwc.Webhooks[0].ClientConfig.CABundle); ca == injector || !strings.Contains(strings.Join(notes, "\n"), "rotated the serving certificate of webhook linkerd-proxy-injector") {
		t.Errorf("the injector's serving pair was not rotated (notes %q)", notes)
	}
	stored, rv1 := storedVersion(t, ctx, cluster)
	if string(stored.Data["linkerd-proxy-injector.webhook.crt"]) != string(mwc.Webhooks[0].ClientConfig.CABundle) {
		t.Error("the injector's caBundle is not its stored serving certificate")
	}
	if rv1 == rv0 || string(stored.Data["issuer.crt"]) != string(live.Data["crt.pem"]) || string(stored.Data["trust-anchor.key"]) != old.Anchor.KeyPEM {
		t.Errorf("%s was not updated with the new issuer alone", plan.CertificatesSecret)
	}

	// Again: nothing is due, nothing is written.
	set, notes, err = plan.ForCluster(ctx, m, plan.Cluster{Client: c}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.Join(notes, "\n"), "rotated") {
		t.Errorf("the second run rotated: %q", notes)
	}
	res, err := c.Apply(ctx, set, apply.Options{Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Writes != 0 {
		t.Errorf("the second apply wrote: %v", res.Entries)
	}
	if _, rv := storedVersion(t, ctx, cluster); rv != rv1 {
		t.Errorf("the second run updated %s", plan.CertificatesSecret)
	}

	st, err := plan.ReadStatus(ctx, c, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range st.Certificates {
		kinds = append(kinds, string(r.Kind))
		if !r.CanRotate || r.Expiring || r.Err != "" {
			t.Errorf("status row %+v", r)
		}
	}
	if strings.Join(kinds, ",") != "trust-anchor,issuer,webhook,webhook,webhook" || st.Inventory == nil || st.Inventory.Objects == 0 || st.Inventory.Pending != 0 {
		t.Errorf("status: kinds %v, inventory %+v", kinds, st.Inventory)
	}
}

// TestAdoptedIssuerNearExpiryWarns: without the anchor's key meshctl
// cannot re-sign the issuer; it says so, and what to do, and rotates
// nothing.
func TestAdoptedIssuerNearExpiryWarns(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := mustLoadSource(t, "mesh.cue", "{}")
	opts := generators.CertOptions(m, time.Now().Add(-7*time.Minute))
	opts.IssuerLifetime = 10 * time.Minute
	adopted, err := certs.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	adopted.Anchor = nil
	storeCertificates(t, ctx, cluster, adopted)
	_, rv0 := storedVersion(t, ctx, cluster)
	c, err := apply.New(cluster.Config, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		_, notes, err := plan.ForCluster(ctx, m, plan.Cluster{Client: c, DryRun: dry}, "test")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.Join(notes, "\n"), "rotated the issuer") {
			t.Errorf("dry run %v: rotated an issuer without the anchor's key: %q", dry, notes)
		}
	}
	stored, rv := storedVersion(t, ctx, cluster)
	if string(stored.Data["issuer.crt"]) != adopted.Issuer.CertPEM || rv != rv0 {
		t.Errorf("%s was updated", plan.CertificatesSecret)
	}
	w := plan.CertificateWarnings(ctx, m, c)
	if len(w) != 1 || !strings.HasPrefix(w[0], "the issuer identity.linkerd.cluster.local expires ") || !strings.Contains(w[0], "meshctl cannot re-sign it") ||
		!strings.Contains(w[0], "rotate it with the tool that made it") || !strings.Contains(w[0], "give meshctl the anchor") {
		t.Errorf("warnings %q", w)
	}
	noKeys(t, "the warnings", strings.Join(w, "\n"), adopted)

	// A policy that would rotate on every run is refused.
	greedy := mustLoadSource(t, "mesh.cue", `controlPlane: identity: issuer: rotateBefore: "8760h"`)
	_, _, err = plan.ForCluster(ctx, greedy, plan.Cluster{Client: c, DryRun: true}, "test")
	if want := "controlPlane.identity.issuer.rotateBefore 8760h is not shorter than the issuer's lifetime (8760h0m0s): every apply would rotate it"; err == nil || err.Error() != want {
		t.Errorf("rotateBefore 8760h: got %v, want %s", err, want)
	}

	// Two runs that rotate at once: the second to store fails, and says
	// to try again.
	stale, err := c.EnsureSecret(ctx, plan.CertificatesSecret, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	stored.Labels["raced"] = "true"
	if _, err := cluster.Client.CoreV1().Secrets(apply.DefaultNamespace).Update(ctx, stored, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateSecret(ctx, &stale, stale.Data); err == nil || !strings.HasSuffix(err.Error(), "another meshctl apply or reconcile is running; try again") {
		t.Errorf("a raced update: %v", err)
	}
	st, err := plan.ReadStatus(ctx, c, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Certificates) < 2 || st.Certificates[1].Kind != certs.KindIssuer || st.Certificates[1].CanRotate || !st.Certificates[1].Expiring ||
		st.Certificates[0].CanRotate || st.Certificates[0].Expiring {
		t.Errorf("status %+v", st.Certificates)
	}
}
