package certs

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func parse(t *testing.T, p string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(p))
	if b == nil {
		t.Fatalf("not PEM: %q", p)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var opts = Options{ControlPlaneNamespace: "linkerd", TrustDomain: "cluster.local",
	WebhookServices: []string{"linkerd-proxy-injector"}, Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}

func TestGenerateChain(t *testing.T) {
	b, err := Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	anchor, issuer := parse(t, b.TrustAnchorsPEM), parse(t, b.Issuer.CertPEM)
	roots := x509.NewCertPool()
	roots.AddCert(anchor)
	if _, err := issuer.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: opts.Now.Add(time.Hour), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("issuer does not chain to the anchor: %v", err)
	}
	if !issuer.IsCA || issuer.Subject.CommonName != "identity.linkerd.cluster.local" {
		t.Errorf("issuer CA %v CN %q", issuer.IsCA, issuer.Subject.CommonName)
	}
	wh := parse(t, b.Webhooks["linkerd-proxy-injector"].CertPEM)
	if err := wh.VerifyHostname("linkerd-proxy-injector.linkerd.svc"); err != nil {
		t.Error(err)
	}
}

// TestLoadOrCreateNeverRotates: the second call returns the first call's
// material byte for byte, and keys are private to the user.
func TestLoadOrCreateNeverRotates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	first, created, err := LoadOrCreate(dir, opts)
	if err != nil || !created {
		t.Fatalf("first: created %v, %v", created, err)
	}
	second, created, err := LoadOrCreate(dir, opts)
	if err != nil || created {
		t.Fatalf("second: created %v, %v", created, err)
	}
	if first.Issuer.KeyPEM != second.Issuer.KeyPEM || first.TrustAnchorsPEM != second.TrustAnchorsPEM ||
		first.Webhooks["linkerd-proxy-injector"] != second.Webhooks["linkerd-proxy-injector"] {
		t.Error("material changed between runs")
	}
	for _, f := range []string{fileAnchorKey, fileIssuerKey, "linkerd-proxy-injector" + webhookSuffix + ".key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	// A mesh that grows a webhook (viz's tap, outside the control plane's
	// namespace) gets a pair for it in the directory; nothing kept changes.
	more := opts
	more.WebhookServices = append(more.WebhookServices, "tap.linkerd-viz")
	third, created, err := LoadOrCreate(dir, more)
	if err != nil || created {
		t.Fatalf("third: created %v, %v", created, err)
	}
	if third.Issuer.KeyPEM != first.Issuer.KeyPEM || third.Webhooks["linkerd-proxy-injector"] != first.Webhooks["linkerd-proxy-injector"] {
		t.Error("adding a webhook changed the material kept")
	}
	tap := parse(t, third.Webhooks["tap.linkerd-viz"].CertPEM)
	if err := tap.VerifyHostname("tap.linkerd-viz.svc"); err != nil {
		t.Error(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "tap.linkerd-viz"+webhookSuffix+".key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("tap key file: %v %v", fi, err)
	}
	fourth, _, err := LoadOrCreate(dir, more)
	if err != nil || fourth.Webhooks["tap.linkerd-viz"] != third.Webhooks["tap.linkerd-viz"] {
		t.Errorf("the added pair was not kept: %v", err)
	}
}
