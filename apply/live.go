package apply

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// LiveObjects hands Apply and Diff the live objects, from informer caches in
// the reconcile loop. ok=false means "not known here": the object then goes
// through the server as before.
type LiveObjects interface {
	Live(gvk schema.GroupVersionKind, namespace, name string) (obj *unstructured.Unstructured, ok bool)
}

// Enumerator is LiveObjects that can also give every object of a kind in a
// namespace, for the kinds it listed whole (ListLive's wide kinds). ok is
// false when it does not know them all.
type Enumerator interface {
	All(gvk schema.GroupVersionKind, namespace string) (objs []*unstructured.Unstructured, ok bool)
}

// listed is LiveObjects read with one LIST per kind.
type listed map[schema.GroupVersionKind]*listedKind

type listedKind struct {
	// complete: the LIST had no selector, so an object it did not return
	// does not exist (in namespace, or anywhere when namespace is "").
	complete  bool
	namespace string
	objs      map[string]*unstructured.Unstructured
}

// Live implements LiveObjects.
func (l listed) Live(gvk schema.GroupVersionKind, namespace, name string) (*unstructured.Unstructured, bool) {
	k, ok := l[gvk]
	if !ok {
		return nil, false
	}
	if u, ok := k.objs[namespace+"/"+name]; ok {
		return u, true
	}
	if k.complete && (k.namespace == "" || k.namespace == namespace) {
		return nil, true
	}
	return nil, false
}

// All implements Enumerator.
func (l listed) All(gvk schema.GroupVersionKind, namespace string) ([]*unstructured.Unstructured, bool) {
	k, ok := l[gvk]
	if !ok || !k.complete || k.namespace != "" && k.namespace != namespace {
		return nil, false
	}
	var out []*unstructured.Unstructured
	for _, u := range k.objs {
		if u.GetNamespace() == namespace {
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(a, b *unstructured.Unstructured) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out, true
}

// listQuery is the one LIST a kind gets.
type listQuery struct {
	gvk       schema.GroupVersionKind
	namespace string // "" lists every namespace
	selector  bool   // only meshctl's objects
}

// listQueries plans one LIST per kind of objs: in the kind's one namespace
// when all its objects share it, filtered by meshctl's label when all of
// them carry it. The kinds in wide are listed whole: in every namespace,
// with no selector, whether objs hold any or not.
func listQueries(objs []*unstructured.Unstructured, wide ...schema.GroupVersionKind) []listQuery {
	var order []schema.GroupVersionKind
	qs := map[schema.GroupVersionKind]*listQuery{}
	for _, gvk := range wide {
		if _, ok := qs[gvk]; !ok {
			qs[gvk] = &listQuery{gvk: gvk}
			order = append(order, gvk)
		}
	}
	isWide := func(gvk schema.GroupVersionKind) bool { return slices.Contains(wide, gvk) }
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		q, ok := qs[gvk]
		if !ok {
			q = &listQuery{gvk: gvk, namespace: u.GetNamespace(), selector: true}
			qs[gvk] = q
			order = append(order, gvk)
		}
		if isWide(gvk) {
			continue
		}
		if q.namespace != u.GetNamespace() {
			q.namespace = ""
		}
		if u.GetLabels()[LabelManagedBy] != ManagedByMeshctl {
			q.selector = false
		}
	}
	out := make([]listQuery, 0, len(order))
	for _, gvk := range order {
		out = append(out, *qs[gvk])
	}
	return out
}

// listLive reads the live objects of objs' kinds, one LIST per kind. A kind
// the server does not serve yet (its CRD comes later) is empty; a kind this
// client may not list is left unknown, and its objects go through the
// server one by one.
func (c *Client) listLive(ctx context.Context, objs []*unstructured.Unstructured, wide ...schema.GroupVersionKind) (LiveObjects, error) {
	qs := listQueries(objs, wide...)
	kinds := make([]*listedKind, len(qs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, q := range qs {
		g.Go(func() error {
			k, err := c.listKind(gctx, q)
			kinds[i] = k
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := listed{}
	for i, q := range qs {
		if kinds[i] != nil {
			out[q.gvk] = kinds[i]
		}
	}
	return out, nil
}

func (c *Client) listKind(ctx context.Context, q listQuery) (*listedKind, error) {
	k := &listedKind{complete: !q.selector, namespace: q.namespace, objs: map[string]*unstructured.Unstructured{}}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(q.gvk.GroupVersion().WithKind(q.gvk.Kind + "List"))
	var opts []client.ListOption
	if q.namespace != "" {
		opts = append(opts, client.InNamespace(q.namespace))
	}
	if q.selector {
		opts = append(opts, client.MatchingLabels{LabelManagedBy: ManagedByMeshctl})
	}
	err := c.kube.List(ctx, list, opts...)
	switch {
	case meta.IsNoMatchError(err):
		k.complete = true
		return k, nil
	case apierrors.IsForbidden(err) || apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err):
		return nil, nil
	case err != nil:
		return nil, err
	}
	for i := range list.Items {
		u := &list.Items[i]
		k.objs[u.GetNamespace()+"/"+u.GetName()] = u
	}
	return k, nil
}

// ListLive reads the live objects of set's kinds as Apply and Diff would,
// one LIST per kind, for Options.Live or DiffOptions.Live: a caller that
// also reads the cluster for its own ends can then share the LISTs. The
// kinds in wide are listed in every namespace with no selector, so the
// answer also knows the objects meshctl does not manage (plan's headless
// Service warning reads the user's Services from it). A kind the client may
// not list stays unknown, as in Apply.
func (c *Client) ListLive(ctx context.Context, set Set, wide ...schema.GroupVersionKind) (LiveObjects, error) {
	return c.listLive(ctx, setObjects(set), wide...)
}

// liveFor returns o's LiveObjects, or lists them for objs.
func (c *Client) liveFor(ctx context.Context, given LiveObjects, objs []*unstructured.Unstructured) (LiveObjects, error) {
	if given != nil {
		return given, nil
	}
	return c.listLive(ctx, objs)
}

// lookup is live's object for u: nil, false when not known.
func lookup(live LiveObjects, u *unstructured.Unstructured) (*unstructured.Unstructured, bool) {
	if live == nil {
		return nil, false
	}
	return live.Live(u.GroupVersionKind(), u.GetNamespace(), u.GetName())
}

func setObjects(set Set) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, st := range set.Stages {
		out = append(out, st.Objects...)
	}
	return out
}

// dryRunCounter counts the server dry-runs a Client makes, at the wire, so
// that results report them honestly whichever library made them.
type dryRunCounter struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (d dryRunCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.Contains(req.URL.RawQuery, "dryRun=") {
		d.n.Add(1)
	}
	return d.next.RoundTrip(req)
}
