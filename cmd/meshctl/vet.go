package main

import (
	"fmt"
	"io"
	"sync"

	"github.com/spf13/cobra"

	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

func newVetCmd(stdout, stderr io.Writer) *cobra.Command {
	var quiet bool
	cmd := pathCommand("vet [PATH...]", "Validate mesh.cue against the schema",
		"Validate a mesh against the meshctl schema: every field known, every\nconstraint met, every value concrete. Errors go to stderr, one per line,\nas file:line:col: field.path: message. A valid mesh gets one line, and a\nnote for each figure meshctl chose for it (viz Prometheus's memory).\n\nSeveral PATHs are several meshes, each checked on its own (as a\npre-commit hook passes the files that changed).\n\nExit codes: 0 valid, 1 invalid (any of them), 2 bad usage.",
		`  # Check ./mesh.cue
  meshctl vet

  # Check another file, or every .cue file of a directory
  meshctl vet examples/ha.cue
  meshctl vet ./mesh/

  # Check several meshes
  meshctl vet clusters/prod/mesh.cue clusters/staging/mesh.cue

  # The same check with the upstream cue command
  cue vet -c schema/mesh.cue mesh.cue
`)
	cmd.Args = cobra.ArbitraryArgs
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing when the mesh is valid")
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		if len(args) == 0 {
			args = []string{"mesh.cue"}
		}
		code := exitOK
		for _, path := range args {
			if vetOne(path, quiet, stdout, stderr) != exitOK {
				code = exitInvalid
			}
		}
		if code != exitOK {
			return exitCode(code)
		}
		return nil
	}
	return cmd
}

// vetOne checks the mesh at path.
func vetOne(path string, quiet bool, stdout, stderr io.Writer) int {
	m, ok := loadMesh(path, stderr)
	if !ok {
		return exitInvalid
	}
	r := plan.Vet(m)
	if !quiet {
		fmt.Fprintf(stdout, "%s: valid\n", path)
		for _, n := range r.Notes {
			fmt.Fprintf(stdout, "%s: note: %s\n", path, n)
		}
	}
	return exitOK
}

// loadMesh loads and validates the mesh at path and checks that it renders
// (plan.Loader), so that no command writes or prints anything on the
// strength of a mesh that cannot render. It prints the problem, one line
// each, and reports whether the mesh is good.
func loadMesh(path string, stderr io.Writer) (*schema.Mesh, bool) {
	m, err := meshLoader().Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, false
	}
	return m, true
}

// meshLoader is the process's loader of mesh files. It remembers the
// service entries that validated, in memory and in schema.CacheDir(), so
// that a run on a file with few changes evaluates only those (a base and a
// head of a diff share it too).
var meshLoader = sync.OnceValue(func() *plan.Loader {
	return &plan.Loader{Loader: schema.Loader{CacheDir: schema.CacheDir()}}
})
