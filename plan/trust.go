package plan

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"reflect"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/schema"
)

// What a change of trust means for running pods; these lines come first in
// a diff, because they are the changes that can break mTLS.
const (
	anchorChangeMeaning = "trust anchor changes: meshed pods keep the old anchor until they restart; mTLS between old and new pods fails"
	// The steps of `meshctl rotate trust-anchor` that change the trust
	// roots (anchor.go); the re-sign step reads as issuerResign says.
	anchorAddedMeaning   = "trust anchor added: the trust roots now hold the old and the new anchor; pods trust both as they restart"
	anchorDroppedMeaning = "old trust anchor dropped: the trust roots now hold only the new anchor; pods trust only it as they restart, and workloads already get their certificates from the issuer it signed"
	issuerChangeMeaning  = "issuer changes: the identity controller loads the new issuer, and workloads get certificates from it as theirs renew (within the issuance lifetime); nothing breaks as long as the new issuer chains to an anchor the pods trust"
)

// trustMeanings reads changes to the trust anchor and the issuer: in the
// diffed objects (a cluster diff, which holds them), and in mesh.cue's
// identity settings (an offline diff, whose renders leave them out).
func trustMeanings(old, new *schema.Mesh, d *apply.DiffResult) []string {
	anchor, issuer := false, false
	step := "" // the meaning of a rotation step, "" for another change
	for i := range d.Objects {
		o := &d.Objects[i]
		if o.Action != apply.Configured || o.Namespace != "linkerd" {
			continue
		}
		switch {
		case o.Kind == "ConfigMap" && o.Name == trustRootsName:
			b, _, _ := unstructured.NestedString(o.Before(), "data", trustRootsKey)
			a, _, _ := unstructured.NestedString(o.After(), "data", trustRootsKey)
			anchor = anchor || a != b
			if a != b {
				step = anchorStepMeaning(b, a)
			}
		case o.Kind == "Secret" && o.Name == issuerName:
			// Secret values are masked; a changed one is marked as such.
			b, _, _ := unstructured.NestedStringMap(o.Before(), "data")
			a, _, _ := unstructured.NestedStringMap(o.After(), "data")
			issuer = issuer || !reflect.DeepEqual(a, b)
		}
	}
	if old != nil {
		o, n := old.ControlPlane.Identity, new.ControlPlane.Identity
		if !reflect.DeepEqual(o.TrustAnchor, n.TrustAnchor) {
			anchor, step = true, ""
		}
		issuer = issuer || !reflect.DeepEqual(o.Issuer, n.Issuer)
	}
	var out []string
	if line := issuerRotation(d); line != "" && !anchor {
		out = append(out, line)
	}
	if line := issuerResign(d); line != "" && !anchor {
		out = append(out, line)
	}
	switch {
	case anchor && step != "":
		out = append(out, step)
	case anchor:
		out = append(out, anchorChangeMeaning)
	}
	if issuer {
		out = append(out, issuerChangeMeaning)
	}
	return out
}

// issuerSwap finds, in a cluster diff, linkerd-config (which holds the
// issuer's certificate unmasked) changing from one issuer to another under
// the same trust anchors. It returns the anchors that signed the old and the
// new issuer; ok is false for any other change.
func issuerSwap(d *apply.DiffResult) (oldIssuer, newIssuer, from, to *x509.Certificate, ok bool) {
	for i := range d.Objects {
		o := &d.Objects[i]
		if o.Action != apply.Configured || o.Namespace != "linkerd" || o.Kind != "ConfigMap" || o.Name != "linkerd-config" {
			continue
		}
		oldAnchors, oi := configTrust(o.Before())
		newAnchors, ni := configTrust(o.After())
		if oi == nil || ni == nil || oldAnchors != newAnchors || oi.Equal(ni) {
			return nil, nil, nil, nil, false
		}
		for _, a := range pemCerts(newAnchors) {
			if from == nil && oi.CheckSignatureFrom(a) == nil {
				from = a
			}
			if to == nil && ni.CheckSignatureFrom(a) == nil {
				to = a
			}
		}
		return oi, ni, from, to, from != nil && to != nil
	}
	return nil, nil, nil, nil, false
}

// issuerRotation reads a scheduled issuer rotation in a cluster diff: the
// issuer, same subject, re-signed by the anchor that signed the old one.
// It returns "" for any other change.
func issuerRotation(d *apply.DiffResult) string {
	oldIssuer, newIssuer, from, to, ok := issuerSwap(d)
	if !ok || !from.Equal(to) || oldIssuer.Subject.CommonName != newIssuer.Subject.CommonName {
		return ""
	}
	return fmt.Sprintf("scheduled issuer rotation: the issuer %s expiring %s is re-signed by the same trust anchor %s (the new one expires %s); workloads keep working, since the anchor does not change",
		newIssuer.Subject.CommonName, stamp(oldIssuer.NotAfter), to.Subject.CommonName, stamp(newIssuer.NotAfter))
}

// configTrust reads the trust anchors and the issuer certificate from a
// linkerd-config ConfigMap's values.
func configTrust(obj map[string]any) (anchors string, issuer *x509.Certificate) {
	values, _, _ := unstructured.NestedString(obj, "data", "values")
	var v map[string]any
	if yaml.Unmarshal([]byte(values), &v) != nil {
		return "", nil
	}
	anchors, _, _ = unstructured.NestedString(v, "identityTrustAnchorsPEM")
	crt, _, _ := unstructured.NestedString(v, "identity", "issuer", "tls", "crtPEM")
	block, _ := pem.Decode([]byte(crt))
	if block == nil {
		return anchors, nil
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return anchors, nil
	}
	return anchors, c
}

// anchorStepMeaning reads a change of the trust roots from before to
// after: the new anchors added to the old (the bundle step of a rotation),
// or some old ones dropped (its last step). It returns "" for any other
// change, a replacement included.
func anchorStepMeaning(before, after string) string {
	b, a := pemCerts(before), pemCerts(after)
	switch {
	case len(b) == 0 || len(a) == 0:
		return ""
	case len(a) > len(b) && subset(b, a):
		return anchorAddedMeaning
	case len(a) < len(b) && subset(a, b):
		return anchorDroppedMeaning
	}
	return ""
}

// subset: every certificate of small is in big.
func subset(small, big []*x509.Certificate) bool {
	for _, s := range small {
		if !slices.ContainsFunc(big, s.Equal) {
			return false
		}
	}
	return true
}

// pemCerts parses the certificates of a PEM bundle, skipping what does not
// parse.
func pemCerts(p string) []*x509.Certificate {
	var out []*x509.Certificate
	for rest := []byte(p); ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return out
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

// issuerResign reads the re-sign step of a trust-anchor rotation in a
// cluster diff: linkerd-config keeps its trust anchors, and its issuer,
// signed by one of them, is replaced by one signed by another of them. It
// returns "" for any other change.
func issuerResign(d *apply.DiffResult) string {
	_, _, from, to, ok := issuerSwap(d)
	if !ok || from.Equal(to) {
		return ""
	}
	return fmt.Sprintf("issuer re-signed by the new trust anchor (expires %s): the trust roots still hold the old and the new anchor, so pods that restarted onto them trust it; workloads get certificates from the new issuer as theirs renew (within the issuance lifetime), and keep working meanwhile",
		stamp(to.NotAfter))
}
