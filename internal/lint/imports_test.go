package lint

import (
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
)

const module = "github.com/meshctl/meshctl"

// forbidden are the imports ARCHITECTURE.md rules out, by importing
// package: what a package must not import, as module-relative paths or
// other modules' prefixes.
var forbidden = map[string][]string{
	// The CLI holds flags and output formats; the verbs live in plan.
	"cmd/meshctl": {"generators", "certs"},
	// drift calls plan's verbs and never assembles steps of its own.
	"drift": {"generators", "certs"},
	// apply knows nothing of Linkerd or mesh.cue.
	"apply": {"generators", "schema", "plan", "certs", "drift"},
	// Generators are pure: no cluster.
	"generators": {"plan", "apply", "drift", "k8s.io/client-go", "sigs.k8s.io/controller-runtime"},
	"certs":      {"schema", "generators", "plan", "apply", "drift", "k8s.io/client-go"},
	"schema":     {"generators", "certs", "plan", "apply", "drift", "rollout"},
	// rollout judges numbers and moves states; plan reads and writes them.
	"rollout": {"generators", "certs", "plan", "apply", "drift", "k8s.io/client-go", "sigs.k8s.io/controller-runtime"},
}

// TestImportDirection holds the packages (their non-test files) to the
// import direction of ARCHITECTURE.md.
func TestImportDirection(t *testing.T) {
	pkgs, err := packages.Load(&packages.Config{Mode: packages.NeedName | packages.NeedImports, Dir: "../.."}, "./...")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, p := range pkgs {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.PkgPath, module), "/")
		rules, ok := forbidden[rel]
		if !ok {
			continue
		}
		seen++
		for imp := range p.Imports {
			for _, f := range rules {
				target := f
				if !strings.Contains(f, ".") {
					target = module + "/" + f
				}
				if imp == target || strings.HasPrefix(imp, target+"/") {
					t.Errorf("%s imports %s, which ARCHITECTURE.md rules out", rel, imp)
				}
			}
		}
	}
	if seen != len(forbidden) {
		t.Errorf("checked %d of the %d packages with rules: one moved?", seen, len(forbidden))
	}
}
