package schema

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"
	"github.com/google/go-cmp/cmp"
)

// loadWhole is the loader without the per-service split: the whole mesh
// evaluated as one value, as `cue vet -c` does.
func loadWhole(srcs ...Source) (*Mesh, error) {
	v, err := Evaluate(srcs...)
	if err != nil {
		return nil, err
	}
	var m Mesh
	if err := decodeMesh(v, &m); err != nil {
		return nil, newError(err, srcs)
	}
	return &m, nil
}

// loadCase is one input of the loader's equivalence tests.
type loadCase struct {
	name string
	srcs []Source
}

// loadCases is every input meshctl has, and services written to fail in
// each way the schema knows.
func loadCases(t *testing.T) []loadCase {
	t.Helper()
	inputs := map[string]string{
		"services": `services: {
	"shop/cart": {model: "serviceprofile", port: 8080, routes: [{name: "a", pathRegex: "/a", timeout: "1s", responseClasses: [{condition: status: min: 500}]}], retryBudget: {}}
	"shop/web": {split: {web: 90, "web-v2": 10}, fault: percent: 5, export: "gateway"}
	"shop/smi": model: "smi"
}
services: "shop/cart": routes: [{name: "a", method: "GET"}]
namespaces: shop: {}
`,
		"many errors": `services: {
	"shop/a": routes: [{name: "", pathRegex: "("}]
	"shop/b": {split: {x: 50}, port: 0}
	"shop/c": {model: "httproute", retryBudget: {}, routes: [{name: "r", pathRegex: "/", responseClasses: [{}]}]}
	"shop/d": {model: "nope", splitMode: "smi"}
	"shop/e": {fault: {percent: 200, status: 200}, export: "x"}
	"shop/f": {routes: [{name: "r", pathRegex: "/", method: "GET", methd: "GET"}]}
	"shop/g": {routes: [{name: "r"}], retryBudget: ttl: "soon"}
	bad: {}
	"Shop/x": {}
}
controlPlane: replicas: 0
`,
		"errors in two files": "",
	}
	var cases []loadCase
	add := func(name string, srcs ...Source) {
		cases = append(cases, loadCase{name, srcs})
	}
	for name, src := range inputs {
		if src != "" {
			add(name, Source{Name: "mesh.cue", Data: []byte(src)})
		}
	}
	add("errors in two files",
		Source{Name: "a.cue", Data: []byte(`services: "shop/a": routes: [{name: "r", pathRegex: "/", timeout: "x"}]`)},
		Source{Name: "b.cue", Data: []byte(`services: "shop/a": {port: 99999}
services: "shop/b": split: {a: 1}`)})
	// Enough entries for every core to take some, with errors among them.
	var many strings.Builder
	for i := range 200 {
		port := 8000 + i
		if i%25 == 7 {
			port = 0
		}
		fmt.Fprintf(&many, "services: \"shop/s%d\": {port: %d, routes: [{name: \"r%d\", pathRegex: \"/%d\"}]}\n", i, port, i, i)
	}
	add("200 services, 8 invalid", Source{Name: "mesh.cue", Data: []byte(many.String())})
	add("200 services", Source{Name: "mesh.cue", Data: []byte(strings.ReplaceAll(many.String(), "port: 0,", "port: 1,"))})
	files, _ := filepath.Glob("../testdata/*/*.cue")
	ex, _ := filepath.Glob("../examples/*.cue")
	for _, f := range append(append(files, ex...), "../mesh.cue") {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		add(f, Source{Name: filepath.Base(f), Data: data})
	}
	return cases
}

// TestSplitLoadMatchesWhole loads every input of loadCases both per
// service and as one value: the meshes and the error text must be the same.
func TestSplitLoadMatchesWhole(t *testing.T) {
	cases := loadCases(t)
	split := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs, _, err := parseSources(tc.srcs)
			if err == nil {
				if _, entries, ok := splitServices(fs); ok && len(entries) > 0 {
					split++
				}
			}
			want, wantErr := loadWhole(tc.srcs...)
			got, gotErr := LoadSources(tc.srcs...)
			if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) {
				t.Fatalf("errors differ:\nwhole:\n%v\nsplit:\n%v", wantErr, gotErr)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("mesh (-whole +split):\n%s", d)
			}
		})
	}
	if split < 5 {
		t.Errorf("only %d inputs took the split path", split)
	}
}

