package certs

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// Adopt makes a bundle of certificates that another installer made (the
// linkerd CLI, Helm): the trust-anchor bundle and the issuer exactly as
// they are, and the webhook pairs that were found. It checks what a mesh
// needs of them, and says what is wrong otherwise: the issuer's key must
// match its certificate, the issuer must be a CA, and it must chain to one
// of the anchors (expiry aside: an expired install is still adopted as it
// is, and its expiry reported elsewhere). meshctl holds no key for an
// adopted anchor. Webhook pairs that do not parse or match are left out,
// for the caller to generate.
func Adopt(anchorsPEM string, issuer KeyPair, webhooks map[string]KeyPair) (*Bundle, error) {
	anchors, err := parseCerts(anchorsPEM)
	if err != nil {
		return nil, fmt.Errorf("the trust anchors: %w", err)
	}
	cert, err := parsePair(issuer)
	if err != nil {
		return nil, fmt.Errorf("the issuer: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("the issuer certificate is not a CA, so it cannot sign workload certificates")
	}
	roots := x509.NewCertPool()
	for _, a := range anchors {
		roots.AddCert(a)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: cert.NotBefore.Add(time.Second), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("the issuer is not signed by any of the %d trust anchors: %w", len(anchors), err)
	}
	b := &Bundle{TrustAnchorsPEM: anchorsPEM, Issuer: &KeyPair{CertPEM: issuer.CertPEM, KeyPEM: issuer.KeyPEM}, Webhooks: map[string]KeyPair{}}
	for svc, kp := range webhooks {
		if _, err := parsePair(kp); err == nil {
			b.Webhooks[svc] = kp
		}
	}
	return b, nil
}

// GenerateWebhooks generates serving pairs for the webhook Services of o
// that b lacks (a mesh that grew one, such as viz's tap), leaving the pairs
// it has alone. added names the Services it generated pairs for.
func (b *Bundle) GenerateWebhooks(o Options) (added []string, err error) {
	o = o.defaults()
	if b.Webhooks == nil {
		b.Webhooks = map[string]KeyPair{}
	}
	for _, svc := range o.WebhookServices {
		if _, ok := b.Webhooks[svc]; ok {
			continue
		}
		kp, err := newWebhook(o, svc)
		if err != nil {
			return added, err
		}
		b.Webhooks[svc] = kp
		added = append(added, svc)
	}
	return added, nil
}

// parseCerts reads every CERTIFICATE block of a PEM bundle.
func parseCerts(p string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(p)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}

// parsePair parses a certificate and checks that the key is its own.
func parsePair(kp KeyPair) (*x509.Certificate, error) {
	c, _, err := parseSigner(kp)
	return c, err
}

// parseSigner parses a certificate and its key, checking that the key is
// the certificate's own.
func parseSigner(kp KeyPair) (*x509.Certificate, crypto.Signer, error) {
	certs, err := parseCerts(kp.CertPEM)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode([]byte(kp.KeyPEM))
	if block == nil {
		return nil, nil, errors.New("no PEM private key found")
	}
	var key crypto.PrivateKey
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("the private key does not parse: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("unsupported private key type")
	}
	eq, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(certs[0].PublicKey) {
		return nil, nil, errors.New("the private key does not match the certificate")
	}
	return certs[0], signer, nil
}
