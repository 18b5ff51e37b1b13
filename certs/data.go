package certs

import (
	"fmt"
	"sort"
	"strings"
)

// Data returns the bundle as named files, the form kept in a --certs-dir
// and in meshctl's Secret in the cluster.
func (b *Bundle) Data() map[string][]byte {
	d := map[string][]byte{
		fileAnchorCrt: []byte(b.Anchor.CertPEM), fileAnchorKey: []byte(b.Anchor.KeyPEM),
		fileIssuerCrt: []byte(b.Issuer.CertPEM), fileIssuerKey: []byte(b.Issuer.KeyPEM),
	}
	for svc, kp := range b.Webhooks {
		d[svc+webhookSuffix+".crt"] = []byte(kp.CertPEM)
		d[svc+webhookSuffix+".key"] = []byte(kp.KeyPEM)
	}
	return d
}

// FromData reads a bundle written by Data.
func FromData(d map[string][]byte) (*Bundle, error) {
	b := &Bundle{Anchor: &KeyPair{}, Issuer: &KeyPair{}, Webhooks: map[string]KeyPair{}}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{fileAnchorCrt, &b.Anchor.CertPEM}, {fileAnchorKey, &b.Anchor.KeyPEM},
		{fileIssuerCrt, &b.Issuer.CertPEM}, {fileIssuerKey, &b.Issuer.KeyPEM},
	} {
		v, ok := d[f.name]
		if !ok || len(v) == 0 {
			return nil, fmt.Errorf("certificate store lacks %s", f.name)
		}
		*f.dst = string(v)
	}
	b.TrustAnchorsPEM = b.Anchor.CertPEM
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

// Check fails when a kept bundle lacks a webhook the mesh now needs.
func (b *Bundle) Check(o Options) error { return b.check(o) }
