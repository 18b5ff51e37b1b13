package plan

import (
	"reflect"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

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
	if anchor {
		out = append(out, anchorChangeMeaning)
	}
	if issuer {
		out = append(out, issuerChangeMeaning)
	}
	return out
}