func TestSchemaSplittable(t *testing.T) {
	if !schemaSplittable() {
		t.Fatal("the schema's services field refers to the rest of the mesh: every load takes the slow whole-file path (see schemaSplittable)")
	}
}

func TestSplitServicesOnlyPlainData(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		split     bool
		keys      string
	}{
		{"struct", `services: {"a/b": {port: 80}, "a/c": routes: [{name: "x", isRetryable: true, responseClasses: [{condition: status: min: -1}]}]}`, true, "a/b a/c"},
		{"shorthand twice", "services: \"a/b\": port: 80\nservices: \"a/b\": model: \"smi\"\nviz: enabled: true", true, "a/b"},
		{"identifier key", `services: cart: {}`, true, "cart"},
		{"no services", `viz: enabled: true`, true, ""},
		{"reference", "_p: 80\nservices: \"a/b\": port: _p", false, ""},
		{"interpolation", `services: "a/b": routes: [{name: "\(1)"}]`, false, ""},
		{"comprehension", `services: {for k in ["a/b"] {(k): {}}}`, false, ""},
		{"pattern", `services: [string]: port: 80`, false, ""},
		{"computed key", `services: ("a/" + "b"): {}`, false, ""},
		{"optional key", `services: "a/b"?: {}`, false, ""},
		{"constraint", `services: "a/b": port: >80`, false, ""},
		{"default", `services: "a/b": port: *80 | 81`, false, ""},
		{"hidden field", `services: "a/b": _x: 1`, false, ""},
		{"read elsewhere", "services: \"a/b\": port: 80\n_p: services[\"a/b\"].port", false, ""},
		{"top-level comprehension", `for x in [1] {services: "a/b": port: 80}`, false, ""},
		{"embedded", `{services: "a/b": port: 80}`, false, ""},
		{"let", "let s = services\nservices: \"a/b\": {}", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parser.ParseFile("mesh.cue", tc.src)
			if err != nil {
				t.Fatal(err)
			}
			rest, entries, ok := splitServices([]*ast.File{f})
			if ok != tc.split {
				t.Fatalf("split = %v, want %v", ok, tc.split)
			}
			if !ok {
				return
			}
			var keys []string
			for _, e := range entries {
				keys = append(keys, e.key)
			}
			if got := strings.Join(keys, " "); got != tc.keys {
				t.Errorf("keys %q, want %q", got, tc.keys)
			}
			for _, d := range rest[0].Decls {
				if mentions(d, "services") {
					t.Errorf("services left in the rest of the mesh")
				}
			}
		})
	}
}

func TestLoaderReevaluatesOnlyChanges(t *testing.T) {
	var l Loader
	mesh := func(ports ...int) Source {
		var b strings.Builder
		for i, p := range ports {
			fmt.Fprintf(&b, "services: \"shop/s%d\": {port: %d, routes: [{name: \"r\", pathRegex: \"/\"}]}\n", i, p)
		}
		return Source{Name: "mesh.cue", Data: []byte(b.String())}
	}
	for _, step := range []struct {
		name      string
		src       Source
		evaluated int
		wantErr   bool
	}{
		{"first load", mesh(80, 81, 82), 3, false},
		{"unchanged", mesh(80, 81, 82), 0, false},
		{"one changed", mesh(80, 81, 90), 1, false},
		{"one invalid", mesh(80, 0, 90), 1, true},
		{"fixed", mesh(80, 81, 90), 1, false},
		{"one removed, one back", mesh(80, 81), 0, false},
		{"removed one forgotten", mesh(80, 81, 90), 1, false},
	} {
		m, err := l.LoadSources(step.src)
		if (err != nil) != step.wantErr {
			t.Fatalf("%s: error %v", step.name, err)
		}
		if l.memo.evaluated != step.evaluated {
			t.Errorf("%s: evaluated %d services, want %d", step.name, l.memo.evaluated, step.evaluated)
		}
		if err != nil {
			continue
		}
		want, err := loadWhole(step.src)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, m); d != "" {
			t.Errorf("%s: mesh (-whole +loader):\n%s", step.name, d)
		}
	}
}
