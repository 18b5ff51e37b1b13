package drift

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/plan"
)

// fail reports a failure: log, metric, Event, status. revision is a
// revision that did not render, "" for other failures.
func (l *Loop) fail(ctx context.Context, reason, doing string, err error, revision string) {
	msg := err.Error()
	l.log.Error(doing, "error", msg)
	l.event(corev1.EventTypeWarning, reason, "%s: %s", doing, firstLines(msg, 5))
	l.mu.Lock()
	st := l.st
	now := metav1.Now()
	st.LastError, st.LastErrorTime = doing+": "+msg, &now
	if revision != "" {
		st.FailedRevision = revision
		l.failure, l.failureTime = st.LastError, st.LastErrorTime
	}
	l.mu.Unlock()
	l.record(ctx, st)
}

// record writes the status when it changed. st is a copy of l.st with the
// caller's changes; State and Drifted are derived here.
func (l *Loop) record(ctx context.Context, st Status) {
	l.mu.Lock()
	st.Drifted = st.Drifted[:0:0]
	for k := range l.drifted {
		st.Drifted = append(st.Drifted, k.ID())
	}
	sort.Strings(st.Drifted)
	st.DriftedTotal = len(st.Drifted)
	if len(st.Drifted) > maxListed {
		st.Drifted = st.Drifted[:maxListed]
	}
	switch {
	case st.LastError != "":
		st.State = StateFailing
	case st.DriftedTotal > 0:
		st.State = StateDrifted
	default:
		st.State = StateInSync
	}
	l.st = st
	l.mu.Unlock()
	if ctx.Err() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	if err := writeStatus(ctx, l.o.Client.Kube(), l.o.Client.Namespace(), &st, &l.written); err != nil {
		l.m.errors.WithLabelValues("status").Inc()
		l.log.Warn("recording status", "error", l.named(err).Error())
	}
}

// named is err, or, when the API server gave no answer at all (a transport
// error, not a refusal), the line that names the server and where its
// address came from, as every verb says it, rather than client-go's
// "failed to get server groups".
func (l *Loop) named(err error) error {
	var st apierrors.APIStatus
	var ue *url.Error
	if err == nil || errors.As(err, &st) || !errors.As(err, &ue) {
		return err
	}
	return &plan.UnreachableError{Server: l.o.Client.Host(), Source: l.o.ClientSource, Err: err}
}

// event records a Kubernetes Event on the inventory ConfigMap.
func (l *Loop) event(typ, reason, format string, args ...any) {
	if l.recorder == nil {
		return
	}
	ref := &corev1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Namespace: l.o.Client.Namespace(), Name: apply.InventoryName}
	l.recorder.Eventf(ref, typ, reason, format, args...)
}

func groupOf(apiVersion string) string {
	g, _, ok := strings.Cut(apiVersion, "/")
	if !ok {
		return ""
	}
	return g
}

// abbreviate lists up to five items.
func abbreviate(items []string) string {
	if len(items) <= 5 {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:5], ", ") + fmt.Sprintf(" and %d more", len(items)-5)
}

// firstLines keeps an Event short: a render error may list many problems.
func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) <= n {
		return strings.Join(lines, "; ")
	}
	return strings.Join(lines[:n], "; ") + fmt.Sprintf("; and %d more", len(lines)-n)
}
