package generators

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/meshctl/meshctl/schema"
)

// checkFastYAML requires the fast writer, when it takes obj, to write what
// sigs.k8s.io/yaml writes. It reports whether the fast writer took it.
func checkFastYAML(t *testing.T, what string, obj map[string]any) bool {
	t.Helper()
	if ambiguousKeys(obj) {
		// go-yaml's own order of these keys depends on the map's
		// iteration order: two library runs may differ. Both of
		// meshctl's paths must leave such an object to the library.
		if _, err := appendYAMLMap(nil, obj, 0); err == nil {
			t.Errorf("%s: the fast writer took keys go-yaml orders by chance", what)
		}
		if _, ok := jsonNumbers(obj); ok {
			t.Errorf("%s: the direct path took keys go-yaml orders by chance", what)
		}
		return false
	}
	want, libErr := yaml.Marshal(obj)
	if libErr == nil {
		if direct, err := marshalYAMLLibrary(obj); err != nil || !bytes.Equal(direct, want) {
			t.Errorf("%s: go-yaml without JSON differs from sigs.k8s.io/yaml (%v)\n--- direct\n%s--- library\n%s", what, err, direct, want)
		}
	}
	got, err := appendYAMLMap(nil, obj, 0)
	if err != nil {
		return false
	}
	if libErr != nil {
		t.Errorf("%s: the library fails (%v), and the fast writer wrote\n%s", what, libErr, got)
		return true
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: the fast writer differs from sigs.k8s.io/yaml\n--- fast\n%s--- library\n%s", what, got, want)
	}
	return true
}

// TestFastYAMLMatchesLibrary renders every golden input and example and
// requires every object the fast writer takes to come out as the library
// writes it, and the per-service kinds, the bulk of a large mesh, to be
// taken.
func TestFastYAMLMatchesLibrary(t *testing.T) {
	inputs, _ := filepath.Glob("../testdata/golden/*.cue")
	examples, _ := filepath.Glob("../examples/*.cue")
	inputs = append(inputs, examples...)
	bulk := map[string]bool{"ServiceProfile": true, "HTTPRoute": true, "TrafficSplit": true, "Service": false}
	fast, slow := 0, 0
	for _, f := range inputs {
		m, err := schema.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range []Inputs{{}, {Certs: fixedCerts(t)}} {
			objs, err := Render(m, in)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				if checkFastYAML(t, f+": "+o.ID(), o.Object.Object) {
					fast++
					continue
				}
				slow++
				if bulk[o.Object.GetKind()] {
					t.Errorf("%s: %s took the library path; the per-service kinds should not", f, o.ID())
				}
			}
		}
	}
	t.Logf("%d objects written by the fast writer, %d by the library", fast, slow)
	if fast == 0 {
		t.Fatal("the fast writer took no object")
	}
}

// ambiguousKeys reports whether some mapping in v has keys go-yaml's order
// does not order transitively.
func ambiguousKeys(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k, x := range v {
			if ambiguousKeys(x) {
				return true
			}
			keys = append(keys, k)
		}
		for _, a := range keys {
			for _, b := range keys {
				for _, c := range keys {
					if yamlKeyLess(a, b) && yamlKeyLess(b, c) && !yamlKeyLess(a, c) {
						return true
					}
				}
			}
		}
	case []any:
		for _, x := range v {
			if ambiguousKeys(x) {
				return true
			}
		}
	}
	return false
}

// trickyStrings are scalars at the edges of go-yaml's plain style.
var trickyStrings = []string{
	"", " ", "a", "a b", " a", "a ", "a  b", "a:b", "a: b", "a:", ":a", "a #b", "a#b", "#a",
	"-", "-a", "- a", "--a", "---", "---a", "...", "..a", ".a", ".5", "+a", "+1", "-1", "-.inf",
	"1", "1.5", "1e3", "1E3", "0x1F", "0o7", "0b101", "1_000", "10s", "100ms", "1h30m", "5e", "7x",
	"12:30", "1:20:30", "2001-12-14", "2001-12-14t21:59:43.10-05:00",
	"y", "Y", "yes", "no", "on", "OFF", "true", "True", "null", "~", "<<", "nul", "yess", "tru",
	"GET /api/svc-0/r0", "/api/svc-0/r0(/[^/]+)?", "[a]", "a[b]", "{a}", "a{b}", "a,b", "?a", "a?b",
	"a\nb", "a\tb", "é", "a'b", "a\"b", "'a'", "&a", "*a", "!a", "|a", ">a", "%a", "@a", "`a",
	"linkerd.io/control-plane-ns", "-log-level=info", "--identity-trust-domain=cluster.local",
	strings.Repeat("word ", 20), strings.Repeat("x", 100), strings.Repeat("ab ", 26) + "c",
	// Not UTF-8: go-yaml alone writes !!binary, the library (and the API
	// server) U+FFFD per byte. FuzzFastYAML found it.
	"\xf6", "a\xf6\xf7b", "\xe2\x82",
}

