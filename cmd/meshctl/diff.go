package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

// Exit codes of diff, as kubectl diff and flux diff use them.
const (
	diffSame    = 0
	diffChanged = 1
	diffError   = 3
)

type diffFlags struct {
	cluster        clusterFlags
	output         string
	offline, force bool
	base, baseRev  string
	maxBytes       int
}

func newDiffCmd(stdout, stderr io.Writer) *cobra.Command {
	var f diffFlags
	cmd := pathCommand("diff [PATH]", "Show what apply would change, against the cluster or another revision",
		`Show what 'meshctl apply' would change. Every object is dry-run on the
server and compared with the live one; the diff is unified YAML (live
against merged), followed by the objects that would be pruned. Secret
values are masked, and server-managed fields (managedFields,
resourceVersion, status) are left out.

With --base OLD.cue or --base-rev GITREV, diff compares two revisions of
the mesh without a cluster (for pull-request checks), shows each changed
object's fields, and says in a line what the biggest changes mean ("HA off:
linkerd-destination replicas 3→1, 3 PDBs removed"). Certificate-bearing
objects are left out of offline renders. GITREV is any git revision, or
A...B for the merge base of A and B (B defaults to HEAD): a pull request
is compared with main...HEAD, not with main's tip, which may have moved.

-o markdown is a pull-request comment: what the change means, the warnings
and a table of the objects first, then each object's diff, folded. With
--max-bytes N it stays within N bytes (GitHub takes 65,536 characters at
most): the meanings and the table always (a long table is grouped by kind
and namespace), then as many objects' diffs as fit, and a line that says
how many were left out and how to see them.

The cluster is chosen with kubectl's flags (--kubeconfig, --context, --as
and the rest); kubectl's -n/--namespace has no meaning here. When mesh.cue
declares clusters, diff compares every one (or the one --cluster NAME
picks) through its context; text lines start with [name], markdown has a
heading per cluster, and JSON is an array with a cluster field.

Exit codes: 0 no differences, 1 differences, 2 bad usage, 3 error (an
invalid mesh.cue included, so that 1 always means differences).`,
		`  # What would apply change in the current cluster?
  meshctl diff

  # A summary to paste into a pull request
  meshctl diff -o markdown

  # Compare the working copy with main, offline
  meshctl diff --offline --base-rev main mesh.cue

  # A pull request's comment, against the merge base, under GitHub's limit
  meshctl diff --offline --base-rev origin/main...HEAD -o markdown --max-bytes 60000

  # Compare two files
  meshctl diff --offline --base old/mesh.cue mesh.cue
`)
	fs := cmd.Flags()
	addOutputFlag(cmd, &f.output, []string{"text", "markdown", "json"}, "output format: text, markdown or json")
	fs.BoolVar(&f.offline, "offline", false, "compare with --base or --base-rev instead of a cluster")
	fs.StringVar(&f.base, "base", "", "the older mesh file or directory to compare with (implies --offline)")
	fs.StringVar(&f.baseRev, "base-rev", "", "a git revision whose PATH is the older mesh, or A...B for the merge base of A and B (implies --offline)")
	fs.BoolVar(&f.force, "force", false, "count immutable-field changes as recreates rather than errors")
	fs.IntVar(&f.maxBytes, "max-bytes", 0, "with -o markdown, the most bytes to print: the meanings and the table of objects always, then as many objects' diffs as fit (0: all)")
	_ = cmd.MarkFlagFilename("base", "cue")
	addClusterFlags(cmd, &f.cluster)
	cmd.RunE = runE(func(path string) int { return runDiff(path, &f, stdout, stderr) })
	return cmd
}

