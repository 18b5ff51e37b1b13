package certs

import (
	"crypto/x509"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRotateThreshold(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name                   string
		lifetime, rotateBefore time.Duration
		want                   time.Duration
	}{
		{"1-year issuer: 60 days", IssuerLifetime, 0, 60 * day},
		{"10-year anchor: 60 days", AnchorLifetime, 0, 60 * day},
		{"90 days: a third, 30 days", 90 * day, 0, 30 * day},
		{"10 minutes: a third, 3m20s", 10 * time.Minute, 0, 3*time.Minute + 20*time.Second},
		{"rotateBefore wins", IssuerLifetime, 90 * day, 90 * day},
		{"rotateBefore wins when shorter too", 10 * time.Minute, time.Minute, time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := RotateThreshold(tc.lifetime, tc.rotateBefore); got != tc.want {
				t.Errorf("RotateThreshold(%v, %v) = %v, want %v", tc.lifetime, tc.rotateBefore, got, tc.want)
			}
		})
	}
}

// shortLived is opts with a 10-minute issuer and webhooks, made at made.
func shortLived(made time.Time) Options {
	o := opts
	o.Now, o.IssuerLifetime, o.WebhookLifetime = made, 10*time.Minute, 10*time.Minute
	return o
}

func TestDueAndLifetime(t *testing.T) {
	made := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b, err := Generate(shortLived(made))
	if err != nil {
		t.Fatal(err)
	}
	issuer := parse(t, b.Issuer.CertPEM)
	if got := Lifetime(issuer); got != 10*time.Minute {
		t.Errorf("Lifetime %v, want 10m", got)
	}
	for _, tc := range []struct {
		after time.Duration
		want  bool
	}{{0, false}, {6*time.Minute + 39*time.Second, false}, {6*time.Minute + 40*time.Second, true}, {11 * time.Minute, true}} {
		if got := Due(issuer, made.Add(tc.after), 0); got != tc.want {
			t.Errorf("Due %v after making: %v, want %v", tc.after, got, tc.want)
		}
	}
}

func TestReissueChainsToTheSameAnchor(t *testing.T) {
	b, err := Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	later := opts
	later.Now = opts.Now.Add(300 * 24 * time.Hour)
	kp, err := Reissue(*b.Anchor, later)
	if err != nil {
		t.Fatal(err)
	}
	if kp.CertPEM == b.Issuer.CertPEM || kp.KeyPEM == b.Issuer.KeyPEM {
		t.Fatal("Reissue returned the old issuer")
	}
	if _, err := parsePair(kp); err != nil {
		t.Fatalf("the new pair: %v", err)
	}
	issuer := parse(t, kp.CertPEM)
	roots := x509.NewCertPool()
	roots.AddCert(parse(t, b.TrustAnchorsPEM))
	if _, err := issuer.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: later.Now.Add(time.Hour), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("the new issuer does not chain to the anchor: %v", err)
	}
	if !issuer.IsCA || issuer.Subject.CommonName != "identity.linkerd.cluster.local" || !issuer.NotAfter.Equal(later.Now.Add(IssuerLifetime)) {
		t.Errorf("new issuer: CA %v, CN %q, NotAfter %v", issuer.IsCA, issuer.Subject.CommonName, issuer.NotAfter)
	}
	// It never outlives the anchor.
	end := opts
	end.Now = opts.Now.Add(AnchorLifetime - 24*time.Hour)
	kp, err = Reissue(*b.Anchor, end)
	if err != nil {
		t.Fatal(err)
	}
	if got, anchor := parse(t, kp.CertPEM).NotAfter, parse(t, b.TrustAnchorsPEM).NotAfter; !got.Equal(anchor) {
		t.Errorf("issuer NotAfter %v, anchor's %v", got, anchor)
	}
	if _, err := Reissue(KeyPair{CertPEM: b.Anchor.CertPEM, KeyPEM: b.Issuer.KeyPEM}, opts); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("a wrong anchor key: %v", err)
	}
}

