package apply

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// explainNotReady says why workloads have not rolled out: failed
// conditions (a webhook rejecting their pods, say) and pods the scheduler
// cannot place (HA anti-affinity with too few nodes).
func (c *Client) explainNotReady(ctx context.Context, objs []*unstructured.Unstructured) string {
	var b strings.Builder
	for _, u := range objs {
		var selector *metav1.LabelSelector
		var conds []string
		switch u.GetKind() {
		case "Deployment":
			d := &appsv1.Deployment{}
			if c.kube.Get(ctx, client.ObjectKeyFromObject(u), d) != nil {
				continue
			}
			if d.Status.ReadyReplicas >= ptr.Deref(d.Spec.Replicas, 1) && d.Status.UpdatedReplicas >= ptr.Deref(d.Spec.Replicas, 1) {
				continue
			}
			selector = d.Spec.Selector
			for _, cd := range d.Status.Conditions {
				if cd.Status == corev1.ConditionFalse || cd.Type == appsv1.DeploymentReplicaFailure {
					conds = append(conds, fmt.Sprintf("%s: %s", cd.Type, cd.Message))
				}
			}
			fmt.Fprintf(&b, "\n  %s: %d/%d replicas ready", ID(u), d.Status.ReadyReplicas, ptr.Deref(d.Spec.Replicas, 1))
		case "DaemonSet":
			d := &appsv1.DaemonSet{}
			if c.kube.Get(ctx, client.ObjectKeyFromObject(u), d) != nil || d.Status.NumberReady >= d.Status.DesiredNumberScheduled {
				continue
			}
			selector = d.Spec.Selector
			fmt.Fprintf(&b, "\n  %s: %d/%d pods ready", ID(u), d.Status.NumberReady, d.Status.DesiredNumberScheduled)
		case "StatefulSet":
			s := &appsv1.StatefulSet{}
			if c.kube.Get(ctx, client.ObjectKeyFromObject(u), s) != nil || s.Status.ReadyReplicas >= ptr.Deref(s.Spec.Replicas, 1) {
				continue
			}
			selector = s.Spec.Selector
			fmt.Fprintf(&b, "\n  %s: %d/%d replicas ready", ID(u), s.Status.ReadyReplicas, ptr.Deref(s.Spec.Replicas, 1))
		default:
			continue
		}
		for _, cd := range conds {
			fmt.Fprintf(&b, "\n    %s", cd)
		}
		if selector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(selector)
		if err != nil {
			continue
		}
		pods := &corev1.PodList{}
		if c.kube.List(ctx, pods, client.InNamespace(u.GetNamespace()), client.MatchingLabelsSelector{Selector: sel}) != nil {
			continue
		}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodPending {
				continue
			}
			for _, cd := range p.Status.Conditions {
				if cd.Type == corev1.PodScheduled && cd.Status == corev1.ConditionFalse {
					fmt.Fprintf(&b, "\n    pod %s Pending: %s", p.Name, cd.Message)
				}
			}
		}
	}
	return b.String()
}

// waitReportEvery is how often, by default, a long wait says what it is
// waiting for.
const waitReportEvery = 10 * time.Second

// reportWaiting prints, every interval until stopped, which workloads of
// the stage are not ready yet and why.
func (c *Client) reportWaiting(ctx context.Context, stage string, objs []*unstructured.Unstructured, w io.Writer, began time.Time, every time.Duration) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				why := c.explainNotReady(ctx, objs)
				if why == "" {
					why = " (workloads ready; waiting for the rest)"
				}
				select {
				case <-done:
					return
				default:
				}
				fmt.Fprintf(w, "stage %s: still waiting after %s:%s\n", stage, time.Since(began).Round(time.Second), why)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
