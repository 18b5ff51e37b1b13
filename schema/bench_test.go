package schema

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var benchMeshes sync.Map

// benchMesh returns the generated mesh of n services × 5 routes (see
// testdata/bench).
func benchMesh(tb testing.TB, n int) []byte {
	tb.Helper()
	if b, ok := benchMeshes.Load(n); ok {
		return b.([]byte)
	}
	out, err := exec.Command("go", "run", "../testdata/bench", "-services", fmt.Sprint(n), "-routes", "5").Output()
	if err != nil {
		tb.Fatalf("go run ../testdata/bench: %v", err)
	}
	benchMeshes.Store(n, out)
	return out
}

// benchLoad measures LoadSources on the generated mesh: parse, validate
// against the schema (per service, in parallel), decode.
func benchLoad(b *testing.B, n int) {
	src := Source{Name: filepath.Join("testdata", fmt.Sprintf("mesh-%d.cue", n)), Data: benchMesh(b, n)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		m, err := LoadSources(src)
		if err != nil {
			b.Fatal(err)
		}
		if len(m.Services) != n {
			b.Fatalf("%d services, want %d", len(m.Services), n)
		}
	}
}

func BenchmarkLoadServices1000(b *testing.B)  { benchLoad(b, 1000) }
func BenchmarkLoadServices10000(b *testing.B) { benchLoad(b, 10000) }

// BenchmarkLoaderOneChanged is a reconcile loop's load: 1,000 services, of
// which one changed since the Loader's last load.
func BenchmarkLoaderOneChanged(b *testing.B) {
	src := benchMesh(b, 1000)
	var l Loader
	if _, err := l.LoadSources(Source{Name: "mesh.cue", Data: src}); err != nil {
		b.Fatal(err)
	}
	changed := bytes.Replace(src, []byte("port:  8000"), []byte("port:  9000"), 1)
	srcs := [][]byte{changed, src}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := l.LoadSources(Source{Name: "mesh.cue", Data: srcs[i%2]}); err != nil {
			b.Fatal(err)
		}
		if l.memo.evaluated != 1 {
			b.Fatalf("evaluated %d services, want 1", l.memo.evaluated)
		}
		i++
	}
}
