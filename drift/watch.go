package drift

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/internal/ident"
)

// watcher keeps one informer per managed kind and hands its cache to
// apply as the live objects. Informers watch only what meshctl labels,
// unless a kind has rendered objects without the label (namespaces that
// meshctl annotates but does not own); those are watched whole.
type watcher struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
	// onChange is called with an object's key whenever the cache sees it
	// added, changed or deleted.
	onChange func(key Key)

	mu    sync.RWMutex
	kinds map[schema.GroupKind]*kindWatch
}

type kindWatch struct {
	gvk      schema.GroupVersionKind
	labelled bool // watched with the managed-by selector
	informer cache.SharedIndexInformer
	stop     context.CancelFunc
}

// Key identifies an object across API versions.
type Key struct {
	Group, Kind, Namespace, Name string
}

func keyOf(u *unstructured.Unstructured) Key {
	gvk := u.GroupVersionKind()
	return Key{gvk.Group, gvk.Kind, u.GetNamespace(), u.GetName()}
}

// ID is the Kind/ns/name meshctl prints.
func (k Key) ID() string { return ident.ID(k.Kind, k.Namespace, k.Name) }

func newWatcher(dyn dynamic.Interface, mapper meta.RESTMapper, onChange func(Key)) *watcher {
	return &watcher{dyn: dyn, mapper: mapper, onChange: onChange, kinds: map[schema.GroupKind]*kindWatch{}}
}

// ensure starts informers for the kinds of objs that have none, and waits
// until their caches are filled. A kind the server does not serve yet (its
// CRD is applied in this render) is skipped; the next ensure picks it up.
// It returns the kinds still unwatched.
func (w *watcher) ensure(ctx context.Context, objs []*unstructured.Unstructured) (missing []string, err error) {
	want := map[schema.GroupKind]*kindWatch{}
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		gk := gvk.GroupKind()
		kw, ok := want[gk]
		if !ok {
			kw = &kindWatch{gvk: gvk, labelled: true}
			want[gk] = kw
		}
		if u.GetLabels()[ident.LabelManagedBy] != ident.ManagedByMeshctl {
			kw.labelled = false
		}
	}
	var started []*kindWatch
	w.mu.Lock()
	for gk, kw := range want {
		have, ok := w.kinds[gk]
		if ok && (have.labelled == kw.labelled || !have.labelled) {
			continue
		}
		if ok { // it now needs the unlabelled objects too
			have.stop()
			delete(w.kinds, gk)
		}
		mapping, err := w.mapper.RESTMapping(gk, kw.gvk.Version)
		if err != nil {
			if meta.IsNoMatchError(err) {
				missing = append(missing, gk.String())
				continue
			}
			w.mu.Unlock()
			return nil, fmt.Errorf("finding the resource of %s: %w", gk, err)
		}
		tweak := func(*metav1.ListOptions) {}
		if kw.labelled {
			tweak = func(o *metav1.ListOptions) { o.LabelSelector = ident.LabelManagedBy + "=" + ident.ManagedByMeshctl }
		}
		inf := dynamicinformer.NewFilteredDynamicInformer(w.dyn, mapping.Resource, metav1.NamespaceAll, 0, cache.Indexers{}, tweak).Informer()
		if err := inf.SetTransform(slim); err != nil {
			w.mu.Unlock()
			return nil, err
		}
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
			// The initial list is what the full apply that follows ensure
			// compares anyway: queueing its thousands of objects would
			// only put real drift behind them.
			AddFunc: func(o any, initial bool) {
				if !initial {
					w.changed(kw.gvk, o)
				}
			},
			UpdateFunc: func(_, o any) { w.changed(kw.gvk, o) },
			DeleteFunc: func(o any) { w.changed(kw.gvk, o) },
		})
		ictx, stop := context.WithCancel(ctx)
		kw.informer, kw.stop = inf, stop
		w.kinds[gk] = kw
		go inf.RunWithContext(ictx)
		started = append(started, kw)
	}
	w.mu.Unlock()
	for _, kw := range started {
		if !cache.WaitForCacheSync(ctx.Done(), kw.informer.HasSynced) {
			return missing, fmt.Errorf("watching %s: %w", kw.gvk.GroupKind(), ctx.Err())
		}
	}
	return missing, nil
}

