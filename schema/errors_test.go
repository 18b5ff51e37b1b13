package schema

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestIssueString(t *testing.T) {
	for _, tc := range []struct {
		name  string
		issue Issue
		want  string
	}{
		{name: "positioned", issue: Issue{File: "mesh.cue", Line: 3, Column: 7, Path: "viz.enabled", Message: "conflicting values"}, want: "mesh.cue:3:7: viz.enabled: conflicting values"},
		{name: "no file", issue: Issue{Path: "viz", Message: "bad"}, want: "viz: bad"},
		{name: "no path", issue: Issue{File: "mesh.cue", Line: 1, Column: 1, Message: "bad"}, want: "mesh.cue:1:1: bad"},
		{name: "message only", issue: Issue{Message: "bad"}, want: "bad"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.issue.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
	e := &Error{Issues: []Issue{{Message: "one"}, {Path: "a", Message: "two"}}}
	if got, want := e.Error(), "one\na: two"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestFormatPath(t *testing.T) {
	for _, tc := range []struct {
		name       string
		elems      []string
		want, look string
	}{
		{name: "identifiers", elems: []string{"controlPlane", "identity", "issuer"}, want: "controlPlane.identity.issuer", look: "controlPlane.identity.issuer"},
		{name: "a key to quote", elems: []string{"services", "shop/cart", "split"}, want: `services."shop/cart".split`, look: `services."shop/cart".split`},
		{name: "already quoted", elems: []string{"services", `"shop/cart"`}, want: `services."shop/cart"`, look: `services."shop/cart"`},
		{name: "definitions", elems: []string{"#Mesh", "$x", "_y"}, want: "#Mesh.$x._y", look: "#Mesh.$x._y"},
		{name: "list index", elems: []string{"links", "0", "name"}, want: "links.0.name", look: "links[0].name"},
		{name: "leading index", elems: []string{"0"}, want: "0", look: "[0]"},
		{name: "dashes", elems: []string{"namespaces", "books-app"}, want: `namespaces."books-app"`, look: `namespaces."books-app"`},
		{name: "empty", elems: nil, want: "", look: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := formatPath(tc.elems); got != tc.want {
				t.Errorf("formatPath = %q, want %q", got, tc.want)
			}
			if got := lookupPath(tc.elems); got != tc.look {
				t.Errorf("lookupPath = %q, want %q", got, tc.look)
			}
		})
	}
}

func TestFriendlier(t *testing.T) {
	for _, tc := range []struct{ name, path, in, want string }{
		{name: "keyCluster missing", path: "controlPlane.identity.trustAnchor.keyCluster", in: "field is required but not present", want: `a value is required here: with clusters and trustAnchor.source "generated", meshctl makes one trust anchor for the fleet; name the cluster whose meshctl-certificates Secret keeps its key (one of clusters)`},
		{name: "another required field", path: "x.y", in: "field is required but not present", want: "field is required but not present"},
		{name: "typo", in: "field not allowed", want: "field not allowed (check the spelling; see schema/mesh.cue for the fields)"},
		{name: "unresolved disjunction", in: `unresolved disjunction "httproute" | "smi" (type string)`, want: `a value is required here: choose "httproute" | "smi"`},
		{name: "incomplete", in: "incomplete value string", want: "a value is required here, of type string"},
		{name: "anything else", in: "invalid value 120 (out of bound <=100)", want: "invalid value 120 (out of bound <=100)"},
		{name: "not quite a typo", in: "field not allowed: x", want: "field not allowed: x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := friendlier(tc.path, tc.in); got != tc.want {
				t.Errorf("friendlier(%q, %q) = %q, want %q", tc.path, tc.in, got, tc.want)
			}
		})
	}
}

