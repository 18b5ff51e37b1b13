package generators

import (
	"bytes"
	"testing"

	"github.com/meshctl/meshctl/schema"
)

// FuzzPatches applies an arbitrary patch, to arbitrary targets, to a few
// rendered objects with kustomize's libraries: it must fail with an error
// or succeed, never panic; a success leaves every object a kind and a
// name; and the same patch applied again gives the same objects.
func FuzzPatches(f *testing.F) {
	f.Add("Deployment", "linkerd-destination", "", "spec:\n  replicas: 3\n")
	f.Add("Deployment", "", "app=destination", "- {op: add, path: /spec/template/spec/priorityClassName, value: x}\n")
	f.Add("ConfigMap", "linkerd-.*", "", `{"data": {"values": null}}`)
	f.Add("", "", "", "$patch: delete\n")
	f.Add("Deployment", "(", "a in (b", "- {op: move, from: /spec, path: /spec/x}\n")
	f.Fuzz(func(t *testing.T, kind, name, selector, patch string) {
		m := &schema.Mesh{Patches: []schema.Patch{{
			Target: schema.PatchTarget{Kind: kind, Name: name, LabelSelector: selector},
			Patch:  patch,
			Pos:    "fuzz.cue:1:1",
		}}}
		first, err := applyPatches(m, fixtureObjects(t))
		if err != nil {
			return
		}
		for _, o := range first {
			if o.Object == nil || o.Object.GetKind() == "" || o.Object.GetName() == "" {
				t.Fatalf("a patch that succeeded left an object without a kind or a name: %v", o.Object)
			}
		}
		again, err := applyPatches(m, fixtureObjects(t))
		if err != nil {
			t.Fatalf("the same patch failed the second time: %v", err)
		}
		var a, b bytes.Buffer
		if err := Encode(&a, first, "yaml"); err != nil {
			return // an object a patch made that YAML cannot hold is the encoder's to refuse
		}
		if err := Encode(&b, again, "yaml"); err != nil {
			t.Fatalf("encoded once, not twice: %v", err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("the same patch gave different objects:\n%s\n---\n%s", a.String(), b.String())
		}
	})
}
