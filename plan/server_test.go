package plan_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
)

// statusWritten reports kinds whose status the cluster writes after
// meshctl writes them (workloads by their controllers, CRDs by the API
// server, whose conditions can land seconds later), so that their
// resourceVersion says nothing about when meshctl wrote them; their
// generation (bumped only by spec writes) stands in.
func statusWritten(kind string) bool {
	switch kind {
	case "Deployment", "DaemonSet", "StatefulSet", "CronJob", "Job", "CustomResourceDefinition", "APIService", "PodDisruptionBudget":
		return true
	}
	return false
}

func live(t *testing.T, ctx context.Context, kube client.Client, u *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	l := &unstructured.Unstructured{}
	l.SetGroupVersionKind(u.GroupVersionKind())
	if err := kube.Get(ctx, client.ObjectKeyFromObject(u), l); err != nil {
		t.Fatalf("reading %s: %v", apply.ID(u), err)
	}
	return l
}

// versions reads every object of set from the server: its resourceVersion,
// or for workloads its generation.
func versions(t *testing.T, ctx context.Context, kube client.Client, set apply.Set) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, st := range set.Stages {
		for _, u := range st.Objects {
			l := live(t, ctx, kube, u)
			if statusWritten(u.GetKind()) {
				out[apply.ID(u)] = fmt.Sprintf("generation %d", l.GetGeneration())
				continue
			}
			out[apply.ID(u)] = l.GetResourceVersion()
		}
	}
	return out
}

// revision reads a resourceVersion as the etcd revision it is. Clients
// must treat resourceVersions as opaque; a test of this API server may not.
func revision(t *testing.T, rv string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion %q is not an etcd revision: %v", rv, err)
	}
	return n
}

// checkStageOrder checks on the server that res wrote set's stages in
// order: every object of a stage that res wrote was last written before the
// first such object of the next stage. With waited, it
// also reads the cluster as it was just before each stage began (a list at
// that exact revision) and checks that the previous stage's Deployments and
// DaemonSets were ready then.
func checkStageOrder(t *testing.T, ctx context.Context, kube client.Client, cs kubernetes.Interface, set apply.Set, res *apply.Result, waited bool) {
	t.Helper()
	type span struct {
		first, last     uint64
		firstID, lastID string
	}
	written := map[string]bool{}
	for _, e := range res.Entries {
		written[e.ID] = e.Action == apply.Created || e.Action == apply.Configured
	}
	spans := make([]span, len(set.Stages))
	for i, st := range set.Stages {
		for _, u := range st.Objects {
			if statusWritten(u.GetKind()) || !written[apply.ID(u)] {
				continue
			}
			rv := revision(t, live(t, ctx, kube, u).GetResourceVersion())
			if spans[i].first == 0 || rv < spans[i].first {
				spans[i].first, spans[i].firstID = rv, apply.ID(u)
			}
			if rv > spans[i].last {
				spans[i].last, spans[i].lastID = rv, apply.ID(u)
			}
		}
	}
	for i := 1; i < len(spans); i++ {
		prev, next := spans[i-1], spans[i]
		if prev.last == 0 || next.first == 0 {
			t.Fatalf("stages %s and %s: the apply wrote no object to compare", set.Stages[i-1].Name, set.Stages[i].Name)
		}
		if prev.last >= next.first {
			t.Errorf("stage %s began (%s at revision %d) before stage %s ended (%s at revision %d)",
				set.Stages[i].Name, next.firstID, next.first, set.Stages[i-1].Name, prev.lastID, prev.last)
		}
		if waited {
			checkReadyAt(t, ctx, cs, set.Stages[i-1], next.first-1)
		}
	}
}

// checkReadyAt checks that the stage's Deployments and DaemonSets were
// ready at revision rev.
func checkReadyAt(t *testing.T, ctx context.Context, cs kubernetes.Interface, st apply.Stage, rev uint64) {
	t.Helper()
	at := metav1.ListOptions{ResourceVersion: strconv.FormatUint(rev, 10), ResourceVersionMatch: metav1.ResourceVersionMatchExact}
	for _, u := range st.Objects {
		switch u.GetKind() {
		case "Deployment":
			list, err := cs.AppsV1().Deployments(u.GetNamespace()).List(ctx, at)
			if err != nil {
				t.Fatalf("listing Deployments at revision %d: %v", rev, err)
			}
			found := false
			for _, d := range list.Items {
				if d.Name != u.GetName() {
					continue
				}
				found = true
				if want := ptr.Deref(d.Spec.Replicas, 1); d.Status.ReadyReplicas < want || d.Status.ObservedGeneration < d.Generation {
					t.Errorf("%s had %d/%d replicas ready when the next stage began", apply.ID(u), d.Status.ReadyReplicas, want)
				}
			}
			if !found {
				t.Errorf("%s did not exist when the next stage began", apply.ID(u))
			}
		case "DaemonSet":
			list, err := cs.AppsV1().DaemonSets(u.GetNamespace()).List(ctx, at)
			if err != nil {
				t.Fatalf("listing DaemonSets at revision %d: %v", rev, err)
			}
			found := false
			for _, d := range list.Items {
				if d.Name != u.GetName() {
					continue
				}
				found = true
				if d.Status.DesiredNumberScheduled == 0 || d.Status.NumberReady < d.Status.DesiredNumberScheduled {
					t.Errorf("%s had %d/%d pods ready when the next stage began", apply.ID(u), d.Status.NumberReady, d.Status.DesiredNumberScheduled)
				}
			}
			if !found {
				t.Errorf("%s did not exist when the next stage began", apply.ID(u))
			}
		}
	}
}
