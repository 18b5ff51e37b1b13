package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newCompletionCmd(stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script for bash, zsh or fish",
		Long: `Print a script that completes meshctl's commands, flags and values
(PATH offers .cue files and directories; -o its formats) in bash, zsh or
fish. Bash needs the bash-completion package; zsh needs compinit.`,
		Example: `  # This bash session; for every session, write it to
  # ~/.local/share/bash-completion/completions/meshctl
  source <(meshctl completion bash)

  # zsh: a file in a directory on $fpath
  meshctl completion zsh > "${fpath[1]}/_meshctl"

  # fish
  meshctl completion fish > ~/.config/fish/completions/meshctl.fish`,
		ValidArgs:             []cobra.Completion{"bash", "zsh", "fish"},
		Args:                  cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			var err error
			switch args[0] {
			case "bash":
				err = root.GenBashCompletionV2(stdout, true)
			case "zsh":
				err = root.GenZshCompletion(stdout)
			default:
				err = root.GenFishCompletion(stdout, true)
			}
			if err != nil {
				fmt.Fprintf(stderr, "meshctl completion: %v\n", err)
				return exitCode(exitError)
			}
			return nil
		},
	}
}
