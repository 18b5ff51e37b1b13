package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/meshctl/meshctl/schema"
)

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the meshctl version and the Linkerd release it targets",
		Long:    "Print the meshctl version, the Linkerd release it targets, and the Go\nruntime it was built with.",
		Example: "  meshctl version",
		Args:    cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			m, err := schema.LoadSources()
			target := "unknown"
			if err == nil {
				target = m.Linkerd.Version
			}
			fmt.Fprintf(stdout, "meshctl %s\nlinkerd %s (default target)\n%s %s/%s\n", version, target, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}
