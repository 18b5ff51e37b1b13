package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshctl/meshctl/drift"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

// statusOutput is plan's status and the reconcile loop's record.
type statusOutput struct {
	// Cluster is the mesh's cluster, for a mesh that declares clusters.
	Cluster string `json:"cluster,omitempty"`
	*plan.Status
	// Reconciler is what a running 'meshctl reconcile' recorded; nil when
	// none ever ran against this cluster.
	Reconciler *drift.Status `json:"reconciler,omitempty"`
}

type statusFlags struct {
	cluster clusterFlags
	output  string
}

func newStatusCmd(stdout, stderr io.Writer) *cobra.Command {
	var f statusFlags
	cmd := &cobra.Command{
		Use:   "status [PATH]",
		Short: "Show the certificates' expiry, meshctl's inventory and the reconcile loop's state",
		Long: `Show what meshctl manages in the cluster: each certificate (each trust
anchor of the bundle, the issuer, each webhook serving pair) with its
subject, expiry, time left, and whether meshctl can rotate it (it holds
the key that signs it); and meshctl's inventory (objects, the meshctl
version that wrote it, and whether a run was left unfinished); and, when
'meshctl reconcile' runs against the cluster, what it recorded: in sync,
drifted or failing, the revision applied, the last apply and the last
error.

Certificates that expire within 60 days are marked, as 'linkerd check'
marks them. apply rotates the issuer (under the same anchor) and the
webhook pairs by the policy controlPlane.identity.issuer.rotateBefore; the
others must be rotated with the tool that made them. No certificate or key
is printed.

The cluster is chosen with kubectl's flags (--kubeconfig, --context, --as
and the rest); kubectl's -n/--namespace has no meaning here. Given the
mesh.cue of a mesh that declares clusters, status reads each cluster
through its context (--cluster NAME reads one), each line prefixed with the
cluster's name, and -o json prints a list with a "cluster" field. In a
fleet with one generated anchor, each anchor and issuer row says which
cluster keeps the anchor's key (trustAnchor.keyCluster), and that cluster
re-signs the other clusters' issuers.

Exit codes: 0 read (expiring certificates included), 1 invalid mesh.cue, 2
bad usage, 3 the cluster could not be read.`,
		Example: `  # Certificates and inventory of the current cluster
  meshctl status

  # The same, for a script
  meshctl status --context prod -o json | jq '.certificates[] | select(.expiring)'

  # Every cluster of a multicluster mesh
  meshctl status examples/multicluster.cue`,
		Args: cobra.MaximumNArgs(1),
	}
	addOutputFlag(cmd, &f.output, []string{"text", "json"}, "output format: text or json")
	addClusterFlags(cmd, &f.cluster)
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		path := ""
		if len(args) == 1 {
			path = args[0]
		}
		if code := runStatus(path, &f, stdout, stderr); code != exitOK {
			return exitCode(code)
		}
		return nil
	}
	return cmd
}

func runStatus(path string, f *statusFlags, stdout, stderr io.Writer) int {
	var m *schema.Mesh
	only := ""
	if path != "" {
		var ok bool
		if m, ok = loadMesh(path, stderr); !ok {
			return exitInvalid
		}
		only = f.cluster.pickedMember(m)
	}
	ctx, cancel := signalContext()
	defer cancel()
	fleet, err := f.cluster.fleet(m, stderr)
	if err != nil {
		return fleetError(stderr, "status", err, exitError)
	}
	sts, err := plan.StatusOf(ctx, m, fleet, only, time.Now())
	if err != nil {
		return reportError(stderr, "status", err, exitError)
	}
	outs := make([]statusOutput, len(sts))
	for i, pst := range sts {
		outs[i] = statusOutput{Cluster: pst.Cluster, Status: pst.Status}
		c := pst.Member.Client
		if outs[i].Reconciler, err = drift.ReadStatus(ctx, c.Kube(), c.Namespace()); err != nil {
			fmt.Fprintf(prefixed(stderr, pst.Cluster), "meshctl status: %v\n", err)
			return exitError
		}
	}
	if f.output == "json" {
		if m == nil || len(m.Clusters) == 0 {
			return writeJSON(stdout, stderr, "status", outs[0])
		}
		return writeJSON(stdout, stderr, "status", outs)
	}
	for _, st := range outs {
		out := prefixed(stdout, st.Cluster)
		writeStatus(out, st.Status)
		writeReconciler(out, st.Reconciler, time.Now())
	}
	return exitOK
}

