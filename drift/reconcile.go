package drift

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

// refresh reads the source and, when it holds a new revision, loads and
// applies it. It reports whether a revision is applied.
func (l *Loop) refresh(ctx context.Context, first bool) bool {
	snap, err := l.o.Source.Fetch(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		l.m.errors.WithLabelValues("source").Inc()
		fallBack := l.revision == "" && l.adoptGood(ctx)
		l.fail(ctx, "SourceFailed", "reading "+l.o.Source.String(), err, "")
		if fallBack {
			return l.reconcile(ctx, "render")
		}
		return !first && l.revision != ""
	}
	l.mu.Lock()
	applied, failedAgain := snap.Revision == l.revision, snap.Revision == l.failed
	st := l.st
	l.mu.Unlock()
	if failedAgain {
		if l.revision != "" && l.unapplied.Load() {
			// The source is still broken, and the revision kept from
			// before failed its last apply: try that one again.
			return l.reconcile(ctx, "retry")
		}
		return l.revision != ""
	}
	if applied && l.unapplied.Load() {
		// The revision is loaded, but its apply failed: try again.
		return l.reconcile(ctx, "retry")
	}
	if applied {
		// Back to the applied revision (a broken commit reverted), or a
		// source that answers again: the failure is over.
		if st.LastError != "" || st.FailedRevision != "" {
			l.mu.Lock()
			l.failed = ""
			l.mu.Unlock()
			st.LastError, st.LastErrorTime, st.FailedRevision = "", nil, ""
			l.log.Info("source back at the applied revision", "revision", snap.Revision)
			l.record(ctx, st)
		}
		return true
	}
	if !first {
		// A source being written settles before it renders.
		for range 5 {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(l.o.Debounce):
			}
			again, err := l.o.Source.Fetch(ctx)
			if err != nil || again.Revision == snap.Revision {
				break
			}
			snap = again
		}
	}
	m, err := l.load(snap.Path)
	if err == nil {
		err = l.keeps(m, snap.Path)
	}
	if err != nil {
		why := reason(err, "RenderFailed")
		if snap.Root != "" && snap.Origin != "" {
			// Positions name the file the user edits, not the snapshot's copy.
			err = errors.New(strings.ReplaceAll(err.Error(), snap.Root, snap.Origin))
		}
		l.m.errors.WithLabelValues("render").Inc()
		l.m.reconciles.WithLabelValues("render", "error").Inc()
		l.mu.Lock()
		l.failed = snap.Revision
		l.mu.Unlock()
		// A term that starts on a broken revision applies the last good
		// one, when this process loaded it and the cluster's record says
		// it is the one applied.
		fallBack := l.revision == "" && l.adoptGood(ctx)
		keep := "nothing is applied until it is fixed"
		if l.revision != "" {
			keep = "revision " + l.revision + " stays applied; nothing is pruned"
		}
		l.fail(ctx, why, fmt.Sprintf("revision %s does not render (%s)", snap.Revision, keep), err, snap.Revision)
		if fallBack {
			return l.reconcile(ctx, "render")
		}
		return l.revision != ""
	}
	l.mu.Lock()
	l.mesh, l.revision, l.failed = m, snap.Revision, ""
	l.good = goodRevision{mesh: m, revision: snap.Revision}
	l.mu.Unlock()
	l.unapplied.Store(true)
	l.m.setRevision(snap.Revision)
	// A load's garbage (the CUE evaluation) is large beside what the loop
	// keeps; hand it back before the caches grow.
	debug.FreeOSMemory()
	return l.reconcile(ctx, "render")
}

// keeps checks that the loop's --cluster and the mesh agree: a mesh with
// clusters is kept one cluster per loop, each loop naming its own.
func (l *Loop) keeps(m *schema.Mesh, path string) error {
	_, declared := m.Clusters[l.o.Cluster]
	switch {
	case len(m.Clusters) > 0 && l.o.Cluster == "":
		return fmt.Errorf("%s declares clusters (%s): run one reconciler in each, with --cluster naming the cluster it runs in", path, strings.Join(slices.Sorted(maps.Keys(m.Clusters)), ", "))
	case len(m.Clusters) == 0 && l.o.Cluster != "":
		return fmt.Errorf("--cluster %s, but %s declares no clusters: run the reconciler without --cluster", l.o.Cluster, path)
	case l.o.Cluster != "" && !declared:
		return fmt.Errorf("--cluster %s, but %s declares no such cluster; its clusters are %s", l.o.Cluster, path, strings.Join(slices.Sorted(maps.Keys(m.Clusters)), ", "))
	}
	return nil
}

