package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshctl/meshctl/plan"
)

// Exit codes of check.
const (
	checkPassed      = 0
	checkFailed      = 1
	checkUnreachable = 3
)

type checkFlags struct {
	cluster       clusterFlags
	output        string
	pre           bool
	dataPlane     bool
	wait          time.Duration
	prometheusURL string
}

func newCheckCmd(stdout, stderr io.Writer) *cobra.Command {
	var f checkFlags
	cmd := pathCommand("check [PATH]", "Check the mesh's health against mesh.cue, with linkerd check's names",
		`Check that the mesh in the cluster is healthy and is what mesh.cue says.
It runs the checks of 'linkerd check' under their categories, names and
hint anchors (kubernetes-api, linkerd-crd, linkerd-existence,
linkerd-config, linkerd-cni-plugin, linkerd-identity,
linkerd-webhooks-and-apisvc-tls, linkerd-ha-checks, linkerd-viz,
linkerd-multicluster, ...), measured against mesh.cue rather than a
download: the version to run is the one mesh.cue pins, so no check needs
the internet; the 60-day certificate warnings say when meshctl's rotation
policy replaces each certificate, or who must; Prometheus is asked through
the API server's service proxy, with no port-forward.

Then what only meshctl knows: whether the cluster matches mesh.cue (the
comparison apply uses to skip what is in sync; no dry-runs), whether the
inventory holds an unfinished run, whether the reconcile loop's record is
healthy and its leader alive, whether the Gateway API CRDs are those
Linkerd 2.19 needs and whose they are, and whether every split backend
with weight has ready endpoints.

--pre checks a cluster before the first apply: the caller's permissions
for what apply writes (SelfSubjectAccessReview) and the kinds the server
serves. --data-plane checks every meshed pod too: its proxy's version
against the pinned release (one release behind warns, more fails;
Completed pods are skipped) and its trust roots against the current ones
(the pods to restart after a trust-anchor rotation's first step).
--wait runs the checks again every 2 seconds while any fails, saying which
on stderr, until none fails or the time is up.

The cluster is chosen with kubectl's flags; when mesh.cue declares
clusters, every cluster is checked through its context (--cluster NAME
picks one), each line prefixed with its name. -o json prints every check
with its cluster, category, name, stable id, status, message, next step
and hint; README lists the ids. Nothing is written.

Exit codes: 0 every check passed (warnings allowed), 1 a check failed or
mesh.cue is invalid, 2 bad usage, 3 the cluster could not be reached.`,
		`  # Is the mesh healthy, and is it what mesh.cue says?
  meshctl check

  # Before the first apply: may I, and does the server serve what I need?
  meshctl check --pre

  # Every meshed pod's proxy version and trust roots as well
  meshctl check --data-plane

  # In CI after an apply: wait up to five minutes for the mesh to settle
  meshctl check --wait 5m -o json | jq '.results[] | select(.status != "ok")'`)
	fs := cmd.Flags()
	addOutputFlag(cmd, &f.output, []string{"text", "json"}, "output format: text or json")
	fs.BoolVar(&f.pre, "pre", false, "check a cluster before the first apply: permissions and served kinds")
	fs.BoolVar(&f.dataPlane, "data-plane", false, "check every meshed pod's proxy version and trust roots too")
	fs.DurationVar(&f.wait, "wait", 0, "run failing checks again until they pass or this much time has passed (0: once)")
	fs.StringVar(&f.prometheusURL, "prometheus-url", "", "read viz's metrics here rather than through the API server's service proxy")
	addClusterFlags(cmd, &f.cluster)
	cmd.RunE = runE(func(path string) int { return runCheck(path, &f, stdout, stderr) })
	return cmd
}

func runCheck(path string, f *checkFlags, stdout, stderr io.Writer) int {
	if f.pre && f.dataPlane {
		fmt.Fprintln(stderr, "meshctl check: --pre checks a cluster before the mesh is there, and --data-plane its meshed pods: give one")
		return exitUsage
	}
	if f.wait < 0 {
		fmt.Fprintln(stderr, "meshctl check: --wait takes a duration of 0 (check once) or more")
		return exitUsage
	}
	m, ok := loadMesh(path, stderr)
	if !ok {
		return exitInvalid
	}
	fleet, err := f.cluster.fleet(m, stderr)
	if err != nil {
		return fleetError(stderr, "check", err, checkUnreachable)
	}
	ctx, cancel := signalContext()
	defer cancel()
	rep, err := plan.Check(ctx, m, fleet, plan.CheckOptions{
		Version: version, Cluster: f.cluster.pickedMember(m), Pre: f.pre, DataPlane: f.dataPlane,
		PrometheusURL: f.prometheusURL, Wait: f.wait, Progress: stderr,
	})
	if err != nil {
		return reportError(stderr, "check", err, checkUnreachable)
	}
	code := checkPassed
	switch {
	case len(rep.Unreachable) > 0:
		code = checkUnreachable
	case rep.Count(plan.CheckError) > 0:
		code = checkFailed
	}
	if f.output == "json" {
		if c := writeJSON(stdout, stderr, "check", checkJSON{Success: code == checkPassed, CheckReport: rep}); c != exitOK {
			return c
		}
		return code
	}
	writeChecks(stdout, rep)
	return code
}

// checkJSON is check's -o json.
type checkJSON struct {
	// Success: no check failed (warnings allowed), as linkerd check's.
	Success bool `json:"success"`
	*plan.CheckReport
}

// Upstream's marks.
const (
	markOK      = "√"
	markWarning = "‼"
	markError   = "×"
)

// writeChecks prints the report as linkerd check does: each category
// under a rule, a mark and the check's name, and under a check that did
// not pass what is wrong, the next step and upstream's hint.
func writeChecks(w io.Writer, rep *plan.CheckReport) {
	cluster, category := "\x00", ""
	for _, r := range rep.Results {
		out := prefixed(w, r.Cluster)
		if r.Cluster != cluster || r.Category != category {
			if cluster != "\x00" {
				fmt.Fprintln(w)
			}
			cluster, category = r.Cluster, r.Category
			fmt.Fprintf(out, "%s\n%s\n", r.Category, strings.Repeat("-", len([]rune(r.Category))))
		}
		mark := markOK
		switch r.Status {
		case plan.CheckWarning:
			mark = markWarning
		case plan.CheckError:
			mark = markError
		}
		fmt.Fprintf(out, "%s %s\n", mark, r.Name)
		if r.Message != "" {
			fmt.Fprintf(out, "    %s\n", r.Message)
		}
		if r.Next != "" {
			fmt.Fprintf(out, "    next: %s\n", r.Next)
		}
		if r.Hint != "" {
			fmt.Fprintf(out, "    see %s for hints\n", r.Hint)
		}
	}
	fmt.Fprintln(w)
	result := markOK
	if rep.Count(plan.CheckError) > 0 || len(rep.Unreachable) > 0 {
		result = markError
	}
	fmt.Fprintf(w, "Status check results are %s (%d passed, %d warnings, %d failed)\n", result, rep.Count(plan.CheckOK), rep.Count(plan.CheckWarning), rep.Count(plan.CheckError))
}
