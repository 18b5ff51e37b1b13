// Package certs creates and stores the mesh's certificates: the identity
// trust anchor, the issuer it signs, and the webhooks' serving pairs. It
// knows nothing of Kubernetes; build keeps a Bundle in a directory, and
// apply keeps one in the cluster.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"
)

// KeyPair is a PEM certificate and its PEM private key.
type KeyPair struct {
	CertPEM string
	KeyPEM  string
}

// Bundle is the certificate material of one mesh.
type Bundle struct {
	// TrustAnchorsPEM is the public trust-anchor bundle.
	TrustAnchorsPEM string
	// Anchor is the anchor's own pair; present only when meshctl made it.
	Anchor *KeyPair
	// Issuer signs workload certificates (scheme linkerd.io/tls).
	Issuer *KeyPair
	// Webhooks holds each webhook Service's serving pair, by Service name.
	Webhooks map[string]KeyPair
	// Rotation is the trust-anchor rotation under way; nil when none.
	Rotation *AnchorRotation
}

// Lifetimes of generated certificates.
const (
	AnchorLifetime  = 10 * 365 * 24 * time.Hour
	IssuerLifetime  = 365 * 24 * time.Hour
	WebhookLifetime = 365 * 24 * time.Hour
)

// Options say what to generate.
type Options struct {
	// ControlPlaneNamespace and TrustDomain name the identity certificates.
	ControlPlaneNamespace string
	TrustDomain           string
	// WebhookServices are the Services that the API server calls over
	// TLS (admission webhooks, aggregated APIs): a name in
	// ControlPlaneNamespace, or "name.namespace" for a Service elsewhere.
	WebhookServices []string
	Now             time.Time
	Rand            io.Reader
	// AnchorLifetime, IssuerLifetime and WebhookLifetime override the
	// constants of the same names when set (tests make short-lived
	// certificates to stand in for time passing).
	AnchorLifetime, IssuerLifetime, WebhookLifetime time.Duration
}

// lifetime is d, or def when d is unset.
func lifetime(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// issuerCN is the subject of the issuer meshctl signs.
func issuerCN(o Options) string {
	return fmt.Sprintf("identity.%s.%s", o.ControlPlaneNamespace, o.TrustDomain)
}

// Generate creates a fresh anchor, an issuer signed by it, and a
// self-signed serving pair per webhook Service.
func Generate(o Options) (*Bundle, error) {
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	anchor, anchorKey, err := newCert(o, certSpec{
		cn: anchorCN(o), ca: true, lifetime: lifetime(o.AnchorLifetime, AnchorLifetime),
	}, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("trust anchor: %w", err)
	}
	issuer, issuerKey, err := newCert(o, certSpec{
		cn: issuerCN(o), ca: true, lifetime: lifetime(o.IssuerLifetime, IssuerLifetime),
	}, anchor, anchorKey)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	b := &Bundle{
		TrustAnchorsPEM: encodeCert(anchor),
		Anchor:          &KeyPair{CertPEM: encodeCert(anchor), KeyPEM: encodeKey(anchorKey)},
		Issuer:          &KeyPair{CertPEM: encodeCert(issuer), KeyPEM: encodeKey(issuerKey)},
		Webhooks:        map[string]KeyPair{},
	}
	for _, svc := range o.WebhookServices {
		kp, err := newWebhook(o, svc)
		if err != nil {
			return nil, err
		}
		b.Webhooks[svc] = kp
	}
	return b, nil
}

// webhookHost is the DNS name the API server dials for svc: a Service in
// the control plane's namespace, or one qualified "name.namespace".
func webhookHost(o Options, svc string) string {
	if strings.Contains(svc, ".") {
		return svc + ".svc"
	}
	return fmt.Sprintf("%s.%s.svc", svc, o.ControlPlaneNamespace)
}

// newWebhook makes a self-signed serving pair for the webhook Service svc.
func newWebhook(o Options, svc string) (KeyPair, error) {
	host := webhookHost(o, svc)
	c, k, err := newCert(o, certSpec{cn: host, dns: []string{host}, lifetime: lifetime(o.WebhookLifetime, WebhookLifetime)}, nil, nil)
	if err != nil {
		return KeyPair{}, fmt.Errorf("webhook %s: %w", svc, err)
	}
	return KeyPair{CertPEM: encodeCert(c), KeyPEM: encodeKey(k)}, nil
}

// backdate is how far before its making a certificate is valid, to
// tolerate clock skew between nodes.
const backdate = 5 * time.Minute

type certSpec struct {
	cn       string
	dns      []string
	ca       bool
	lifetime time.Duration
}

// newCert makes an ECDSA P-256 certificate, signed by parent or self-signed.
// A certificate signed by parent never outlives it.
func newCert(o Options, s certSpec, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), o.Rand)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(o.Rand, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: s.cn},
		DNSNames:              s.dns,
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(s.lifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	if s.ca {
		tmpl.IsCA = true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	} else if tmpl.NotAfter.After(parent.NotAfter) {
		tmpl.NotAfter = parent.NotAfter
	}
	der, err := x509.CreateCertificate(o.Rand, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func encodeCert(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func encodeKey(k *ecdsa.PrivateKey) string {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		panic(err) // a P-256 key always marshals
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
}
