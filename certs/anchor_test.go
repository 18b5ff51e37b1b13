package certs

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// roundTrip stores b as Data and reads it back, as a run after the step
// would.
func roundTrip(t *testing.T, b *Bundle) *Bundle {
	t.Helper()
	got, err := FromData(b.Data())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(b, got); diff != "" {
		t.Fatalf("FromData(Data()) differs (-stored +read):\n%s", diff)
	}
	return got
}

// verifies fails unless issuer chains to anchor at the issuer's start.
func verifies(t *testing.T, issuer string, anchor *x509.Certificate) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(anchor)
	c := parse(t, issuer)
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: c.NotBefore.Add(time.Second), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("issuer does not chain to %s: %v", anchor.Subject.CommonName, err)
	}
}

// TestAnchorRotationSteps takes a bundle through the three writing steps,
// each stored and read back, for a valid anchor and an expired one.
func TestAnchorRotationSteps(t *testing.T) {
	expired := opts
	expired.Now, expired.AnchorLifetime = opts.Now.Add(-2*time.Hour), time.Hour
	for _, tc := range []struct {
		name string
		made Options
	}{{"valid anchor", opts}, {"expired anchor", expired}} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Generate(tc.made)
			if err != nil {
				t.Fatal(err)
			}
			old := parse(t, b.Anchor.CertPEM)
			oldIssuer := b.Issuer.CertPEM
			if tc.name == "expired anchor" && !old.NotAfter.Before(opts.Now) {
				t.Fatalf("the anchor expires %s, not before %s", old.NotAfter, opts.Now)
			}
			b = roundTrip(t, b)
			if b.RotationStep() != "" {
				t.Fatalf("a fresh bundle is rotating: %q", b.RotationStep())
			}

			if err := b.BundleAnchor(opts); err != nil {
				t.Fatal(err)
			}
			b = roundTrip(t, b)
			roots, err := parseCerts(b.TrustAnchorsPEM)
			if err != nil || len(roots) != 2 || !roots[0].Equal(old) || roots[1].Equal(old) {
				t.Fatalf("bundle: trust roots %d certificates (%v), want the old then a new one", len(roots), err)
			}
			next := roots[1]
			if b.RotationStep() != AnchorBundled || b.Issuer.CertPEM != oldIssuer || !parse(t, b.Anchor.CertPEM).Equal(old) ||
				next.Subject.CommonName != old.Subject.CommonName || !next.IsCA || !next.NotAfter.After(opts.Now.Add(AnchorLifetime-time.Hour)) {
				t.Fatalf("bundle: step %q, issuer or anchor changed, or new anchor %s (CA %v) until %s", b.RotationStep(), next.Subject.CommonName, next.IsCA, next.NotAfter)
			}
			if err := b.BundleAnchor(opts); err == nil {
				t.Error("a second bundle step was taken")
			}
			if err := b.DropOldAnchor(); err == nil {
				t.Error("the old anchor was dropped before the issuer was re-signed")
			}

			at := opts.Now.Add(time.Hour)
			o := opts
			o.Now = at
			if err := b.ResignIssuer(o); err != nil {
				t.Fatal(err)
			}
			b = roundTrip(t, b)
			if b.RotationStep() != AnchorResigned || !b.Rotation.ResignedAt.Equal(at) || !parse(t, b.Anchor.CertPEM).Equal(next) ||
				len(mustCerts(t, b.TrustAnchorsPEM)) != 2 {
				t.Fatalf("re-sign: step %q at %s, anchor %s", b.RotationStep(), b.Rotation.ResignedAt, parse(t, b.Anchor.CertPEM).Subject)
			}
			if cn := parse(t, b.Issuer.CertPEM).Subject.CommonName; cn != parse(t, oldIssuer).Subject.CommonName {
				t.Errorf("re-sign: issuer subject %q changed", cn)
			}
			verifies(t, b.Issuer.CertPEM, next)

			if err := b.DropOldAnchor(); err != nil {
				t.Fatal(err)
			}
			b = roundTrip(t, b)
			if roots := mustCerts(t, b.TrustAnchorsPEM); b.RotationStep() != "" || len(roots) != 1 || !roots[0].Equal(next) {
				t.Fatalf("drop: step %q, %d trust roots", b.RotationStep(), len(roots))
			}
			if strings.Contains(b.TrustAnchorsPEM, "PRIVATE KEY") {
				t.Error("the trust roots hold a private key")
			}
		})
	}
}

func mustCerts(t *testing.T, p string) []*x509.Certificate {
	t.Helper()
	cs, err := parseCerts(p)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestAnchorRotationData: a Secret written before rotation existed reads
// as not rotating; a broken state is an error that names the key.
func TestAnchorRotationData(t *testing.T) {
	b, err := Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	d := b.Data()
	for _, k := range []string{fileRotation, fileNextAnchorCrt, fileNextAnchorKey} {
		if _, ok := d[k]; ok {
			t.Errorf("a bundle that is not rotating stores %s", k)
		}
	}
	tests := []struct {
		name  string
		state string
		next  bool
		err   string
	}{
		{"bundled without the new anchor", `{"step":"bundled"}`, false, "anchor-rotation.json says bundled, but the store lacks next-anchor.crt or next-anchor.key"},
		{"unknown step", `{"step":"halfway"}`, false, `anchor-rotation.json: unknown step "halfway"`},
		{"not JSON", `bundled`, false, "anchor-rotation.json: invalid character 'b' looking for beginning of value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := b.Data()
			d[fileRotation] = []byte(tc.state)
			_, err := FromData(d)
			if err == nil || err.Error() != tc.err {
				t.Errorf("got %v, want %s", err, tc.err)
			}
		})
	}
	adopted := *b
	adopted.Anchor = nil
	if err := adopted.BundleAnchor(opts); !errors.Is(err, ErrNoAnchorKey) {
		t.Errorf("an adopted anchor was bundled: %v", err)
	}
}
