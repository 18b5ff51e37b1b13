package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/generators"
)

type buildFlags struct {
	output   string
	certsDir string
	cluster  string
}

func newBuildCmd(stdout, stderr io.Writer) *cobra.Command {
	var f buildFlags
	cmd := pathCommand("build [PATH]", "Render mesh.cue into Kubernetes objects",
		`Render the mesh into Kubernetes objects, ready for 'kubectl apply -f -'.
The output is deterministic: the same input gives the same bytes, ordered
CRDs, Namespaces, other cluster-scoped objects, then namespaced objects.

Certificates are not rendered unless you ask: 'meshctl apply' creates them
once in the cluster and reuses them. With --certs-dir, build keeps them in
DIR instead (generated on first use, reused after) and the output then holds
private keys: treat it as a secret.

When mesh.cue declares clusters, build renders each (or the one --cluster
NAME picks) after a "# cluster: NAME" comment, with --certs-dir DIR/NAME
for its certificates; what only a link's target cluster knows (its
gateway address, its token) is a marked placeholder. JSON is an array of
Lists with a cluster field.

Exit codes: 0 rendered, 1 invalid mesh.cue (nothing printed), 2 bad usage,
3 error.`,
		`  # Render ./mesh.cue as YAML
  meshctl build | head

  # Render the HA example as a JSON List
  meshctl build examples/ha.cue -o json

  # Render with certificates kept in ./certs, like 'linkerd install'
  meshctl build --certs-dir ./certs | kubectl apply -f -
`)
	addOutputFlag(cmd, &f.output, []string{"yaml", "json"}, "output format: yaml or json")
	cmd.Flags().StringVar(&f.certsDir, "certs-dir", "", "keep generated certificates in DIR and render them (output then holds private keys)")
	_ = cmd.MarkFlagDirname("certs-dir")
	addMeshClusterFlag(cmd, &f.cluster)
	cmd.RunE = runE(func(path string) int { return runBuild(path, f, stdout, stderr) })
	return cmd
}

func runBuild(path string, f buildFlags, stdout, stderr io.Writer) int {
	m, ok := loadMesh(path, stderr)
	if !ok {
		return exitInvalid
	}
	if len(m.Clusters) > 0 {
		return runBuildClusters(m, f, stdout, stderr)
	}
	if f.cluster != "" {
		fmt.Fprintln(stderr, "meshctl build: --cluster picks one of mesh.cue's clusters, and it declares none")
		return exitUsage
	}
	var in generators.Inputs
	if f.certsDir != "" {
		b, created, err := certs.LoadOrCreate(f.certsDir, generators.CertOptions(m, time.Now()))
		if err != nil {
			fmt.Fprintf(stderr, "meshctl build: certificates in %s: %v\n", f.certsDir, err)
			return exitError
		}
		if created {
			fmt.Fprintf(stderr, "generated certificates in %s (keys are 0600; keep them out of git)\n", f.certsDir)
		}
		in.Certs = b
	}
	objs, err := generators.Render(m, in)
	if err != nil {
		fmt.Fprintf(stderr, "meshctl build: %v\n", err)
		return exitError
	}
	if err := generators.Encode(stdout, objs, f.output); err != nil {
		fmt.Fprintf(stderr, "meshctl build: %v\n", err)
		return exitError
	}
	return exitOK
}