// writeReconciler prints the loop's record: one line, then the drifted
// objects and the last error, each on a line of its own.
func writeReconciler(w io.Writer, r *drift.Status, now time.Time) {
	if r == nil {
		fmt.Fprintln(w, "reconciler: none has run against this cluster")
		return
	}
	rev := r.Revision
	if rev == "" {
		rev = "none applied yet"
	}
	last := "never"
	if r.LastApplyTime != nil {
		last = fmt.Sprintf("%s (%s ago)", r.LastApplyTime.UTC().Format(time.RFC3339), now.Sub(r.LastApplyTime.Time).Round(time.Second))
	}
	fmt.Fprintf(w, "reconciler: %s; revision %s from %s; mode %s; last apply %s; %d objects; leader %s\n",
		r.State, rev, r.Source, r.Mode, last, r.Objects, r.Leader)
	for _, id := range r.Drifted {
		fmt.Fprintf(w, "  drifted: %s\n", id)
	}
	if more := r.DriftedTotal - len(r.Drifted); more > 0 {
		fmt.Fprintf(w, "  and %d more drifted objects\n", more)
	}
	for _, warning := range r.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warning)
	}
	if r.FailedRevision != "" {
		fmt.Fprintf(w, "  revision %s does not render; %s stays applied\n", r.FailedRevision, rev)
	}
	if r.LastError != "" {
		at := ""
		if r.LastErrorTime != nil {
			at = " at " + r.LastErrorTime.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "  last error%s: %s\n", at, strings.ReplaceAll(strings.TrimSpace(r.LastError), "\n", "\n    "))
	}
}

// writeStatus prints st as a table of certificates and an inventory line.
func writeStatus(w io.Writer, st *plan.Status) {
	if len(st.Certificates) == 0 {
		fmt.Fprintln(w, "certificates: none (meshctl has not applied to this cluster)")
	} else {
		var table bytes.Buffer
		tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CERTIFICATE\tSUBJECT\tEXPIRES\tTIME LEFT\tMESHCTL ROTATES\t")
		for _, c := range st.Certificates {
			name := string(c.Kind)
			if c.Name != "" {
				name += "/" + c.Name
			}
			if c.Err != "" {
				fmt.Fprintf(tw, "%s\t‼ unreadable: %s\t\t\t\t\n", name, c.Err)
				continue
			}
			left, mark := plan.FormatLeft(c.TimeLeft), ""
			switch {
			case c.TimeLeft <= 0:
				left, mark = "expired", "‼ expired"
			case c.Expiring:
				mark = fmt.Sprintf("‼ expires within %dd", int(plan.ExpiryWarning/(24*time.Hour)))
			}
			rotates := "yes"
			switch {
			case c.KeyCluster != "" && c.Kind == "issuer":
				rotates = "yes (signed by " + c.KeyCluster + ")"
			case c.KeyCluster != "" && !c.CanRotate:
				rotates = "no (key in " + c.KeyCluster + ")"
			case !c.CanRotate:
				rotates = "no (no signing key)"
			case c.KeyCluster != "":
				rotates = "yes (key in " + c.KeyCluster + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, c.Subject, c.NotAfter.UTC().Format(time.RFC3339), left, rotates, mark)
		}
		_ = tw.Flush()
		for _, line := range strings.SplitAfter(table.String(), "\n") {
			fmt.Fprint(w, strings.TrimRight(line, " \n")+strings.Repeat("\n", strings.Count(line, "\n")))
		}
	}
	if n := st.Expiring(); n > 0 {
		fmt.Fprintf(w, "%d certificate(s) expire within %dd: see 'meshctl diff' for what apply would rotate\n", n, int(plan.ExpiryWarning/(24*time.Hour)))
	}
	if line := anchorRotationLine(st.AnchorRotation); line != "" {
		fmt.Fprintln(w, line)
	}
	for _, r := range st.Rollouts {
		fmt.Fprintln(w, "rollout "+r.Summary(st.CheckedAt))
	}
	switch inv := st.Inventory; {
	case inv == nil:
		fmt.Fprintln(w, "inventory: none (meshctl has not applied to this cluster)")
	case inv.Pending > 0:
		fmt.Fprintf(w, "inventory: %d objects, written by meshctl %s; %d pending from a run that did not finish (the next apply completes or prunes them)\n", inv.Objects, inv.Version, inv.Pending)
	default:
		fmt.Fprintf(w, "inventory: %d objects, written by meshctl %s; nothing pending\n", inv.Objects, inv.Version)
	}
}
