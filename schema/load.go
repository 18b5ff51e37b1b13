// Package schema holds the meshctl CUE schema and loads mesh.cue files
// against it into typed Go configuration.
package schema

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// CUE is the schema source, as the upstream cue command reads it.
//
//go:embed mesh.cue
var CUE []byte

// SchemaFile is the name schema positions carry in errors.
const SchemaFile = "schema/mesh.cue"

// DefaultPath is what meshctl loads when no path is given.
const DefaultPath = "mesh.cue"

// Source is one CUE file to load: its display name and its bytes.
type Source struct {
	Name string
	Data []byte
}

// Load reads a .cue file, or every .cue file of a directory, and returns the
// validated mesh with all defaults applied.
func Load(path string) (*Mesh, error) {
	srcs, err := ReadSources(path)
	if err != nil {
		return nil, err
	}
	return LoadSources(srcs...)
}

// ReadSources reads path (a file or a directory of .cue files) with names
// relative to the working directory, as errors should show them.
func ReadSources(path string) ([]Source, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := []string{path}
	if info.IsDir() {
		files, err = filepath.Glob(filepath.Join(path, "*.cue"))
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("%s: no .cue files in directory", path)
		}
		sort.Strings(files)
	}
	srcs := make([]Source, 0, len(files))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, Source{Name: displayName(f), Data: data})
	}
	return srcs, nil
}

func displayName(path string) string {
	if !filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return path
}

// LoadSources unifies the given files with the schema as one CUE package,
// requires every value to be concrete and decodes the result. A failure is a
// *Error listing each problem with its position and field path.
func LoadSources(srcs ...Source) (*Mesh, error) {
	return loadMesh(srcs, nil)
}

// Evaluate returns the validated CUE value of the mesh; a new CUE context is
// used on every call, since a long-lived one only grows.
func Evaluate(srcs ...Source) (cue.Value, error) {
	files, pkg, err := parseSources(srcs)
	if err != nil {
		return cue.Value{}, err
	}
	v, err := evaluate(files, pkg, srcs)
	if err != nil {
		return cue.Value{}, newError(err, srcs)
	}
	return v, nil
}

// parseSources parses the user's files, which must all be in one package.
func parseSources(srcs []Source) ([]*ast.File, string, error) {
	files := make([]*ast.File, 0, len(srcs))
	pkg := ""
	for _, s := range srcs {
		f, err := parser.ParseFile(s.Name, s.Data, parser.ParseComments)
		if err != nil {
			return nil, "", newError(err, srcs)
		}
		if name := f.PackageName(); name != "" {
			if pkg != "" && name != pkg {
				return nil, "", &Error{Issues: []Issue{{File: s.Name, Line: 1, Column: 1,
					Message: fmt.Sprintf("package %s, but other files are package %s", name, pkg)}}}
			}
			pkg = name
		}
		files = append(files, f)
	}
	return files, pkg, nil
}

// evaluate unifies the files with the schema, as `cue vet -c` does, and
// validates the result.
func evaluate(files []*ast.File, pkg string, srcs []Source) (cue.Value, error) {
	schemaFile, err := parser.ParseFile(SchemaFile, CUE, parser.ParseComments)
	if err != nil {
		return cue.Value{}, fmt.Errorf("embedded schema: %w", err)
	}
	if pkg != "" {
		// The schema has no package clause; give it the user's.
		schemaFile.Decls = append([]ast.Decl{&ast.Package{Name: ast.NewIdent(pkg)}}, schemaFile.Decls...)
	}

	inst := build.NewContext().NewInstance("", nil)
	for _, f := range append([]*ast.File{schemaFile}, files...) {
		if err := inst.AddSyntax(f); err != nil {
			return cue.Value{}, err
		}
	}
	// Validate reports every error at once; v.Err() would stop at the first.
	v := cuecontext.New().BuildInstance(inst)
	if err := v.Validate(cue.Concrete(true), cue.Final()); err != nil {
		return cue.Value{}, err
	}
	return v, nil
}

