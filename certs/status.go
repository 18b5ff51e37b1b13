package certs

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"sort"
	"time"
)

// Kind is what a certificate is for.
type Kind string

// The kinds of certificate a mesh has.
const (
	KindTrustAnchor Kind = "trust-anchor"
	KindIssuer      Kind = "issuer"
	KindWebhook     Kind = "webhook"
)

// Status is one certificate's expiry, and whether meshctl can rotate it.
type Status struct {
	Kind Kind `json:"kind"`
	// Name is the webhook Service; empty for the anchors and the issuer.
	Name     string    `json:"name,omitempty"`
	Subject  string    `json:"subject"`
	NotAfter time.Time `json:"notAfter"`
	// TimeLeft is NotAfter less the time of the reading; negative once
	// expired.
	TimeLeft time.Duration `json:"-"`
	// CanRotate: meshctl holds the key that signs it (the anchor's, for
	// the issuer; its own, for an anchor or a self-signed webhook pair).
	CanRotate bool `json:"canRotate"`
	// KeyCluster, in a fleet that shares one generated anchor, is the
	// cluster whose store keeps the anchor's key (and which signs every
	// member's issuer).
	KeyCluster string `json:"keyCluster,omitempty"`
	// Expiring: within WarnBefore of expiry, or expired.
	Expiring bool `json:"expiring"`
	// Err says why the certificate could not be read; the other fields
	// but Kind and Name are then empty.
	Err string `json:"error,omitempty"`
}

// Status reads each certificate of b at now: each trust anchor of the
// bundle, the issuer, and each webhook serving pair, in that order. b's
// Issuer may lack its key (an issuer meshctl only reads).
func (b *Bundle) Status(now time.Time) []Status {
	var out []Status
	var held *x509.Certificate // the anchor whose key meshctl holds
	if b.Anchor != nil {
		if _, _, err := parseSigner(*b.Anchor); err == nil {
			held, _ = firstCert(b.Anchor.CertPEM)
		}
	}
	anchors, err := parseCerts(b.TrustAnchorsPEM)
	if err != nil && b.TrustAnchorsPEM != "" {
		out = append(out, Status{Kind: KindTrustAnchor, Err: err.Error()})
	}
	var next *x509.Certificate // a new anchor, mid-rotation: meshctl holds its key too
	if b.Rotation != nil && b.Rotation.Next != nil {
		if _, _, err := parseSigner(*b.Rotation.Next); err == nil {
			next, _ = firstCert(b.Rotation.Next.CertPEM)
		}
	}
	for _, a := range anchors {
		held := (held != nil && bytes.Equal(a.Raw, held.Raw)) || (next != nil && bytes.Equal(a.Raw, next.Raw))
		out = append(out, row(KindTrustAnchor, "", a, now, held))
	}
	if b.Issuer != nil && b.Issuer.CertPEM != "" {
		if c, err := firstCert(b.Issuer.CertPEM); err != nil {
			out = append(out, Status{Kind: KindIssuer, Err: err.Error()})
		} else {
			out = append(out, row(KindIssuer, "", c, now, held != nil && c.CheckSignatureFrom(held) == nil))
		}
	}
	svcs := make([]string, 0, len(b.Webhooks))
	for svc := range b.Webhooks {
		svcs = append(svcs, svc)
	}
	sort.Strings(svcs)
	for _, svc := range svcs {
		c, _, err := parseSigner(b.Webhooks[svc])
		if err != nil {
			out = append(out, Status{Kind: KindWebhook, Name: svc, Err: err.Error()})
			continue
		}
		selfSigned := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
		out = append(out, row(KindWebhook, svc, c, now, selfSigned))
	}
	return out
}

func row(k Kind, name string, c *x509.Certificate, now time.Time, canRotate bool) Status {
	left := c.NotAfter.Sub(now)
	return Status{Kind: k, Name: name, Subject: c.Subject.CommonName, NotAfter: c.NotAfter, TimeLeft: left,
		CanRotate: canRotate, Expiring: left <= WarnBefore}
}

// firstCert parses the first certificate of a PEM bundle.
func firstCert(p string) (*x509.Certificate, error) {
	cs, err := parseCerts(p)
	if err != nil {
		return nil, err
	}
	return cs[0], nil
}

// FormatLeft prints a time left the way people read it: whole days from
// two days on, else to the second.
func FormatLeft(d time.Duration) string {
	if d >= 48*time.Hour || d <= -48*time.Hour {
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
	return d.Round(time.Second).String()
}