func (w *watcher) changed(gvk schema.GroupVersionKind, o any) {
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	m, ok := o.(metav1.Object)
	if !ok {
		return
	}
	w.onChange(Key{gvk.Group, gvk.Kind, m.GetNamespace(), m.GetName()})
}

// Live implements apply.LiveObjects from the caches. An object absent from
// a cache that watches its kind is reported unknown: apply then asks the
// server, which creates it.
func (w *watcher) Live(gvk schema.GroupVersionKind, namespace, name string) (*unstructured.Unstructured, bool) {
	w.mu.RLock()
	kw, ok := w.kinds[gvk.GroupKind()]
	w.mu.RUnlock()
	if !ok || !kw.informer.HasSynced() {
		return nil, false
	}
	key := name
	if namespace != "" {
		key = namespace + "/" + name
	}
	o, exists, err := kw.informer.GetStore().GetByKey(key)
	if err != nil || !exists {
		return nil, false
	}
	c, ok := o.(*cached)
	if !ok {
		return nil, false
	}
	u, err := c.object()
	if err != nil || u.GetAPIVersion() != gvk.GroupVersion().String() {
		return nil, false
	}
	return u, true
}

// watches reports whether kind k is watched, and so whether an object of
// it missing from the cache is really gone.
func (w *watcher) watches(gk schema.GroupKind) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	kw, ok := w.kinds[gk]
	return ok && kw.informer.HasSynced()
}

func (w *watcher) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for gk, kw := range w.kinds {
		kw.stop()
		delete(w.kinds, gk)
	}
}

var _ apply.LiveObjects = (*watcher)(nil)

var specReplicas = fieldpath.MakePathOrDie("spec", "replicas")

// onlyReplicas is what is kept of another manager's field set: whether it
// holds spec.replicas (an autoscaler's claim), which apply honours.
var onlyReplicas = &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:replicas":{}}}`)}

// slim keeps of an object what the in-sync check reads, so that the caches
// of a large mesh stay small: status goes, and other managers' field sets
// shrink to whether they hold spec.replicas. meshctl's own entries, and
// those of managers it takes over (kubectl, Helm), stay whole.
//
// What is kept is JSON, not the decoded map: a map of a few kilobytes is a
// few hundred bytes of JSON, and Live decodes the one object asked for.
func slim(o any) (any, error) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return o, nil
	}
	delete(u.Object, "status")
	mfs := u.GetManagedFields()
	for i := range mfs {
		mf := &mfs[i]
		if mf.Manager == apply.FieldManager || mf.FieldsV1 == nil || apply.TakenOver(*mf) {
			// A manager meshctl takes over keeps its set: when it holds
			// only meshctl's fields (kubectl's server-side apply of the
			// same render), dropping its entry is the whole correction.
			continue
		}
		set := &fieldpath.Set{}
		if err := set.FromJSON(bytes.NewReader(mf.FieldsV1.Raw)); err == nil && set.Has(specReplicas) {
			mf.FieldsV1 = onlyReplicas
		} else {
			mf.FieldsV1 = nil
		}
	}
	if len(mfs) > 0 {
		u.SetManagedFields(mfs)
	}
	raw, err := u.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return &cached{ObjectMeta: metav1.ObjectMeta{Name: u.GetName(), Namespace: u.GetNamespace()}, raw: raw}, nil
}

// cached is what the informers keep of an object: its name and namespace,
// for the store's keys, and the slimmed object as JSON.
type cached struct {
	metav1.ObjectMeta
	raw []byte
}

// object decodes the cached object.
func (c *cached) object() (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(c.raw); err != nil {
		return nil, err
	}
	return u, nil
}
