package apply_test

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
)

// TestApplyIntoATerminatingNamespace: a namespace an earlier run pruned is
// still being deleted (a finalizer holds one of its objects) when the
// render declares it again, as turning viz off and on does. Diff shows
// what it holds as created, without a dry-run the server would refuse;
// apply waits until the namespace is gone, says so, then creates all of it
// (nothing is taken for in sync from what the namespace controller was
// deleting).
func TestApplyIntoATerminatingNamespace(t *testing.T) {
	e := newEnv(t)
	ns, cm := e.namespace(), e.configMap("cfg", "v1")
	s := set([]*unstructured.Unstructured{ns}, []*unstructured.Unstructured{cm})
	e.apply(s, apply.Options{})
	// An object with a finalizer keeps the namespace terminating until
	// the test lets it go. (meshctl's own prune would keep a namespace
	// that holds it, so the namespace is deleted here, as a prune of a
	// namespace whose pods take a while to stop leaves it.)
	held := e.configMap("held", "x")
	held.SetFinalizers([]string{"meshctl.io/test-hold"})
	if err := e.kube.Create(e.ctx, held); err != nil {
		t.Fatal(err)
	}
	if err := e.kube.Delete(e.ctx, ns.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	e.until("the namespace to be terminating", func() (bool, error) {
		live, err := e.get("v1", "Namespace", "", e.ns)
		return err == nil && live.GetDeletionTimestamp() != nil, err
	})
	e.until("the namespace controller to delete cfg", func() (bool, error) {
		_, err := e.get("v1", "ConfigMap", e.ns, "cfg")
		return apierrors.IsNotFound(err), nil
	})

	d := e.diff(s)
	for _, o := range d.Objects {
		if o.Action != apply.Created || !strings.Contains(o.Reason, "being deleted") {
			t.Errorf("diff: %s %s (%s), want created, being deleted", o.ID, o.Action, o.Reason)
		}
	}
	if d.DryRuns != 0 {
		t.Errorf("diff dry-ran %d objects the server would refuse", d.DryRuns)
	}

	progress := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		_, err := e.c.Apply(e.ctx, s, apply.Options{Prune: true, Progress: progress, Timeout: time.Minute})
		done <- err
	}()
	e.until("apply to say it waits", func() (bool, error) {
		return strings.Contains(progress.String(), "waiting for Namespace/"+e.ns+" to finish deleting"), nil
	})
	select {
	case err := <-done:
		t.Fatalf("apply finished while the namespace was still terminating: %v\n%s", err, progress.String())
	default:
	}
	if err := e.kube.Patch(e.ctx, held, rawMerge(`{"metadata":{"finalizers":null}}`)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("apply: %v\n%s", err, progress.String())
	}
	for _, u := range []*unstructured.Unstructured{ns, cm} {
		live, err := e.get(u.GetAPIVersion(), u.GetKind(), u.GetNamespace(), u.GetName())
		if err != nil || live.GetDeletionTimestamp() != nil {
			t.Errorf("%s after the apply: %v", apply.ID(u), err)
		}
	}
	if !strings.Contains(progress.String(), "Namespace/"+e.ns+" gone after") {
		t.Errorf("progress does not say when the namespace went:\n%s", progress.String())
	}
}

func (e *env) until(what string, cond func() (bool, error)) {
	e.t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(e.ctx, 100*time.Millisecond, time.Minute, true, func(ctxArg context.Context) (bool, error) {
		ok, err := cond()
		last = err
		return ok, nil
	})
	if err != nil {
		e.t.Fatalf("waiting for %s: %v (last error: %v)", what, err, last)
	}
}

func rawMerge(body string) client.Patch { return client.RawPatch(types.MergePatchType, []byte(body)) }
