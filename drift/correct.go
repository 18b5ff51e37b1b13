package drift

import (
	"context"
	"strings"
	"time"

	"github.com/meshctl/meshctl/apply"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// observe is the informers' handler: a managed object was added, changed
// or deleted. Only objects of the render are queued.
func (l *Loop) observe(k Key) {
	l.mu.Lock()
	_, ok := l.desired[k]
	if ok {
		if _, pending := l.seen[k]; !pending {
			l.seen[k] = time.Now()
		}
	}
	l.mu.Unlock()
	if ok {
		l.queue.Add(k)
	}
}

// next handles one queued object; false when the queue shut down.
func (l *Loop) next(ctx context.Context) bool {
	k, quit := l.queue.Get()
	if quit {
		return false
	}
	defer l.queue.Done(k)
	if err := l.checkSafely(ctx, k); err != nil {
		if ctx.Err() != nil {
			return true
		}
		l.m.errors.WithLabelValues("correct").Inc()
		l.log.Error("correcting drift failed; retrying", "object", k.ID(), "error", err.Error())
		l.event(corev1.EventTypeWarning, reason(err, "CorrectionFailed"), "%s: %v", k.ID(), err)
		if st, fresh := l.markDrifted(k); fresh {
			l.record(ctx, st)
		}
		l.queue.AddRateLimited(k)
		return true
	}
	l.queue.Forget(k)
	return true
}

// checkSafely is check, with a panic an error: the object is retried like
// one whose correction failed, and the other objects go on being kept.
func (l *Loop) checkSafely(ctx context.Context, k Key) (err error) {
	defer l.recovered("correct", &err)
	return l.check(ctx, k)
}

// check compares one object with the render, from the cache, and
// re-applies it when it drifted.
func (l *Loop) check(ctx context.Context, k Key) error {
	l.mu.Lock()
	d, ok := l.desired[k]
	seen := l.seen[k]
	crds := l.crds
	l.mu.Unlock()
	if !ok {
		return nil
	}
	gvk := d.obj.GroupVersionKind()
	live, known := l.watch.Live(gvk, k.Namespace, k.Name)
	if !known && !l.watch.watches(gvk.GroupKind()) {
		return nil // the resync covers kinds not watched yet
	}
	if known && crds.InSync(d.obj, live) {
		l.settled(ctx, k)
		return nil
	}
	what := "changed"
	if !known {
		what = "deleted"
	}
	// The cache says it differs; the server decides (a dry-run in detect
	// mode), so that nothing is reported that would not change.
	entries, err := l.o.Client.ApplyObjects(ctx, d.stage, []*unstructured.Unstructured{d.obj}, apply.Options{Live: l.watch, CRDs: crds, DryRun: l.o.Mode == Detect})
	if err != nil {
		return err
	}
	latency := time.Since(seen)
	l.mu.Lock()
	delete(l.seen, k)
	l.mu.Unlock()
	if len(entries) == 1 && entries[0].Action == apply.Unchanged {
		if from := entries[0].TookOverFrom; len(from) > 0 {
			l.log.Info("fields taken over", "object", k.ID(), "from", strings.Join(from, ","))
		} else {
			l.log.Debug("in sync, as the server says", "object", k.ID())
		}
		l.settled(ctx, k)
		return nil
	}
	l.m.detected.WithLabelValues(k.Kind).Inc()
	if l.o.Mode == Detect {
		if st, fresh := l.markDrifted(k); fresh {
			l.log.Warn("drift detected", "object", k.ID(), "what", what)
			l.event(corev1.EventTypeWarning, "Drifted", "%s was %s outside meshctl (detect mode: not corrected)", k.ID(), what)
			l.record(ctx, st)
		}
		return nil
	}
	l.m.corrections.WithLabelValues(k.Kind).Inc()
	if seen.IsZero() {
		// A retry, or an object queued by more than one event: when it
		// drifted is not known, so no latency is claimed.
		l.log.Info("drift corrected", "object", k.ID(), "what", what)
		l.event(corev1.EventTypeNormal, "Corrected", "%s was %s outside meshctl; re-applied", k.ID(), what)
		l.settled(ctx, k)
		return nil
	}
	l.m.latency.Observe(latency.Seconds())
	attrs := []any{"object", k.ID(), "what", what, "latency", latency.Round(time.Millisecond).String()}
	if note := entries[0].Reason; note != "" {
		attrs = append(attrs, "note", note) // a repair
	}
	l.log.Info("drift corrected", attrs...)
	l.event(corev1.EventTypeNormal, "Corrected", "%s was %s outside meshctl; re-applied in %s", k.ID(), what, latency.Round(time.Millisecond))
	l.settled(ctx, k)
	return nil
}

// markDrifted records k as drifted; fresh says it was not already, and st
// is the status to record then.
func (l *Loop) markDrifted(k Key) (st Status, fresh bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fresh = !l.drifted[k]
	l.drifted[k] = true
	return l.st, fresh
}

// settled clears an object's drift once it matches again.
func (l *Loop) settled(ctx context.Context, k Key) {
	l.mu.Lock()
	delete(l.seen, k)
	was := l.drifted[k]
	delete(l.drifted, k)
	st := l.st
	l.mu.Unlock()
	if was {
		l.record(ctx, st)
	}
}