// load loads a snapshot of the source; a panic is an error.
func (l *Loop) load(path string) (m *schema.Mesh, err error) {
	defer l.recovered("render", &err)
	return l.o.Load(path)
}

// reconcile applies the loaded revision with the apply verb, as `meshctl
// apply` does: it renders again (so that a certificate the policy says is
// due is rotated), re-applies what differs, prunes what left the render,
// and runs the after-apply steps. In detect mode it is a server dry-run
// of what differs. trigger says why: a new revision ("render"), a failed
// apply tried again ("retry"), the periodic "resync", or a certificate
// that falls due ("rotation").
func (l *Loop) reconcile(ctx context.Context, trigger string) bool {
	l.mu.Lock()
	m, revision := l.mesh, l.revision
	l.mu.Unlock()
	if m == nil {
		return false
	}
	began := time.Now()
	// An apply that has begun is finished even when ctx ends: the
	// inventory then says what it did, for the next leader.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.o.ApplyTimeout)
	rep, err := l.apply(actx, ctx, m)
	cancel()
	took := time.Since(began)
	l.m.duration.WithLabelValues(trigger).Observe(took.Seconds())
	if err != nil {
		l.m.errors.WithLabelValues("apply").Inc()
		l.m.reconciles.WithLabelValues(trigger, "error").Inc()
		l.fail(ctx, reason(err, "ApplyFailed"), "applying revision "+revision, err, "")
		return false
	}
	ca := rep.Clusters[0]
	res := ca.Result
	l.m.reconciles.WithLabelValues(trigger, "success").Inc()
	l.unapplied.Store(false)
	// Ready before the status says so: whoever reads "in sync" there finds
	// /readyz answering.
	l.h.ready.Store(true)
	// Kinds whose CRDs this apply created are watched from now on.
	if _, err := l.watch.ensure(ctx, objects(ca.Set)); err != nil && ctx.Err() == nil {
		l.log.Warn("watching the managed kinds", "error", err.Error())
	}
	var changed []string
	l.mu.Lock()
	for _, e := range res.Entries {
		k := Key{groupOf(e.APIVersion), e.Kind, e.Namespace, e.Name}
		if e.Action == apply.Unchanged || e.Action == apply.Skipped {
			delete(l.drifted, k)
			continue
		}
		changed = append(changed, e.String())
		if l.o.Mode == Detect {
			l.drifted[k] = true
		} else if trigger == "resync" {
			l.m.corrections.WithLabelValues(e.Kind).Inc()
		}
	}
	st := l.st
	if res.Writes > 0 || st.Revision != revision {
		now := metav1.Now()
		st.LastApplyTime = &now
		l.m.lastApply.SetToCurrentTime()
	}
	st.Revision = revision
	if l.failed == "" {
		st.LastError, st.LastErrorTime, st.FailedRevision = "", nil, ""
	} else {
		// The source's newest revision does not render, which stays
		// said; an apply's failure before this one is over.
		st.LastError, st.LastErrorTime = l.failure, l.failureTime
	}
	st.Objects = ca.Set.Count()
	l.mu.Unlock()
	sort.Strings(changed)
	verb := "applied"
	if l.o.Mode == Detect {
		verb = "checked"
	}
	l.log.Info(verb, "trigger", trigger, "revision", revision, "summary", res.SummaryLine(),
		"writes", res.Writes, "dryRuns", res.DryRuns, "took", took.Round(time.Millisecond).String())
	for _, c := range changed {
		if l.o.Mode == Detect {
			l.log.Warn("drift detected", "object", c)
		} else if trigger == "resync" {
			l.log.Info("drift corrected at resync", "object", c)
		}
	}
	if l.o.Mode == Detect && len(changed) > 0 {
		l.event(corev1.EventTypeWarning, "Drifted", "%d objects differ from revision %s: %s", len(changed), revision, abbreviate(changed))
	} else if trigger == "render" && res.Writes > 0 {
		l.event(corev1.EventTypeNormal, "Applied", "revision %s applied: %s", revision, res.SummaryLine())
	}
	st.Warnings = l.reported(ca)
	l.record(ctx, st)
	if trigger != "rollout" {
		// A new revision may start, change or end a rollout.
		l.rollouts(ctx)
	}
	// A full apply of a large mesh leaves garbage several times the size
	// of what the loop keeps (copies, request bodies); hand it back now
	// rather than hold it until the next one.
	debug.FreeOSMemory()
	return true
}

