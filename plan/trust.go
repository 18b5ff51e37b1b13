package plan

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/schema"
)

// What a change of trust means for running pods; these lines come first in
// a diff, because they are the changes that can break mTLS.
const (
	anchorChangeMeaning = "trust anchor changes: meshed pods keep the old anchor until they restart; mTLS between old and new pods fails"
	issuerChangeMeaning = "issuer changes: the identity controller loads the new issuer, and workloads get certificates from it as theirs renew (within the issuance lifetime); nothing breaks as long as the new issuer chains to an anchor the pods trust"
)

// trustMeanings reads changes to the trust anchor and the issuer: in the
// diffed objects (a cluster diff, which holds them), and in mesh.cue's
// identity settings (an offline diff, whose renders leave them out).
func trustMeanings(old, new *schema.Mesh, d *apply.DiffResult) []string {
	anchor, issuer := false, false
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
		case o.Kind == "Secret" && o.Name == issuerName:
			// Secret values are masked; a changed one is marked as such.
			b, _, _ := unstructured.NestedStringMap(o.Before(), "data")
			a, _, _ := unstructured.NestedStringMap(o.After(), "data")
			issuer = issuer || !reflect.DeepEqual(a, b)
		}
	}
	if old != nil {
		o, n := old.ControlPlane.Identity, new.ControlPlane.Identity
		anchor = anchor || !reflect.DeepEqual(o.TrustAnchor, n.TrustAnchor)
		issuer = issuer || !reflect.DeepEqual(o.Issuer, n.Issuer)
	}
	var out []string
	if line := issuerRotation(d); line != "" && !anchor {
		out = append(out, line)
	}
	if anchor {
		out = append(out, anchorChangeMeaning)
	}
	if issuer {
		out = append(out, issuerChangeMeaning)
	}
	return out
}

// issuerRotation reads a scheduled issuer rotation in a cluster diff:
// linkerd-config, which holds the issuer's certificate unmasked, changes
// from one issuer to another signed by the same, unchanged anchors. It
// returns "" for any other change.
func issuerRotation(d *apply.DiffResult) string {
	for i := range d.Objects {
		o := &d.Objects[i]
		if o.Action != apply.Configured || o.Namespace != "linkerd" || o.Kind != "ConfigMap" || o.Name != "linkerd-config" {
			continue
		}
		oldAnchors, oldIssuer := configTrust(o.Before())
		newAnchors, newIssuer := configTrust(o.After())
		if oldIssuer == nil || newIssuer == nil || oldAnchors != newAnchors || oldIssuer.Equal(newIssuer) ||
			oldIssuer.Subject.CommonName != newIssuer.Subject.CommonName {
			return ""
		}
		for rest := []byte(newAnchors); ; {
			var block *pem.Block
			if block, rest = pem.Decode(rest); block == nil {
				return ""
			}
			a, err := x509.ParseCertificate(block.Bytes)
			if err == nil && oldIssuer.CheckSignatureFrom(a) == nil && newIssuer.CheckSignatureFrom(a) == nil {
				return fmt.Sprintf("scheduled issuer rotation: the issuer %s expiring %s is re-signed by the same trust anchor %s (the new one expires %s); workloads keep working, since the anchor does not change",
					newIssuer.Subject.CommonName, stamp(oldIssuer.NotAfter), a.Subject.CommonName, stamp(newIssuer.NotAfter))
			}
		}
	}
	return ""
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
