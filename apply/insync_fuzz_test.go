package apply

import (
	"fmt"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/value"
)

// FuzzInSync builds a desired object, a live one and meshctl's field set on
// it from the fuzzer's bytes: maps, associative lists, sets, atomic lists
// and scalars, the field set derived from desired and then bent (fields
// added and dropped), live edited. InSync must never panic, and must agree
// with a reference walk that never leaves a field set early (walk.all):
// in sync exactly when the reference finds nothing, and otherwise for a
// reason the reference found too.
func FuzzInSync(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 3, 0, 1, 4, 2, 5, 1})
	// Several owned fields that desired lacks, in one map: what turning
	// HA off does (issue 20).
	f.Add([]byte{3, 3, 3, 3, 3, 3, 3, 9, 9, 9, 1, 1, 1, 1, 7, 7, 7, 7})
	f.Add([]byte("\x04\x03\x02\x01\x00\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &choices{b: data}
		desired, live, owned := c.objects()
		got := NotInSync(desired, live)
		ref := &walk{all: true}
		ref.check(desired, live)
		if (got == "") != (len(ref.reasons) == 0) {
			t.Fatalf("InSync says %q, the reference walk %q\nowned: %s\ndesired: %v\nlive: %v", got, ref.reasons, owned, desired.Object, live.Object)
		}
		if got != "" && !slices.Contains(ref.reasons, got) {
			t.Fatalf("InSync says %q, which the reference walk did not find (%q)", got, ref.reasons)
		}
	})
}

// choices reads decisions from the fuzzer's bytes; 0 once they run out.
type choices struct {
	b []byte
	i int
}

func (c *choices) n(k int) int {
	if c.i >= len(c.b) {
		return 0
	}
	v := int(c.b[c.i]) % k
	c.i++
	return v
}

var (
	fuzzKeys   = []string{"a", "b", "c", "d"}
	fuzzNames  = []string{"n1", "n2", "n3"}
	fuzzValues = []string{"p", "q", "r"}
)

// objects builds desired, live, and the field set recorded on live.
func (c *choices) objects() (desired, live *unstructured.Unstructured, owned *fieldpath.Set) {
	spec := c.mapValue(3)
	desired = &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w"},
		"spec":     spec,
	}}
	owned = &fieldpath.Set{}
	c.own(owned.Children.Descend(fieldpath.PathElement{FieldName: fname("spec")}), spec)
	c.bend(owned, 4)
	live = &unstructured.Unstructured{Object: runtime.DeepCopyJSON(desired.Object)}
	for range c.n(4) {
		c.edit(live.Object["spec"], 4)
	}
	raw, err := owned.ToJSON()
	if err != nil {
		panic(err)
	}
	live.SetManagedFields([]metav1.ManagedFieldsEntry{{
		Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply, APIVersion: "example.com/v1",
		FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: raw},
	}})
	return desired, live, owned
}

func fname(s string) *string { return &s }

// value is a random JSON value, depth levels deep at most.
func (c *choices) value(depth int) any {
	if depth == 0 {
		return c.scalar()
	}
	switch c.n(8) {
	case 0:
		return c.mapValue(depth - 1)
	case 1: // an associative list, keyed by name
		var out []any
		for _, name := range fuzzNames[:1+c.n(len(fuzzNames))] {
			item := c.mapValue(depth - 1)
			item["name"] = name
			out = append(out, item)
		}
		return out
	case 2: // a set of scalars
		var out []any
		for _, v := range fuzzValues[:1+c.n(len(fuzzValues))] {
			out = append(out, v)
		}
		return out
	case 3: // an atomic list
		return []any{c.scalar(), c.scalar()}
	case 4:
		return map[string]any{}
	case 5:
		return nil
	}
	return c.scalar()
}

func (c *choices) scalar() any {
	switch c.n(3) {
	case 0:
		return fuzzValues[c.n(len(fuzzValues))]
	case 1:
		return int64(c.n(3))
	}
	return c.n(2) == 0
}

func (c *choices) mapValue(depth int) map[string]any {
	m := map[string]any{}
	for _, k := range fuzzKeys[:c.n(len(fuzzKeys)+1)] {
		m[k] = c.value(depth)
	}
	return m
}

// own records in s the fields that applying the map m would own, as the
// server records them; some maps and lists are owned whole (atomic).
func (c *choices) own(s *fieldpath.Set, m map[string]any) {
	for k, v := range m {
		pe := fieldpath.PathElement{FieldName: fname(k)}
		c.ownValue(s, pe, v)
	}
}

func (c *choices) ownValue(s *fieldpath.Set, pe fieldpath.PathElement, v any) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 || c.n(4) == 0 {
			s.Members.Insert(pe)
			return
		}
		c.own(s.Children.Descend(pe), x)
	case []any:
		if c.n(4) == 0 {
			s.Members.Insert(pe)
			return
		}
		child := s.Children.Descend(pe)
		for _, item := range x {
			switch it := item.(type) {
			case map[string]any:
				key := fieldpath.PathElement{Key: &value.FieldList{{Name: "name", Value: value.NewValueInterface(it["name"])}}}
				child.Members.Insert(key)
				rest := map[string]any{}
				for k, v := range it {
					if k != "name" || c.n(2) == 0 {
						rest[k] = v
					}
				}
				c.own(child.Children.Descend(key), rest)
			default:
				child.Members.Insert(fieldpath.PathElement{Value: ptrValue(value.NewValueInterface(it))})
			}
		}
	default:
		s.Members.Insert(pe)
	}
}

func ptrValue(v value.Value) *value.Value { return &v }

// bend adds and drops fields of s at random, depth levels down.
func (c *choices) bend(s *fieldpath.Set, depth int) {
	if depth == 0 {
		return
	}
	switch c.n(4) {
	case 0:
		s.Members.Insert(fieldpath.PathElement{FieldName: fname(fuzzKeys[c.n(len(fuzzKeys))])})
	case 1:
		s.Children.Descend(fieldpath.PathElement{FieldName: fname(fuzzKeys[c.n(len(fuzzKeys))])}).
			Members.Insert(fieldpath.PathElement{FieldName: fname("z")})
	case 2:
		if ms := members(s); len(ms) > 0 {
			*s = *s.Difference(fieldpath.NewSet(fieldpath.Path{ms[c.n(len(ms))]}))
		}
	}
	for _, pe := range children(s) {
		if child, ok := s.Children.Get(pe); ok {
			c.bend(child, depth-1)
		}
	}
}

// edit changes live's value v in place at a random spot.
func (c *choices) edit(v any, depth int) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for _, k := range fuzzKeys {
			if _, ok := x[k]; ok {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 || depth == 0 {
			x[fuzzKeys[c.n(len(fuzzKeys))]] = c.scalar()
			return
		}
		k := keys[c.n(len(keys))]
		switch c.n(4) {
		case 0:
			delete(x, k)
		case 1:
			x[k] = c.scalar()
		case 2:
			x["other"] = fmt.Sprint(c.n(9)) // another manager's field
		default:
			c.edit(x[k], depth-1)
		}
	case []any:
		if len(x) < 2 || depth == 0 {
			return
		}
		switch c.n(3) {
		case 0:
			x[0], x[1] = x[1], x[0]
		case 1:
			x[len(x)-1] = c.scalar()
		default:
			c.edit(x[c.n(len(x))], depth-1)
		}
	}
}