// apply runs the apply verb on the loop's cluster; a panic is an error.
// The watches it starts live as long as term, the leadership term, not as
// long as the apply's ctx.
func (l *Loop) apply(ctx, term context.Context, m *schema.Mesh) (rep *plan.ApplyReport, err error) {
	defer l.recovered("apply", &err)
	return plan.Apply(ctx, m, l.fleet(), plan.ApplyOptions{
		Apply: apply.Options{
			Prune: true, MaxDeletions: l.o.MaxDeletions, DryRun: l.o.Mode == Detect, Timeout: l.o.ApplyTimeout,
		},
		Version: l.o.Version,
		Cluster: l.o.Cluster,
		Live:    l.watch,
		// The render becomes what drift is corrected towards, and its
		// kinds are watched, before it is applied.
		Prepared: func(_ *plan.ClusterReport, set apply.Set) error {
			l.install(set)
			if _, err := l.watch.ensure(term, objects(set)); err != nil {
				return fmt.Errorf("watching the managed kinds: %w", err)
			}
			return nil
		},
	})
}

// objects are a set's objects, in order.
func objects(set apply.Set) []*unstructured.Unstructured {
	var all []*unstructured.Unstructured
	for _, st := range set.Stages {
		all = append(all, st.Objects...)
	}
	return all
}

// install makes set the desired state that events are checked against.
func (l *Loop) install(set apply.Set) {
	desired := make(map[Key]desiredObject, set.Count())
	all := objects(set)
	for _, st := range set.Stages {
		for _, u := range st.Objects {
			desired[keyOf(u)] = desiredObject{obj: u, stage: st.Name}
		}
	}
	crds := apply.SchemasOf(all)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.desired, l.crds = desired, crds
	for k := range l.drifted {
		if _, ok := desired[k]; !ok {
			delete(l.drifted, k)
		}
	}
	l.m.managed.Set(float64(len(desired)))
}

// reported says what the apply verb reported beyond the change set, the
// way a long-running loop must: notes and warnings when they change (not
// at every resync), an Event and a metric for each certificate rotated,
// the expiry of every certificate as a metric, and when the next one falls
// due. It returns the warnings, for the status.
func (l *Loop) reported(ca *plan.ClusterApply) []string {
	l.mu.Lock()
	oldNotes, oldWarnings, oldEvict, oldNext := l.notes, l.warnings, l.evict, l.nextRotation
	l.notes, l.warnings, l.evict = ca.Notes, ca.Warnings, ca.SafeToEvict
	l.nextRotation = ca.NextRotation
	l.mu.Unlock()
	if !ca.NextRotation.Equal(oldNext) && !ca.NextRotation.IsZero() {
		l.log.Info("the next certificate rotation is due", "at", ca.NextRotation.UTC().Format(time.RFC3339))
	}
	if !slices.Equal(oldNotes, ca.Notes) {
		for _, n := range ca.Notes {
			l.log.Info(n)
		}
	}
	if oldEvict != ca.SafeToEvict && ca.SafeToEvict != "" {
		l.log.Info(ca.SafeToEvict)
	}
	for _, w := range ca.Warnings {
		if !slices.Contains(oldWarnings, w) {
			l.log.Warn("mesh warning", "warning", w)
			l.event(corev1.EventTypeWarning, "MeshWarning", "%s", w)
		}
	}
	for _, r := range ca.Rotated {
		name := plan.CertificateID(r.Kind, r.Name, "")
		if r.Cluster != "" {
			name = r.Cluster + "/" + name
		}
		l.m.rotations.WithLabelValues(name).Inc()
		l.log.Info("certificate rotated by policy", "certificate", name, "expiring", r.Expiring.UTC().Format(time.RFC3339), "newExpiry", r.NotAfter.UTC().Format(time.RFC3339))
		l.event(corev1.EventTypeNormal, "Rotated", "%s rotated by policy (due: it expires %s); the new one expires %s",
			name, r.Expiring.UTC().Format(time.RFC3339), r.NotAfter.UTC().Format(time.RFC3339))
	}
	// Two anchors of a bundle may share a subject (mid-rotation): the
	// one that expires first is the one to watch.
	expiry := map[string]time.Time{}
	for _, c := range ca.Certificates {
		id := plan.CertificateID(c.Kind, c.Name, c.Subject)
		if at, ok := expiry[id]; c.Err == "" && (!ok || c.NotAfter.Before(at)) {
			expiry[id] = c.NotAfter
		}
	}
	l.m.expiry.Reset()
	for id, at := range expiry {
		l.m.expiry.WithLabelValues(id).Set(float64(at.Unix()))
	}
	return ca.Warnings
}
