package generators

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/meshctl/meshctl/schema"
)

// benchLoadBuild measures what `meshctl build` does: load and vet mesh.cue
// against the schema, render, and encode to YAML.
func benchLoadBuild(b *testing.B, src string) {
	b.ReportAllocs()
	for b.Loop() {
		m, err := schema.LoadSources(schema.Source{Name: "mesh.cue", Data: []byte(src)})
		if err != nil {
			b.Fatal(err)
		}
		objs, err := Render(m, Inputs{})
		if err != nil {
			b.Fatal(err)
		}
		if err := Encode(io.Discard, objs, "yaml"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadBuildDefault(b *testing.B) { benchLoadBuild(b, "") }

func BenchmarkLoadBuild1000Namespaces(b *testing.B) {
	var sb strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&sb, "namespaces: \"app-%d\": inject: \"enabled\"\n", i)
	}
	benchLoadBuild(b, sb.String())
}