// loadMesh is LoadSources with an optional memo of validated services.
//
// A mesh is one CUE value, and `cue vet -c` checks it as one. meshctl gets
// the same result faster by evaluating the part of the schema that grows
// with the mesh, one service entry at a time: when the services are plain
// data (see splitServices) and nothing outside services refers to them, the
// rest of the mesh is evaluated with the schema as before, and each entry
// is unified with the schema's compiled services field on its own, on every
// core. The constraints, defaults and error messages are the schema's; only
// the order of evaluation changes. Anything else takes the whole-file path.
// With a memo that holds services, the file is first scanned rather than
// parsed (scanSplit), so that remembered entries are not parsed either.
func loadMesh(srcs []Source, memo *memo) (*Mesh, error) {
	var (
		files, rest []*ast.File
		pkg         string
		entries     []*serviceEntry
		ok          bool
		err         error
	)
	if memo.holdsServices() && schemaSplittable() {
		rest, pkg, entries, ok = scanSplit(srcs, memo)
	}
	if !ok || len(entries) == 0 {
		if files, pkg, err = parseSources(srcs); err != nil {
			return nil, err
		}
		rest, entries, ok = splitServices(files)
	}
	if !ok || len(entries) == 0 || !schemaSplittable() {
		v, err := evaluate(files, pkg, srcs)
		if err != nil {
			return nil, newError(err, srcs)
		}
		var m Mesh
		if err := decodeMesh(v, &m); err != nil {
			return nil, newError(err, srcs)
		}
		return &m, nil
	}

	var (
		m       Mesh
		mainErr error
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		v, err := evaluate(rest, pkg, srcs)
		if err != nil {
			mainErr = err
			return
		}
		mainErr = decodeMesh(v, &m)
	}()
	services, svcErr := evalServices(entries, srcs, memo)
	<-done

	if mainErr != nil || svcErr != nil {
		var all cueerrors.Error
		for _, err := range []error{mainErr, svcErr} {
			for _, e := range cueerrors.Errors(err) {
				all = cueerrors.Append(all, e)
			}
		}
		return nil, newError(all, srcs)
	}
	if len(services) > 0 {
		m.Services = services
	} else if m.Services == nil {
		m.Services = map[string]Service{}
	}
	return &m, nil
}

// decodeMesh decodes the validated mesh, services aside when they were
// split off. Both paths of loadMesh come here, with the value whose
// positions are the user's: the place to fill positions of list entries,
// such as a patch's, from v.LookupPath(...).Pos().
func decodeMesh(v cue.Value, m *Mesh) error {
	if err := v.Decode(m); err != nil {
		return err
	}
	// Where each patch is written, for errors found when it is applied.
	for i := range m.Patches {
		p := v.LookupPath(cue.MakePath(cue.Str("patches"), cue.Index(i)))
		for _, at := range []cue.Value{p.LookupPath(cue.ParsePath("patch")), p} {
			if pos := at.Pos(); pos.IsValid() && pos.Filename() != SchemaFile {
				m.Patches[i].Pos = fmt.Sprintf("%s:%d:%d", pos.Filename(), pos.Line(), pos.Column())
				break
			}
		}
	}
	return nil
}

// serviceEntry is one key of the top-level services struct: every field the
// user's files give it (a key may be declared in several places), and a
// hash of their source text, for the memo.
type serviceEntry struct {
	key    string
	fields []*ast.Field // nil for an entry scanSplit found in the memo
	hash   [sha256.Size]byte
	hashed bool     // hash is set (scanSplit)
	cached *Service // what the memo held for it when scanSplit looked
}

// splitServices takes the entries of the top-level services field out of
// the files, when it can without changing what the files mean: services is
// declared only as top-level fields holding struct literals with constant
// keys, each entry is plain data (literals, lists and structs of regular
// fields: no references, comprehensions, interpolations or constraints),
// and "services" appears nowhere else. rest is the files without those
// fields. The files themselves are not modified.
func splitServices(files []*ast.File) (rest []*ast.File, entries []*serviceEntry, ok bool) {
	byKey := map[string]*serviceEntry{}
	for _, f := range files {
		nf := *f
		nf.Decls = make([]ast.Decl, 0, len(f.Decls))
		for _, d := range f.Decls {
			fd, isField := d.(*ast.Field)
			if !isField {
				if mentions(d, "services") {
					return nil, nil, false
				}
				nf.Decls = append(nf.Decls, d)
				continue
			}
			name, _, err := ast.LabelName(fd.Label)
			if err != nil {
				return nil, nil, false // a computed label might be services
			}
			if name != "services" {
				if mentions(fd.Value, "services") {
					return nil, nil, false
				}
				nf.Decls = append(nf.Decls, d)
				continue
			}
			st, isStruct := fd.Value.(*ast.StructLit)
			if !isStruct || fd.Constraint != token.ILLEGAL || len(fd.Attrs) > 0 {
				return nil, nil, false
			}
			for _, el := range st.Elts {
				switch el := el.(type) {
				case *ast.CommentGroup:
				case *ast.Field:
					key, ok := entryKey(el)
					if !ok || !isData(el.Value) {
						return nil, nil, false
					}
					e := byKey[key]
					if e == nil {
						e = &serviceEntry{key: key}
						byKey[key] = e
						entries = append(entries, e)
					}
					e.fields = append(e.fields, el)
				default:
					return nil, nil, false
				}
			}
		}
		rest = append(rest, &nf)
	}
	return rest, entries, true
}

