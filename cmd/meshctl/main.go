// Command meshctl manages a Linkerd service mesh from one declarative
// mesh.cue file.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes scripts can rely on.
const (
	exitOK      = 0
	exitInvalid = 1 // invalid mesh.cue (vet, build) or differences (diff)
	exitUsage   = 2 // bad flags or arguments
	exitError   = 3 // any other failure
)

// command is one meshctl subcommand.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"vet", "Validate mesh.cue against the schema", runVet},
		{"build", "Render mesh.cue into Kubernetes objects", runBuild},
		{"diff", "Show what apply would change, against the cluster or another revision", runDiff},
		{"apply", "Make the cluster match mesh.cue (staged server-side apply, prune)", runApply},
		{"version", "Print the meshctl version and the Linkerd release it targets", runVersion},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "meshctl: unknown command %q\nRun 'meshctl --help' for the commands.\n", args[0])
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `meshctl manages a Linkerd service mesh from one declarative file, mesh.cue.

Usage:
  meshctl <command> [flags] [PATH]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
PATH is a .cue file or a directory of them; it defaults to ./mesh.cue.
Run 'meshctl <command> --help' for a command's flags and examples.
`)
}

// newFlags returns a flag set whose --help prints the command's usage,
// description and examples.
func newFlags(name, use, about, examples string, stdout io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "%s\n\nUsage:\n  %s\n\nFlags:\n%s\nExamples:\n%s", about, use, fs.FlagUsages(), examples)
	}
	return fs
}

// parse parses flags and returns the single optional PATH argument. done is
// true when the command should exit with code.
func parse(fs *pflag.FlagSet, args []string, stderr io.Writer) (path string, code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return "", exitOK, true
		}
		fmt.Fprintf(stderr, "meshctl %s: %v\n", fs.Name(), err)
		return "", exitUsage, true
	}
	switch fs.NArg() {
	case 0:
		return "mesh.cue", 0, false
	case 1:
		return fs.Arg(0), 0, false
	}
	fmt.Fprintf(stderr, "meshctl %s: expected at most one PATH, got %s\n", fs.Name(), strings.Join(fs.Args(), " "))
	return "", exitUsage, true
}
