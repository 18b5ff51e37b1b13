package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

// A multicluster mesh (mesh.cue declares clusters): apply, diff and build
// act on every cluster, targets of links first, or on the one --cluster
// picks. Every text line about a cluster starts with "[name] "; markdown
// has a heading per cluster; JSON is an array with a "cluster" field.

// clusterUsage is --cluster's help, for every command that has it.
const clusterUsage = "the cluster of mesh.cue's clusters to act on (default: all); with a mesh that declares no clusters, the kubeconfig cluster to use, as kubectl's --cluster"

// addMeshClusterFlag registers --cluster NAME.
func addMeshClusterFlag(cmd *cobra.Command, name *string) {
	cmd.Flags().StringVar(name, "cluster", "", clusterUsage)
}

// linkWaitWithoutWait is how long apply waits, without --wait, for a link
// target's token Secret to be filled and its gateway to get an address.
const linkWaitWithoutWait = 30 * time.Second

// fleet connects to the mesh's clusters through their contexts in the one
// kubeconfig that kubectl's flags select.
func (f *clusterFlags) fleet(m *schema.Mesh, stderr io.Writer) (*plan.Fleet, error) {
	if f.config.Context != nil && *f.config.Context != "" {
		return nil, fmt.Errorf("--context has no meaning when mesh.cue declares clusters: each cluster's context is clusters.<name>.context; pick a cluster with --cluster NAME")
	}
	if f.config.APIServer != nil && *f.config.APIServer != "" {
		return nil, fmt.Errorf("--server has no meaning when mesh.cue declares clusters: each cluster's context names its API server")
	}
	return plan.NewFleet(func(name string) (*plan.Member, error) {
		kctx := m.Clusters[name].Context
		f.config.Context = &kctx
		cfg, err := f.config.ToRESTConfig()
		empty := ""
		f.config.Context = &empty
		if err != nil {
			return nil, fmt.Errorf("context %q: %w", kctx, err)
		}
		cfg = rest.CopyConfig(cfg)
		cfg.WarningHandler = rest.NewWarningWriter(stderr, rest.WarningWriterOptions{Deduplicate: true})
		ca := cfg.CAData
		if len(ca) == 0 && cfg.CAFile != "" {
			if ca, err = os.ReadFile(cfg.CAFile); err != nil {
				return nil, fmt.Errorf("context %q: %w", kctx, err)
			}
		}
		c, err := apply.New(cfg, f.namespace)
		if err != nil {
			return nil, fmt.Errorf("context %q: %w", kctx, err)
		}
		return &plan.Member{Name: name, Context: kctx, Client: c, APIServer: cfg.Host, CAData: ca}, nil
	}), nil
}

// prefixWriter starts every line it writes with prefix.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	mid    bool
}

