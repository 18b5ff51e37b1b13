package plan

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/rollout"
	"github.com/meshctl/meshctl/schema"
)

// ClusterReport is what a verb found in one cluster, and what its render
// did there: the part every verb reports the same way.
type ClusterReport struct {
	// Cluster is the mesh's cluster, "" for a mesh without clusters.
	Cluster string `json:"cluster,omitempty"`
	// Notes say what the render did: certificates created or rotated, how
	// safeToEvict reaches pods.
	Notes []string `json:"notes,omitempty"`
	// Warnings say what in the cluster keeps the mesh from running as
	// mesh.cue asks (too few nodes for HA, a headless Service, a
	// certificate meshctl cannot rotate that expires soon, a link target
	// not ready); they do not stop the verb.
	Warnings []string `json:"warnings,omitempty"`
	// Rotated are the certificates the rotation policy replaced.
	Rotated []certs.Rotation `json:"rotated,omitempty"`
	// NextRotation is when the policy replaces a certificate next (zero
	// when meshctl rotates none): a loop sleeps until then.
	NextRotation time.Time `json:"nextRotation,omitzero"`
	// Certificates are those the mesh runs on, as they were read.
	Certificates []certs.Status `json:"certificates,omitempty"`
	// LiveFrom says where the live objects came from: LiveListed (one
	// LIST per kind, the CLI) or LiveGiven (the caller's, the reconcile
	// loop's informer caches). It is the one step in which the entry
	// points differ.
	LiveFrom string `json:"liveFrom"`
	// Rollouts are the stored states of the mesh's rollouts, whose
	// weights the render carries rather than the file's.
	Rollouts []rollout.State `json:"rollouts,omitempty"`
}

// Where a verb read the live objects (ClusterReport.LiveFrom).
const (
	LiveListed = "one LIST per kind"
	LiveGiven  = "the caller's caches"
)

// ClusterError is a verb's failure in one cluster of a fleet.
type ClusterError struct {
	Cluster string
	Err     error
}

func (e *ClusterError) Error() string { return e.Err.Error() }
func (e *ClusterError) Unwrap() error { return e.Err }

// inCluster wraps err with the cluster it happened in; a mesh without
// clusters has no name to give.
func inCluster(name string, err error) error {
	if err == nil || name == "" {
		return err
	}
	return &ClusterError{Cluster: name, Err: err}
}

// runOptions are what the steps shared by the verbs take.
type runOptions struct {
	version string
	// dryRun writes nothing: certificates that do not exist yet live in
	// memory only, and a link whose target is not ready renders with
	// placeholders and a warning.
	dryRun bool
	// diff: an exported Service that does not exist is left out with a
	// warning rather than failing the run.
	diff   bool
	link   LinkOptions
	anchor *AnchorRotation
	// live, when set, holds the live objects (the reconcile loop's
	// caches); otherwise they are read with one LIST per kind.
	live apply.LiveObjects
	// signed is what the fleet's signing step did (fleetcerts.go).
	signed *fleetSigning
}

// prepared is one cluster, rendered and read, ready to be applied or
// diffed.
type prepared struct {
	mem    *Member
	set    apply.Set
	live   apply.LiveObjects
	report ClusterReport
}

