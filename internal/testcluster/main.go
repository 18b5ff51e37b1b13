package testcluster

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// Main is a test package's TestMain: it starts one full cluster with 3
// fake nodes for the whole package, stores it in *c, runs the tests, stops
// the cluster and exits. Missing binaries fail the package with a message
// that says how to build them; the tests are never skipped.
func Main(m *testing.M, c **Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	cl, err := Start(ctx, Options{Full: true, Nodes: 3})
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "these tests need a real cluster: %v\n", err)
		os.Exit(1)
	}
	*c = cl
	code := m.Run()
	cl.Stop()
	os.Exit(code)
}
