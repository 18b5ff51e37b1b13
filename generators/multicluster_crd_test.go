package generators

import (
	"encoding/json"
	"testing"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
)

// validateLinks checks that every version's schema is structural, that the
// storage version's keeps every field of the Links meshctl
// renders (with and without a gateway, with placeholders and real values),
// and accepts them; and that it rejects a Link it must reject.
func validateLinks(t *testing.T, c *apiextv1.CustomResourceDefinition) {
	t.Helper()
	var v3 *apiextv1.JSONSchemaProps
	for _, v := range c.Spec.Versions {
		checkStructural(t, v.Name, "", *v.Schema.OpenAPIV3Schema)
		if v.Storage {
			v3 = v.Schema.OpenAPIV3Schema
		}
	}
	// The API server's validator (apiextensions' validation package) pulls
	// in k8s.io/apiserver; kube-openapi's, which it wraps, does not.
	raw, err := json.Marshal(v3)
	if err != nil {
		t.Fatal(err)
	}
	var openAPI spec.Schema
	if err := json.Unmarshal(raw, &openAPI); err != nil {
		t.Fatal(err)
	}
	validator := validate.NewSchemaValidator(&openAPI, nil, "", strfmt.Default)
	src := twoClusters + `links: [{from: "west", to: "east"}, {from: "west", to: "north", gateway: false}]
clusters: north: context: "kind-north"`
	for _, target := range []*LinkTarget{nil, eastTarget} {
		for _, o := range multicluster(load(t, src), Inputs{Cluster: "west", Links: map[string]*LinkTarget{"east": target}}) {
			if o.Object.GetKind() != "Link" {
				continue
			}
			u := runtime.DeepCopyJSON(o.Object.Object)
			for _, f := range prunedFields(*v3, u, "") {
				t.Errorf("%s: the API server would drop %s", o.ID(), f)
			}
			if res := validator.Validate(u); !res.IsValid() {
				t.Errorf("%s rejected: %v", o.ID(), res.Errors)
			}
		}
	}
	bad := map[string]any{"apiVersion": linkVersion, "kind": "Link", "metadata": map[string]any{"name": "x"},
		"spec": map[string]any{"probeSpec": map[string]any{"timeout": "soon"}, "selector": map[string]any{
			"matchExpressions": []any{map[string]any{"key": "k", "operator": "Near"}}}}}
	if res := validator.Validate(bad); len(res.Errors) != 2 {
		t.Errorf("a Link with a bad timeout and operator: %d errors, want 2: %v", len(res.Errors), res.Errors)
	}
}

// checkStructural holds a schema to the rules of a structural schema that
// hand-written nodes can break: every node has a type, except an
// int-or-string, and an object is either closed by its properties or open.
func checkStructural(t *testing.T, version, path string, n apiextv1.JSONSchemaProps) {
	t.Helper()
	if n.Type == "" && !n.XIntOrString {
		t.Errorf("%s %s: no type", version, path)
	}
	if n.Type == "object" && len(n.Properties) == 0 && (n.XPreserveUnknownFields == nil || !*n.XPreserveUnknownFields) && path != ".metadata" {
		t.Errorf("%s %s: an object with neither properties nor x-kubernetes-preserve-unknown-fields", version, path)
	}
	for k, p := range n.Properties {
		checkStructural(t, version, path+"."+k, p)
	}
	if n.Items != nil && n.Items.Schema != nil {
		checkStructural(t, version, path+"[]", *n.Items.Schema)
	}
}

// prunedFields are the paths of v that schema n does not know, which the
// API server would drop from a stored object (its pruning).
func prunedFields(n apiextv1.JSONSchemaProps, v any, path string) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		if n.XPreserveUnknownFields != nil && *n.XPreserveUnknownFields {
			return nil
		}
		for k, e := range x {
			if path == "" && (k == "apiVersion" || k == "kind" || k == "metadata") {
				continue
			}
			p, ok := n.Properties[k]
			if !ok {
				out = append(out, path+"."+k)
				continue
			}
			out = append(out, prunedFields(p, e, path+"."+k)...)
		}
	case []any:
		for _, e := range x {
			if n.Items != nil && n.Items.Schema != nil {
				out = append(out, prunedFields(*n.Items.Schema, e, path+"[]")...)
			}
		}
	}
	return out
}
