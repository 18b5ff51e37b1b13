package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/plan"
)

type statusFlags struct {
	cluster clusterFlags
	output  string
}

func newStatusCmd(stdout, stderr io.Writer) *cobra.Command {
	var f statusFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the certificates' expiry and meshctl's inventory in the cluster",
		Long: `Show what meshctl manages in the cluster: each certificate (each trust
anchor of the bundle, the issuer, each webhook serving pair) with its
subject, expiry, time left, and whether meshctl can rotate it (it holds
the key that signs it); and meshctl's inventory (objects, the meshctl
version that wrote it, and whether a run was left unfinished).

Certificates that expire within 60 days are marked, as 'linkerd check'
marks them. apply rotates the issuer (under the same anchor) and the
webhook pairs by the policy controlPlane.identity.issuer.rotateBefore; the
others must be rotated with the tool that made them. No certificate or key
is printed.

The cluster is chosen with kubectl's flags (--kubeconfig, --context, --as
and the rest); kubectl's -n/--namespace has no meaning here.

Exit codes: 0 read (expiring certificates included), 2 bad usage, 3 the
cluster could not be read.`,
		Example: `  # Certificates and inventory of the current cluster
  meshctl status

  # The same, for a script
  meshctl status --context prod -o json | jq '.certificates[] | select(.expiring)'`,
		Args: cobra.NoArgs,
	}
	addOutputFlag(cmd, &f.output, []string{"text", "json"}, "output format: text or json")
	addClusterFlags(cmd, &f.cluster)
	cmd.RunE = func(*cobra.Command, []string) error {
		if code := runStatus(&f, stdout, stderr); code != exitOK {
			return exitCode(code)
		}
		return nil
	}
	return cmd
}

func runStatus(f *statusFlags, stdout, stderr io.Writer) int {
	ctx, cancel := signalContext()
	defer cancel()
	c, err := f.cluster.connect(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "meshctl status: %v\n", err)
		return exitError
	}
	st, err := plan.ReadStatus(ctx, c, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "meshctl status: %v\n", err)
		return exitError
	}
	if f.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			fmt.Fprintf(stderr, "meshctl status: %v\n", err)
			return exitError
		}
		return exitOK
	}
	writeStatus(stdout, st)
	return exitOK
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
			left, mark := certs.FormatLeft(c.TimeLeft), ""
			switch {
			case c.TimeLeft <= 0:
				left, mark = "expired", "‼ expired"
			case c.Expiring:
				mark = fmt.Sprintf("‼ expires within %dd", int(certs.WarnBefore/(24*time.Hour)))
			}
			rotates := "yes"
			if !c.CanRotate {
				rotates = "no (no signing key)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, c.Subject, c.NotAfter.UTC().Format(time.RFC3339), left, rotates, mark)
		}
		_ = tw.Flush()
		for _, line := range strings.SplitAfter(table.String(), "\n") {
			fmt.Fprint(w, strings.TrimRight(line, " \n")+strings.Repeat("\n", strings.Count(line, "\n")))
		}
	}
	if n := st.Expiring(); n > 0 {
		fmt.Fprintf(w, "%d certificate(s) expire within %dd: see 'meshctl diff' for what apply would rotate\n", n, int(certs.WarnBefore/(24*time.Hour)))
	}
	if line := anchorRotationLine(st.AnchorRotation); line != "" {
		fmt.Fprintln(w, line)
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
