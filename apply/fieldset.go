package apply

import "sigs.k8s.io/structured-merge-diff/v6/fieldpath"

// structured-merge-diff v6.4.2's SetNodeMap.All (a field set's Children) is
// written over Iterate and ignores what yield returns. Leaving a
// `range s.Children.All()` early, with a return or a break, makes the Go
// runtime panic ("range function continued iteration after function for
// loop body returned false") as soon as another element follows: turning HA
// off, which drops several fields meshctl owned in one object, crashed
// apply, diff and the reconcile loop that way (issue 20).
//
// So apply never ranges over the library's iterators. members and children
// collect the elements with Iterate, which has no early exit, and callers
// range over the slice and leave it whenever they like. internal/lint's
// TestLibraryIteratorsNotLeftEarly keeps the rest of the tree honest.

// members returns the path elements of s's leaf fields (its Members).
func members(s *fieldpath.Set) []fieldpath.PathElement {
	var out []fieldpath.PathElement
	s.Members.Iterate(func(pe fieldpath.PathElement) { out = append(out, pe) })
	return out
}

// children returns the path elements that have field sets below them in s
// (its Children).
func children(s *fieldpath.Set) []fieldpath.PathElement {
	var out []fieldpath.PathElement
	s.Children.Iterate(func(pe fieldpath.PathElement) { out = append(out, pe) })
	return out
}
