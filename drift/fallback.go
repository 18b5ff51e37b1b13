package drift

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/meshctl/meshctl/schema"
)

// goodRevision is a revision that loaded, and its mesh.
type goodRevision struct {
	mesh     *schema.Mesh
	revision string
}

// adoptGood makes the last good revision this process loaded the term's
// revision, when the cluster's record says it is the revision applied:
// a leader that takes over (or leads again after the API server went
// away) while the source is broken then keeps correcting drift from it,
// as a term that saw the source break does. A revision the record does
// not name (an older one, while a newer one was applied and then broken)
// is never applied: that would undo the newer one. It reports whether it
// adopted one.
func (l *Loop) adoptGood(ctx context.Context) bool {
	l.mu.Lock()
	g := l.good
	l.mu.Unlock()
	if g.mesh == nil {
		return false
	}
	rec, err := ReadStatus(ctx, l.o.Client.Kube(), l.o.Client.Namespace())
	if err != nil || rec == nil || rec.Revision != g.revision {
		return false
	}
	l.log.Info("the source does not render: keeping the applied revision, loaded before", "revision", g.revision)
	l.mu.Lock()
	l.mesh, l.revision = g.mesh, g.revision
	// What this term records says what the cluster has, from the first
	// line: the applied revision, and when it was applied.
	l.st.Revision = g.revision
	if l.st.LastApplyTime == nil {
		l.st.LastApplyTime = rec.LastApplyTime
	}
	l.mu.Unlock()
	l.unapplied.Store(true)
	l.m.setRevision(g.revision)
	return true
}

// standBy loads each new revision of the source while this replica does
// not lead, so that it holds the last good one when it takes over. It
// writes nothing and records nothing: a revision that does not load is
// the leader's to report.
func (l *Loop) standBy(ctx context.Context) {
	var tried string
	tick := time.NewTicker(l.o.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if l.h.leading.Load() {
			continue
		}
		snap, err := l.o.Source.Fetch(ctx)
		if err != nil || snap.Revision == tried {
			continue
		}
		tried = snap.Revision
		l.mu.Lock()
		known := l.good.revision == snap.Revision
		l.mu.Unlock()
		if known {
			continue
		}
		m, err := l.load(snap.Path)
		if err == nil {
			err = l.keeps(m, snap.Path)
		}
		if err != nil {
			continue
		}
		l.mu.Lock()
		standing := !l.h.leading.Load()
		if standing {
			l.good = goodRevision{mesh: m, revision: snap.Revision}
		}
		l.mu.Unlock()
		if standing {
			l.log.Info("standing by with revision", "revision", snap.Revision)
		}
		debug.FreeOSMemory()
	}
}