// entryKey is the constant key of a services entry: an identifier or a
// string literal, without ?, ! or an alias. Hidden and definition
// identifiers are not data keys.
func entryKey(f *ast.Field) (string, bool) {
	if f.Constraint != token.ILLEGAL || len(f.Attrs) > 0 {
		return "", false
	}
	switch l := f.Label.(type) {
	case *ast.Ident:
		if strings.HasPrefix(l.Name, "#") || strings.HasPrefix(l.Name, "_") {
			return "", false
		}
		return l.Name, true
	case *ast.BasicLit:
		if l.Kind != token.STRING {
			return "", false
		}
		s, err := literal.Unquote(l.Value)
		return s, err == nil
	}
	return "", false
}

// isData reports whether x is plain data: what it means does not depend on
// anything outside it.
func isData(x ast.Expr) bool {
	switch x := x.(type) {
	case *ast.BasicLit:
		return true
	case *ast.UnaryExpr:
		lit, ok := x.X.(*ast.BasicLit)
		return ok && (x.Op == token.SUB || x.Op == token.ADD) && (lit.Kind == token.INT || lit.Kind == token.FLOAT)
	case *ast.ListLit:
		for _, el := range x.Elts {
			if !isData(el) {
				return false
			}
		}
		return true
	case *ast.StructLit:
		for _, el := range x.Elts {
			switch el := el.(type) {
			case *ast.CommentGroup, *ast.Attribute:
			case *ast.Field:
				if _, ok := entryKey(el); !ok || !isData(el.Value) {
					return false
				}
			default:
				return false
			}
		}
		return true
	}
	return false
}

// mentions reports whether the identifier name occurs anywhere in n, as a
// label or a reference.
func mentions(n ast.Node, name string) bool {
	found := false
	ast.Walk(n, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok && id.Name == name {
			found = true
		}
		if bl, ok := n.(*ast.BasicLit); ok && bl.Kind == token.STRING {
			if s, err := literal.Unquote(bl.Value); err == nil && s == name {
				found = true
			}
		}
		return !found
	}, nil)
	return found
}

// schemaSplittable reports whether the schema's services field stands on
// its own: no other field mentions services, and nothing the services field
// refers to, directly or through definitions and hidden fields, is a regular
// top-level field (such as clusters). Then an entry unified with the
// services field alone means what it means in the whole mesh. A schema
// change that breaks this only makes loading slower, never different.
var schemaSplittable = sync.OnceValue(func() bool {
	f, err := parser.ParseFile(SchemaFile, CUE)
	if err != nil {
		return false
	}
	decls := map[string][]ast.Expr{}
	var queue []ast.Expr
	for _, d := range f.Decls {
		fd, ok := d.(*ast.Field)
		if !ok {
			if _, isImport := d.(*ast.ImportDecl); !isImport && mentions(d, "services") {
				return false
			}
			continue
		}
		name, _, err := ast.LabelName(fd.Label)
		if err != nil {
			// Pattern constraints on the top level: none may touch services.
			if mentions(d, "services") {
				return false
			}
			continue
		}
		decls[name] = append(decls[name], fd.Value)
		switch {
		case name == "services":
			queue = append(queue, fd.Value)
		case mentions(fd.Value, "services"):
			return false
		}
	}
	seen := map[string]bool{}
	safe := true
	var visit func(n ast.Node) bool
	visit = func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.Field:
			switch n.Label.(type) {
			case *ast.Ident, *ast.BasicLit:
			default:
				ast.Walk(n.Label, visit, nil)
			}
			ast.Walk(n.Value, visit, nil)
			return false
		case *ast.SelectorExpr:
			ast.Walk(n.X, visit, nil)
			return false
		case *ast.Ident:
			if _, top := decls[n.Name]; !top || seen[n.Name] {
				return false
			}
			seen[n.Name] = true
			if !strings.HasPrefix(n.Name, "#") && !strings.HasPrefix(n.Name, "_") {
				safe = false
			}
			queue = append(queue, decls[n.Name]...)
		}
		return safe
	}
	for len(queue) > 0 && safe {
		x := queue[0]
		queue = queue[1:]
		ast.Walk(x, visit, nil)
	}
	return safe
})

