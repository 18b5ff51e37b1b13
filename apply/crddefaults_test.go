package apply

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// routeCRD is a CRD whose schema defaults fields inside an atomic list, as
// Gateway API's and Linkerd's HTTPRoutes default a backendRef's group,
// kind and weight.
const routeCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: routes.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Route, plural: routes}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              rules:
                type: array
                x-kubernetes-list-type: atomic
                items:
                  type: object
                  properties:
                    matches:
                      type: array
                      default: [{path: {type: PathPrefix, value: /}}]
                      items: {type: object, x-kubernetes-preserve-unknown-fields: true}
                    backendRefs:
                      type: array
                      items:
                        type: object
                        properties:
                          name: {type: string}
                          group: {type: string, default: ""}
                          kind: {type: string, default: Service}
                          weight: {type: integer, default: 1}
`

const desiredRoute = `
apiVersion: example.com/v1
kind: Route
metadata: {name: r, namespace: ns}
spec:
  rules:
  - backendRefs: [{name: a, weight: 90}, {name: b}]
`

// liveRoute is desiredRoute as the server stores it: defaults filled in.
const liveRoute = `
apiVersion: example.com/v1
kind: Route
metadata:
  name: r
  namespace: ns
  managedFields:
  - manager: meshctl
    operation: Apply
    apiVersion: example.com/v1
    fieldsType: FieldsV1
    fieldsV1: {f:spec: {f:rules: {}}}
spec:
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs:
    - {name: a, group: "", kind: Service, weight: 90}
    - {name: b, group: "", kind: Service, weight: 1}
`

func TestCRDSchemaDefaults(t *testing.T) {
	schemas := SchemasOf([]*unstructured.Unstructured{fromYAML(t, routeCRD)})
	for _, tc := range []struct {
		name    string
		schemas *CRDSchemas
		live    func(*unstructured.Unstructured)
		want    string
	}{
		{name: "defaults filled in by the server", schemas: schemas},
		// Without the CRD: conservative, the server is asked.
		{name: "no schema", schemas: nil, want: "spec.rules: differs"},
		{name: "a default changed in live", schemas: schemas, live: func(u *unstructured.Unstructured) {
			rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
			rules[0].(map[string]any)["backendRefs"].([]any)[1].(map[string]any)["weight"] = int64(5)
			unstructured.SetNestedSlice(u.Object, rules, "spec", "rules")
		}, want: "spec.rules: differs"},
		{name: "a field no schema defaults", schemas: schemas, live: func(u *unstructured.Unstructured) {
			rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
			rules[0].(map[string]any)["timeouts"] = map[string]any{"request": "1s"}
			unstructured.SetNestedSlice(u.Object, rules, "spec", "rules")
		}, want: "spec.rules: differs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, l := fromYAML(t, desiredRoute), fromYAML(t, liveRoute)
			if tc.live != nil {
				tc.live(l)
			}
			if got := tc.schemas.NotInSync(d, l); got != tc.want {
				t.Errorf("NotInSync = %q, want %q", got, tc.want)
			}
			if _, ok := d.Object["spec"].(map[string]any)["rules"].([]any)[0].(map[string]any)["matches"]; ok {
				t.Error("desired was changed")
			}
		})
	}
}
