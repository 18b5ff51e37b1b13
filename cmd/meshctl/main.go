// Command meshctl manages a Linkerd service mesh from one declarative
// mesh.cue file.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
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

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole CLI: it builds a fresh command tree, so that nothing
// outlives one call, and turns the outcome into an exit code.
func run(args []string, stdout, stderr io.Writer) int {
	return guarded(args, stderr, func() int { return execute(args, stdout, stderr) })
}

// guarded runs body and turns a panic into one line on stderr and exit 3:
// a panic is a bug in meshctl, and its stack is for the bug report, not for
// the user's terminal, so it is printed only with -v (--verbose).
func guarded(args []string, stderr io.Writer, body func() int) (code int) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		verb := "meshctl"
		if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			verb += " " + args[0]
		}
		if verbose(args) {
			fmt.Fprintf(stderr, "%s: internal error: %v; this is a bug in meshctl: please report it with this stack:\n%s", verb, r, debug.Stack())
		} else {
			fmt.Fprintf(stderr, "%s: internal error: %v; this is a bug in meshctl: please report it (run again with -v for the stack)\n", verb, r)
		}
		code = exitError
	}()
	return body()
}

// verbose reports -v or --verbose among the flags of args.
func verbose(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-v", "--verbose", "--verbose=true":
			return true
		}
	}
	return false
}

func execute(args []string, stdout, stderr io.Writer) int {
	silenceClientLogs()
	root := newRoot(stdout, stderr)
	if len(args) == 0 {
		_ = root.Help()
		return exitUsage
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	var code exitCode
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &code):
		return int(code)
	case cmd == root && strings.HasPrefix(err.Error(), "unknown command"):
		fmt.Fprintf(stderr, "meshctl: unknown command %q\nRun 'meshctl --help' for the commands.\n", args[0])
	default:
		// Cobra's own errors are all about usage: flags, arguments.
		fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), err)
	}
	return exitUsage
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "meshctl",
		Short: "Manage a Linkerd service mesh from one declarative file, mesh.cue",
		Long: `meshctl manages a Linkerd service mesh from one declarative file, mesh.cue.

PATH is a .cue file or a directory of them; it defaults to ./mesh.cue.
Run 'meshctl <command> --help' for a command's flags and examples.

meshctl remembers the services of mesh.cue that validated, by the hash of
their text, in $MESHCTL_CACHE (default: meshctl/services/ under
$XDG_CACHE_HOME or ~/.cache), so that a run evaluates only the services that
changed since the last one. MESHCTL_CACHE=off turns it off; deleting the
directory is safe.`,
		Example: `  # Check, render, compare and apply ./mesh.cue
  meshctl vet
  meshctl build | head
  meshctl diff
  meshctl apply --wait

  # Certificate expiry and what meshctl manages
  meshctl status

  # Shell completion for the current bash session
  source <(meshctl completion bash)`,
		// meshctl prints one line per problem itself; cobra's "Error:"
		// line and usage dump would repeat it.
		SilenceErrors:      true,
		SilenceUsage:       true,
		DisableSuggestions: true,
		CompletionOptions:  cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	// Read by guarded, which must know it even when parsing never finished.
	root.PersistentFlags().BoolP("verbose", "v", false, "on an internal error (a bug in meshctl), print its stack trace")
	root.AddCommand(
		newVetCmd(stdout, stderr),
		newBuildCmd(stdout, stderr),
		newDiffCmd(stdout, stderr),
		newApplyCmd(stdout, stderr),
		newReconcileCmd(stdout, stderr),
		newInstallReconcilerCmd(stdout, stderr),
		newStatusCmd(stdout, stderr),
		newCheckCmd(stdout, stderr),
		newRotateCmd(stdout, stderr),
		newRolloutCmd(stdout, stderr),
		newVersionCmd(stdout),
		newCompletionCmd(stdout, stderr),
	)
	root.InitDefaultHelpCmd()
	for _, c := range root.Commands() {
		if c.Name() == "help" {
			c.Example = "  # The flags and examples of apply\n  meshctl help apply"
		}
	}
	return root
}

// exitCode is what a command returns to exit with a code once it has
// printed its own message.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit code %d", int(e)) }

// runE adapts a command body that returns an exit code to cobra.
func runE(body func(path string) int) func(*cobra.Command, []string) error {
	return func(_ *cobra.Command, args []string) error {
		path := "mesh.cue"
		if len(args) == 1 {
			path = args[0]
		}
		if code := body(path); code != exitOK {
			return exitCode(code)
		}
		return nil
	}
}

// pathArg accepts the single optional PATH argument.
func pathArg(_ *cobra.Command, args []string) error {
	if len(args) > 1 {
		return fmt.Errorf("expected at most one PATH, got %s", strings.Join(args, " "))
	}
	return nil
}

// completePath offers .cue files and directories for PATH.
func completePath(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return []cobra.Completion{"cue"}, cobra.ShellCompDirectiveFilterFileExt
}

// groupCommand is a command that only holds subcommands: alone it prints
// its help, and with an argument that names no subcommand it says, in one
// line, what unknown means (wrong) and exits 2.
func groupCommand(cmd *cobra.Command, stderr io.Writer, unknown func(arg string) string, subs ...*cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			fmt.Fprintf(stderr, "%s: %s\n", c.CommandPath(), unknown(args[0]))
		} else {
			_ = c.Help()
		}
		return exitCode(exitUsage)
	}
	cmd.AddCommand(subs...)
	return cmd
}

// pathCommand is a command that takes the optional PATH argument.
func pathCommand(use, short, long, example string) *cobra.Command {
	return &cobra.Command{
		Use:               use,
		Short:             short,
		Long:              long,
		Example:           strings.TrimRight(example, "\n"),
		Args:              pathArg,
		ValidArgsFunction: completePath,
	}
}
