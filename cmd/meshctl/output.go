package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshctl/meshctl/plan"
)

// A multicluster mesh (mesh.cue declares clusters): every text line about
// a cluster starts with "[name] "; markdown has a heading per cluster; JSON
// is an array with a "cluster" field.

// clusterUsage is --cluster's help, for every command that has it.
const clusterUsage = "the cluster of mesh.cue's clusters to act on (default: all); with a mesh that declares no clusters, the kubeconfig cluster to use, as kubectl's --cluster"

// addMeshClusterFlag registers --cluster NAME.
func addMeshClusterFlag(cmd *cobra.Command, name *string) {
	cmd.Flags().StringVar(name, "cluster", "", clusterUsage)
}

// prefixWriter starts every line it writes with prefix.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	mid    bool
}

// prefixed writes to w with each line starting "[cluster] ", or to w as
// it is for a mesh without clusters (cluster "").
func prefixed(w io.Writer, cluster string) io.Writer {
	if cluster == "" {
		return w
	}
	return &prefixWriter{w: w, prefix: "[" + cluster + "] "}
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	for _, c := range b {
		if !p.mid {
			out = append(out, p.prefix...)
		}
		out = append(out, c)
		p.mid = c != '\n'
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// writeJSON writes v indented, as every -o json does.
func writeJSON(stdout, stderr io.Writer, verb string, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "meshctl %s: %v\n", verb, err)
		return exitError
	}
	return exitOK
}

// reportError prints a verb's error, one line per problem, with the
// cluster it happened in as every line about that cluster starts, and
// returns the exit code: exitRefused for a guard's refusal (nothing
// written), exitUsage for a cluster mesh.cue does not declare, else
// failed.
func reportError(stderr io.Writer, verb string, err error, failed int) int {
	cluster := ""
	var ce *plan.ClusterError
	if errors.As(err, &ce) {
		cluster, err = ce.Cluster, ce.Err
	}
	fmt.Fprintf(prefixed(stderr, cluster), "meshctl %s: %v\n", verb, err)
	switch {
	case plan.IsRefusal(err):
		return exitRefused
	case errors.Is(err, plan.ErrNoSuchCluster):
		return exitUsage
	}
	return failed
}

// printReport prints what a cluster's render did and what would keep the
// mesh from working: notes to out, warnings to errOut.
func printReport(r *plan.ClusterReport, out, errOut io.Writer) {
	for _, n := range r.Notes {
		fmt.Fprintln(prefixed(out, r.Cluster), n)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(prefixed(errOut, r.Cluster), "warning: %s\n", w)
	}
	// A rollout in progress is what it is, not drift: its weights are
	// the rollout's, and this says where it stands.
	for _, s := range r.Rollouts {
		fmt.Fprintln(prefixed(out, r.Cluster), "rollout "+s.Summary(time.Now()))
	}
}
