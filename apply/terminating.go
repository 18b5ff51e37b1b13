package apply

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// A Namespace or CRD that an earlier run pruned goes away slowly: the
// namespace controller deletes what it holds first, and a CRD waits for
// its custom resources. A render that declares it again meanwhile (viz
// turned off, then on) cannot create anything in it: the server refuses
// new content in a terminating namespace, and serves no terminating CRD's
// kind. Apply therefore waits until such a container is gone before it
// applies, and Diff shows what it holds as created without dry-running it.

// terminating are the Namespaces and CRDs of a set that are being deleted.
type terminating struct {
	namespaces map[string]bool
	kinds      map[schema.GroupKind]bool
	objs       []*unstructured.Unstructured
	// uids are the terminating live objects', by ID: one with another UID
	// is a new object (the reconcile loop's correction may recreate a
	// namespace the moment it is gone), so the old one has gone.
	uids map[string]types.UID
}

func (t terminating) empty() bool { return len(t.objs) == 0 }

// findTerminating reads which of objs' Namespaces and CRDs are being
// deleted, from live where it knows them.
func (c *Client) findTerminating(ctx context.Context, objs []*unstructured.Unstructured, live LiveObjects) (terminating, error) {
	t := terminating{namespaces: map[string]bool{}, kinds: map[schema.GroupKind]bool{}, uids: map[string]types.UID{}}
	for _, u := range objs {
		isNS := u.GetKind() == "Namespace" && u.GetAPIVersion() == "v1"
		isCRD := u.GetKind() == "CustomResourceDefinition" && groupOf(u.GetAPIVersion()) == "apiextensions.k8s.io"
		if !isNS && !isCRD {
			continue
		}
		l, ok := lookup(live, u)
		if !ok {
			l = &unstructured.Unstructured{}
			l.SetGroupVersionKind(u.GroupVersionKind())
			err := c.kube.Get(ctx, client.ObjectKeyFromObject(u), l)
			switch {
			case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
				l = nil
			case err != nil:
				return t, fmt.Errorf("reading %s: %w", ID(u), err)
			}
		}
		if l == nil || l.GetDeletionTimestamp() == nil {
			continue
		}
		t.objs = append(t.objs, u)
		t.uids[ID(u)] = l.GetUID()
		if isNS {
			t.namespaces[u.GetName()] = true
			continue
		}
		group, _, _ := unstructured.NestedString(u.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(u.Object, "spec", "names", "kind")
		t.kinds[schema.GroupKind{Group: group, Kind: kind}] = true
	}
	return t, nil
}

// holds says why u cannot be dry-run or applied yet: it is one of the
// terminating objects, or lives in one; "" when it can.
func (t terminating) holds(u *unstructured.Unstructured) string {
	switch {
	case t.namespaces[u.GetNamespace()]:
		return "namespace " + u.GetNamespace() + " is being deleted: apply waits until it is gone, then creates this"
	case t.kinds[u.GroupVersionKind().GroupKind()]:
		return "its CRD is being deleted: apply waits until it is gone, then creates this"
	}
	for _, o := range t.objs {
		if o.GetKind() == u.GetKind() && o.GetName() == u.GetName() && o.GetAPIVersion() == u.GetAPIVersion() {
			return "being deleted: apply waits until it is gone, then creates it again"
		}
	}
	return ""
}

// awaitGone waits until every terminating object is gone, saying so on
// o.Progress, within o.Timeout.
func (c *Client) awaitGone(ctx context.Context, t terminating, o Options) error {
	ids := make([]string, 0, len(t.objs))
	for _, u := range t.objs {
		ids = append(ids, ID(u))
	}
	sort.Strings(ids)
	fmt.Fprintf(o.Progress, "waiting for %s to finish deleting (an earlier prune) before creating %s again (timeout %s)\n",
		strings.Join(ids, ", "), pronoun(len(ids)), o.Timeout)
	began := time.Now()
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, o.Timeout, true, func(ctx context.Context) (bool, error) {
		for _, u := range t.objs {
			l := &unstructured.Unstructured{}
			l.SetGroupVersionKind(u.GroupVersionKind())
			err := c.kube.Get(ctx, client.ObjectKeyFromObject(u), l)
			switch {
			case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
				continue
			case err != nil:
				return false, err
			case l.GetUID() != t.uids[ID(u)]:
				continue // gone, and made again
			}
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("%s still being deleted after %s (%w): a finalizer may hold it; 'kubectl get %s -o yaml' shows which",
			strings.Join(ids, ", "), o.Timeout, err, strings.ToLower(t.objs[0].GetKind())+" "+t.objs[0].GetName())
	}
	fmt.Fprintf(o.Progress, "%s gone after %s\n", strings.Join(ids, ", "), time.Since(began).Round(100*time.Millisecond))
	return nil
}

func pronoun(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// goneNow is live after the terminating objects have gone: they, and what
// they held, are known not to exist (the namespace controller deleted it),
// whatever live listed before.
type goneNow struct {
	LiveObjects
	t terminating
}

func (g goneNow) Live(gvk schema.GroupVersionKind, namespace, name string) (*unstructured.Unstructured, bool) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(namespace)
	u.SetName(name)
	if g.t.holds(u) != "" {
		return nil, true
	}
	if g.LiveObjects == nil {
		return nil, false
	}
	return g.LiveObjects.Live(gvk, namespace, name)
}
