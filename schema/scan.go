package schema

import (
	"crypto/sha256"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/scanner"
	"cuelang.org/go/cue/token"
)

// Reading a large mesh without parsing what is remembered.
//
// Once the memo holds a mesh's services, parsing the file is the largest
// cost left in loading it (CUE's parser takes about 70 ms per 1,000
// services × 5 routes; its scanner a fifth of that). scanSplit finds the
// service entries with the scanner alone and parses only what it must: the
// file with its services declarations blanked out (spaces, newlines kept,
// so that every position in it is the user's), and, in place and in one
// parse per file, the entries the memo does not hold. The result is what
// parseSources and splitServices give, entry hashes included
// (TestScanSplit, TestScanSplitCorpus, FuzzScanSplit);
// any input it is not sure of (a syntax error, services written other than
// as `services: {KEY: {...}, ...}` or `services: KEY: {...}`) it leaves to
// them.

// scannedField is one field of a services entry found by scanning:
// `KEY: {...}`, from the key to the closing brace.
type scannedField struct {
	src        int // index in the sources
	start      int // offset of the key
	valueStart int // offset of the value's {
	valueEnd   int // offset after the value's }
}

// scanSplit is parseSources + splitServices for a load whose memo may hold
// the services: the rest of the mesh parsed, and the entries, hashed, with
// fields parsed only for those the memo does not hold. ok false means
// "parse it all".
func scanSplit(srcs []Source, mm *memo) (rest []*ast.File, pkg string, entries []*serviceEntry, ok bool) {
	byKey := map[string]*serviceEntry{}
	fieldsOf := map[*serviceEntry][]scannedField{}
	blanked := make([]Source, len(srcs))
	for i, s := range srcs {
		fields, decls, ok := scanServices(s.Data)
		if !ok {
			return nil, "", nil, false
		}
		for _, f := range fields {
			key, ok := scannedKey(s.Data, f)
			if !ok {
				return nil, "", nil, false
			}
			f.src = i
			e := byKey[key]
			if e == nil {
				e = &serviceEntry{key: key}
				byKey[key] = e
				entries = append(entries, e)
			}
			fieldsOf[e] = append(fieldsOf[e], f)
		}
		blanked[i] = Source{Name: s.Name, Data: blank(s.Data, decls)}
	}

	// Hash every entry as evalServices does; collect the ones to parse.
	mm.mu.Lock()
	known := mm.services
	mm.mu.Unlock()
	var missing []*serviceEntry
	for _, e := range entries {
		texts := make([][]byte, 0, len(fieldsOf[e]))
		for _, f := range fieldsOf[e] {
			texts = append(texts, srcs[f.src].Data[f.valueStart:f.valueEnd])
		}
		e.hash, e.hashed = entryHash(e.key, texts), true
		if me, ok := known[e.hash]; ok {
			e.cached = &me.Service
		} else {
			missing = append(missing, e)
		}
	}

	rest, pkg, err := parseSources(blanked)
	if err != nil {
		return nil, "", nil, false
	}
	// The rest must say nothing of services, as splitServices requires.
	if _, restEntries, ok := splitServices(rest); !ok || len(restEntries) > 0 {
		return nil, "", nil, false
	}
	var toParse []scannedField
	for _, e := range missing {
		toParse = append(toParse, fieldsOf[e]...)
	}
	parsed, ok := parseScannedFields(srcs, toParse)
	if !ok {
		return nil, "", nil, false
	}
	for _, e := range missing {
		for _, f := range fieldsOf[e] {
			e.fields = append(e.fields, parsed[f])
		}
	}
	return rest, pkg, entries, true
}