func TestRotate(t *testing.T) {
	made := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b, err := Generate(shortLived(made))
	if err != nil {
		t.Fatal(err)
	}
	before := *b
	before.Webhooks = map[string]KeyPair{"linkerd-proxy-injector": b.Webhooks["linkerd-proxy-injector"]}
	now := opts
	now.Now = made.Add(8 * time.Minute)
	if r, err := b.Rotate(opts, 0, true); err != nil || len(r) != 0 {
		t.Fatalf("nothing due: rotated %v, %v", r, err)
	}
	// Without issuer, only the webhooks.
	c := before
	c.Webhooks = map[string]KeyPair{"linkerd-proxy-injector": b.Webhooks["linkerd-proxy-injector"]}
	r, err := c.Rotate(now, 0, false)
	if err != nil || len(r) != 1 || r[0].Kind != KindWebhook || c.Issuer != before.Issuer {
		t.Fatalf("issuer false: rotated %v, %v", r, err)
	}
	r, err = b.Rotate(now, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []Rotation{
		{Kind: KindIssuer, Name: "identity.linkerd.cluster.local", Expiring: made.Add(10 * time.Minute), NotAfter: now.Now.Add(IssuerLifetime)},
		{Kind: KindWebhook, Name: "linkerd-proxy-injector", Expiring: made.Add(10 * time.Minute), NotAfter: now.Now.Add(WebhookLifetime)},
	}
	if d := cmp.Diff(want, r); d != "" {
		t.Errorf("rotations (-want +got):\n%s", d)
	}
	if b.TrustAnchorsPEM != before.TrustAnchorsPEM || b.Anchor != before.Anchor || b.Issuer.CertPEM == before.Issuer.CertPEM {
		t.Error("the anchor changed, or the issuer did not")
	}
	// Without the anchor's key, the issuer stays.
	adopted := before
	adopted.Anchor = nil
	adopted.Webhooks = map[string]KeyPair{}
	if r, err := adopted.Rotate(now, 0, true); err != nil || len(r) != 0 || adopted.Issuer != before.Issuer {
		t.Errorf("adopted: rotated %v, %v", r, err)
	}
}

func TestStatus(t *testing.T) {
	b, err := Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	now := opts.Now.Add(320 * 24 * time.Hour)
	issuerEnd, anchorEnd, whEnd := opts.Now.Add(IssuerLifetime), opts.Now.Add(AnchorLifetime), opts.Now.Add(WebhookLifetime)
	want := []Status{
		{Kind: KindTrustAnchor, Subject: "root.linkerd.cluster.local", NotAfter: anchorEnd, TimeLeft: anchorEnd.Sub(now), CanRotate: true},
		{Kind: KindIssuer, Subject: "identity.linkerd.cluster.local", NotAfter: issuerEnd, TimeLeft: 45 * 24 * time.Hour, CanRotate: true, Expiring: true},
		{Kind: KindWebhook, Name: "linkerd-proxy-injector", Subject: "linkerd-proxy-injector.linkerd.svc", NotAfter: whEnd, TimeLeft: 45 * 24 * time.Hour, CanRotate: true, Expiring: true},
	}
	if d := cmp.Diff(want, b.Status(now)); d != "" {
		t.Errorf("generated (-want +got):\n%s", d)
	}
	// Adopted: no anchor key, an issuer read without its key.
	adopted := &Bundle{TrustAnchorsPEM: b.TrustAnchorsPEM, Issuer: &KeyPair{CertPEM: b.Issuer.CertPEM}}
	want = []Status{want[0], want[1]}
	want[0].CanRotate, want[1].CanRotate = false, false
	if d := cmp.Diff(want, adopted.Status(now)); d != "" {
		t.Errorf("adopted (-want +got):\n%s", d)
	}
}

// TestNextDue: the moment Rotate first replaces something is the moment
// NextDue gives, not before.
func TestNextDue(t *testing.T) {
	made := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b, err := Generate(shortLived(made))
	if err != nil {
		t.Fatal(err)
	}
	// 10-minute certificates rotate a third of their life before expiry.
	want := made.Add(10*time.Minute - RotateThreshold(10*time.Minute, 0))
	if got := b.NextDue(0, true); !got.Equal(want) {
		t.Fatalf("NextDue = %s, want %s", got, want)
	}
	for _, tc := range []struct {
		at   time.Time
		want int
	}{{want.Add(-time.Second), 0}, {want, len(b.Webhooks) + 1}} {
		c := *b
		c.Webhooks = maps.Clone(b.Webhooks)
		o := opts
		o.Now = tc.at
		if r, err := c.Rotate(o, 0, true); err != nil || len(r) != tc.want {
			t.Errorf("Rotate at %s: %d rotated (%v), want %d", tc.at, len(r), err, tc.want)
		}
	}
	if got := b.NextDue(2*time.Minute, true); !got.Equal(made.Add(8 * time.Minute)) {
		t.Errorf("NextDue with rotateBefore 2m = %s", got)
	}
	none := &Bundle{Issuer: b.Issuer}
	if got := none.NextDue(0, true); !got.IsZero() {
		t.Errorf("an issuer without the anchor's key is not meshctl's to rotate: NextDue = %s", got)
	}
}
