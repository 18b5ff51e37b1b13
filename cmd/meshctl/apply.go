package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

func runApply(args []string, stdout, stderr io.Writer) int {
	var (
		kf           apply.KubeFlags
		o            apply.Options
		maxDeletions string
		output       string
	)
	fs := newFlags("apply", "meshctl apply [PATH] [--wait] [--timeout 5m] [--dry-run] [--prune] [--force] [--max-deletions 50%] [-o text|json]",
		`Make the cluster match the mesh, with server-side apply (field manager
"meshctl"), in five stages: CRDs and Namespaces, the CNI plugin, the
control plane, extensions, then mesh configuration (profiles, routes,
splits, links). With --wait each stage must be ready before the next.

Every object gets a line: Kind/ns/name created|configured|unchanged|
deleted|skipped. Applying the same file twice writes nothing.

meshctl records what it applied in the ConfigMap meshctl-inventory (in the
--namespace, "meshctl" by default) and prunes objects that leave mesh.cue.
It never deletes an object that is not in its inventory, or one annotated
meshctl.io/prune: disabled; it refuses to prune when the render is empty or
when more than --max-deletions would go; and it keeps CRDs and Namespaces
that still hold objects it does not manage.

The first apply creates the trust anchor, the issuer and the webhook
certificates in the Secret meshctl-certificates; later applies reuse them.
No private key is printed.

Exit codes: 0 applied, 1 invalid mesh.cue (nothing applied), 2 bad usage,
3 apply failed, 4 refused by a prune guard (nothing applied).`,
		`  # Apply ./mesh.cue and wait for each stage to become ready
  meshctl apply --wait

  # What would change, as the server sees it, without writing anything
  meshctl apply --dry-run examples/ha.cue

  # Apply to another cluster, with a machine-readable change set
  meshctl apply --context prod -o json mesh.cue > changes.json

  # Recreate objects whose immutable fields changed
  meshctl apply --force
`, stdout)
	fs.BoolVar(&o.Wait, "wait", false, "wait for each stage to become ready before the next (kstatus)")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "how long each stage may take to become ready")
	fs.BoolVar(&o.DryRun, "dry-run", false, "have the server dry-run everything; write nothing")
	fs.BoolVar(&o.Prune, "prune", true, "delete inventoried objects that mesh.cue no longer declares")
	fs.BoolVar(&o.ForcePrune, "force-prune", false, "prune even when the render is empty or more than --max-deletions would go")
	fs.StringVar(&maxDeletions, "max-deletions", "50%", "most objects one run may prune: a count, or a percentage of the inventory")
	fs.BoolVar(&o.Force, "force", false, "delete and recreate objects whose immutable fields changed")
	fs.StringVarP(&output, "output", "o", "text", "output format: text or json (json prints progress on stderr)")
	addKubeFlags(fs, &kf)
	path, code, done := parse(fs, args, stderr)
	if done {
		return code
	}
	var err error
	if o.MaxDeletions, err = apply.ParseLimit(maxDeletions); err != nil {
		fmt.Fprintf(stderr, "meshctl apply: --max-deletions: %v\n", err)
		return exitUsage
	}
	if output != "text" && output != "json" {
		fmt.Fprintf(stderr, "meshctl apply: --output must be text or json, not %q\n", output)
		return exitUsage
	}
	o.Progress = stdout
	if output == "json" {
		o.Progress = stderr
	}
	m, err := schema.Load(path)
	if err != nil {
		return reportLoadError(stderr, err)
	}
	ctx, cancel := signalContext()
	defer cancel()
	c, err := apply.Connect(kf)
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
	res, err := c.Apply(ctx, set, o)
	if err != nil {
		fmt.Fprintf(stderr, "meshctl apply: %v\n", err)
		if errors.Is(err, apply.ErrPruneRefused) {
			return exitRefused
		}
		return exitError
	}
	if output == "json" {
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
