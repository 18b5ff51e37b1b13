package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/plan"
)

type applyFlags struct {
	cluster clusterFlags
	opts    apply.Options
	output  string
}

func newApplyCmd(stdout, stderr io.Writer) *cobra.Command {
	var f applyFlags
	cmd := pathCommand("apply [PATH]", "Make the cluster match mesh.cue (staged server-side apply, prune)",
		`Make the cluster match the mesh, with server-side apply (field manager
"meshctl"), in five stages: CRDs and Namespaces, the CNI plugin, the
control plane, extensions, then mesh configuration (profiles, routes,
splits, links). With --wait each stage must be ready before the next.

Every object gets a line: Kind/ns/name created|configured|unchanged|
deleted|skipped. Applying the same file twice writes nothing.

meshctl records what it applied in the ConfigMap meshctl-inventory (in the
--meshctl-namespace, "meshctl" by default) and prunes objects that leave
mesh.cue. It never deletes an object that is not in its inventory, or one
annotated meshctl.io/prune: disabled; it refuses to prune when the render
is empty or when more than the deletion budget would go (--max-deletions
when given, else prune.maxDeletions in mesh.cue, else 50%: a change that
removes much on purpose raises prune.maxDeletions in the same reviewed
commit); and it keeps CRDs and Namespaces that still hold objects it does
not manage.

The first apply creates the trust anchor, the issuer and the webhook
certificates in the Secret meshctl-certificates, or adopts those of an
existing Linkerd install as they are; later applies reuse them, and
re-sign the issuer and the webhook certificates under the same anchor only
when the rotation policy (controlPlane.identity.issuer.rotateBefore) says
they are due. 'meshctl status' lists their expiry. No private key is
printed.

Before it applies, apply says what would keep the mesh from working as
mesh.cue asks (a warning per line: HA on too few nodes, a headless Service,
a split backend that does not exist, a certificate it cannot rotate that
expires soon). After, on a cluster without MutatingAdmissionPolicy, it sets
safeToEvict on the pod templates of the namespaces that ask for it. The
reconcile loop runs the same steps.

The cluster is chosen with kubectl's flags (--kubeconfig, --context, --as
and the rest); kubectl's -n/--namespace has no meaning here. A cluster
that does not answer is one line naming its server and where it came from.

When mesh.cue declares clusters, apply acts on every one of them (or on
the one --cluster NAME picks), each through its clusters.<name>.context in
the kubeconfig, targets of links before their sources; every line starts
with [name]. A link's gateway address, probe settings and ServiceAccount
token are read from its target at apply time, and never printed. Linked
clusters must share a trust anchor: apply checks that before it writes
anything, and refuses (exit 4) when they do not.

Exit codes: 0 applied, 1 invalid mesh.cue (nothing applied), 2 bad usage,
3 apply failed, 4 refused by a prune guard or the trust check (nothing
applied).`,
		`  # Apply ./mesh.cue and wait for each stage to become ready
  meshctl apply --wait

  # What would change, as the server sees it, without writing anything
  meshctl apply --dry-run examples/ha.cue

  # Apply to another cluster, with a machine-readable change set
  meshctl apply --context prod -o json mesh.cue > changes.json

  # Recreate objects whose immutable fields changed
  meshctl apply --force
`)
	fs := cmd.Flags()
	fs.BoolVar(&f.opts.Wait, "wait", false, "wait for each stage to become ready before the next (kstatus)")
	fs.DurationVar(&f.opts.Timeout, "timeout", 5*time.Minute, "how long each stage may take to become ready")
	fs.BoolVar(&f.opts.DryRun, "dry-run", false, "have the server dry-run everything; write nothing")
	fs.BoolVar(&f.opts.Prune, "prune", true, "delete inventoried objects that mesh.cue no longer declares")
	fs.BoolVar(&f.opts.ForcePrune, "force-prune", false, "prune even when the render is empty or more than --max-deletions would go")
	fs.Var(limitValue{&f.opts.MaxDeletions}, "max-deletions", "most objects one run may prune: a count, or a percentage of the inventory (default: mesh.cue's prune.maxDeletions, else 50%)")
	fs.BoolVar(&f.opts.Force, "force", false, "delete and recreate objects whose immutable fields changed (never a CRD or a Namespace)")
	addOutputFlag(cmd, &f.output, []string{"text", "json"}, "output format: text or json (json prints progress on stderr)")
	addClusterFlags(cmd, &f.cluster)
	cmd.RunE = runE(func(path string) int { return runApply(path, &f, stdout, stderr) })
	return cmd
}

func runApply(path string, f *applyFlags, stdout, stderr io.Writer) int {
	m, ok := loadMesh(path, stderr)
	if !ok {
		return exitInvalid
	}
	fleet, err := f.cluster.fleet(m, stderr)
	if err != nil {
		return fleetError(stderr, "apply", err, exitError)
	}
	ctx, cancel := signalContext()
	defer cancel()
	progress := stdout
	if f.output == "json" {
		progress = stderr
	}
	o := plan.ApplyOptions{
		Apply:    f.opts,
		Version:  version,
		Cluster:  f.cluster.pickedMember(m),
		LinkWait: linkWaitWithoutWait,
		Progress: func(cluster string) io.Writer { return prefixed(progress, cluster) },
		Prepared: func(r *plan.ClusterReport, _ apply.Set) error {
			printReport(r, progress, stderr)
			return nil
		},
	}
	if f.opts.Wait {
		o.LinkWait = f.opts.Timeout
	}
	rep, err := plan.Apply(ctx, m, fleet, o)
	if f.output != "json" && rep != nil {
		// The clusters applied before one failed are said too.
		writeApplied(stdout, stderr, rep, f.opts.DryRun)
	}
	if err != nil {
		return reportError(stderr, "apply", err, exitError)
	}
	if f.output == "json" {
		if len(m.Clusters) == 0 {
			return writeJSON(stdout, stderr, "apply", rep.Clusters[0].Result)
		}
		results := make([]clusterResult, len(rep.Clusters))
		for i, c := range rep.Clusters {
			results[i] = clusterResult{Cluster: c.Cluster, Result: c.Result}
		}
		return writeJSON(stdout, stderr, "apply", results)
	}
	return exitOK
}

// writeApplied prints each applied cluster's after-apply note and summary.
func writeApplied(stdout, stderr io.Writer, rep *plan.ApplyReport, dryRun bool) {
	dry := ""
	if dryRun {
		dry = " (server dry run; nothing written)"
	}
	for _, c := range rep.Clusters {
		out := prefixed(stdout, c.Cluster)
		if c.SafeToEvict != "" {
			fmt.Fprintln(out, c.SafeToEvict)
		}
		fmt.Fprintf(out, "apply: %s in %s%s\n", c.Result.SummaryLine(), c.Result.Duration.Round(10*time.Millisecond), dry)
		for _, n := range c.PeerNotes {
			fmt.Fprintln(out, n)
		}
		for _, w := range c.PeerWarnings {
			fmt.Fprintf(prefixed(stderr, c.Cluster), "warning: %s\n", w)
		}
	}
}

// clusterResult is one cluster's apply in JSON output.
type clusterResult struct {
	Cluster string `json:"cluster"`
	*apply.Result
}

// linkWaitWithoutWait is how long apply waits, without --wait, for a link
// target's token Secret to be filled and its gateway to get an address.
const linkWaitWithoutWait = 30 * time.Second
