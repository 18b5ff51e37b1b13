package main

import (
	"encoding/json"
	"errors"
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
is empty or when more than --max-deletions would go; and it keeps CRDs and
Namespaces that still hold objects it does not manage.

The first apply creates the trust anchor, the issuer and the webhook
certificates in the Secret meshctl-certificates, or adopts those of an
existing Linkerd install as they are; later applies reuse them, and
re-sign the issuer and the webhook certificates under the same anchor only
when the rotation policy (controlPlane.identity.issuer.rotateBefore) says
they are due. 'meshctl status' lists their expiry. No private key is
printed.

The cluster is chosen with kubectl's flags (--kubeconfig, --context, --as
and the rest); kubectl's -n/--namespace has no meaning here.

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
	fs.Var(limitValue{&f.opts.MaxDeletions}, "max-deletions", "most objects one run may prune: a count, or a percentage of the inventory")
	fs.BoolVar(&f.opts.Force, "force", false, "delete and recreate objects whose immutable fields changed (never a CRD or a Namespace)")
	addOutputFlag(cmd, &f.output, []string{"text", "json"}, "output format: text or json (json prints progress on stderr)")
	addClusterFlags(cmd, &f.cluster)
	cmd.RunE = runE(func(path string) int { return runApply(path, &f, stdout, stderr) })
	return cmd
}

func runApply(path string, f *applyFlags, stdout, stderr io.Writer) int {
	o := f.opts
	o.Progress = stdout
	if f.output == "json" {
		o.Progress = stderr
	}
	m, ok := loadMesh(path, stderr)
	if !ok {
		return exitInvalid
	}
	if len(m.Clusters) > 0 {
		return runApplyClusters(m, f, stdout, stderr)
	}
	ctx, cancel := signalContext()
	defer cancel()
	c, err := f.cluster.connect(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "meshctl apply: %v\n", err)
		return exitError
	}
	set, notes, err := plan.ForCluster(ctx, m, plan.Cluster{Client: c, DryRun: o.DryRun}, version)
	if err != nil {
		fmt.Fprintf(stderr, "meshctl apply: %v\n", err)
		return exitError
	}
	for _, n := range notes {
		fmt.Fprintln(o.Progress, n)
	}
	// One LIST per kind serves the apply and the warnings alike.
	if o.Live, err = c.ListLive(ctx, set, plan.WideKinds(m)...); err != nil {
		fmt.Fprintf(stderr, "meshctl apply: %v\n", err)
		return exitError
	}
	for _, w := range append(append(plan.Warnings(ctx, m, c), plan.HeadlessWarnings(ctx, m, c, o.Live)...), plan.CertificateWarnings(ctx, m, c)...) {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	res, err := c.Apply(ctx, set, o)
	if err != nil {
		fmt.Fprintf(stderr, "meshctl apply: %v\n", err)
		if errors.Is(err, apply.ErrPruneRefused) {
			return exitRefused
		}
		return exitError
	}
	// Changes workloads, so only once the render is in: never on a run a
	// guard refused.
	note, _, err := plan.SafeToEvictTemplates(ctx, m, plan.Cluster{Client: c, DryRun: o.DryRun})
	if err != nil {
		fmt.Fprintf(stderr, "meshctl apply: safeToEvict: %v\n", err)
		return exitError
	}
	if note != "" {
		fmt.Fprintln(o.Progress, note)
	}
	if f.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "meshctl apply: %v\n", err)
			return exitError
		}
		return exitOK
	}
	dry := ""
	if o.DryRun {
		dry = " (server dry run; nothing written)"
	}
	fmt.Fprintf(stdout, "apply: %s in %s%s\n", res.SummaryLine(), res.Duration.Round(10*time.Millisecond), dry)
	return exitOK
}
