package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/meshctl/meshctl/drift"
	"github.com/meshctl/meshctl/drift/source"
)

type reconcileFlags struct {
	cluster     clusterFlags
	source      string
	sourcePath  string
	mode        string
	logFormat   string
	workDir     string
	o           drift.Options
	leaseName   string
	leaseLength time.Duration
}

func newReconcileCmd(stdout, stderr io.Writer) *cobra.Command {
	var f reconcileFlags
	cmd := pathCommand("reconcile [PATH]", "Keep the cluster matching mesh.cue: watch, correct drift, resync (long-running)",
		`Run the reconcile loop: apply mesh.cue with the same verb as 'meshctl apply'
(the same render, certificates, warnings, guards and after-apply steps),
then keep the cluster matching it until stopped (SIGTERM or Ctrl-C).

  - The source is read every --poll; a new revision renders once it holds
    still, and is applied and pruned. A revision that does not load or
    check is logged, counted and recorded; the last good one stays applied,
    and nothing is pruned because of it.
  - Every managed kind is watched. When anything other than meshctl changes
    a field meshctl owns, or deletes a managed object, that one object is
    re-applied at once from the last render. Objects in sync cost nothing:
    they are compared with the cache, not dry-run.
  - Every --interval a full resync renders the revision again, re-applies
    what differs and prunes.
  - When a certificate meshctl rotates falls due (controlPlane.identity.
    issuer.rotateBefore), the loop renders again at once, which rotates
    it, and applies: an Event Rotated, and the metric
    meshctl_certificate_rotations_total. The source need not change.
  - Warnings (as apply's) are logged, sent as Events MeshWarning and kept
    in the status.
  - A revision whose apply would prune more than the deletion budget
    (--max-deletions, else prune.maxDeletions in mesh.cue, else 50% of
    the inventory), or everything, is refused as apply refuses it:
    recorded as failing, and retried, with nothing written. A reviewed
    removal raises prune.maxDeletions in the same commit.
  - An apply that fails (an object a policy engine or a webhook refuses)
    is recorded and tried again at every poll. Meanwhile drift of the
    render's objects is still corrected one object at a time, from a
    term's first apply on; what the apply did not reach waits for it.
  - A panic (a bug in meshctl) in a render, an apply or a correction is
    recovered: its stack goes to the log, meshctl_errors_total{where=
    "panic"} counts it, the status and an Event record it, and the loop
    goes on from the last good render.
  - --mode detect reports drift (log, metric, Event, status) and writes
    nothing.
  - With --leader-elect, replicas share the Lease meshctl-reconciler in the
    --meshctl-namespace and only its holder writes. Replicas standing by
    load each new revision, so that one that takes over while the source
    does not render keeps the applied revision.
  - A mesh that declares clusters is kept by one loop per cluster, each
    run there with --cluster NAME (the cluster kubectl's flags reach). It
    applies that cluster's part: its control plane, extensions, links and
    exports. What a link needs from its target (the gateway's address and
    ports, the trust and cluster domains, the service-mirror token) is read
    there with the credentials 'meshctl apply' stores for the loop (Secret
    meshctl-cluster-<target> in --meshctl-namespace; run 'meshctl apply' on
    the fleet once first). A target that cannot be read keeps its Link as
    last applied, never pruned, with a warning in the status. The loop of
    the cluster that keeps the fleet anchor's key (trustAnchor.keyCluster)
    also re-signs the other clusters' issuers when they fall due.

The source is PATH (a file or directory, such as a ConfigMap volume or a
git-sync worktree), or a Flux artifact with --source
flux:GitRepository/NAMESPACE/NAME (or OCIRepository): the artifact is
downloaded from its status.artifact.url, its digest checked, and
--source-path inside it rendered.

Metrics are served on --metrics-addr (/metrics), health on --health-addr
(/healthz, /readyz). Corrections and failures are Events on the ConfigMap
meshctl-inventory; 'meshctl status' shows the loop's state, revision, last
apply and last error. Logs go to stderr, as text or --log-format json.

Exit codes: 0 stopped by a signal, 2 bad usage, 3 could not start (no
cluster, address in use).`,
		`  # Keep the cluster matching ./mesh.cue, from a workstation
  meshctl reconcile --metrics-addr 127.0.0.1:8080 --health-addr 127.0.0.1:8081

  # Report drift without correcting it
  meshctl reconcile --mode detect examples/ha.cue

  # Keep cluster west of a multicluster mesh, from its kube context
  meshctl reconcile --context kind-west --cluster west examples/multicluster.cue

  # In the cluster (see 'meshctl install-reconciler'), from a Flux GitRepository
  meshctl reconcile --leader-elect --log-format json \
    --source flux:GitRepository/flux-system/mesh --source-path clusters/prod/mesh.cue
`)
	fs := cmd.Flags()
	fs.StringVar(&f.source, "source", "", "where mesh.cue comes from: PATH (default), or flux:GitRepository/NS/NAME or flux:OCIRepository/NS/NAME")
	fs.StringVar(&f.sourcePath, "source-path", "mesh.cue", "with a Flux source, the mesh.cue file or directory inside the artifact")
	fs.StringVar(&f.workDir, "work-dir", "", "where snapshots and artifacts are unpacked (default a directory under $TMPDIR)")
	fs.DurationVar(&f.o.Interval, "interval", 10*time.Minute, "full resync: re-apply what differs and prune")
	fs.DurationVar(&f.o.Poll, "poll", 5*time.Second, "how often the source is read")
	fs.DurationVar(&f.o.Debounce, "debounce", time.Second, "how long a changed source must hold still before it renders")
	fs.DurationVar(&f.o.ApplyTimeout, "apply-timeout", 5*time.Minute, "bound of one full apply; on shutdown a started apply is finished within it")
	fs.Var(limitValue{&f.o.MaxDeletions}, "max-deletions", "most objects one apply may prune: a count, or a percentage of the inventory (default: mesh.cue's prune.maxDeletions, else 50%)")
	f.mode = string(drift.Correct)
	fs.Var(enumValue{&f.mode, []string{string(drift.Correct), string(drift.Detect)}}, "mode", "correct: re-apply drifted objects; detect: report drift, write nothing")
	fs.BoolVar(&f.o.LeaderElect, "leader-elect", false, "share a Lease with other replicas; only the holder writes")
	fs.StringVar(&f.leaseName, "lease-name", "meshctl-reconciler", "the Lease's name, in --meshctl-namespace")
	fs.DurationVar(&f.leaseLength, "lease-duration", 15*time.Second, "how long a Lease holds without renewal before another replica takes over")
	fs.StringVar(&f.o.MetricsAddr, "metrics-addr", ":8080", `address of /metrics; "0" serves none`)
	fs.StringVar(&f.o.HealthAddr, "health-addr", ":8081", `address of /healthz and /readyz; "0" serves none`)
	fs.StringVar(&f.o.Identity, "identity", "", "this replica's name in the Lease and the status (default $POD_NAME, or host_pid)")
	fs.StringVar(&f.o.PrometheusURL, "prometheus-url", "", "where rollouts that name no Prometheus read their numbers (default: viz.prometheus.externalURL, or viz's own Prometheus)")
	f.logFormat = "text"
	fs.Var(enumValue{&f.logFormat, []string{"text", "json"}}, "log-format", "log format on stderr: text or json")
	_ = cmd.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]string{"correct", "detect"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	addClusterFlags(cmd, &f.cluster)
	cmd.RunE = runE(func(path string) int { return runReconcile(path, &f, stderr) })
	return cmd
}

