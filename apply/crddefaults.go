package apply

import (
	"encoding/json"
	"strconv"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// CRDSchemas are the schemas of the CustomResourceDefinitions of a set, by
// the kind and version they serve. The API server fills in the defaults a
// schema declares when it stores a custom resource: a Gateway API
// backendRef's group, kind and weight, say. Inside a value meshctl owns
// whole (an atomic list of rules), live then holds fields desired does
// not, and InSync would find every such object changed, and have it
// dry-run on every apply. With the schemas, InSync fills in the same
// defaults before it compares.
type CRDSchemas struct {
	byKind map[schema.GroupVersionKind]*apiextv1.JSONSchemaProps
}

// SchemasOf reads the CRDs among objs. Objects that are not CRDs, or
// whose schema does not decode, are left out: their kinds are compared as
// without schemas (conservatively).
func SchemasOf(objs []*unstructured.Unstructured) *CRDSchemas {
	s := &CRDSchemas{byKind: map[schema.GroupVersionKind]*apiextv1.JSONSchemaProps{}}
	for _, u := range objs {
		if u.GetKind() != "CustomResourceDefinition" || groupOf(u.GetAPIVersion()) != apiextv1.GroupName {
			continue
		}
		crd := &apiextv1.CustomResourceDefinition{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, crd); err != nil {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}
			s.byKind[gvk] = v.Schema.OpenAPIV3Schema
		}
	}
	return s
}

// of returns the schema of gvk, or nil.
func (s *CRDSchemas) of(gvk schema.GroupVersionKind) *apiextv1.JSONSchemaProps {
	if s == nil {
		return nil
	}
	return s.byKind[gvk]
}

// at returns the schema node at path below n: map keys name properties
// (or additionalProperties), and list indices the items. nil when the
// schema says nothing there.
func at(n *apiextv1.JSONSchemaProps, path []string) *apiextv1.JSONSchemaProps {
	for _, p := range path {
		if n == nil {
			return nil
		}
		switch n.Type {
		case "array":
			if _, err := strconv.Atoi(p); err != nil || n.Items == nil {
				return nil
			}
			n = n.Items.Schema
		default:
			if prop, ok := n.Properties[p]; ok {
				n = &prop
			} else if n.AdditionalProperties != nil && n.AdditionalProperties.Schema != nil {
				n = n.AdditionalProperties.Schema
			} else {
				return nil
			}
		}
	}
	return n
}

// withSchemaDefaults returns v (a copy, when anything is added) with the
// defaults n declares filled in where v lacks them, as the API server
// fills them in when it stores the object.
func withSchemaDefaults(v any, n *apiextv1.JSONSchemaProps) any {
	if n == nil {
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = e
			if prop, ok := n.Properties[k]; ok {
				out[k] = withSchemaDefaults(e, &prop)
			} else if n.AdditionalProperties != nil && n.AdditionalProperties.Schema != nil {
				out[k] = withSchemaDefaults(e, n.AdditionalProperties.Schema)
			}
		}
		for k, prop := range n.Properties {
			if _, ok := out[k]; ok || prop.Default == nil {
				continue
			}
			var d any
			if err := json.Unmarshal(prop.Default.Raw, &d); err != nil {
				continue
			}
			out[k] = withSchemaDefaults(d, &prop)
		}
		return out
	case []any:
		if n.Items == nil || n.Items.Schema == nil {
			return v
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = withSchemaDefaults(e, n.Items.Schema)
		}
		return out
	}
	return v
}