// prepare takes the steps every verb that meets a cluster takes, in one
// place: reach the cluster, read what its links need from their targets,
// render with the certificates it holds, read the live objects with one
// LIST per kind, and say what would keep the mesh from working.
func (f *Fleet) prepare(ctx context.Context, m *schema.Mesh, name string, o runOptions) (*prepared, error) {
	mem, err := f.Member(ctx, name)
	if err != nil {
		return nil, err
	}
	p := &prepared{mem: mem, report: ClusterReport{Cluster: name}}
	var links map[string]*generators.LinkTarget
	var missing []string
	if !f.single {
		if links, err = f.readLinks(ctx, m, name, o, &p.report); err != nil {
			return nil, err
		}
		// Before anything is written (the render may store certificates).
		offline, err := OfflineMember(m, name, o.version)
		if err != nil {
			return nil, err
		}
		if missing, err = missingLabelled(ctx, mem.Client, offline); err != nil {
			return nil, err
		}
		if len(missing) > 0 && !o.diff {
			return nil, fmt.Errorf("%s", strings.Join(missing, "\n"))
		}
	}
	c := Cluster{Client: mem.Client, DryRun: o.dryRun, Anchor: o.anchor, Name: name, Links: links}
	if o.signed != nil {
		c.Issued = o.signed.issued[name]
	}
	r, err := renderCluster(ctx, m, c, o.version)
	if err != nil {
		return nil, err
	}
	if !f.single && !o.dryRun {
		if ids := placeholders(r.set); len(ids) > 0 {
			return nil, fmt.Errorf("%s would hold a placeholder for what a link's target did not say; nothing applied", strings.Join(ids, ", "))
		}
	}
	p.set = without(r.set, missing)
	p.report.Notes = r.notes
	p.report.Rollouts = r.rollouts
	p.report.Rotated, p.report.NextRotation = r.certs.rotated, r.certs.nextDue
	if s := o.signed; s != nil {
		p.report.Notes = slices.Concat(s.notes[name], p.report.Notes)
		p.report.Warnings = append(p.report.Warnings, s.warnings[name]...)
		p.report.Rotated = slices.Concat(s.rotated[name], p.report.Rotated)
		if at := s.nextDue[name]; !at.IsZero() && (p.report.NextRotation.IsZero() || at.Before(p.report.NextRotation)) {
			p.report.NextRotation = at
		}
	}
	p.report.Warnings = append(p.report.Warnings, missing...)
	// One LIST per kind serves the apply or diff, the warnings and the
	// after-apply steps alike.
	p.report.LiveFrom = LiveGiven
	if p.live = o.live; p.live == nil {
		wide := append(WideKinds(m), templateKindsFor(m, r.served)...)
		if p.live, err = mem.Client.ListLive(ctx, p.set, wide...); err != nil {
			return nil, err
		}
		p.report.LiveFrom = LiveListed
	}
	p.report.Warnings = append(p.report.Warnings, Warnings(ctx, m, mem.Client)...)
	p.report.Warnings = append(p.report.Warnings, HeadlessWarnings(ctx, m, mem.Client, p.live)...)
	b, err := liveBundle(ctx, mem.Client)
	p.report.Certificates = fleetStatus(m, name, liveStatus(b, time.Now()))
	p.report.Warnings = append(p.report.Warnings, certificateWarnings(m, mem.Client, p.report.Certificates, err)...)
	return p, nil
}

// readLinks reads, in each target of the links from cluster name, what
// the link needs. A target that cannot be read (unreachable, or not ready)
// never costs the source its link: a link applied before stays as it was
// last applied, with a warning that says why. In a dry run a link never
// applied renders with placeholders and a warning; otherwise it fails.
func (f *Fleet) readLinks(ctx context.Context, m *schema.Mesh, name string, o runOptions, r *ClusterReport) (map[string]*generators.LinkTarget, error) {
	src, err := f.Member(ctx, name)
	if err != nil {
		return nil, err
	}
	links := map[string]*generators.LinkTarget{}
	for _, l := range linksFrom(m, name) {
		to, err := f.Member(ctx, l.To)
		var t *generators.LinkTarget
		if err == nil {
			t, err = ReadLinkTarget(ctx, to, l, o.link)
		}
		if err != nil {
			last, lerr := lastLinkTarget(ctx, src.Client, l)
			switch {
			case lerr != nil:
				return nil, lerr
			case last != nil:
				r.Warnings = append(r.Warnings, fmt.Sprintf("%v; the Link %s/%s stays as it was last applied until %s answers", err, mcNamespace, l.To, l.To))
				links[l.To] = last
				continue
			case !o.dryRun:
				return nil, err
			}
			r.Warnings = append(r.Warnings, fmt.Sprintf("%v; the Link is shown with placeholders", err))
			continue
		}
		links[l.To] = t
	}
	return links, nil
}
