package certs

import (
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"sort"
	"time"
)

// WarnBefore is how long before expiry a certificate is reported as
// expiring, as `linkerd check` does, and the longest a default rotation
// waits.
const WarnBefore = 60 * 24 * time.Hour

// RotateThreshold is how long before expiry a certificate made to last
// lifetime is rotated: rotateBefore when set (> 0), else a third of the
// lifetime or WarnBefore, whichever is less, so that a 1-year issuer is
// rotated 60 days before it expires and a 10-minute one 3m20s before.
func RotateThreshold(lifetime, rotateBefore time.Duration) time.Duration {
	if rotateBefore > 0 {
		return rotateBefore
	}
	return min(lifetime/3, WarnBefore)
}

// Lifetime is how long c was made to last: its validity, less the
// backdating meshctl gives its certificates for clock skew.
func Lifetime(c *x509.Certificate) time.Duration {
	d := c.NotAfter.Sub(c.NotBefore)
	if d > 2*backdate {
		d -= backdate
	}
	return d
}

// Due reports whether c is to be rotated at now.
func Due(c *x509.Certificate, now time.Time, rotateBefore time.Duration) bool {
	return c.NotAfter.Sub(now) <= RotateThreshold(Lifetime(c), rotateBefore)
}

// Reissue signs a new issuer with anchor, whose key it needs, with the
// subject of a generated issuer. Workloads keep trusting it, since the
// anchor does not change.
func Reissue(anchor KeyPair, o Options) (KeyPair, error) {
	parent, key, err := parseSigner(anchor)
	if err != nil {
		return KeyPair{}, fmt.Errorf("the trust anchor: %w", err)
	}
	if !parent.IsCA {
		return KeyPair{}, fmt.Errorf("the trust anchor is not a CA")
	}
	o = o.defaults()
	c, k, err := newCert(o, certSpec{cn: issuerCN(o), ca: true, lifetime: lifetime(o.IssuerLifetime, IssuerLifetime)}, parent, key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("issuer: %w", err)
	}
	return KeyPair{CertPEM: encodeCert(c), KeyPEM: encodeKey(k)}, nil
}

// Rotation is one certificate that Rotate replaced.
type Rotation struct {
	Kind Kind
	// Cluster, in a fleet, is the member whose issuer the cluster that
	// keeps the fleet anchor's key re-signed; "" for the cluster's own.
	Cluster string `json:"cluster,omitempty"`
	// Name is the webhook Service, or the issuer's subject.
	Name string
	// Expiring is when the replaced certificate expires; NotAfter is when
	// its replacement does.
	Expiring, NotAfter time.Time
}

// Rotate replaces the certificates of b that are due at o.Now by the
// rotateBefore policy: the issuer, re-signed by b's anchor (only when
// issuer is true, and b holds the anchor's key), and each webhook serving
// pair (self-signed, so its caBundle follows). It returns what it replaced,
// issuer first, and changes nothing when nothing is due.
func (b *Bundle) Rotate(o Options, rotateBefore time.Duration, issuer bool) ([]Rotation, error) {
	o = o.defaults()
	var out []Rotation
	if issuer && b.Anchor != nil && b.Issuer != nil {
		old, err := parseCerts(b.Issuer.CertPEM)
		if err != nil {
			return nil, fmt.Errorf("the issuer: %w", err)
		}
		if Due(old[0], o.Now, rotateBefore) {
			kp, err := Reissue(*b.Anchor, o)
			if err != nil {
				return nil, err
			}
			// A new issuer lives no longer than its anchor: when that one
			// would be due at once too (an anchor expired or about to),
			// re-signing gains nothing and would repeat on every run; the
			// anchor itself must be rotated (meshctl rotate trust-anchor).
			if fresh, err := parseCerts(kp.CertPEM); err == nil && !Due(fresh[0], o.Now, rotateBefore) {
				b.Issuer = &kp
				out = append(out, Rotation{Kind: KindIssuer, Name: old[0].Subject.CommonName, Expiring: old[0].NotAfter, NotAfter: notAfter(kp)})
			}
		}
	}
	svcs := make([]string, 0, len(b.Webhooks))
	for svc := range b.Webhooks {
		svcs = append(svcs, svc)
	}
	sort.Strings(svcs)
	for _, svc := range svcs {
		old, err := parseCerts(b.Webhooks[svc].CertPEM)
		if err != nil || !Due(old[0], o.Now, rotateBefore) {
			continue
		}
		kp, err := newWebhook(o, svc)
		if err != nil {
			return nil, err
		}
		b.Webhooks[svc] = kp
		out = append(out, Rotation{Kind: KindWebhook, Name: svc, Expiring: old[0].NotAfter, NotAfter: notAfter(kp)})
	}
	return out, nil
}

// NextDue is the earliest moment Rotate would replace a certificate of b:
// the issuer (when issuer is true and b holds the anchor's key) and the
// webhook serving pairs, by the rotateBefore policy. It is zero when b
// holds nothing Rotate replaces. A reconcile loop sleeps until then.
func (b *Bundle) NextDue(rotateBefore time.Duration, issuer bool) time.Time {
	var next time.Time
	consider := func(pemText string) {
		cs, err := parseCerts(pemText)
		if err != nil || len(cs) == 0 {
			return
		}
		at := cs[0].NotAfter.Add(-RotateThreshold(Lifetime(cs[0]), rotateBefore))
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if issuer && b.Anchor != nil && b.Issuer != nil {
		consider(b.Issuer.CertPEM)
	}
	for _, kp := range b.Webhooks {
		consider(kp.CertPEM)
	}
	return next
}

// defaults fills in Now and Rand.
func (o Options) defaults() Options {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	return o
}

// notAfter is the expiry of a pair newCert just made.
func notAfter(kp KeyPair) time.Time {
	c, err := parseCerts(kp.CertPEM)
	if err != nil {
		return time.Time{}
	}
	return c[0].NotAfter
}