// TestFastYAMLStrings puts tricky and random strings in every position a
// scalar takes (a value after keys of many lengths, so that the line width
// is crossed at every column; a list item; a key) and requires the fast
// writer to write what the library writes, whenever it takes the object.
func TestFastYAMLStrings(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ab yz09.-+:#[]{}?,'\"!eExobsm_/\\~<>&*|%@` \t"
	strs := append([]string(nil), trickyStrings...)
	for range 3000 {
		n := r.IntN(12)
		if r.IntN(10) == 0 {
			n = 60 + r.IntN(40)
		}
		var sb strings.Builder
		for range n {
			sb.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		strs = append(strs, sb.String())
	}
	fast := 0
	for _, s := range strs {
		for _, keyLen := range []int{1, 5, 20, 40, 60, 75} {
			obj := map[string]any{strings.Repeat("k", keyLen): s, "list": []any{s, map[string]any{"x": s}, []any{s}}}
			if checkFastYAML(t, "value "+strconvQuote(s), obj) {
				fast++
			}
		}
		checkFastYAML(t, "key "+strconvQuote(s), map[string]any{s: 1, "b": map[string]any{s: "v"}})
	}
	if fast < len(strs) {
		t.Errorf("the fast writer took only %d of %d objects", fast, len(strs)*6)
	}
}

func strconvQuote(s string) string { return "\"" + strings.ReplaceAll(s, "\"", "\\\"") + "\"" }

// TestFastYAMLKeyOrder checks go-yaml's key order (digit runs by value) on
// random keys.
func TestFastYAMLKeyOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const alphabet = "ab0019.-_/Z"
	taken := 0
	for range 500 {
		obj := map[string]any{}
		for range 2 + r.IntN(8) {
			var sb strings.Builder
			sb.WriteByte("abZ"[r.IntN(3)])
			for range r.IntN(6) {
				sb.WriteByte(alphabet[r.IntN(len(alphabet))])
			}
			obj[sb.String()] = 1
		}
		if checkFastYAML(t, "keys", obj) {
			taken++
		}
	}
	// Most random key sets are ordered transitively and so are taken.
	if taken < 250 {
		t.Errorf("the fast writer took %d of 500 key sets", taken)
	}
}

// TestFastYAMLValues covers the other scalar types and nesting shapes.
func TestFastYAMLValues(t *testing.T) {
	for name, v := range map[string]any{
		"ints":      []any{int64(0), int64(-5), int64(1) << 62, 7, int32(3)},
		"floats":    []any{0.2, 1.0, -0.0, 100.0, 1e6, 1e20, 1e-7, 0.000001, 1234567.5, 9007199254740993.0, 1e21},
		"bools":     []any{true, false, nil},
		"empty":     map[string]any{"m": map[string]any{}, "l": []any{}, "s": []any{map[string]any{}, []any{}}},
		"nested":    []any{[]any{[]any{"a", "b"}, "c"}, map[string]any{"x": []any{map[string]any{"y": []any{1}}}}},
		"stringish": map[string]any{"a": []string{"x", "y"}, "b": map[string]string{"k": "v"}},
	} {
		checkFastYAML(t, name, map[string]any{"v": v, "w": map[string]any{"deep": v}})
	}
}

// FuzzFastYAML is TestFastYAMLStrings with the fuzzer's strings.
func FuzzFastYAML(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s, 10)
	}
	f.Fuzz(func(t *testing.T, s string, keyLen int) {
		if keyLen < 1 || keyLen > 120 {
			return
		}
		checkFastYAML(t, "value", map[string]any{strings.Repeat("k", keyLen): s, "l": []any{s}})
		checkFastYAML(t, "key", map[string]any{s: 1})
	})
}
