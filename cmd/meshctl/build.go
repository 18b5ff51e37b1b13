package main

import (
	"bytes"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/meshctl/meshctl/plan"
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
	rep, err := plan.Build(m, plan.BuildOptions{CertsDir: f.certsDir, Cluster: f.cluster})
	if err != nil {
		return reportError(stderr, "build", err, exitError)
	}
	for _, c := range rep.Clusters {
		if c.CertsCreated != "" {
			fmt.Fprintf(prefixed(stderr, c.Cluster), "generated certificates in %s (keys are 0600; keep them out of git)\n", c.CertsCreated)
		}
	}
	if len(m.Clusters) == 0 {
		if err := plan.Encode(stdout, rep.Clusters[0].Objects, f.output); err != nil {
			fmt.Fprintf(stderr, "meshctl build: %v\n", err)
			return exitError
		}
		return exitOK
	}
	if f.output == "json" {
		lists := make([]buildList, len(rep.Clusters))
		for i, c := range rep.Clusters {
			lists[i] = buildList{Cluster: c.Cluster, APIVersion: "v1", Kind: "List", Items: make([]any, len(c.Objects))}
			for j, o := range c.Objects {
				lists[i].Items[j] = o.Object
			}
		}
		return writeJSON(stdout, stderr, "build", lists)
	}
	// Written whole, after every cluster rendered: nothing is printed on
	// the strength of a mesh one cluster of which cannot render.
	var out bytes.Buffer
	for _, c := range rep.Clusters {
		// A YAML comment: the stream stays ready for kubectl apply -f -.
		fmt.Fprintf(&out, "# cluster: %s (context %s)\n", c.Cluster, c.Context)
		if err := plan.Encode(&out, c.Objects, "yaml"); err != nil {
			fmt.Fprintf(stderr, "[%s] meshctl build: %v\n", c.Cluster, err)
			return exitError
		}
	}
	if _, err := stdout.Write(out.Bytes()); err != nil {
		fmt.Fprintf(stderr, "meshctl build: %v\n", err)
		return exitError
	}
	return exitOK
}

// buildList is one cluster's objects in build's JSON output.
type buildList struct {
	Cluster    string `json:"cluster"`
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Items      []any  `json:"items"`
}