func prefixed(w io.Writer, cluster string) *prefixWriter {
	return &prefixWriter{w: w, prefix: "[" + cluster + "] "}
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	for _, c := range b {
		if !p.mid {
			out = append(out, p.prefix...)
		}
		out = append(out, c)
		p.mid = c != '\n'
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// clusterResult is one cluster's JSON output.
type clusterResult struct {
	Cluster string `json:"cluster"`
	*apply.Result
}

func runApplyClusters(m *schema.Mesh, f *applyFlags, stdout, stderr io.Writer) int {
	order, err := plan.ClusterOrder(m, f.cluster.meshCluster)
	if err != nil {
		fmt.Fprintf(stderr, "meshctl apply: %v\n", err)
		return exitUsage
	}
	fleet, err := f.cluster.fleet(m, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "meshctl apply: %v\n", err)
		return exitUsage
	}
	ctx, cancel := signalContext()
	defer cancel()
	// Before anything is written anywhere.
	if err := fleet.CheckTrust(ctx, m, order); err != nil {
		fmt.Fprintf(stderr, "meshctl apply: %v\n", err)
		if errors.Is(err, plan.ErrTrustRefused) {
			return exitRefused
		}
		return exitError
	}
	wait := linkWaitWithoutWait
	if f.opts.Wait {
		wait = f.opts.Timeout
	}
	var results []clusterResult
	for _, name := range order {
		res, code := applyMember(ctx, m, fleet, name, f, wait, stdout, stderr)
		if code != exitOK {
			return code
		}
		results = append(results, clusterResult{Cluster: name, Result: res})
	}
	if f.output == "json" {
		return writeJSON(stdout, stderr, "apply", results)
	}
	return exitOK
}

// applyMember applies one cluster of the mesh.
func applyMember(ctx context.Context, m *schema.Mesh, fleet *plan.Fleet, name string, f *applyFlags, wait time.Duration, stdout, stderr io.Writer) (*apply.Result, int) {
	errw := prefixed(stderr, name)
	o := f.opts
	o.Progress = prefixed(stdout, name)
	if f.output == "json" {
		o.Progress = errw
	}
	r, err := fleet.ForMember(ctx, m, name, plan.MemberOptions{DryRun: o.DryRun, Link: plan.LinkOptions{Wait: wait}}, version)
	if err != nil {
		fmt.Fprintf(errw, "meshctl apply: %v\n", err)
		return nil, exitError
	}
	mem, _ := fleet.Member(name)
	c := mem.Client
	for _, n := range r.Notes {
		fmt.Fprintln(o.Progress, n)
	}
	warnings := append(r.Warnings, plan.Warnings(ctx, m, c)...)
	for _, w := range append(warnings, plan.CertificateWarnings(ctx, m, c)...) {
		fmt.Fprintf(errw, "warning: %s\n", w)
	}
	res, err := c.Apply(ctx, r.Set, o)
	if err != nil {
		fmt.Fprintf(errw, "meshctl apply: %v\n", err)
		if errors.Is(err, apply.ErrPruneRefused) {
			return nil, exitRefused
		}
		return nil, exitError
	}
	note, _, err := plan.SafeToEvictTemplates(ctx, m, plan.Cluster{Client: c, DryRun: o.DryRun, Name: name})
	if err != nil {
		fmt.Fprintf(errw, "meshctl apply: safeToEvict: %v\n", err)
		return nil, exitError
	}
	if note != "" {
		fmt.Fprintln(o.Progress, note)
	}
	if f.output != "json" {
		dry := ""
		if o.DryRun {
			dry = " (server dry run; nothing written)"
		}
		fmt.Fprintf(prefixed(stdout, name), "apply: %s in %s%s\n", res.SummaryLine(), res.Duration.Round(10*time.Millisecond), dry)
	}
	return res, exitOK
}

func writeJSON(stdout, stderr io.Writer, verb string, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "meshctl %s: %v\n", verb, err)
		return exitError
	}
	return exitOK
}

// clusterDiff is one cluster's diff.
type clusterDiffResult struct {
	Cluster string `json:"cluster"`
	*apply.DiffResult
}

func runDiffClusters(m *schema.Mesh, path string, f *diffFlags, stdout, stderr io.Writer) int {
	var results []clusterDiffResult
	var err error
	if f.base != "" || f.baseRev != "" {
		results, err = offlineDiffClusters(m, path, f)
	} else {
		results, err = clusterDiffs(m, f, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "meshctl diff: %v\n", err)
		return diffError
	}
	changed := false
	for _, r := range results {
		changed = changed || r.Changed()
	}
	switch f.output {
	case "json":
		if code := writeJSON(stdout, stderr, "diff", results); code != exitOK {
			return diffError
		}
	case "markdown":
		for _, r := range results {
			fmt.Fprintf(stdout, "## cluster `%s`\n\n", r.Cluster)
			r.WriteMarkdown(stdout)
			fmt.Fprintln(stdout)
		}
	default:
		for _, r := range results {
			r.WriteText(prefixed(stdout, r.Cluster))
		}
	}
	if changed {
		return diffChanged
	}
	return diffSame
}

