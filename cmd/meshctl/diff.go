package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

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
objects are left out of offline renders.

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

  # Compare two files
  meshctl diff --offline --base old/mesh.cue mesh.cue
`)
	fs := cmd.Flags()
	addOutputFlag(cmd, &f.output, []string{"text", "markdown", "json"}, "output format: text, markdown or json")
	fs.BoolVar(&f.offline, "offline", false, "compare with --base or --base-rev instead of a cluster")
	fs.StringVar(&f.base, "base", "", "the older mesh file or directory to compare with (implies --offline)")
	fs.StringVar(&f.baseRev, "base-rev", "", "a git revision whose PATH is the older mesh (implies --offline)")
	fs.BoolVar(&f.force, "force", false, "count immutable-field changes as recreates rather than errors")
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
	m, ok := loadMesh(path, stderr)
	if !ok {
		return diffError
	}
	if len(m.Clusters) > 0 {
		return runDiffClusters(m, path, f, stdout, stderr)
	}
	var res *apply.DiffResult
	var err error
	if f.base != "" || f.baseRev != "" {
		res, err = offlineDiff(m, path, f.base, f.baseRev)
	} else {
		res, err = clusterDiff(m, &f.cluster, f.force, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "meshctl diff: %v\n", err)
		return diffError
	}
	switch f.output {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "meshctl diff: %v\n", err)
			return diffError
		}
	case "markdown":
		res.WriteMarkdown(stdout)
	default:
		res.WriteText(stdout)
	}
	if res.Changed() {
		return diffChanged
	}
	return diffSame
}

func clusterDiff(m *schema.Mesh, cf *clusterFlags, force bool, stderr io.Writer) (*apply.DiffResult, error) {
	ctx, cancel := signalContext()
	defer cancel()
	c, err := cf.connect(stderr)
	if err != nil {
		return nil, err
	}
	set, _, err := plan.ForCluster(ctx, m, plan.Cluster{Client: c, DryRun: true}, version)
	if err != nil {
		return nil, err
	}
	// One LIST per kind serves the diff and the warnings alike.
	live, err := c.ListLive(ctx, set, plan.WideKinds(m)...)
	if err != nil {
		return nil, err
	}
	res, err := c.Diff(ctx, set, apply.DiffOptions{Force: force, Live: live})
	if err != nil {
		return nil, err
	}
	res.Meanings = plan.Meanings(nil, m, res)
	// Where safeToEvict falls back to pod templates, say which would change.
	if note, restarts, err := plan.SafeToEvictTemplates(ctx, m, plan.Cluster{Client: c, DryRun: true}); err != nil {
		return nil, err
	} else if restarts {
		res.Meanings = append(res.Meanings, note)
	}
	res.Warnings = append(append(plan.Warnings(ctx, m, c), plan.HeadlessWarnings(ctx, m, c, live)...), plan.CertificateWarnings(ctx, m, c)...)
	return res, nil
}

func offlineDiff(m *schema.Mesh, path, base, baseRev string) (*apply.DiffResult, error) {
	if baseRev != "" {
		dir, err := os.MkdirTemp("", "meshctl-base-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if base, err = checkoutBase(path, baseRev, dir); err != nil {
			return nil, err
		}
	}
	old, err := meshLoader().Load(base)
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", base, err)
	}
	oldSet, err := plan.Offline(old, version)
	if err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	newSet, err := plan.Offline(m, version)
	if err != nil {
		return nil, err
	}
	res := apply.CompareSets(oldSet, newSet)
	res.Meanings = plan.Meanings(old, m, res)
	return res, nil
}

// checkoutBase writes PATH as it is at rev (a file, or the .cue files of a
// directory) under dir and returns the path to load.
func checkoutBase(path, rev, dir string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", err
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
	if !st.IsDir() {
		data, err := git("show", rev+":./"+filepath.Base(abs))
		if err != nil {
			return "", err
		}
		out := filepath.Join(dir, filepath.Base(abs))
		return out, os.WriteFile(out, data, 0o600)
	}
	list, err := git("ls-tree", "--name-only", rev, "./")
	if err != nil {
		return "", err
	}
	for _, name := range strings.Fields(string(list)) {
		if !strings.HasSuffix(name, ".cue") {
			continue
		}
		data, err := git("show", rev+":./"+name)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(name)), data, 0o600); err != nil {
			return "", err
		}
	}
	return dir, nil
}
