package certs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Files of a certificate directory. Keys are written 0600.
const (
	fileAnchorCrt = "trust-anchor.crt"
	fileAnchorKey = "trust-anchor.key"
	fileIssuerCrt = "issuer.crt"
	fileIssuerKey = "issuer.key"
	webhookSuffix = ".webhook"
)

// LoadOrCreate returns the bundle kept in dir, generating and writing one
// only when dir holds none, so that re-rendering never rotates anything.
// created reports whether it generated.
func LoadOrCreate(dir string, o Options) (b *Bundle, created bool, err error) {
	b, err = Load(dir)
	if err == nil {
		return b, false, b.check(o)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if b, err = Generate(o); err != nil {
		return nil, false, err
	}
	return b, true, b.Write(dir)
}

// check fails when a kept bundle lacks a webhook the mesh now needs.
func (b *Bundle) check(o Options) error {
	for _, svc := range o.WebhookServices {
		if _, ok := b.Webhooks[svc]; !ok {
			return fmt.Errorf("certificate directory has no pair for webhook %s; move the directory away to generate a complete one", svc)
		}
	}
	return nil
}

// Load reads a bundle written by Write. A missing directory or anchor is
// fs.ErrNotExist.
func Load(dir string) (*Bundle, error) {
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		return string(b), err
	}
	b := &Bundle{Anchor: &KeyPair{}, Issuer: &KeyPair{}, Webhooks: map[string]KeyPair{}}
	var err error
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{fileAnchorCrt, &b.Anchor.CertPEM}, {fileAnchorKey, &b.Anchor.KeyPEM},
		{fileIssuerCrt, &b.Issuer.CertPEM}, {fileIssuerKey, &b.Issuer.KeyPEM},
	} {
		if *f.dst, err = read(f.name); err != nil {
			return nil, err
		}
	}
	b.TrustAnchorsPEM = b.Anchor.CertPEM
	crts, err := filepath.Glob(filepath.Join(dir, "*"+webhookSuffix+".crt"))
	if err != nil {
		return nil, err
	}
	sort.Strings(crts)
	for _, c := range crts {
		svc := strings.TrimSuffix(filepath.Base(c), webhookSuffix+".crt")
		crt, err := read(svc + webhookSuffix + ".crt")
		if err != nil {
			return nil, err
		}
		key, err := read(svc + webhookSuffix + ".key")
		if err != nil {
			return nil, err
		}
		b.Webhooks[svc] = KeyPair{CertPEM: crt, KeyPEM: key}
	}
	return b, nil
}

type certFile struct {
	name, data string
	mode       os.FileMode
}

// Write stores the bundle in dir (created 0700), keys 0600.
func (b *Bundle) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	files := []certFile{
		{fileAnchorCrt, b.Anchor.CertPEM, 0o644}, {fileAnchorKey, b.Anchor.KeyPEM, 0o600},
		{fileIssuerCrt, b.Issuer.CertPEM, 0o644}, {fileIssuerKey, b.Issuer.KeyPEM, 0o600},
	}
	for svc, kp := range b.Webhooks {
		files = append(files,
			certFile{svc + webhookSuffix + ".crt", kp.CertPEM, 0o644},
			certFile{svc + webhookSuffix + ".key", kp.KeyPEM, 0o600})
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.data), f.mode); err != nil {
			return err
		}
	}
	return nil
}
