// Package rendertest renders the meshes of mesh.cue, examples/ and
// testdata/golden/ and finds in them the configuration files that programs
// other than Kubernetes and Linkerd read (generators.ProgramConfigs). The
// tests that load those files with each program's own parser share it:
// hack/promql, hack/otelcol and hack/nginx (issue 27). It imports only
// schema and generators, so the modules under hack/ stay small.
package rendertest

import (
	"bytes"
	"fmt"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/schema"
)

// Config is one rendered configuration file and the mesh it came from.
type Config struct {
	// Source is the mesh file relative to the repository's root, with
	// "@cluster" for a member of a mesh with clusters.
	Source string
	generators.ProgramConfig
}

// Where names the file for a test's message: source, object and key.
func (c Config) Where() string {
	return fmt.Sprintf("%s: %s key %s", c.Source, c.Object, c.Key)
}

// Root is the repository's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Meshes are the mesh files the configs are rendered from, relative to
// Root: mesh.cue, then examples/*.cue and testdata/golden/*.cue.
func Meshes() ([]string, error) {
	out := []string{"mesh.cue"}
	for _, pattern := range []string{"examples/*.cue", "testdata/golden/*.cue"} {
		files, err := filepath.Glob(filepath.Join(Root(), pattern))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			rel, err := filepath.Rel(Root(), f)
			if err != nil {
				return nil, err
			}
			out = append(out, filepath.ToSlash(rel))
		}
	}
	if len(out) < 10 {
		return nil, fmt.Errorf("only %d meshes under %s", len(out), Root())
	}
	return out, nil
}

// Configs renders every mesh of Meshes (once per cluster for a mesh with
// clusters) and returns the files of program, each once: a file rendered
// the same by several meshes is kept with the first.
func Configs(program string) ([]Config, error) {
	meshes, err := Meshes()
	if err != nil {
		return nil, err
	}
	var out []Config
	for _, path := range meshes {
		m, err := schema.Load(filepath.Join(Root(), path))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		clusters := slices.Sorted(maps.Keys(m.Clusters))
		if len(clusters) == 0 {
			clusters = []string{""}
		}
		for _, cluster := range clusters {
			objs, err := generators.Render(m, generators.Inputs{Cluster: cluster})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			cfgs, err := generators.ProgramConfigs(objs)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			source := strings.TrimSuffix(path+"@"+cluster, "@")
			for _, c := range cfgs {
				seen := slices.ContainsFunc(out, func(o Config) bool {
					return o.Program == c.Program && o.Key == c.Key && bytes.Equal(o.Data, c.Data)
				})
				if c.Program == program && !seen {
					out = append(out, Config{Source: source, ProgramConfig: c})
				}
			}
		}
	}
	return out, nil
}
