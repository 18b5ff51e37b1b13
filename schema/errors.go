package schema

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// Issue is one problem in a mesh: where it is, which field, and what is wrong.
type Issue struct {
	File   string
	Line   int
	Column int
	// Path is the CUE field path, such as services."shop/cart".split.
	Path    string
	Message string
}

// String formats the issue as file:line:col: path: message.
func (i Issue) String() string {
	var b strings.Builder
	if i.File != "" {
		fmt.Fprintf(&b, "%s:%d:%d: ", i.File, i.Line, i.Column)
	}
	if i.Path != "" {
		b.WriteString(i.Path)
		b.WriteString(": ")
	}
	b.WriteString(i.Message)
	return b.String()
}

// Error is an invalid mesh: one or more issues, each positioned in the
// user's files.
type Error struct {
	Issues []Issue
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Issues))
	for i, is := range e.Issues {
		lines[i] = is.String()
	}
	return strings.Join(lines, "\n")
}

var identRE = regexp.MustCompile(`^[A-Za-z_$#][A-Za-z0-9_$#]*$|^[0-9]+$`)

// visible drops the hidden fields that end a path: a constraint the schema
// keeps in one (fault._needsPort) is about the field that holds it.
func visible(elems []string) []string {
	for len(elems) > 0 && strings.HasPrefix(elems[len(elems)-1], "_") {
		elems = elems[:len(elems)-1]
	}
	return elems
}

func formatPath(elems []string) string {
	parts := make([]string, len(elems))
	for i, e := range elems {
		if identRE.MatchString(e) || strings.HasPrefix(e, `"`) {
			parts[i] = e
		} else {
			parts[i] = strconv.Quote(e)
		}
	}
	return strings.Join(parts, ".")
}

// newError turns CUE errors into issues positioned in the user's files:
// the first position CUE reports in a user file, else the nearest enclosing
// field the user wrote, else the top of the first file.
func newError(err error, srcs []Source) error {
	user := map[string]bool{}
	for _, s := range srcs {
		user[s.Name] = true
	}
	var locate func(path []string) (token.Pos, bool)
	locate = func(path []string) (token.Pos, bool) {
		// Built lazily: most errors carry a user position already.
		values := userValues(srcs)
		locate = func(path []string) (token.Pos, bool) {
			for n := len(path); n > 0; n-- {
				p := cue.ParsePath(lookupPath(path[:n]))
				if p.Err() != nil {
					continue
				}
				for _, v := range values {
					if f := v.LookupPath(p); f.Exists() && f.Pos().IsValid() {
						return f.Pos(), true
					}
				}
			}
			return token.NoPos, false
		}
		return locate(path)
	}

	seen := map[string]bool{}
	var issues []Issue
	for _, e := range cueerrors.Errors(err) {
		format, args := e.Msg()
		msg := fmt.Sprintf(format, args...)
		if strings.Contains(msg, "errors in empty disjunction") {
			continue // each alternative's error is reported on its own
		}
		is := Issue{Path: formatPath(visible(e.Path()))}
		is.Message = friendlier(is.Path, msg)
		var pos token.Pos
		for _, p := range cueerrors.Positions(e) {
			if user[p.Filename()] {
				pos = p
				break
			}
		}
		if !pos.IsValid() {
			if p, ok := locate(e.Path()); ok {
				pos = p
			}
		}
		if pos.IsValid() {
			is.File, is.Line, is.Column = pos.Filename(), pos.Line(), pos.Column()
		} else if len(srcs) > 0 {
			is.File, is.Line, is.Column = srcs[0].Name, 1, 1
		}
		key := is.String()
		if seen[key] {
			continue
		}
		seen[key] = true
		issues = append(issues, is)
	}
	if len(issues) == 0 {
		return fmt.Errorf("invalid mesh: %w", err)
	}
	issues = collapse(issues)
	sort.SliceStable(issues, func(i, j int) bool {
		a, b := issues[i], issues[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return &Error{Issues: issues}
}

// lookupPath is formatPath with list indices as cue.ParsePath wants them.
func lookupPath(elems []string) string {
	var b strings.Builder
	for i, e := range elems {
		if _, err := strconv.Atoi(e); err == nil {
			fmt.Fprintf(&b, "[%s]", e)
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(formatPath([]string{e}))
	}
	return b.String()
}

func userValues(srcs []Source) []cue.Value {
	ctx := cuecontext.New()
	var vs []cue.Value
	for _, s := range srcs {
		f, err := parser.ParseFile(s.Name, s.Data)
		if err != nil {
			continue
		}
		vs = append(vs, ctx.BuildFile(f))
	}
	return vs
}

var (
	incompleteRE  = regexp.MustCompile(`^incomplete value (.*)$`)
	unresolvedRE  = regexp.MustCompile(`^unresolved disjunction (.*) \(type [a-z]+\)$`)
	conflictingRE = regexp.MustCompile(`^conflicting values (.+?) and (.+?)( \(mismatched types .*\))?$`)
	consequentRE  = regexp.MustCompile(`^(invalid operation|cannot use) `)
)

// collapse merges the one-per-alternative errors CUE reports for a value
// that matches no alternative of a disjunction into one issue, and drops
// errors that only follow from another one.
func collapse(issues []Issue) []Issue {
	type key struct {
		file      string
		line, col int
		path      string
	}
	groups := map[key][]int{}
	for i, is := range issues {
		if conflictingRE.MatchString(is.Message) {
			k := key{is.File, is.Line, is.Column, is.Path}
			groups[k] = append(groups[k], i)
		}
	}
	drop := map[int]bool{}
	for _, idx := range groups {
		if len(idx) < 2 {
			continue
		}
		count := map[string]int{}
		var pairs [][2]string
		for _, i := range idx {
			m := conflictingRE.FindStringSubmatch(issues[i].Message)
			pairs = append(pairs, [2]string{m[1], m[2]})
			count[m[1]]++
			count[m[2]]++
		}
		var got string
		for v, n := range count {
			if n == len(idx) {
				got = v
			}
		}
		if got == "" {
			continue
		}
		var want []string
		for _, p := range pairs {
			if p[0] == got {
				want = append(want, p[1])
			} else {
				want = append(want, p[0])
			}
		}
		sort.Strings(want)
		issues[idx[0]].Message = fmt.Sprintf("%s is not allowed; expected one of %s", got, strings.Join(want, ", "))
		for _, i := range idx[1:] {
			drop[i] = true
		}
	}
	if len(issues)-len(drop) > 1 {
		for i, is := range issues {
			if consequentRE.MatchString(is.Message) {
				drop[i] = true
			}
		}
	}
	out := issues[:0:0]
	for i, is := range issues {
		if !drop[i] {
			out = append(out, is)
		}
	}
	return out
}

// required says what a field the schema requires is for.
var required = map[string]string{
	"controlPlane.identity.trustAnchor.keyCluster": `a value is required here: with clusters and trustAnchor.source "generated", meshctl makes one trust anchor for the fleet; name the cluster whose meshctl-certificates Secret keeps its key (one of clusters)`,
}

// friendlier rewords the CUE messages users meet most often.
func friendlier(path, msg string) string {
	switch {
	case msg == "field is required but not present" && required[path] != "":
		return required[path]
	case msg == "field not allowed":
		return "field not allowed (check the spelling; see schema/mesh.cue for the fields)"
	case unresolvedRE.MatchString(msg):
		return "a value is required here: choose " + unresolvedRE.FindStringSubmatch(msg)[1]
	case incompleteRE.MatchString(msg):
		return "a value is required here, of type " + incompleteRE.FindStringSubmatch(msg)[1]
	}
	return msg
}
