package apply

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

func TestFieldSetElements(t *testing.T) {
	set := &fieldpath.Set{}
	if err := set.FromJSON(strings.NewReader(`{"f:a":{},"f:b":{},"f:c":{"f:x":{}},"f:d":{"f:y":{}},"f:e":{"f:z":{}}}`)); err != nil {
		t.Fatal(err)
	}
	names := func(pes []fieldpath.PathElement) []string {
		var out []string
		for _, pe := range pes {
			out = append(out, pe.String())
		}
		return out
	}
	if diff := cmp.Diff([]string{".a", ".b"}, names(members(set))); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{".c", ".d", ".e"}, names(children(set))); diff != "" {
		t.Errorf("children (-want +got):\n%s", diff)
	}
	// What the helpers are for: the first of several is enough, and the
	// loop is left at once.
	first := func() string {
		for _, pe := range children(set) {
			return pe.String()
		}
		return ""
	}
	if got := first(); got != ".c" {
		t.Errorf("first child = %q", got)
	}
}

// TestLibraryChildrenIteratorIgnoresStop pins the library bug the helpers
// exist for. When structured-merge-diff fixes SetNodeMap.All, this test
// fails: the helpers may then go, and internal/lint's list of iterators
// that honour the stop gains it.
func TestLibraryChildrenIteratorIgnoresStop(t *testing.T) {
	set := &fieldpath.Set{}
	if err := set.FromJSON(strings.NewReader(`{"f:c":{"f:x":{}},"f:d":{"f:y":{}}}`)); err != nil {
		t.Fatal(err)
	}
	panicked := func() (p bool) {
		defer func() { p = recover() != nil }()
		// lint:early-exit-on-purpose: this is the bug, pinned.
		for range set.Children.All() {
			break
		}
		return false
	}()
	if !panicked {
		t.Fatal("leaving a range over SetNodeMap.All early no longer panics: the library honours the stop now; see fieldset.go")
	}
}