func TestCollapse(t *testing.T) {
	at := func(line int, path, msg string) Issue {
		return Issue{File: "mesh.cue", Line: line, Column: 5, Path: path, Message: msg}
	}
	for _, tc := range []struct {
		name string
		in   []Issue
		want []Issue
	}{
		{name: "nothing", in: []Issue{}, want: []Issue{}},
		{
			name: "one per alternative of a disjunction",
			in: []Issue{
				at(1, "inject", `conflicting values "enabled" and "yes"`),
				at(1, "inject", `conflicting values "disabled" and "yes"`),
				at(1, "inject", `conflicting values "yes" and "ingress"`),
			},
			want: []Issue{at(1, "inject", `"yes" is not allowed; expected one of "disabled", "enabled", "ingress"`)},
		},
		{
			name: "mismatched types",
			in: []Issue{
				at(2, "ha", "conflicting values false and 3 (mismatched types bool and int)"),
				at(2, "ha", "conflicting values true and 3 (mismatched types bool and int)"),
			},
			want: []Issue{at(2, "ha", "3 is not allowed; expected one of false, true")},
		},
		{
			name: "one conflict is left as it is",
			in:   []Issue{at(1, "inject", `conflicting values "enabled" and "yes"`)},
			want: []Issue{at(1, "inject", `conflicting values "enabled" and "yes"`)},
		},
		{
			name: "conflicts at different places are not merged",
			in: []Issue{
				at(1, "a", `conflicting values "x" and "y"`),
				at(2, "b", `conflicting values "x" and "z"`),
			},
			want: []Issue{
				at(1, "a", `conflicting values "x" and "y"`),
				at(2, "b", `conflicting values "x" and "z"`),
			},
		},
		{
			name: "conflicts with no value in common are not merged",
			in: []Issue{
				at(1, "a", `conflicting values "w" and "x"`),
				at(1, "a", `conflicting values "y" and "z"`),
			},
			want: []Issue{
				at(1, "a", `conflicting values "w" and "x"`),
				at(1, "a", `conflicting values "y" and "z"`),
			},
		},
		{
			name: "errors that follow from another go",
			in: []Issue{
				at(1, "split", "invalid value 120 (out of bound <=100)"),
				at(3, "total", "invalid operation 120 + 10 (mismatched types)"),
				at(4, "total", "cannot use value 120 (type int) as string"),
			},
			want: []Issue{at(1, "split", "invalid value 120 (out of bound <=100)")},
		},
		{
			name: "a consequent error alone stays",
			in:   []Issue{at(3, "total", "invalid operation 120 + 10 (mismatched types)")},
			want: []Issue{at(3, "total", "invalid operation 120 + 10 (mismatched types)")},
		},
		{
			name: "a collapsed disjunction and what follows from it",
			in: []Issue{
				at(1, "inject", `conflicting values "enabled" and "yes"`),
				at(1, "inject", `conflicting values "disabled" and "yes"`),
				at(4, "label", `invalid operation "yes" + 1 (mismatched types string and int)`),
			},
			want: []Issue{at(1, "inject", `"yes" is not allowed; expected one of "disabled", "enabled"`)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := collapse(tc.in)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("collapse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadErrorsAreCollapsedAndPositioned(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []Issue
	}{
		{
			name: "a value outside a disjunction",
			src:  `namespaces: books: inject: "yes"`,
			want: []Issue{{File: "mesh.cue", Line: 1, Column: 28, Path: "namespaces.books.inject", Message: `"yes" is not allowed; expected one of "disabled", "enabled", "ingress"`}},
		},
		{
			name: "a typo",
			src:  "viz: enabeld: true",
			want: []Issue{{File: "mesh.cue", Line: 1, Column: 6, Path: "viz.enabeld", Message: "field not allowed (check the spelling; see schema/mesh.cue for the fields)"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadSources(Source{Name: "mesh.cue", Data: []byte(tc.src)})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("LoadSources error = %v, want a *schema.Error", err)
			}
			if diff := cmp.Diff(tc.want, e.Issues); diff != "" {
				t.Errorf("issues (-want +got):\n%s", diff)
			}
		})
	}
}
