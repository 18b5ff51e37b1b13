package drift

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/rollout"
	"github.com/meshctl/meshctl/schema"
)

// rollouts runs the rollout verb on the loop's mesh: stored states are
// brought in line with the file, due analyses are judged, and when a
// weight moved the loop applies the mesh (trigger "rollout") so that the
// routes carry it. The next analysis arms the loop's rollout timer. In
// detect mode rollouts do not move: the loop writes nothing.
func (l *Loop) rollouts(ctx context.Context) {
	l.mu.Lock()
	m := l.mesh
	l.mu.Unlock()
	// A mesh that dropped its last rollout is run once more, so that the
	// states go.
	if m == nil || l.o.Mode == Detect || !plan.HasRollouts(m) && !l.hadRollouts.Load() {
		l.setRolloutNext(time.Time{})
		return
	}
	l.hadRollouts.Store(plan.HasRollouts(m))
	rep, err := l.runRollouts(ctx, m)
	if err != nil {
		l.m.errors.WithLabelValues("rollout").Inc()
		l.log.Warn("rollouts: "+l.named(err).Error(), "retry", l.o.Poll.String())
		// Try again soon: the states could not be read or stored.
		l.setRolloutNext(time.Now().Add(l.o.Poll))
		return
	}
	// The gauges say what the states say now: a rollout dropped from
	// mesh.cue leaves no series behind.
	l.m.rolloutWeight.Reset()
	l.m.rolloutPhase.Reset()
	for _, c := range rep.Clusters {
		for _, ev := range c.Events {
			typ := corev1.EventTypeNormal
			if ev.Warning {
				typ = corev1.EventTypeWarning
			}
			l.event(typ, ev.Reason, "%s", ev.Message)
			if ev.Warning {
				l.log.Warn(ev.Message, "reason", ev.Reason)
			} else {
				l.log.Info(ev.Message, "reason", ev.Reason)
			}
		}
		for _, s := range c.States {
			l.m.rolloutWeight.WithLabelValues(s.Service).Set(float64(s.Weight))
			for _, ph := range []rollout.Phase{rollout.Progressing, rollout.Promoted, rollout.RolledBack} {
				v := 0.0
				if s.Phase == ph {
					v = 1
				}
				l.m.rolloutPhase.WithLabelValues(s.Service, string(ph)).Set(v)
			}
		}
		for _, j := range c.Judged {
			l.m.rolloutAnalyses.WithLabelValues(j.Service, string(j.Verdict)).Inc()
		}
	}
	// A new candidate (a new pod template, even after the rollout ended)
	// starts over: look for one at every poll, analyses due or not.
	next := rep.Next
	if check := time.Now().Add(l.o.Poll); next.IsZero() || check.Before(next) {
		next = check
	}
	l.setRolloutNext(next)
	if rep.Moved {
		l.reconcile(ctx, "rollout")
	}
}

// runRollouts calls the verb; a panic is an error.
func (l *Loop) runRollouts(ctx context.Context, m *schema.Mesh) (rep *plan.RolloutReport, err error) {
	defer l.recovered("rollout", &err)
	return plan.Rollouts(ctx, m, l.own, plan.RolloutOptions{Cluster: l.o.Cluster, PrometheusURL: l.o.PrometheusURL})
}

func (l *Loop) setRolloutNext(t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rolloutNext = t
}

func (l *Loop) rolloutDue() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rolloutNext
}
