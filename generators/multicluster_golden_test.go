package generators

import (
	"bytes"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/meshctl/meshctl/schema"
)

// multiclusterGoldenDir holds the per-cluster renders: examples/multicluster.cue
// as <cluster>.yaml, and every <input>.cue there as <input>.<cluster>.yaml.
const multiclusterGoldenDir = "../testdata/golden/multicluster"

// TestGoldenMulticluster renders, for each cluster of each input, the
// objects the multicluster generator adds to that cluster (through Render,
// so with the labels Render sets), with no link data: the placeholders an
// offline build prints. TestGolden cannot: it renders for no cluster.
// Refresh with go test ./generators -run TestGoldenMulticluster -update.
func TestGoldenMulticluster(t *testing.T) {
	inputs := map[string]string{"../examples/multicluster.cue": ""}
	more, _ := filepath.Glob(filepath.Join(multiclusterGoldenDir, "*.cue"))
	for _, f := range more {
		inputs[f] = strings.TrimSuffix(filepath.Base(f), ".cue") + "."
	}
	want := map[string]bool{}
	for _, f := range slices.Sorted(maps.Keys(inputs)) {
		m, err := schema.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Clusters) == 0 {
			t.Fatalf("%s declares no clusters", f)
		}
		for _, c := range slices.Sorted(maps.Keys(m.Clusters)) {
			golden := filepath.Join(multiclusterGoldenDir, inputs[f]+c+".yaml")
			want[golden] = true
			t.Run(filepath.Base(golden), func(t *testing.T) {
				checkGolden(t, golden, multiclusterRender(t, m, Inputs{Cluster: c}))
			})
		}
	}
	goldens, _ := filepath.Glob(filepath.Join(multiclusterGoldenDir, "*.yaml"))
	for _, g := range goldens {
		if !want[g] {
			t.Errorf("%s has no input cluster: remove it", g)
		}
	}
}

// multiclusterRender is the YAML of the objects of Render that the
// multicluster generator made.
func multiclusterRender(t *testing.T, m *schema.Mesh, in Inputs) []byte {
	t.Helper()
	mine := map[string]bool{}
	for _, o := range multicluster(m, in) {
		mine[o.Object.GetAPIVersion()+"/"+o.ID()] = true
	}
	all, err := Render(m, in)
	if err != nil {
		t.Fatal(err)
	}
	var objs []Object
	for _, o := range all {
		if mine[o.Object.GetAPIVersion()+"/"+o.ID()] {
			objs = append(objs, o)
		}
	}
	if len(objs) != len(mine) {
		t.Fatalf("Render kept %d of the %d multicluster objects", len(objs), len(mine))
	}
	var buf bytes.Buffer
	if err := Encode(&buf, objs, "yaml"); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
