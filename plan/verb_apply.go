package plan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/schema"
)

// ApplyOptions control the apply verb.
type ApplyOptions struct {
	// Apply says how each cluster is applied (wait, timeout, dry run,
	// prune and its guards, force). Its MaxDeletions, when zero, is
	// mesh.cue's prune.maxDeletions. Its Progress and Live are set per
	// cluster from the fields below.
	Apply apply.Options
	// Version is meshctl's, recorded in the inventory.
	Version string
	// Cluster, with a mesh that declares clusters, is the one to apply;
	// "" applies them all.
	Cluster string
	// LinkWait bounds the wait for what a link reads in its target (its
	// token, its gateway's address).
	LinkWait time.Duration
	// Progress returns the writer a cluster's lines go to; nil prints none.
	Progress func(cluster string) io.Writer
	// Live, when set, holds the live objects: the reconcile loop's
	// caches. Otherwise they are read with one LIST per kind.
	Live apply.LiveObjects
	// Prepared, when set, is called for each cluster once it is rendered
	// and read, before anything is applied, with its notes and warnings
	// so far and its render: the CLI prints them, and the reconcile loop
	// keeps the render as the state it corrects drift towards. An error
	// stops the verb.
	Prepared func(r *ClusterReport, set apply.Set) error
	// Anchor, when set, takes the next step of a trust-anchor rotation
	// before the render (meshctl rotate trust-anchor).
	Anchor *AnchorRotation
}

// ApplyReport is what the apply verb did, cluster by cluster, in the order
// it applied them.
type ApplyReport struct {
	Clusters []*ClusterApply
}

// ClusterApply is one cluster's apply.
type ClusterApply struct {
	ClusterReport
	Result *apply.Result
	// SafeToEvict says what the pod-template fallback of safeToEvict did
	// once the render was in; "" when it did nothing.
	SafeToEvict string
	// Set is the render that was applied.
	Set apply.Set `json:"-"`
	// PeerNotes and PeerWarnings say, for a fleet applied from outside
	// its clusters, what the last step did about the reconciler's ways
	// from this cluster to the others (peers.go).
	PeerNotes    []string `json:"peerNotes,omitempty"`
	PeerWarnings []string `json:"peerWarnings,omitempty"`
}

// Apply makes every cluster of the fleet match m, in one sequence for
// every entry point (the CLI on one cluster or a fleet, the reconcile loop
// on a render, a resync or a certificate that falls due): reach the
// cluster, sign the issuers of a fleet's members with its one anchor, or
// check that linked clusters share a trust anchor (before anything is
// written anywhere), render with the certificates the cluster
// holds (rotating what the policy says is due), read the live objects with
// one LIST per kind, warn, apply and prune, then run the after-apply steps
// (the safeToEvict fallback); and, for a fleet applied from outside, store
// in each cluster the reconciler's ways to the others. A refusal wraps apply.ErrPruneRefused,
// ErrTrustRefused or ErrAnchorRefused; a failure in one cluster of a fleet
// is a *ClusterError, with the report of the clusters applied before it.
func Apply(ctx context.Context, m *schema.Mesh, f *Fleet, o ApplyOptions) (*ApplyReport, error) {
	order, err := f.targets(m, o.Cluster)
	if err != nil {
		return nil, err
	}
	sig, anchor, err := f.trustStep(ctx, m, order, o.Apply.DryRun, o.Anchor)
	if err != nil {
		return nil, err
	}
	o.Anchor = anchor
	limit, err := maxDeletions(m, o.Apply.MaxDeletions)
	if err != nil {
		return nil, err
	}
	rep := &ApplyReport{}
	for _, name := range order {
		ca, err := f.applyOne(ctx, m, name, o, limit, sig)
		if ca != nil {
			rep.Clusters = append(rep.Clusters, ca)
		}
		if err != nil {
			return rep, inCluster(name, err)
		}
	}
	if !o.Apply.DryRun {
		notes, warnings := f.peerCredentials(ctx, m, order, o.LinkWait)
		for _, ca := range rep.Clusters {
			ca.PeerNotes, ca.PeerWarnings = notes[ca.Cluster], warnings[ca.Cluster]
		}
	}
	return rep, nil
}

