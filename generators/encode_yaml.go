package generators

import (
	"errors"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	goyaml "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"
)

// YAML output: `meshctl build` writes what sigs.k8s.io/yaml.Marshal writes
// (JSON, read back by go-yaml v2, written by it with its block style, its key
// order and its quoting), byte for byte. That path converts every object
// three times, and at 10,000 services it took longer than evaluating the
// mesh. appendYAML writes the same bytes directly for the objects that
// consist of what the generators produce: maps with ASCII keys, lists,
// strings go-yaml writes plain, integers, floats, booleans and null. Any
// other value (a string go-yaml would quote or fold, a multi-line string, an
// unexpected Go type) makes the whole object take the library path, so the
// output never depends on which path wrote it (TestFastYAMLMatchesLibrary).

// errSlowPath says an object holds something appendYAML does not write.
var errSlowPath = errors.New("value outside the fast YAML subset")

// marshalYAML returns the YAML of one object, as sigs.k8s.io/yaml writes it.
func marshalYAML(obj map[string]any) ([]byte, error) {
	if len(obj) > 0 {
		if b, err := appendYAMLMap(make([]byte, 0, 1024), obj, 0); err == nil {
			return b, nil
		}
	}
	return marshalYAMLLibrary(obj)
}

// marshalYAMLLibrary has go-yaml write the object, without the library's
// detour through JSON when the object holds nothing that detour changes:
// JSON turns every float without a fraction into an integer, and go-yaml
// writes maps, lists, strings, booleans and null the same either way.
func marshalYAMLLibrary(obj map[string]any) ([]byte, error) {
	if norm, ok := jsonNumbers(obj); ok {
		return goyaml.Marshal(norm)
	}
	return yaml.Marshal(obj)
}

// jsonNumbers returns v with integral floats made integers, as a JSON round
// trip leaves them, or false if v holds anything else the round trip would
// change (a type of its own, a float JSON cannot hold or writes in full),
// or keys whose order go-yaml leaves to chance.
func jsonNumbers(v any) (any, bool) {
	switch v := v.(type) {
	case map[string]any:
		// Keys go-yaml orders ambiguously are left to the library's
		// own ambiguity.
		keys := slices.SortedFunc(maps.Keys(v), yamlKeyCompare)
		if !totalOrder(keys) {
			return nil, false
		}
		out := make(map[string]any, len(v))
		for k, x := range v {
			if invalidUTF8(k) {
				return nil, false
			}
			n, ok := jsonNumbers(x)
			if !ok {
				return nil, false
			}
			out[k] = n
		}
		return out, true
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			n, ok := jsonNumbers(x)
			if !ok {
				return nil, false
			}
			out[i] = n
		}
		return out, true
	case float64:
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			return nil, false
		case v == math.Trunc(v):
			if math.Abs(v) >= 1<<63 {
				return nil, false
			}
			return int64(v), true
		}
		return v, true
	case string:
		return v, utf8.ValidString(v)
	case []string:
		return v, !slices.ContainsFunc(v, invalidUTF8)
	case map[string]string:
		for k, x := range v {
			if invalidUTF8(k) || invalidUTF8(x) {
				return nil, false
			}
		}
		return v, true
	case bool, nil, int64, int, int32:
		return v, true
	}
	return nil, false
}

// invalidUTF8 reports a string that is not UTF-8. A Kubernetes object is
// JSON, which holds only UTF-8: the API server stores each invalid byte as
// U+FFFD, and so does sigs.k8s.io/yaml's detour through JSON, while go-yaml
// alone writes the string as !!binary. Such strings take the detour, so
// that build writes what the cluster would hold.
func invalidUTF8(s string) bool { return !utf8.ValidString(s) }

// yamlWidth is go-yaml's preferred line width: a plain scalar is folded at a
// space once its line is longer.
const yamlWidth = 80

