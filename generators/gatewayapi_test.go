package generators

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// gatewayCRDsOf renders a mesh with installGatewayAPI and returns its
// Gateway API CRDs by name.
func gatewayCRDsOf(t *testing.T) map[string]*apiextv1.CustomResourceDefinition {
	t.Helper()
	objs := render(t, "linkerd: installGatewayAPI: true", Inputs{})
	out := map[string]*apiextv1.CustomResourceDefinition{}
	for _, o := range objs {
		if o.Object.GetKind() != "CustomResourceDefinition" || !strings.HasSuffix(o.Object.GetName(), "."+GatewayAPIGroup) {
			continue
		}
		c := &apiextv1.CustomResourceDefinition{}
		find(t, objs, o.ID(), c)
		out[c.Name] = c
	}
	return out
}

// TestGatewayAPICRDsMatchUpstream compares the rendered Gateway API CRDs
// with Linkerd 2.19's, version by version and row by row (paths, types,
// required flags and constraints, CEL rule counts among them), and checks
// the metadata the API server and other controllers rely on.
func TestGatewayAPICRDsMatchUpstream(t *testing.T) {
	got := gatewayCRDsOf(t)
	if d := cmp.Diff(GatewayAPICRDs, slices.Sorted(maps.Keys(got))); d != "" {
		t.Fatalf("Gateway API CRDs (-want +got):\n%s", d)
	}
	versions := map[string]apiextv1.CustomResourceDefinitionVersion{}
	for _, c := range got {
		for _, v := range c.Spec.Versions {
			versions[c.Name+" "+v.Name] = v
		}
	}
	matchFacts(t, "."+GatewayAPIGroup, 6, versions)

	for name, c := range got {
		wantAnn := map[string]string{
			// Without it the API server rejects a CRD in a *.k8s.io group
			// (issue 13).
			"api-approved.kubernetes.io":      "https://github.com/kubernetes-sigs/gateway-api/pull/2997",
			AnnotationGatewayAPIBundleVersion: "v1.1.1",
			AnnotationGatewayAPIChannel:       "experimental",
			"helm.sh/resource-policy":         "keep",
			"meshctl.io/prune":                "disabled",
		}
		wantLabels := map[string]string{
			"helm.sh/chart":                "linkerd-crds-0.0.0-undefined",
			"linkerd.io/control-plane-ns":  "linkerd",
			"app.kubernetes.io/managed-by": "meshctl",
		}
		if d := cmp.Diff(wantAnn, c.Annotations); d != "" {
			t.Errorf("%s annotations (-want +got):\n%s", name, d)
		}
		if d := cmp.Diff(wantLabels, c.Labels); d != "" {
			t.Errorf("%s labels (-want +got):\n%s", name, d)
		}
		if c.Spec.Scope != apiextv1.NamespaceScoped || !slices.Equal(c.Spec.Names.Categories, []string{"gateway-api"}) {
			t.Errorf("%s: scope %s, categories %v", name, c.Spec.Scope, c.Spec.Names.Categories)
		}
	}
	// GRPCRoute v1alpha2 is served, deprecated, as the experimental
	// channel has it.
	for _, v := range got["grpcroutes."+GatewayAPIGroup].Spec.Versions {
		if v.Deprecated != (v.Name == "v1alpha2") {
			t.Errorf("grpcroutes %s: deprecated=%v", v.Name, v.Deprecated)
		}
	}
}

// TestGatewayAPICRDsCarryCEL: the CEL rules are the bundle's own, with
// their messages; a few are checked by text, so that a regenerated file
// that lost them (an open schema, say) fails here as well as in the facts.
func TestGatewayAPICRDsCarryCEL(t *testing.T) {
	c := gatewayCRDsOf(t)["httproutes."+GatewayAPIGroup]
	var rules []string
	var walk func(apiextv1.JSONSchemaProps)
	walk = func(n apiextv1.JSONSchemaProps) {
		for _, r := range n.XValidations {
			rules = append(rules, r.Message)
		}
		for _, p := range n.Properties {
			walk(p)
		}
		if n.Items != nil && n.Items.Schema != nil {
			walk(*n.Items.Schema)
		}
	}
	for _, v := range c.Spec.Versions {
		if v.Name == "v1" {
			walk(*v.Schema.OpenAPIV3Schema)
		}
	}
	for _, msg := range []string{
		"sectionName or port must be specified when parentRefs includes 2 or more references to the same parent",
		"must not contain '//' when type one of ['Exact', 'PathPrefix']",
	} {
		if !slices.Contains(rules, msg) {
			t.Errorf("httproutes v1 has no CEL rule %q", msg)
		}
	}
}

// TestGatewayAPICRDsAreCopies: each render gets its own objects, so that a
// caller that edits one render does not change the next.
func TestGatewayAPICRDsAreCopies(t *testing.T) {
	a := gatewayAPICRDs()
	a[0].Object.SetAnnotations(nil)
	b := gatewayAPICRDs()
	if b[0].Object.GetAnnotations()["api-approved.kubernetes.io"] == "" {
		t.Error("a render changed the embedded CRDs")
	}
}
