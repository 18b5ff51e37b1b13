package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/plan"
)

func newRotateCmd(stdout, stderr io.Writer) *cobra.Command {
	return groupCommand(&cobra.Command{
		Use:   "rotate",
		Short: "Rotate a certificate that needs more than one apply (the trust anchor)",
		Long: `Rotate a certificate whose replacement takes more than one apply, one
step per run. The issuer and the webhook serving pairs need no command:
apply rotates them by policy (controlPlane.identity.issuer.rotateBefore).`,
		Example: `  # The next step of a trust-anchor rotation, shown first, then applied
  meshctl rotate trust-anchor --dry-run
  meshctl rotate trust-anchor`,
	}, stderr, func(arg string) string {
		return fmt.Sprintf("unknown certificate %q; meshctl rotates trust-anchor", arg)
	}, newRotateAnchorCmd(stdout, stderr))
}

type rotateAnchorFlags struct {
	cluster       clusterFlags
	dryRun, force bool
}

func newRotateAnchorCmd(stdout, stderr io.Writer) *cobra.Command {
	var f rotateAnchorFlags
	cmd := pathCommand("trust-anchor [PATH]", "Take the next step of a trust-anchor rotation, without an outage",
		`Replace the identity trust anchor without an outage, one step per run.
Each run takes the next step, stores it in the Secret meshctl-certificates
and applies the render, as 'meshctl apply PATH' would:

  1. bundle   A new anchor is generated (meshctl keeps its key) and added
              to the trust roots: linkerd-identity-trust-roots holds the
              old and the new anchor. The issuer is unchanged. Meshed pods
              trust both anchors as they restart.
  2. wait     Until every meshed pod (one with the annotation
              linkerd.io/trust-root-sha256) has restarted onto the
              two-anchor bundle, a run says how many have not and what to
              restart, and refuses to go on (exit 4). 'meshctl status'
              says so too.
  3. re-sign  A new issuer, with the same subject, is signed by the new
              anchor, which becomes the current one; the trust roots still
              hold both. Workloads get certificates from it as theirs
              renew.
  4. drop     The trust roots hold the new anchor only. Refused (exit 4)
              while a meshed pod trusts neither the bundle nor the new
              anchor, and until the issuance lifetime
              (controlPlane.identity.issuanceLifetime, 24h by default) has
              passed since step 3: workload certificates from the old
              issuer stay valid that long. The refusal says when it will
              be allowed.

--dry-run computes the next step in memory only and prints the diff of
what it would apply, what it means first, as 'meshctl diff' does; nothing
is written. --force lifts the guards of steps 3 and 4.

The old anchor need not be valid: an expired anchor is bundled, replaced
and dropped like any other (the recovery upstream's procedure cannot do).

meshctl rotates only an anchor it generated and holds the key of
(trustAnchor.source and issuer.source "generated", not adopted); for any
other it refuses and says what to do instead. No private key is printed.

The cluster is chosen with kubectl's flags (--kubeconfig, --context, --as
and the rest); kubectl's -n/--namespace has no meaning here.

A mesh that declares clusters with the default identity shares one anchor,
whose key one cluster keeps (trustAnchor.keyCluster): it is rotated in
every cluster at once, in lockstep, through each cluster's context. Each
step is taken on the key's store and followed by every other cluster in the
same run: step 1 gives every cluster's roots both anchors; step 3 waits
until the meshed pods of every cluster trust both, then re-signs every
cluster's issuer with the new anchor; step 4 leaves every cluster's roots
the new anchor alone. At every step each cluster's roots hold an anchor that
signs every other cluster's issuer, so cross-cluster mTLS never breaks.
--cluster cannot pick one cluster for it.

Exit codes: 0 step taken (or shown, with --dry-run), 1 invalid mesh.cue,
2 bad usage, 3 failed, 4 refused by a guard (pods still on the old anchor,
issuance lifetime not passed; nothing written).`,
		`  # See the next step and what it means, then take it
  meshctl rotate trust-anchor --dry-run
  meshctl rotate trust-anchor

  # After restarting the meshed pods, re-sign the issuer
  kubectl rollout restart deployment -n shop
  meshctl rotate trust-anchor mesh.cue

  # Drop the old anchor before the issuance lifetime has passed
  meshctl rotate trust-anchor --force --context prod mesh.cue
`)
	fs := cmd.Flags()
	fs.BoolVar(&f.dryRun, "dry-run", false, "compute the next step in memory and print its diff; write nothing")
	fs.BoolVar(&f.force, "force", false, "take the step even while meshed pods have not restarted or the issuance lifetime has not passed")
	addClusterFlags(cmd, &f.cluster)
	cmd.RunE = runE(func(path string) int { return runRotateAnchor(path, &f, stdout, stderr) })
	return cmd
}

