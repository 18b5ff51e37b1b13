// Package schema holds the meshctl CUE schema and loads mesh.cue files
// against it into typed Go configuration.
package schema

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/parser"
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
	v, err := Evaluate(srcs...)
	if err != nil {
		return nil, err
	}
	var m Mesh
	if err := v.Decode(&m); err != nil {
		return nil, newError(err, srcs)
	}
	return &m, nil
}

// Evaluate returns the validated CUE value of the mesh; a new CUE context is
// used on every call, since a long-lived one only grows.
func Evaluate(srcs ...Source) (cue.Value, error) {
	files := make([]*ast.File, 0, len(srcs))
	pkg := ""
	for _, s := range srcs {
		f, err := parser.ParseFile(s.Name, s.Data, parser.ParseComments)
		if err != nil {
			return cue.Value{}, newError(err, srcs)
		}
		if name := f.PackageName(); name != "" {
			if pkg != "" && name != pkg {
				return cue.Value{}, &Error{Issues: []Issue{{File: s.Name, Line: 1, Column: 1,
					Message: fmt.Sprintf("package %s, but other files are package %s", name, pkg)}}}
			}
			pkg = name
		}
		files = append(files, f)
	}
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
			return cue.Value{}, newError(err, srcs)
		}
	}
	// Validate reports every error at once; v.Err() would stop at the first.
	v := cuecontext.New().BuildInstance(inst)
	if err := v.Validate(cue.Concrete(true), cue.Final()); err != nil {
		return cue.Value{}, newError(err, srcs)
	}
	return v, nil
}
