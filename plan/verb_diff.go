package plan

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/schema"
)

// DiffOptions control the diff verb.
type DiffOptions struct {
	Version string
	// Cluster, with a mesh that declares clusters, is the one to diff; ""
	// diffs them all.
	Cluster string
	// Force: immutable-field changes count as recreates, not errors.
	Force bool
	// Anchor, when set, shows the next step of a trust-anchor rotation,
	// computed in memory (meshctl rotate trust-anchor --dry-run).
	Anchor *AnchorRotation
}

// DiffReport is what apply would change, cluster by cluster.
type DiffReport struct {
	Clusters []*ClusterDiff
}

// ClusterDiff is one cluster's diff.
type ClusterDiff struct {
	ClusterReport
	Result *apply.DiffResult
}

// Changed reports whether any cluster differs.
func (r *DiffReport) Changed() bool {
	for _, c := range r.Clusters {
		if c.Result.Changed() {
			return true
		}
	}
	return false
}

// Diff says what Apply would change in every cluster of the fleet, by the
// same steps (prepare) with nothing written: certificates that would be
// made or rotated live in memory only, objects in sync with the live ones
// are decided without a request, the rest are dry-run on the server. The
// result starts with what the changes mean; the warnings are Apply's, and
// a fleet whose linked clusters do not share a trust anchor gets the
// refusal Apply would give as a warning.
func Diff(ctx context.Context, m *schema.Mesh, f *Fleet, o DiffOptions) (*DiffReport, error) {
	order, err := f.targets(m, o.Cluster)
	if err != nil {
		return nil, err
	}
	// The trust step as apply takes it, in memory: a refusal is every
	// cluster's warning.
	refused := ""
	sig, anchor, err := f.trustStep(ctx, m, order, true, o.Anchor)
	if errors.Is(err, ErrTrustRefused) {
		refused, err = "apply will refuse: "+err.Error(), nil
	}
	if err != nil {
		return nil, err
	}
	o.Anchor = anchor
	rep := &DiffReport{}
	for _, name := range order {
		cd, err := f.diffOne(ctx, m, name, o, sig, refused)
		if err != nil {
			return rep, inCluster(name, err)
		}
		rep.Clusters = append(rep.Clusters, cd)
	}
	return rep, nil
}

func (f *Fleet) diffOne(ctx context.Context, m *schema.Mesh, name string, o DiffOptions, sig *fleetSigning, refused string) (*ClusterDiff, error) {
	p, err := f.prepare(ctx, m, name, runOptions{version: o.Version, dryRun: true, diff: true, anchor: o.Anchor, signed: sig})
	if err != nil {
		return nil, err
	}
	res, err := p.mem.Client.Diff(ctx, p.set, apply.DiffOptions{Force: o.Force, Live: p.live})
	if err != nil {
		return nil, err
	}
	res.Meanings = Meanings(nil, m, res)
	// Where safeToEvict falls back to pod templates, say which would change.
	if note, restarts, err := SafeToEvictTemplates(ctx, m, Cluster{Client: p.mem.Client, DryRun: true, Name: name}, p.live); err != nil {
		return nil, fmt.Errorf("safeToEvict: %w", err)
	} else if restarts {
		res.Meanings = append(res.Meanings, note)
	}
	if refused != "" {
		p.report.Warnings = append(p.report.Warnings, refused)
	}
	res.Warnings = p.report.Warnings
	return &ClusterDiff{ClusterReport: p.report, Result: res}, nil
}

// DiffOffline compares two revisions of a mesh without a cluster, cluster
// by cluster when either declares clusters (only, when it names one):
// each revision is rendered without certificates, and the result starts
// with what the changes mean.
func DiffOffline(old, new *schema.Mesh, only, version string) (*DiffReport, error) {
	if len(old.Clusters) == 0 && len(new.Clusters) == 0 {
		if only != "" {
			return nil, noClusters(only)
		}
		oldSet, err := Offline(old, version)
		if err != nil {
			return nil, fmt.Errorf("base: %w", err)
		}
		newSet, err := Offline(new, version)
		if err != nil {
			return nil, err
		}
		return &DiffReport{Clusters: []*ClusterDiff{offlineDiff(old, new, oldSet, newSet, "")}}, nil
	}
	names := slices.Sorted(maps.Keys(new.Clusters))
	for n := range old.Clusters {
		if _, ok := new.Clusters[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	if only != "" {
		if !slices.Contains(names, only) {
			_, err := ClusterOrder(new, only)
			return nil, err
		}
		names = []string{only}
	}
	rep := &DiffReport{}
	for _, name := range names {
		var oldSet, newSet apply.Set
		var err error
		if _, ok := old.Clusters[name]; ok {
			if oldSet, err = OfflineMember(old, name, version); err != nil {
				return nil, inCluster(name, fmt.Errorf("base: %w", err))
			}
		}
		if _, ok := new.Clusters[name]; ok {
			if newSet, err = OfflineMember(new, name, version); err != nil {
				return nil, inCluster(name, err)
			}
		}
		rep.Clusters = append(rep.Clusters, offlineDiff(old, new, oldSet, newSet, name))
	}
	return rep, nil
}

func offlineDiff(old, new *schema.Mesh, oldSet, newSet apply.Set, name string) *ClusterDiff {
	res := apply.CompareSets(oldSet, newSet)
	res.Meanings = Meanings(old, new, res)
	return &ClusterDiff{ClusterReport: ClusterReport{Cluster: name}, Result: res}
}