// applyOne applies cluster name.
func (f *Fleet) applyOne(ctx context.Context, m *schema.Mesh, name string, o ApplyOptions, limit apply.Limit, sig *fleetSigning) (*ClusterApply, error) {
	p, err := f.prepare(ctx, m, name, runOptions{version: o.Version, dryRun: o.Apply.DryRun, link: LinkOptions{Wait: o.LinkWait}, anchor: o.Anchor, live: o.Live, signed: sig})
	if err != nil {
		return nil, err
	}
	if o.Prepared != nil {
		if err := o.Prepared(&p.report, p.set); err != nil {
			return nil, err
		}
	}
	ao := o.Apply
	ao.Live, ao.MaxDeletions, ao.Progress = p.live, limit, io.Discard
	if o.Progress != nil {
		ao.Progress = o.Progress(name)
	}
	ca := &ClusterApply{ClusterReport: p.report, Set: p.set}
	if ca.Result, err = p.mem.Client.Apply(ctx, p.set, ao); err != nil {
		if errors.Is(err, apply.ErrPruneRefused) {
			err = fmt.Errorf("%w; when the removal is meant, raise prune.maxDeletions in mesh.cue in the same reviewed change", err)
		}
		return nil, err
	}
	// The certificates the cluster runs on now: a rotation this run made is
	// in the objects it wrote.
	if !ao.DryRun && ca.Result.Writes > 0 {
		if b, err := liveBundle(ctx, p.mem.Client); err == nil {
			ca.Certificates = fleetStatus(m, name, liveStatus(b, time.Now()))
		}
	}
	// It changes workloads, so only once the render is in: never on a run
	// a guard refused. It reads the workloads from the apply's LIST, unless
	// the apply changed some of them.
	live := p.live
	if changedWorkloads(ca.Result, m) {
		live = nil
	}
	note, _, err := SafeToEvictTemplates(ctx, m, Cluster{Client: p.mem.Client, DryRun: ao.DryRun, Name: name}, live)
	if err != nil {
		return ca, fmt.Errorf("safeToEvict: %w", err)
	}
	ca.SafeToEvict = note
	return ca, nil
}

// changedWorkloads reports an apply that created, changed or deleted a
// workload in one of the mesh's namespaces (a fault backend), which the
// live objects read before it do not show as it now is.
func changedWorkloads(res *apply.Result, m *schema.Mesh) bool {
	for _, e := range res.Entries {
		if e.Action == apply.Unchanged || e.Action == apply.Skipped {
			continue
		}
		if _, ok := m.Namespaces[e.Namespace]; !ok {
			continue
		}
		for _, k := range templateKinds {
			if e.Kind == k.gvk.Kind && e.APIVersion == k.gvk.GroupVersion().String() {
				return true
			}
		}
	}
	return false
}

// maxDeletions is the deletion budget of a run: given, or else mesh.cue's
// prune.maxDeletions, which travels with the revision that needs it (a
// reviewed change that turns viz off), or else apply's default.
func maxDeletions(m *schema.Mesh, given apply.Limit) (apply.Limit, error) {
	if given != (apply.Limit{}) || m.Prune.MaxDeletions == "" {
		return given, nil
	}
	l, err := apply.ParseLimit(m.Prune.MaxDeletions)
	if err != nil {
		return apply.Limit{}, fmt.Errorf("prune.maxDeletions: %w", err)
	}
	return l, nil
}

// IsRefusal reports an error a safety guard returned: nothing was written.
func IsRefusal(err error) bool {
	return errors.Is(err, apply.ErrPruneRefused) || errors.Is(err, ErrTrustRefused) || errors.Is(err, ErrAnchorRefused)
}