// appendYAMLMap writes a non-empty or empty block mapping whose keys start at
// column indent (an empty one is written by the caller as {}).
func appendYAMLMap(b []byte, m map[string]any, indent int) ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		if !plainKey(k) {
			return nil, errSlowPath
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, yamlKeyCompare)
	if !totalOrder(keys) {
		return nil, errSlowPath
	}
	for i, k := range keys {
		if i > 0 {
			b = appendIndent(b, indent)
		}
		b = append(append(b, k...), ':')
		var err error
		if b, err = appendYAMLValue(b, m[k], indent, indent+len(k)+2, false); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// appendYAMLValue writes v after a mapping key (inList false) or a "- "
// (inList true) whose content is at column indent; col is the column a
// scalar would start at.
func appendYAMLValue(b []byte, v any, indent, col int, inList bool) ([]byte, error) {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			return appendScalar(b, "{}"), nil
		}
		if inList {
			// "- key: value", the mapping's keys at the item's column.
			return appendYAMLMap(append(b, ' '), v, indent)
		}
		b = appendIndent(b, indent+2)
		return appendYAMLMap(b, v, indent+2)
	case []any:
		if len(v) == 0 {
			return appendScalar(b, "[]"), nil
		}
		// go-yaml does not indent a sequence under a mapping key.
		itemIndent := indent
		if inList {
			b = append(b, ' ')
		} else {
			b = appendIndent(b, indent)
		}
		for i, item := range v {
			if i > 0 {
				b = appendIndent(b, itemIndent)
			}
			b = append(b, '-')
			var err error
			if b, err = appendYAMLValue(b, item, itemIndent+2, itemIndent+2, true); err != nil {
				return nil, err
			}
		}
		return b, nil
	case []string:
		items := make([]any, len(v))
		for i, s := range v {
			items[i] = s
		}
		return appendYAMLValue(b, items, indent, col, inList)
	case map[string]string:
		m := make(map[string]any, len(v))
		for k, s := range v {
			m[k] = s
		}
		return appendYAMLValue(b, m, indent, col, inList)
	case string:
		if !plainValue(v, col) {
			return nil, errSlowPath
		}
		return appendScalar(b, v), nil
	case bool:
		return appendScalar(b, strconv.FormatBool(v)), nil
	case nil:
		return appendScalar(b, "null"), nil
	case int64:
		return append(strconv.AppendInt(append(b, ' '), v, 10), '\n'), nil
	case int:
		return append(strconv.AppendInt(append(b, ' '), int64(v), 10), '\n'), nil
	case int32:
		return append(strconv.AppendInt(append(b, ' '), int64(v), 10), '\n'), nil
	case float64:
		// The library writes JSON, which go-yaml reads back as an integer
		// when it has no fraction, and otherwise writes with 'g'.
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			return nil, errSlowPath
		case v == math.Trunc(v) && math.Abs(v) < 1<<53:
			return append(strconv.AppendInt(append(b, ' '), int64(v), 10), '\n'), nil
		case math.Abs(v) >= 1e-6 && math.Abs(v) < 1e21:
			return append(strconv.AppendFloat(append(b, ' '), v, 'g', -1, 64), '\n'), nil
		}
	}
	return nil, errSlowPath
}

// appendScalar writes " s" and ends the line.
func appendScalar(b []byte, s string) []byte {
	b = append(b, ' ')
	b = append(b, s...)
	return append(b, '\n')
}

// appendIndent ends nothing: it starts a new line's content at column n,
// after the newline the previous scalar wrote, or after "key:".
func appendIndent(b []byte, n int) []byte {
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	for range n {
		b = append(b, ' ')
	}
	return b
}

// plainKey reports whether go-yaml writes k as a plain mapping key: a
// one-line ASCII string it would write plain anywhere.
func plainKey(k string) bool {
	return len(k) <= 128 && plainString(k) && !strings.Contains(k, " ")
}

// plainValue reports whether go-yaml writes s plain, on one line, when s
// starts at column col: a string it writes plain, and, when s has a space,
// short enough that no space is past the line width (where go-yaml folds).
func plainValue(s string, col int) bool {
	if !plainString(s) {
		return false
	}
	return col+len(s) <= yamlWidth || !strings.Contains(s, " ")
}