func runRotateAnchor(path string, f *rotateAnchorFlags, stdout, stderr io.Writer) int {
	const verb = "rotate trust-anchor"
	m, ok := loadMesh(path, stderr)
	if !ok {
		return exitInvalid
	}
	fleet, err := f.cluster.fleet(m, stderr)
	if err != nil {
		return fleetError(stderr, verb, err, exitError)
	}
	ctx, cancel := signalContext()
	defer cancel()
	r := &plan.AnchorRotation{Force: f.force}
	forced := func() {
		for _, w := range r.Result.Forced {
			fmt.Fprintf(stderr, "warning: --force: %s\n", w)
		}
	}
	if f.dryRun {
		rep, err := plan.Diff(ctx, m, fleet, plan.DiffOptions{Version: version, Cluster: f.cluster.pickedMember(m), Anchor: r})
		if err != nil {
			return reportError(stderr, verb, err, exitError)
		}
		forced()
		fmt.Fprintf(stdout, "next step: %s (dry run; nothing written)\n", r.Result.Step)
		for _, c := range rep.Clusters {
			c.Result.WriteText(prefixed(stdout, c.Cluster))
		}
		return exitOK
	}
	rep, err := plan.Apply(ctx, m, fleet, plan.ApplyOptions{
		Version:  version,
		Cluster:  f.cluster.pickedMember(m),
		Anchor:   r,
		Progress: func(cluster string) io.Writer { return prefixed(stdout, cluster) },
		Prepared: func(cr *plan.ClusterReport, _ apply.Set) error {
			forced()
			printReport(cr, stdout, stderr)
			return nil
		},
	})
	if err != nil {
		if r.Result.Step != "" && !plan.IsRefusal(err) {
			fmt.Fprintf(stderr, "meshctl %s: step %s stored in secret %s/%s, but the apply failed: %v; run 'meshctl apply' to finish it\n", verb, r.Result.Step, f.cluster.namespace, plan.CertificatesSecret, err)
			return exitError
		}
		return reportError(stderr, verb, err, exitError)
	}
	fmt.Fprintf(stdout, "rotate trust-anchor: step %s: %s\n", r.Result.Step, r.Result.Note)
	writeApplied(stdout, stderr, rep, false)
	switch r.Result.Step {
	case plan.StepBundle:
		fmt.Fprintln(stdout, "next: restart the meshed pods (kubectl rollout restart …), then run 'meshctl rotate trust-anchor' again to re-sign the issuer")
	case plan.StepResign:
		fmt.Fprintf(stdout, "next: once the issuance lifetime (%s) has passed, 'meshctl rotate trust-anchor' drops the old anchor\n", m.ControlPlane.Identity.IssuanceLifetime)
	}
	return exitOK
}

// anchorRotationLine is what `meshctl status` says of a trust-anchor
// rotation waiting for meshed pods to restart; "" when none waits.
func anchorRotationLine(pt *plan.PodTrust) string {
	if pt == nil {
		return ""
	}
	if pt.Behind == 0 {
		return fmt.Sprintf("trust-anchor rotation: all %d meshed pods trust the new anchor; 'meshctl rotate trust-anchor' re-signs the issuer", pt.Meshed)
	}
	return "trust-anchor rotation: " + plan.BehindMessage(*pt)
}
