package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/rollout"
)

func newRolloutCmd(stdout, stderr io.Writer) *cobra.Command {
	return groupCommand(&cobra.Command{
		Use:   "rollout",
		Short: "Show, promote or abort the rollouts mesh.cue declares",
		Long: `A service's rollout (services."NS/NAME".rollout in mesh.cue) moves its
split from the primary to the candidate step by step; 'meshctl reconcile'
judges each step by Linkerd's metrics, the candidate against the primary
over the same window (README, "Rollouts"). These commands show where each
rollout stands, and take a person's decision: a manual gate, or a
rollout run without the loop.`,
		Example: `  # Where every rollout stands
  meshctl rollout status

  # Move booksapp/books to its next step now, or all the way
  meshctl rollout promote booksapp/books
  meshctl rollout promote booksapp/books --full

  # Send all traffic back to the primary
  meshctl rollout abort booksapp/books`,
	}, stderr, func(arg string) string {
		return fmt.Sprintf("unknown command %q; use status, promote or abort", arg)
	}, newRolloutStatusCmd(stdout, stderr), newRolloutDecideCmd(true, stdout, stderr), newRolloutDecideCmd(false, stdout, stderr))
}

type rolloutStatusFlags struct {
	cluster clusterFlags
	output  string
}

func newRolloutStatusCmd(stdout, stderr io.Writer) *cobra.Command {
	var f rolloutStatusFlags
	cmd := &cobra.Command{
		Use:   "status [SERVICE]",
		Short: "Show where each rollout stands",
		Long: `Print each rollout as the cluster stores it (ConfigMaps meshctl-rollouts-N
in --meshctl-namespace): its step and weight, the last analysis's numbers
for the candidate and the primary, its verdict, and when the next analysis
falls due. SERVICE ("namespace/name") shows one.

Exit codes: 0 shown, 2 bad usage or no such rollout, 3 the cluster could
not be read.`,
		Example: `  # Every rollout
  meshctl rollout status

  # One, as JSON with its recent analyses
  meshctl rollout status booksapp/books -o json`,
		Args: cobra.MaximumNArgs(1),
	}
	addOutputFlag(cmd, &f.output, []string{"text", "json"}, "output format: text or json")
	addClusterFlags(cmd, &f.cluster)
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		only := ""
		if len(args) == 1 {
			only = args[0]
		}
		if code := runRolloutStatus(only, &f, stdout, stderr); code != exitOK {
			return exitCode(code)
		}
		return nil
	}
	return cmd
}

func runRolloutStatus(only string, f *rolloutStatusFlags, stdout, stderr io.Writer) int {
	const verb = "rollout status"
	fleet, err := f.cluster.fleet(nil, stderr)
	if err != nil {
		return fleetError(stderr, verb, err, exitError)
	}
	ctx, cancel := signalContext()
	defer cancel()
	crs, err := plan.ReadRollouts(ctx, nil, fleet, "")
	if err != nil {
		return reportError(stderr, verb, err, exitError)
	}
	var states []rollout.State
	for _, cr := range crs {
		for _, s := range cr.States {
			if only == "" || s.Service == only {
				states = append(states, s)
			}
		}
	}
	if only != "" && len(states) == 0 {
		fmt.Fprintf(stderr, "meshctl %s: %s has no rollout in this cluster (is it in mesh.cue, and has the loop or apply run since?)\n", verb, only)
		return exitUsage
	}
	if f.output == "json" {
		if states == nil {
			states = []rollout.State{}
		}
		return writeJSON(stdout, stderr, verb, states)
	}
	if len(states) == 0 {
		fmt.Fprintln(stdout, "no rollouts")
	}
	now := time.Now()
	for _, s := range states {
		fmt.Fprintln(stdout, s.Summary(now))
		if n := len(s.History); n > 0 && only != "" {
			for _, a := range s.History {
				fmt.Fprintf(stdout, "  %s %s: %s\n", a.At.UTC().Format(time.RFC3339), a.Verdict, a.Reason)
			}
		}
	}
	return exitOK
}

type rolloutDecideFlags struct {
	cluster clusterFlags
	full    bool
}

func newRolloutDecideCmd(promote bool, stdout, stderr io.Writer) *cobra.Command {
	var f rolloutDecideFlags
	use, short, long, example := "abort SERVICE [PATH]", "Roll a rollout back: all traffic to the primary",
		`Roll SERVICE's rollout back by hand: the primary takes all traffic, and
the rollout ends (RolledBack). A new candidate (a change to its pod
template, or another rollout.to) starts another.`,
		`  # Send booksapp/books's traffic back to books
  meshctl rollout abort booksapp/books`
	if promote {
		use, short, long, example = "promote SERVICE [PATH]", "Move a rollout to its next step now, or with --full to 100%",
			`Move SERVICE's rollout to its next step without waiting for an analysis
(a manual gate), or with --full straight to 100% (Promoted).`,
			`  # The next step now
  meshctl rollout promote booksapp/books

  # All traffic to the candidate
  meshctl rollout promote booksapp/books --full mesh.cue`
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long: long + `

The decision is stored with the rollout's state, and the weights are
applied at once, as 'meshctl apply PATH' would apply them (PATH defaults to
mesh.cue); a running 'meshctl reconcile' goes on from the new state.

Exit codes: 0 done, 1 invalid mesh.cue, 2 bad usage (no such rollout, or it
has ended), 3 failed.`,
		Example: example,
		Args:    cobra.RangeArgs(1, 2),
	}
	if promote {
		cmd.Flags().BoolVar(&f.full, "full", false, "promote to 100% at once, skipping the remaining steps")
	}
	addClusterFlags(cmd, &f.cluster)
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		path := "mesh.cue"
		if len(args) == 2 {
			path = args[1]
		}
		if code := runRolloutDecide(plan.RolloutAction{Service: args[0], Promote: promote, Full: f.full}, path, &f, stdout, stderr); code != exitOK {
			return exitCode(code)
		}
		return nil
	}
	return cmd
}

func runRolloutDecide(act plan.RolloutAction, path string, f *rolloutDecideFlags, stdout, stderr io.Writer) int {
	verb := "rollout abort"
	if act.Promote {
		verb = "rollout promote"
	}
	m, ok := loadMesh(path, stderr)
	if !ok {
		return exitInvalid
	}
	if svc, ok := m.Services[act.Service]; !ok || svc.Rollout == nil {
		fmt.Fprintf(stderr, "meshctl %s: %s has no rollout in %s\n", verb, act.Service, path)
		return exitUsage
	}
	fleet, err := f.cluster.fleet(m, stderr)
	if err != nil {
		return fleetError(stderr, verb, err, exitError)
	}
	ctx, cancel := signalContext()
	defer cancel()
	rep, err := plan.DecideRollout(ctx, m, fleet, act, plan.RolloutOptions{
		Cluster: f.cluster.pickedMember(m),
		Apply: &plan.ApplyOptions{
			Version:  version,
			Progress: func(string) io.Writer { return stdout },
		},
	})
	if err != nil {
		if errors.Is(err, plan.ErrRolloutEnded) {
			fmt.Fprintf(stderr, "meshctl %s: %v\n", verb, err)
			return exitUsage
		}
		return reportError(stderr, verb, err, exitError)
	}
	for _, cr := range rep.Clusters {
		for _, ev := range cr.Events {
			fmt.Fprintln(prefixed(stdout, cr.Cluster), ev.Message)
		}
	}
	return exitOK
}
