package main

import (
	"fmt"
	"io"

	"github.com/meshctl/meshctl/schema"
)

func runVet(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("vet", "meshctl vet [PATH]",
		"Validate a mesh against the meshctl schema: every field known, every\nconstraint met, every value concrete. Errors go to stderr, one per line,\nas file:line:col: field.path: message.",
		`  # Check ./mesh.cue
  meshctl vet

  # Check another file, or every .cue file of a directory
  meshctl vet examples/ha.cue
  meshctl vet ./mesh/

  # The same check with the upstream cue command
  cue vet -c schema/mesh.cue mesh.cue
`, stdout)
	quiet := fs.BoolP("quiet", "q", false, "print nothing when the mesh is valid")
	path, code, done := parse(fs, args, stderr)
	if done {
		return code
	}
	if _, err := schema.Load(path); err != nil {
		return reportLoadError(stderr, err)
	}
	if !*quiet {
		fmt.Fprintf(stdout, "%s: valid\n", path)
	}
	return exitOK
}

// reportLoadError prints a load failure; any failure to read or validate the
// mesh is exit code 1, so nothing is rendered from a broken file.
func reportLoadError(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, err)
	return exitInvalid
}
