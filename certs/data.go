package certs

import (
	"fmt"
	"sort"
	"strings"
)

// fileAnchors holds the trust-anchor bundle: one or more certificates,
// which is all meshctl knows of an anchor it adopted (it holds no key).
const fileAnchors = "trust-anchors.pem"

// Data returns the bundle as named files, the form kept in meshctl's Secret
// in the cluster. The anchor's own pair is there only when meshctl made it.
func (b *Bundle) Data() map[string][]byte {
	d := map[string][]byte{
		fileAnchors:   []byte(b.TrustAnchorsPEM),
		fileIssuerCrt: []byte(b.Issuer.CertPEM), fileIssuerKey: []byte(b.Issuer.KeyPEM),
	}
	if b.Anchor != nil {
		d[fileAnchorCrt], d[fileAnchorKey] = []byte(b.Anchor.CertPEM), []byte(b.Anchor.KeyPEM)
	}
	for svc, kp := range b.Webhooks {
		d[svc+webhookSuffix+".crt"] = []byte(kp.CertPEM)
		d[svc+webhookSuffix+".key"] = []byte(kp.KeyPEM)
	}
	b.anchorData(d)
	return d
}

// FromData reads a bundle written by Data (or by a meshctl that kept only
// the anchor's pair, which is then the whole bundle). A bundle without
// rotation state is not rotating.
func FromData(d map[string][]byte) (*Bundle, error) {
	b := &Bundle{Issuer: &KeyPair{}, Webhooks: map[string]KeyPair{}}
	for _, f := range []struct {
		name string
		dst  *string
	}{{fileIssuerCrt, &b.Issuer.CertPEM}, {fileIssuerKey, &b.Issuer.KeyPEM}} {
		v, ok := d[f.name]
		if !ok || len(v) == 0 {
			return nil, fmt.Errorf("certificate store lacks %s", f.name)
		}
		*f.dst = string(v)
	}
	if crt, key := d[fileAnchorCrt], d[fileAnchorKey]; len(crt) > 0 && len(key) > 0 {
		b.Anchor = &KeyPair{CertPEM: string(crt), KeyPEM: string(key)}
	}
	switch {
	case len(d[fileAnchors]) > 0:
		b.TrustAnchorsPEM = string(d[fileAnchors])
	case b.Anchor != nil:
		b.TrustAnchorsPEM = b.Anchor.CertPEM
	default:
		return nil, fmt.Errorf("certificate store lacks %s", fileAnchors)
	}
	r, err := anchorFromData(d)
	if err != nil {
		return nil, err
	}
	b.Rotation = r
	var names []string
	for name := range d {
		if strings.HasSuffix(name, webhookSuffix+".crt") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		svc := strings.TrimSuffix(name, webhookSuffix+".crt")
		key, ok := d[svc+webhookSuffix+".key"]
		if !ok {
			return nil, fmt.Errorf("certificate store lacks %s%s.key", svc, webhookSuffix)
		}
		b.Webhooks[svc] = KeyPair{CertPEM: string(d[name]), KeyPEM: string(key)}
	}
	return b, nil
}
