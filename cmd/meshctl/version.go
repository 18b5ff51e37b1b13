package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/meshctl/meshctl/schema"
)

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "meshctl version", "Print the meshctl version, the Linkerd release it targets, and the Go\nruntime it was built with.", "  meshctl version\n", stdout)
	if err := fs.Parse(args); err != nil {
		_, code, _ := parse(fs, args, stderr)
		return code
	}
	m, err := schema.LoadSources()
	target := "unknown"
	if err == nil {
		target = m.Linkerd.Version
	}
	fmt.Fprintf(stdout, "meshctl %s\nlinkerd %s (default target)\n%s %s/%s\n", version, target, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