// entryHash is the memo's key of a services entry: its key and the text of
// each of its fields' values.
func entryHash(key string, texts [][]byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(key))
	for _, t := range texts {
		h.Write([]byte{0})
		h.Write(t)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// scannedKey is the entry key of a scanned field, as entryKey reads it.
func scannedKey(src []byte, f scannedField) (string, bool) {
	var s scanner.Scanner
	file := token.NewFile("", -1, f.valueStart-f.start)
	s.Init(file, src[f.start:f.valueStart], nil, 0)
	_, tok, lit := s.Scan()
	switch tok {
	case token.IDENT:
		if strings.HasPrefix(lit, "#") || strings.HasPrefix(lit, "_") {
			return "", false
		}
		return lit, true
	case token.STRING:
		k, err := literal.Unquote(lit)
		return k, err == nil
	}
	return "", false
}

// parseScannedFields parses entry fields where they stand: each source
// they are in, parsed once with everything but those fields blanked (and a
// comma after each, where the blank would otherwise join two on one line),
// so that their positions are the user's.
func parseScannedFields(srcs []Source, fields []scannedField) (map[scannedField]*ast.Field, bool) {
	bySrc := map[int][]scannedField{}
	for _, f := range fields {
		bySrc[f.src] = append(bySrc[f.src], f)
	}
	out := make(map[scannedField]*ast.Field, len(fields))
	for i, fs := range bySrc {
		s := srcs[i]
		keep := make([]byte, len(s.Data))
		for j, c := range s.Data {
			if c == '\n' || c == '\r' {
				keep[j] = c
			} else {
				keep[j] = ' '
			}
		}
		at := map[int]scannedField{}
		for _, f := range fs {
			copy(keep[f.start:f.valueEnd], s.Data[f.start:f.valueEnd])
			if f.valueEnd < len(keep) && keep[f.valueEnd] == ' ' {
				keep[f.valueEnd] = ','
			}
			at[f.start] = f
		}
		file, err := parser.ParseFile(s.Name, keep, parser.ParseComments)
		if err != nil || len(file.Decls) != len(fs) {
			return nil, false
		}
		for _, d := range file.Decls {
			field, ok := d.(*ast.Field)
			if !ok || !isData(field.Value) {
				return nil, false
			}
			f, ok := at[field.Pos().Offset()]
			if _, isKey := entryKey(field); !ok || !isKey {
				return nil, false
			}
			out[f] = field
		}
	}
	return out, true
}

// blank returns src with the byte ranges replaced by spaces, newlines kept.
func blank(src []byte, ranges [][2]int) []byte {
	out := append([]byte(nil), src...)
	for _, r := range ranges {
		for i := r[0]; i < r[1]; i++ {
			if out[i] != '\n' && out[i] != '\r' {
				out[i] = ' '
			}
		}
	}
	return out
}

// scanServices finds, with CUE's scanner, the top-level services
// declarations of a file and the fields of their entries. It accepts
// `services: {KEY: {...}, ...}` and `services: KEY: {...}`, with string
// or identifier keys and struct values, and nothing else named services at
// the top level; the rest of the file is not looked at here (the caller
// parses it).
func scanServices(src []byte) (fields []scannedField, decls [][2]int, ok bool) {
	var s scanner.Scanner
	errs := 0
	s.Init(token.NewFile("", -1, len(src)), src, func(token.Pos, string, []interface{}) { errs++ }, 0)
	type tk struct {
		off int
		tok token.Token
		lit string
	}
	next := func() tk {
		pos, tok, lit := s.Scan()
		return tk{pos.Offset(), tok, lit}
	}
	end := func(t tk) int { // offset after a } token
		return t.off + 1
	}
	isLabel := func(t tk) bool { return t.tok == token.IDENT || t.tok == token.STRING }
	isServices := func(t tk) bool {
		if t.tok == token.IDENT {
			return t.lit == "services"
		}
		if t.tok == token.STRING {
			k, err := literal.Unquote(t.lit)
			return err == nil && k == "services"
		}
		return false
	}
	// value reads a struct value that starts with t ({) to its }.
	value := func(t tk) (int, int, bool) {
		if t.tok != token.LBRACE {
			return 0, 0, false
		}
		depth := 1
		for depth > 0 {
			u := next()
			switch u.tok {
			case token.LBRACE, token.LBRACK, token.LPAREN:
				depth++
			case token.RBRACE, token.RBRACK, token.RPAREN:
				depth--
				if depth == 0 {
					if u.tok != token.RBRACE {
						return 0, 0, false
					}
					return t.off, end(u), true
				}
			case token.EOF, token.ILLEGAL:
				return 0, 0, false
			}
		}
		return 0, 0, false
	}
	// entry reads `KEY: {...}` from its key t.
	entry := func(t tk) bool {
		if !isLabel(t) {
			return false
		}
		if next().tok != token.COLON {
			return false
		}
		vs, ve, ok := value(next())
		if !ok {
			return false
		}
		fields = append(fields, scannedField{start: t.off, valueStart: vs, valueEnd: ve})
		return true
	}

	t := next()
	for t.tok != token.EOF {
		if t.tok == token.COMMA {
			t = next()
			continue
		}
		if isServices(t) {
			start := t.off
			if next().tok != token.COLON {
				return nil, nil, false
			}
			u := next()
			switch {
			case u.tok == token.LBRACE:
				// The block: { [entry {, entry} [,]] }, each comma written
				// or inserted at a line's end, never two in a row.
				v := next()
				for v.tok != token.RBRACE {
					if !entry(v) {
						return nil, nil, false
					}
					w := next()
					if w.tok == token.COMMA {
						w = next()
					} else if w.tok != token.RBRACE {
						return nil, nil, false
					}
					v = w
				}
				decls = append(decls, [2]int{start, end(v)})
			case isLabel(u):
				if !entry(u) {
					return nil, nil, false
				}
				decls = append(decls, [2]int{start, fields[len(fields)-1].valueEnd})
			default:
				return nil, nil, false
			}
			// The declaration ends here.
			if w := next(); w.tok != token.COMMA && w.tok != token.EOF {
				return nil, nil, false
			} else {
				t = w
			}
			continue
		}
		// Any other declaration: skip to its end, a comma outside brackets.
		depth := 0
		for {
			switch t.tok {
			case token.LBRACE, token.LBRACK, token.LPAREN:
				depth++
			case token.RBRACE, token.RBRACK, token.RPAREN:
				depth--
			case token.ILLEGAL:
				return nil, nil, false
			}
			if depth < 0 {
				return nil, nil, false
			}
			t = next()
			if t.tok == token.EOF && depth != 0 {
				return nil, nil, false
			}
			if (t.tok == token.COMMA && depth == 0) || t.tok == token.EOF {
				break
			}
		}
	}
	return fields, decls, errs == 0
}
