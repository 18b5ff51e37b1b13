package generators

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// objectIDs are the objects' IDs, sorted.
func objectIDs(objs []Object) []string {
	ids := make([]string, 0, len(objs))
	for _, o := range objs {
		ids = append(ids, o.ID())
	}
	slices.Sort(ids)
	return ids
}

// objectByID is the rendered object id; the test fails without one.
func objectByID(t *testing.T, objs []Object, id string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.ID() == id {
			return o.Object
		}
	}
	t.Fatalf("%s not rendered", id)
	return nil
}