// plainString is a conservative reading of go-yaml v2's choice of the plain
// style in block context: printable ASCII, no indicator where it would
// start or end a token, and no text that reads back as anything but a
// string (a number, a boolean, null, a timestamp). Whatever it rejects is
// written by the library.
func plainString(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return false
		}
		switch c {
		case ':':
			if i+1 == len(s) || s[i+1] == ' ' {
				return false
			}
		case '#':
			if i > 0 && s[i-1] == ' ' {
				return false
			}
		case ' ':
			if i == 0 || i+1 == len(s) {
				return false
			}
		}
	}
	if len(s) >= 3 && (s[:3] == "---" || s[:3] == "...") {
		return false
	}
	switch c := s[0]; {
	case strings.IndexByte("#,[]{}&*!|>'\"%@`?:", c) >= 0:
		return false
	case c == '-' || c == '+':
		// "-flag" and "--flag": a sign and a letter is no number.
		rest := s[1:]
		if c == '-' && strings.HasPrefix(rest, "-") {
			rest = rest[1:]
		}
		return rest != "" && isASCIILetter(rest[0])
	case c == '.':
		return false
	case c >= '0' && c <= '9':
		return unitSuffixed(s)
	}
	switch s {
	case "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
		"true", "True", "TRUE", "false", "False", "FALSE",
		"on", "On", "ON", "off", "Off", "OFF",
		"~", "null", "Null", "NULL", "<<":
		return false
	}
	return true
}

// unitSuffixed reports whether s is digits and then letters and digits, such
// as "100ms", "5s" or "5xx", with nothing go-yaml reads as a number's
// notation (a 0x, 0o or 0b prefix, an exponent).
func unitSuffixed(s string) bool {
	i := 0
	for i < len(s) && isASCIIDigit(s[i]) {
		i++
	}
	if i == len(s) || !isASCIILetter(s[i]) {
		return false
	}
	switch s[i] {
	case 'e', 'E':
		return false
	case 'x', 'X', 'o', 'O', 'b', 'B':
		if s[:i] == "0" {
			return false
		}
	}
	for ; i < len(s); i++ {
		if !isASCIILetter(s[i]) && (s[i] < '0' || s[i] > '9') {
			return false
		}
	}
	return true
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isASCIIDigit(c byte) bool { return c >= '0' && c <= '9' }

// yamlKeyCompare orders mapping keys as go-yaml v2 does: letters after
// non-letters, and runs of digits by their numeric value, so "a9" comes
// before "a10". Keys here are ASCII (plainKey).
func yamlKeyCompare(a, b string) int {
	if yamlKeyLess(a, b) {
		return -1
	}
	if yamlKeyLess(b, a) {
		return 1
	}
	return 0
}

// totalOrder reports whether yamlKeyLess orders the sorted keys strictly
// and transitively. go-yaml's order is not transitive on some keys (such as
// "b099", "b0ZZZ", "b91."), and then what it writes depends on the order in
// which its sort met them; such a mapping is left to the library.
func totalOrder(keys []string) bool {
	if len(keys) > 64 {
		return false
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if !yamlKeyLess(keys[i], keys[j]) || yamlKeyLess(keys[j], keys[i]) {
				return false
			}
		}
	}
	return true
}

func yamlKeyLess(a, b string) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] == b[i] {
			continue
		}
		al, bl := isASCIILetter(a[i]), isASCIILetter(b[i])
		if al && bl {
			return a[i] < b[i]
		}
		if al || bl {
			return bl
		}
		// Neither is a letter: compare the digit runs starting here.
		var an, bn int64
		if a[i] == '0' || b[i] == '0' {
			// Inside a number with a nonzero digit before, a leading
			// zero is no longer leading.
			for j := i - 1; j >= 0 && isASCIIDigit(a[j]); j-- {
				if a[j] != '0' {
					an, bn = 1, 1
					break
				}
			}
		}
		ai, bi := i, i
		for ; ai < len(a) && isASCIIDigit(a[ai]); ai++ {
			an = an*10 + int64(a[ai]-'0')
		}
		for ; bi < len(b) && isASCIIDigit(b[bi]); bi++ {
			bn = bn*10 + int64(b[bi]-'0')
		}
		if an != bn {
			return an < bn
		}
		if ai != bi {
			return ai < bi
		}
		return a[i] < b[i]
	}
	return len(a) < len(b)
}
