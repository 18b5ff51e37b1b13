package schema

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
)

// parsedSplit is what the parsing path gives for srcs: each entry's key and
// hash, in order, or ok false.
func parsedSplit(srcs []Source) (keys []string, hashes [][sha256.Size]byte, ok bool) {
	files, _, err := parseSources(srcs)
	if err != nil {
		return nil, nil, false
	}
	_, entries, ok := splitServices(files)
	if !ok {
		return nil, nil, false
	}
	data := map[string][]byte{}
	for _, s := range srcs {
		data[s.Name] = s.Data
	}
	for _, e := range entries {
		var texts [][]byte
		for _, f := range e.fields {
			texts = append(texts, data[f.Value.Pos().Filename()][f.Value.Pos().Offset():f.Value.End().Offset()])
		}
		keys = append(keys, e.key)
		hashes = append(hashes, entryHash(e.key, texts))
	}
	return keys, hashes, true
}

// checkScanSplit requires scanSplit, whenever it takes srcs, to find the
// entries the parsing path finds, with the same hashes, and each parsed
// entry's fields where the parser puts them. It reports whether scanSplit
// took srcs.
func checkScanSplit(t *testing.T, srcs []Source, mm *memo) bool {
	t.Helper()
	_, _, entries, ok := scanSplit(srcs, mm)
	if !ok {
		return false
	}
	keys, hashes, pok := parsedSplit(srcs)
	if !pok {
		t.Fatalf("scanSplit took an input the parsing path does not split:\n%s", srcs[0].Data)
	}
	if len(entries) != len(keys) {
		t.Fatalf("scanSplit found %d entries, the parser %d", len(entries), len(keys))
	}
	for i, e := range entries {
		if e.key != keys[i] || e.hash != hashes[i] {
			t.Errorf("entry %d: scanSplit %q %x, the parser %q %x", i, e.key, e.hash[:4], keys[i], hashes[i][:4])
		}
		if e.cached == nil && len(e.fields) == 0 {
			t.Errorf("entry %q is neither cached nor parsed", e.key)
		}
	}
	return true
}

func TestScanSplit(t *testing.T) {
	emptyMemo := &memo{}
	for _, tc := range []struct {
		name, src string
		take      bool
	}{
		{"block", "services: {\n\t\"a/b\": {port: 80}\n\t\"a/c\": {routes: [{name: \"x\", pathRegex: \"/{1}\"}]}, cart: {}\n}\nnamespaces: a: {}", true},
		{"shorthand", "services: \"a/b\": {port: 80}\nviz: enabled: true\nservices: \"a/b\": {model: \"smi\"}", true},
		{"one line block", `services: {"a/b": {port: 80}, "a/c": {}}`, true},
		{"comments", "// c\nservices: { // c\n\t\"a/b\": { // c\n\t\tport: 80 // c\n\t} // c\n}", true},
		{"package", "package mesh\n\nservices: \"a/b\": {}", true},
		{"no services", "viz: enabled: true", true},
		{"services in a string elsewhere", "namespaces: services: {}\nservices: \"a/b\": {}", false},
		{"chain without braces", `services: "a/b": port: 80`, false},
		{"pattern", `services: [string]: {}`, false},
		{"optional", `services: "a/b"?: {}`, false},
		{"embedded", `services: {"a/b": {}} & {}`, false},
		{"reference", "_p: 80\nservices: \"a/b\": {port: _p}", false},
		{"hidden key", `services: {_x: {}}`, false},
		{"definition key", `services: {#x: {}}`, false},
		{"interpolated key", `services: {"a/\(1)": {}}`, false},
		{"read elsewhere", "services: \"a/b\": {port: 80}\n_p: services[\"a/b\"].port", false},
		{"syntax error", "services: {\"a/b\": {port: 80}", false},
		{"syntax error after", "services: \"a/b\": {}\nviz: {", false},
		{"attribute", `services: {"a/b": {} @x()}`, false},
		{"ellipsis", `services: {"a/b": {}, ...}`, false},
		{"list value", `services: {"a/b": [1]}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srcs := []Source{{Name: "mesh.cue", Data: []byte(tc.src)}}
			took := checkScanSplit(t, srcs, emptyMemo)
			// "no services" is taken with no entries: the caller parses it.
			if took != tc.take {
				t.Errorf("scanSplit took it: %v, want %v", took, tc.take)
			}
		})
	}
}

// TestScanSplitCorpus runs every input of loadCases and a generated mesh
// through checkScanSplit, with an empty memo and with the memo of a load
// of the input, and requires the generated mesh to be taken with nothing
// parsed once remembered.
func TestScanSplitCorpus(t *testing.T) {
	var gen strings.Builder
	for i := range 300 {
		fmt.Fprintf(&gen, "services: \"ns-%d/svc-%d\": {model: \"serviceprofile\", port: %d, routes: [{name: \"GET /r%d\", method: \"GET\", pathRegex: \"/r%d(/[^/]+)?\", timeout: \"%dms\"}]}\n", i%10, i, 8000+i, i, i, 100+i)
	}
	cases := append(loadCases(t), loadCase{"generated", []Source{{Name: "mesh.cue", Data: []byte(gen.String())}}})
	taken := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkScanSplit(t, tc.srcs, &memo{})
			var l Loader
			l.LoadSources(tc.srcs...)
			if checkScanSplit(t, tc.srcs, &l.memo) {
				taken++
			}
			if tc.name == "generated" {
				_, _, entries, ok := scanSplit(tc.srcs, &l.memo)
				if !ok {
					t.Fatal("the generated mesh is not taken")
				}
				for _, e := range entries {
					if e.fields != nil || e.cached == nil {
						t.Fatalf("entry %q parsed although remembered", e.key)
					}
				}
			}
		})
	}
	if taken < 10 {
		t.Errorf("scanSplit took only %d inputs", taken)
	}
}

// FuzzScanSplit: on any input scanSplit either declines or agrees with the
// parser, and never panics.
func FuzzScanSplit(f *testing.F) {
	f.Add([]byte("services: {\"a/b\": {port: 80}}\nnamespaces: a: {}"))
	f.Add([]byte("services: \"a/b\": {routes: [{name: \"x\"}]}"))
	f.Add([]byte("package x\nservices: {cart: {}, \"a/b\": {}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkScanSplit(t, []Source{{Name: "fuzz.cue", Data: data}}, &memo{})
	})
}