// Loader loads meshes again and again, as a reconcile loop does, and
// evaluates only the services whose source text changed since its last
// load: a service entry that validated is remembered by the hash of its key
// and text until a load no longer has it. The schema is the embedded one, so
// the same text always gives the same service. A Loader is safe for
// concurrent use. The meshes it returns share the remembered services' slices
// and maps: treat them as read-only, as the generators do.
//
// With CacheDir set, the memory is also kept on disk (see cache.go), for the
// next process: it then holds every entry that validated in the last
// cacheDays days, not just the last load's.
type Loader struct {
	// CacheDir is the directory of the on-disk memory; empty for none.
	CacheDir string

	memo      memo
	cacheFile string // set by the first load
	cacheRead sync.Once
}

// Load is Load, with the Loader's memory of valid services. The on-disk
// memory, if any, is the one of the first path the Loader loads.
func (l *Loader) Load(path string) (*Mesh, error) {
	srcs, err := ReadSources(path)
	if err != nil {
		return nil, err
	}
	return l.load(path, srcs)
}

// LoadSources is LoadSources, with the Loader's memory of valid services
// (its on-disk memory is named "mesh.cue" if this is its first load).
func (l *Loader) LoadSources(srcs ...Source) (*Mesh, error) {
	return l.load(DefaultPath, srcs)
}

func (l *Loader) load(path string, srcs []Source) (*Mesh, error) {
	if l.CacheDir == "" || !mentionsServices(srcs) {
		return loadMesh(srcs, &l.memo)
	}
	l.cacheRead.Do(func() {
		l.cacheFile = filepath.Join(l.CacheDir, cacheFileName(path))
		l.memo.keepDays = cacheDays
		readCache(l.cacheFile, &l.memo)
	})
	m, err := loadMesh(srcs, &l.memo)
	writeCache(l.cacheFile, &l.memo)
	return m, err
}

// mentionsServices reports whether any source has the word services: one
// without has no service to remember, and the on-disk memory is not read.
func mentionsServices(srcs []Source) bool {
	for _, s := range srcs {
		if bytes.Contains(s.Data, []byte("services")) {
			return true
		}
	}
	return false
}

// memo maps the hash of a service entry's text to its validated value.
type memo struct {
	mu       sync.Mutex
	services map[[sha256.Size]byte]memoEntry
	// keepDays is 0 to remember only the last load's valid entries, or the
	// number of days an entry unused is kept (the on-disk memory).
	keepDays int64
	// dirty says services changed since the on-disk copy was read or
	// written.
	dirty bool
	// evaluated counts the entries the last load evaluated (for tests).
	evaluated int
}

// holdsServices reports whether the memo remembers any service (a nil memo
// does not).
func (mm *memo) holdsServices() bool {
	if mm == nil {
		return false
	}
	mm.mu.Lock()
	defer mm.mu.Unlock()
	return len(mm.services) > 0
}

// memoEntry is a validated service and the day (Unix time / 86,400) it was
// last loaded.
type memoEntry struct {
	Service Service `json:"service"`
	Used    int64   `json:"used"`
}

