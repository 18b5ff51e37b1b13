package plan

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/meshctl/meshctl/schema"
)

// FuzzOfflineMeanings diffs two arbitrary meshes offline, as a pull
// request's diff does: whatever the two files say, a diff is an error or
// a report, never a panic; and a mesh diffed against itself changes
// nothing and means nothing.
func FuzzOfflineMeanings(f *testing.F) {
	// Seeds: the steps of the transition walk, each mesh and the next.
	walk, err := os.Open("../testdata/transitions")
	if err != nil {
		f.Fatal(err)
	}
	defer walk.Close()
	var prev []byte
	for sc := bufio.NewScanner(walk); sc.Scan(); {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		data, err := os.ReadFile("../" + line)
		if err != nil {
			f.Fatal(err)
		}
		if prev != nil {
			f.Add(prev, data)
		}
		prev = data
	}
	f.Add([]byte(""), []byte("controlPlane: ha: true\n"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		old, err := schema.LoadSources(schema.Source{Name: "old.cue", Data: a})
		if err != nil || CheckRenders(old) != nil {
			return
		}
		new, err := schema.LoadSources(schema.Source{Name: "new.cue", Data: b})
		if err != nil || CheckRenders(new) != nil {
			return
		}
		if _, err := DiffOffline(old, new, "", "fuzz"); err != nil {
			return
		}
		same, err := DiffOffline(new, new, "", "fuzz")
		if err != nil {
			t.Fatalf("a mesh that diffs against another fails against itself: %v", err)
		}
		for _, c := range same.Clusters {
			if c.Result.Changed() || len(c.Result.Meanings) > 0 {
				t.Fatalf("a mesh diffed against itself: changed %v, meanings %q", c.Result.Changed(), c.Result.Meanings)
			}
		}
	})
}
