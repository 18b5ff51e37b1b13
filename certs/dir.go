package certs

import (
	"errors"
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
// only when dir holds none, so that re-rendering never rotates anything. A
// kept bundle that lacks a webhook the mesh now has (viz turned on) gets a
// pair for it, written beside the others; nothing it holds is replaced.
// created reports whether it generated the whole bundle.
func LoadOrCreate(dir string, o Options) (b *Bundle, created bool, err error) {
	b, err = Load(dir)
	if err == nil {
		added, err := b.GenerateWebhooks(o)
		if err != nil {
			return nil, false, err
		}
		for _, svc := range added {
			if err := b.writeWebhook(dir, svc); err != nil {
				return nil, false, err
			}
		}
		return b, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if b, err = Generate(o); err != nil {
		return nil, false, err
	}
	return b, true, b.Write(dir)
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
	for svc := range b.Webhooks {
		files = append(files, b.webhookFiles(svc)...)
	}
	return writeFiles(dir, files)
}

// writeWebhook adds the pair of one webhook to dir.
func (b *Bundle) writeWebhook(dir, svc string) error {
	return writeFiles(dir, b.webhookFiles(svc))
}

func (b *Bundle) webhookFiles(svc string) []certFile {
	kp := b.Webhooks[svc]
	return []certFile{
		{svc + webhookSuffix + ".crt", kp.CertPEM, 0o644},
		{svc + webhookSuffix + ".key", kp.KeyPEM, 0o600},
	}
}

func writeFiles(dir string, files []certFile) error {
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.data), f.mode); err != nil {
			return err
		}
	}
	return nil
}
