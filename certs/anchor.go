package certs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// AnchorStep is how far a trust-anchor rotation has gone (issue 13 §3).
type AnchorStep string

// The states of a trust-anchor rotation, in order. A bundle that is not
// rotating has the empty step.
const (
	// AnchorBundled: the trust roots hold the old and the new anchor; the
	// issuer is still signed by the old one, whose pair is still Anchor.
	AnchorBundled AnchorStep = "bundled"
	// AnchorResigned: the issuer is signed by the new anchor, now Anchor;
	// the trust roots still hold both.
	AnchorResigned AnchorStep = "resigned"
)

// AnchorRotation is the state of a trust-anchor rotation in progress.
type AnchorRotation struct {
	Step AnchorStep `json:"step"`
	// Next is the new anchor's pair while the issuer is still signed by
	// the old one (AnchorBundled).
	Next *KeyPair `json:"-"`
	// ResignedAt is when the issuer was re-signed by the new anchor.
	ResignedAt time.Time `json:"resignedAt,omitzero"`
}

// Files of an anchor rotation in meshctl's Secret; absent when not rotating.
const (
	fileRotation      = "anchor-rotation.json"
	fileNextAnchorCrt = "next-anchor.crt"
	fileNextAnchorKey = "next-anchor.key"
)

// anchorData adds the rotation state of b to d.
func (b *Bundle) anchorData(d map[string][]byte) {
	r := b.Rotation
	if r == nil || r.Step == "" {
		return
	}
	state, err := json.Marshal(r)
	if err != nil {
		panic(err) // a string and a time always marshal
	}
	d[fileRotation] = state
	if r.Next != nil {
		d[fileNextAnchorCrt], d[fileNextAnchorKey] = []byte(r.Next.CertPEM), []byte(r.Next.KeyPEM)
	}
}

// anchorFromData reads the rotation state Data wrote; none is "not
// rotating".
func anchorFromData(d map[string][]byte) (*AnchorRotation, error) {
	state, ok := d[fileRotation]
	if !ok || len(state) == 0 {
		return nil, nil
	}
	r := &AnchorRotation{}
	if err := json.Unmarshal(state, r); err != nil {
		return nil, fmt.Errorf("%s: %w", fileRotation, err)
	}
	switch r.Step {
	case AnchorBundled:
		crt, key := d[fileNextAnchorCrt], d[fileNextAnchorKey]
		if len(crt) == 0 || len(key) == 0 {
			return nil, fmt.Errorf("%s says %s, but the store lacks %s or %s", fileRotation, r.Step, fileNextAnchorCrt, fileNextAnchorKey)
		}
		r.Next = &KeyPair{CertPEM: string(crt), KeyPEM: string(key)}
	case AnchorResigned:
	default:
		return nil, fmt.Errorf("%s: unknown step %q", fileRotation, r.Step)
	}
	return r, nil
}

// RotationStep is the step of b's trust-anchor rotation, "" when none.
func (b *Bundle) RotationStep() AnchorStep {
	if b.Rotation == nil {
		return ""
	}
	return b.Rotation.Step
}

// ErrNoAnchorKey is returned when meshctl holds no key for the anchor, so
// it cannot rotate it.
var ErrNoAnchorKey = errors.New("meshctl holds no key for the trust anchor")

// BundleAnchor is the first step of a trust-anchor rotation: it generates
// a new anchor and adds it to the trust roots, after the old ones. The
// issuer and Anchor are unchanged. The old anchor may have expired.
func (b *Bundle) BundleAnchor(o Options) error {
	if b.Anchor == nil {
		return ErrNoAnchorKey
	}
	if s := b.RotationStep(); s != "" {
		return fmt.Errorf("a trust-anchor rotation is already under way (%s)", s)
	}
	o = o.defaults()
	c, k, err := newCert(o, certSpec{cn: anchorCN(o), ca: true, lifetime: lifetime(o.AnchorLifetime, AnchorLifetime)}, nil, nil)
	if err != nil {
		return fmt.Errorf("trust anchor: %w", err)
	}
	next := &KeyPair{CertPEM: encodeCert(c), KeyPEM: encodeKey(k)}
	roots := b.TrustAnchorsPEM
	if roots != "" && !strings.HasSuffix(roots, "\n") {
		roots += "\n"
	}
	b.TrustAnchorsPEM = roots + next.CertPEM
	b.Rotation = &AnchorRotation{Step: AnchorBundled, Next: next}
	return nil
}

// ResignIssuer is the re-sign step: the issuer is signed by the new anchor
// (with the subject of a generated issuer), which becomes Anchor; the
// trust roots keep both anchors. It records o.Now as ResignedAt.
func (b *Bundle) ResignIssuer(o Options) error {
	if b.RotationStep() != AnchorBundled {
		return fmt.Errorf("the new trust anchor is not in the trust roots yet")
	}
	o = o.defaults()
	kp, err := Reissue(*b.Rotation.Next, o)
	if err != nil {
		return err
	}
	b.Issuer, b.Anchor = &kp, b.Rotation.Next
	b.Rotation = &AnchorRotation{Step: AnchorResigned, ResignedAt: o.Now.UTC()}
	return nil
}

// DropOldAnchor is the last step: the trust roots hold the new anchor
// only, and the rotation is over.
func (b *Bundle) DropOldAnchor() error {
	if b.RotationStep() != AnchorResigned {
		return fmt.Errorf("the issuer is not signed by the new trust anchor yet")
	}
	b.TrustAnchorsPEM, b.Rotation = b.Anchor.CertPEM, nil
	return nil
}

// anchorCN is the subject of a generated trust anchor.
func anchorCN(o Options) string {
	return fmt.Sprintf("root.%s.%s", o.ControlPlaneNamespace, o.TrustDomain)
}
