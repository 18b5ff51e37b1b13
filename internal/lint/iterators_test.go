package lint

import (
	"go/ast"
	"go/token"
	"go/types"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
)

// honourStop lists the iterators of other modules that are known to stop
// when the loop body returns false: ranging over them and leaving early
// is safe. Anything else from outside the standard library and meshctl is
// suspect. structured-merge-diff v6.4.2's SetNodeMap.All is the reason
// (apply/fieldset.go): it ignores yield's result, and an early return
// inside its range panics at run time.
var honourStop = map[string]bool{
	"(*sigs.k8s.io/structured-merge-diff/v6/fieldpath.PathElementSet).All": true,
}

// TestLibraryIteratorsNotLeftEarly reads every package of the module, tests
// included, and fails on a range over a function iterator from another
// module (not the standard library, not meshctl, not in honourStop) whose
// body can leave the loop early: a return, a goto, a break of the loop, or
// a labelled break or continue to an outer statement. A range that does so
// on purpose says so in a comment above it (allowDirective).
func TestLibraryIteratorsNotLeftEarly(t *testing.T) {
	cfg := &packages.Config{
		Mode:  packages.NeedName | packages.NeedFiles | packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo,
		Dir:   "../..",
		Tests: true,
	}
	pkgs, err := packages.Load(cfg, "./...")
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("loaded %d packages; expected the whole module", len(pkgs))
	}
	seen := map[token.Position]bool{}
	checked := 0
	for _, p := range pkgs {
		for _, e := range p.Errors {
			t.Errorf("%s: %v", p.PkgPath, e)
		}
		for _, f := range p.Syntax {
			ast.Inspect(f, func(n ast.Node) bool {
				rs, ok := n.(*ast.RangeStmt)
				if !ok {
					return true
				}
				fn := iteratorFunc(p.TypesInfo, rs.X)
				if fn == "" {
					return true
				}
				checked++
				pos := p.Fset.Position(rs.For)
				if seen[pos] || trusted(fn) || allowed(p.Fset, f, pos) {
					return true
				}
				if exit := earlyExit(rs); exit != nil {
					seen[pos] = true
					t.Errorf("%s: the range over %s is left early at %s; the iterator may ignore the stop and panic (see apply/fieldset.go): collect its elements first, or use its Iterate",
						pos, fn, p.Fset.Position(exit.Pos()))
				}
				return true
			})
		}
	}
	t.Logf("%d ranges over function iterators checked", checked)
}

// allowDirective, in a comment on the line above a range, says that it
// leaves a suspect iterator early on purpose (a test of the library's bug).
const allowDirective = "lint:early-exit-on-purpose"

func allowed(fset *token.FileSet, f *ast.File, at token.Position) bool {
	for _, g := range f.Comments {
		if end := fset.Position(g.End()); end.Line == at.Line-1 && strings.Contains(g.Text(), allowDirective) {
			return true
		}
	}
	return false
}

// iteratorFunc names the function whose iterator x is, when x is a call
// that returns a function (a range-over-func), and "" otherwise.
func iteratorFunc(info *types.Info, x ast.Expr) string {
	tv, ok := info.Types[x]
	if !ok {
		return ""
	}
	if _, isFunc := tv.Type.Underlying().(*types.Signature); !isFunc {
		return ""
	}
	call, ok := ast.Unparen(x).(*ast.CallExpr)
	if !ok {
		return "a function value"
	}
	var id *ast.Ident
	switch f := ast.Unparen(call.Fun).(type) {
	case *ast.Ident:
		id = f
	case *ast.SelectorExpr:
		id = f.Sel
	case *ast.IndexExpr: // a generic function, instantiated
		if sel, ok := f.X.(*ast.SelectorExpr); ok {
			id = sel.Sel
		} else if i, ok := f.X.(*ast.Ident); ok {
			id = i
		}
	}
	if id == nil {
		return "a function value"
	}
	if obj, ok := info.Uses[id].(*types.Func); ok {
		return obj.FullName()
	}
	return "a function value"
}

// trusted: the standard library's iterators and meshctl's own are correct
// Go iterators; so are those in honourStop.
func trusted(fn string) bool {
	if honourStop[fn] {
		return true
	}
	path := strings.TrimLeft(fn, "(*")
	if i := strings.LastIndex(path, "."); i >= 0 {
		path = path[:i]
	}
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".") || strings.HasPrefix(path, "github.com/meshctl/meshctl")
}

// earlyExit returns the first statement in rs's body that leaves the loop
// before the iterator is done, or nil.
func earlyExit(rs *ast.RangeStmt) ast.Node {
	inner := map[string]bool{} // labels of statements inside the body
	ast.Inspect(rs.Body, func(n ast.Node) bool {
		if l, ok := n.(*ast.LabeledStmt); ok {
			inner[l.Label.Name] = true
		}
		return true
	})
	var found ast.Node
	var walk func(n ast.Node, breakable int)
	walk = func(n ast.Node, breakable int) {
		ast.Inspect(n, func(c ast.Node) bool {
			if found != nil || c == nil {
				return false
			}
			switch s := c.(type) {
			case *ast.FuncLit:
				return false // its returns leave the closure, not the loop
			case *ast.ReturnStmt:
				found = s
			case *ast.BranchStmt:
				switch {
				case s.Tok == token.GOTO:
					found = s
				case s.Label != nil && !inner[s.Label.Name]:
					found = s
				case s.Label == nil && s.Tok == token.BREAK && breakable == 0:
					found = s
				}
			case *ast.ForStmt, *ast.RangeStmt, *ast.SwitchStmt, *ast.TypeSwitchStmt, *ast.SelectStmt:
				if c == n {
					return true
				}
				walk(c, breakable+1)
				return false
			}
			return true
		})
	}
	for _, s := range rs.Body.List {
		walk(s, 0)
	}
	return found
}