func runReconcile(path string, f *reconcileFlags, stderr io.Writer) int {
	var handler slog.Handler = slog.NewTextHandler(stderr, nil)
	if f.logFormat == "json" {
		handler = slog.NewJSONHandler(stderr, nil)
	}
	if f.o.Identity == "" {
		f.o.Identity = os.Getenv("POD_NAME")
	}
	// --cluster names the cluster of mesh.cue this loop keeps: the one
	// kubectl's flags reach (in a pod, the pod's own).
	f.o.Cluster, f.cluster.meshCluster = f.cluster.meshCluster, ""
	mem, cfg, err := f.cluster.connectConfig(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "meshctl reconcile: %v\n", err)
		return exitError
	}
	// Server warnings are logged, not printed bare.
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = rest.NoWarnings{}
	workDir := f.workDir
	if workDir == "" {
		if workDir, err = os.MkdirTemp("", "meshctl-reconcile-"); err != nil {
			fmt.Fprintf(stderr, "meshctl reconcile: %v\n", err)
			return exitError
		}
		defer os.RemoveAll(workDir)
	}
	src, err := source.Parse(f.source, path, f.sourcePath, workDir, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "meshctl reconcile: %v\n", err)
		return exitUsage
	}
	o := f.o
	o.Config, o.Client, o.ClientSource, o.Source, o.Mode = cfg, mem.Client, mem.Source, src, drift.Mode(f.mode)
	o.Version = version
	o.Log = slog.New(handler)
	o.Lease.Name, o.Lease.Duration = f.leaseName, f.leaseLength
	if o.Lease.Duration > 0 && o.Lease.Duration < 15*time.Second {
		o.Lease.RenewDeadline, o.Lease.RetryPeriod = o.Lease.Duration*2/3, o.Lease.Duration/6
	}
	loop, err := drift.New(o)
	if err != nil {
		fmt.Fprintf(stderr, "meshctl reconcile: %v\n", err)
		return exitUsage
	}
	ctx, cancel := signalContext()
	defer cancel()
	if err := loop.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "meshctl reconcile: %v\n", err)
		return exitError
	}
	return exitOK
}