func runDiff(path string, f *diffFlags, stdout, stderr io.Writer) int {
	if f.base != "" && f.baseRev != "" {
		fmt.Fprintln(stderr, "meshctl diff: give --base or --base-rev, not both")
		return exitUsage
	}
	if f.offline && f.base == "" && f.baseRev == "" {
		fmt.Fprintln(stderr, "meshctl diff: --offline needs --base OLD.cue or --base-rev GITREV")
		return exitUsage
	}
	if f.maxBytes != 0 && (f.output != "markdown" || f.maxBytes < 0) {
		fmt.Fprintln(stderr, "meshctl diff: --max-bytes takes a number of bytes for -o markdown")
		return exitUsage
	}
	m, ok := loadMesh(path, stderr)
	if !ok {
		return diffError
	}
	var rep *plan.DiffReport
	var err error
	md := markdown{maxBytes: f.maxBytes, again: "meshctl diff " + path}
	if f.base != "" || f.baseRev != "" {
		rep, md.base, err = offlineDiff(m, path, f)
		md.again = "meshctl diff --offline --base " + f.base + " " + path
		if f.baseRev != "" {
			md.again = "meshctl diff --offline --base-rev " + f.baseRev + " " + path
		}
	} else {
		rep, err = clusterDiff(m, f, stderr)
	}
	var u usageError
	switch {
	case errors.As(err, &u):
		return fleetError(stderr, "diff", err, diffError)
	case err != nil:
		if code := reportError(stderr, "diff", err, diffError); code == exitUsage {
			return exitUsage
		}
		return diffError
	}
	multi := len(rep.Clusters) > 1 || rep.Clusters[0].Cluster != ""
	switch f.output {
	case "json":
		if !multi {
			if code := writeJSON(stdout, stderr, "diff", rep.Clusters[0].Result); code != exitOK {
				return diffError
			}
			break
		}
		results := make([]clusterDiffResult, len(rep.Clusters))
		for i, c := range rep.Clusters {
			results[i] = clusterDiffResult{Cluster: c.Cluster, DiffResult: c.Result}
		}
		if code := writeJSON(stdout, stderr, "diff", results); code != exitOK {
			return diffError
		}
	case "markdown":
		var out bytes.Buffer
		if err := md.write(&out, rep); err != nil {
			fmt.Fprintf(stderr, "meshctl diff: %v\n", err)
			return diffError
		}
		if f.maxBytes > 0 && out.Len() > f.maxBytes {
			fmt.Fprintf(stderr, "warning: the markdown is %d bytes, over --max-bytes %d: the meanings and the table of objects alone take that much\n", out.Len(), f.maxBytes)
		}
		if _, err := stdout.Write(out.Bytes()); err != nil {
			fmt.Fprintf(stderr, "meshctl diff: %v\n", err)
			return diffError
		}
	default:
		for _, c := range rep.Clusters {
			c.Result.WriteText(prefixed(stdout, c.Cluster))
			// A rollout in progress is what it is, not drift.
			for _, s := range c.Rollouts {
				fmt.Fprintln(prefixed(stdout, c.Cluster), "rollout "+s.Summary(time.Now()))
			}
		}
	}
	if rep.Changed() {
		return diffChanged
	}
	return diffSame
}

// clusterDiffResult is one cluster's diff in JSON output.
type clusterDiffResult struct {
	Cluster string `json:"cluster"`
	*apply.DiffResult
}

func clusterDiff(m *schema.Mesh, f *diffFlags, stderr io.Writer) (*plan.DiffReport, error) {
	fleet, err := f.cluster.fleet(m, stderr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := signalContext()
	defer cancel()
	return plan.Diff(ctx, m, fleet, plan.DiffOptions{Version: version, Cluster: f.cluster.pickedMember(m), Force: f.force})
}

// offlineDiff compares m with --base, or with PATH at --base-rev. base
// says what the base was, for the markdown's heading.
func offlineDiff(m *schema.Mesh, path string, f *diffFlags) (rep *plan.DiffReport, base string, err error) {
	load, base := f.base, f.base
	if f.baseRev != "" {
		dir, err := os.MkdirTemp("", "meshctl-base-")
		if err != nil {
			return nil, "", err
		}
		defer os.RemoveAll(dir)
		var commit string
		if load, commit, err = checkoutBase(path, f.baseRev, dir); err != nil {
			return nil, "", err
		}
		base = fmt.Sprintf("`%s` (%.12s)", f.baseRev, commit)
	}
	old, err := meshLoader().Loader.Load(load)
	if err != nil {
		return nil, "", fmt.Errorf("base %s: %w", load, err)
	}
	rep, err = plan.DiffOffline(old, m, f.cluster.meshCluster, version)
	return rep, base, err
}

// checkoutBase writes PATH as it is at rev (a file, or the .cue files of a
// directory) under dir and returns the path to load, and the commit rev
// resolved to. rev is any git revision, or A...B for the merge base of A
// and B (B defaults to HEAD): a pull request is compared with the merge
// base, main...HEAD, not with main's tip.
func checkoutBase(path, rev, dir string) (load, commit string, err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", "", err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", "", err
	}
	wd := filepath.Dir(abs)
	if st.IsDir() {
		wd = abs
	}
	git := func(args ...string) ([]byte, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = wd
		var errb bytes.Buffer
		cmd.Stderr = &errb
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
		}
		return out, nil
	}
	if a, b, ok := strings.Cut(rev, "..."); ok {
		if b == "" {
			b = "HEAD"
		}
		out, err := git("merge-base", a, b)
		if err != nil {
			return "", "", fmt.Errorf("--base-rev %s: no merge base of %s and %s (is the history deep enough? CI checkouts are often shallow: fetch with depth 0): %w", rev, a, b, err)
		}
		rev = strings.TrimSpace(string(out))
	}
	out, err := git("rev-parse", "--verify", "--quiet", rev+"^{commit}")
	if err != nil {
		return "", "", fmt.Errorf("--base-rev %s: not a commit here: %w", rev, err)
	}
	commit = strings.TrimSpace(string(out))
	if !st.IsDir() {
		data, err := git("show", commit+":./"+filepath.Base(abs))
		if err != nil {
			return "", "", err
		}
		out := filepath.Join(dir, filepath.Base(abs))
		return out, commit, os.WriteFile(out, data, 0o600)
	}
	list, err := git("ls-tree", "--name-only", commit, "./")
	if err != nil {
		return "", "", err
	}
	for _, name := range strings.Fields(string(list)) {
		if !strings.HasSuffix(name, ".cue") {
			continue
		}
		data, err := git("show", commit+":./"+name)
		if err != nil {
			return "", "", err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(name)), data, 0o600); err != nil {
			return "", "", err
		}
	}
	return dir, commit, nil
}