func clusterDiffs(m *schema.Mesh, f *diffFlags, stderr io.Writer) ([]clusterDiffResult, error) {
	order, err := plan.ClusterOrder(m, f.cluster.meshCluster)
	if err != nil {
		return nil, err
	}
	fleet, err := f.cluster.fleet(m, stderr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := signalContext()
	defer cancel()
	var out []clusterDiffResult
	for _, name := range order {
		r, err := fleet.ForMember(ctx, m, name, plan.MemberOptions{DryRun: true, Diff: true}, version)
		if err != nil {
			return nil, fmt.Errorf("[%s] %w", name, err)
		}
		mem, _ := fleet.Member(name)
		c := mem.Client
		res, err := c.Diff(ctx, r.Set, apply.DiffOptions{Force: f.force})
		if err != nil {
			return nil, fmt.Errorf("[%s] %w", name, err)
		}
		res.Meanings = plan.Meanings(nil, m, res)
		if note, restarts, err := plan.SafeToEvictTemplates(ctx, m, plan.Cluster{Client: c, DryRun: true, Name: name}); err != nil {
			return nil, fmt.Errorf("[%s] %w", name, err)
		} else if restarts {
			res.Meanings = append(res.Meanings, note)
		}
		res.Warnings = append(r.Warnings, plan.Warnings(ctx, m, c)...)
		res.Warnings = append(res.Warnings, plan.CertificateWarnings(ctx, m, c)...)
		if err := fleet.CheckTrust(ctx, m, []string{name}); err != nil {
			if !errors.Is(err, plan.ErrTrustRefused) {
				return nil, fmt.Errorf("[%s] %w", name, err)
			}
			res.Warnings = append(res.Warnings, "apply will refuse: "+err.Error())
		}
		out = append(out, clusterDiffResult{Cluster: name, DiffResult: res})
	}
	return out, nil
}

// offlineDiffClusters compares two revisions cluster by cluster: every
// cluster either declares, or the one --cluster picks.
func offlineDiffClusters(m *schema.Mesh, path string, f *diffFlags) ([]clusterDiffResult, error) {
	base := f.base
	if f.baseRev != "" {
		dir, err := os.MkdirTemp("", "meshctl-base-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if base, err = checkoutBase(path, f.baseRev, dir); err != nil {
			return nil, err
		}
	}
	old, err := meshLoader().Load(base)
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", base, err)
	}
	names := map[string]bool{}
	for n := range m.Clusters {
		names[n] = true
	}
	for n := range old.Clusters {
		names[n] = true
	}
	if only := f.cluster.meshCluster; only != "" {
		if !names[only] {
			_, err := plan.ClusterOrder(m, only)
			return nil, err
		}
		names = map[string]bool{only: true}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	var out []clusterDiffResult
	for _, name := range sorted {
		var oldSet, newSet apply.Set
		if _, ok := old.Clusters[name]; ok {
			if oldSet, err = plan.OfflineMember(old, name, version); err != nil {
				return nil, fmt.Errorf("base: [%s] %w", name, err)
			}
		}
		if _, ok := m.Clusters[name]; ok {
			if newSet, err = plan.OfflineMember(m, name, version); err != nil {
				return nil, fmt.Errorf("[%s] %w", name, err)
			}
		}
		res := apply.CompareSets(oldSet, newSet)
		res.Meanings = plan.Meanings(old, m, res)
		out = append(out, clusterDiffResult{Cluster: name, DiffResult: res})
	}
	return out, nil
}

// buildList is one cluster's objects in build's JSON output.
type buildList struct {
	Cluster    string `json:"cluster"`
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Items      []any  `json:"items"`
}

func runBuildClusters(m *schema.Mesh, f buildFlags, stdout, stderr io.Writer) int {
	order, err := plan.ClusterOrder(m, f.cluster)
	if err != nil {
		fmt.Fprintf(stderr, "meshctl build: %v\n", err)
		return exitUsage
	}
	sort.Strings(order)
	var lists []buildList
	var yamlOut strings.Builder
	for _, name := range order {
		in := generators.Inputs{Cluster: name}
		if f.certsDir != "" {
			// Each cluster keeps certificates of its own, as apply does.
			dir := filepath.Join(f.certsDir, name)
			b, created, err := certs.LoadOrCreate(dir, generators.CertOptions(m, time.Now()))
			if err != nil {
				fmt.Fprintf(stderr, "[%s] meshctl build: certificates in %s: %v\n", name, dir, err)
				return exitError
			}
			if created {
				fmt.Fprintf(stderr, "[%s] generated certificates in %s (keys are 0600; keep them out of git)\n", name, dir)
			}
			in.Certs = b
		}
		objs, err := generators.Render(m, in)
		if err != nil {
			fmt.Fprintf(stderr, "[%s] meshctl build: %v\n", name, err)
			return exitError
		}
		if f.output == "json" {
			l := buildList{Cluster: name, APIVersion: "v1", Kind: "List", Items: make([]any, len(objs))}
			for i, o := range objs {
				l.Items[i] = o.Object.Object
			}
			lists = append(lists, l)
			continue
		}
		// A YAML comment: the stream stays ready for kubectl apply -f -.
		fmt.Fprintf(&yamlOut, "# cluster: %s (context %s)\n", name, m.Clusters[name].Context)
		if err := generators.Encode(&yamlOut, objs, "yaml"); err != nil {
			fmt.Fprintf(stderr, "[%s] meshctl build: %v\n", name, err)
			return exitError
		}
	}
	if f.output == "json" {
		return writeJSON(stdout, stderr, "build", lists)
	}
	if _, err := io.WriteString(stdout, yamlOut.String()); err != nil {
		fmt.Fprintf(stderr, "meshctl build: %v\n", err)
		return exitError
	}
	return exitOK
}