// evalServices validates each entry against the schema's services field and
// decodes it, spread over the machine's cores. Entries in memo are not
// evaluated again. The errors of all entries are returned together, in the
// order of the entries.
func evalServices(entries []*serviceEntry, srcs []Source, mm *memo) (map[string]Service, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	data := make(map[string][]byte, len(srcs))
	for _, s := range srcs {
		data[s.Name] = s.Data
	}
	var known map[[sha256.Size]byte]memoEntry
	if mm != nil {
		mm.mu.Lock()
		known = mm.services
		mm.mu.Unlock()
	}
	out := make([]Service, len(entries))
	errs := make([]error, len(entries))
	todo := make([]int, 0, len(entries))
	for i, e := range entries {
		if !e.hashed {
			texts := make([][]byte, 0, len(e.fields))
			for _, f := range e.fields {
				start, end := f.Value.Pos(), f.Value.End()
				var text []byte
				if b := data[start.Filename()]; start.IsValid() && end.IsValid() && end.Offset() <= len(b) {
					text = b[start.Offset():end.Offset()]
				}
				texts = append(texts, text)
			}
			e.hash, e.hashed = entryHash(e.key, texts), true
		}
		if e.cached != nil {
			out[i] = *e.cached
			continue
		}
		if known != nil {
			if me, ok := known[e.hash]; ok {
				out[i] = me.Service
				continue
			}
		}
		todo = append(todo, i)
	}

	workers := min(runtime.GOMAXPROCS(0), (len(todo)+63)/64)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := cuecontext.New()
			sf, err := parser.ParseFile(SchemaFile, CUE)
			if err != nil {
				panic(err) // parsed before: the schema is embedded
			}
			schema := ctx.BuildFile(sf).LookupPath(cue.MakePath(cue.Str("services")))
			for {
				n := int(next.Add(1)) - 1
				if n >= len(todo) {
					return
				}
				i := todo[n]
				out[i], errs[i] = evalService(ctx, schema, entries[i])
			}
		}()
	}
	wg.Wait()

	services := make(map[string]Service, len(entries))
	var all cueerrors.Error
	for i, e := range entries {
		if errs[i] != nil {
			for _, ce := range cueerrors.Errors(errs[i]) {
				all = cueerrors.Append(all, ce)
			}
			continue
		}
		services[e.key] = out[i]
	}
	if mm != nil {
		mm.remember(entries, out, errs, len(todo), time.Now().Unix()/86400)
	}
	if all != nil {
		return nil, all
	}
	return services, nil
}

// remember records a load's valid entries as used today, and forgets what
// the memo's policy says to: entries not in this load, or (on disk) entries
// unused for keepDays days, and the oldest beyond maxCacheEntries.
func (mm *memo) remember(entries []*serviceEntry, out []Service, errs []error, evaluated int, today int64) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	next := make(map[[sha256.Size]byte]memoEntry, len(entries))
	if mm.keepDays > 0 {
		for h, me := range mm.services {
			if today-me.Used <= mm.keepDays {
				next[h] = me
			} else {
				mm.dirty = true
			}
		}
	}
	for i, e := range entries {
		if errs[i] != nil {
			continue
		}
		if old, ok := next[e.hash]; !ok || old.Used != today {
			mm.dirty = true
		}
		next[e.hash] = memoEntry{Service: out[i], Used: today}
	}
	if mm.keepDays > 0 && len(next) > maxCacheEntries {
		byAge := make([][sha256.Size]byte, 0, len(next))
		for h := range next {
			byAge = append(byAge, h)
		}
		sort.Slice(byAge, func(i, j int) bool { return next[byAge[i]].Used < next[byAge[j]].Used })
		for _, h := range byAge[:len(next)-maxCacheEntries] {
			delete(next, h)
		}
	}
	mm.services, mm.evaluated = next, evaluated
}

// evalService unifies one entry with the schema's services field (its
// pattern constraints: the key's form and #Service), validates it as the
// whole mesh would be, and decodes it.
func evalService(ctx *cue.Context, schema cue.Value, e *serviceEntry) (Service, error) {
	elts := make([]ast.Decl, len(e.fields))
	for i, f := range e.fields {
		elts[i] = f
	}
	v := schema.Unify(ctx.BuildExpr(&ast.StructLit{Elts: elts}))
	if err := v.Validate(cue.Concrete(true), cue.Final()); err != nil {
		return Service{}, err
	}
	var svc Service
	if err := v.LookupPath(cue.MakePath(cue.Str(e.key))).Decode(&svc); err != nil {
		return Service{}, err
	}
	return svc, nil
}
