package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// getRef reads an inventoried object, or returns nil when it is gone. When
// the recorded API version is no longer served, the object is looked up
// under the version the cluster now prefers for its kind; only when the
// kind is not served at all is it gone.
func (c *Client) getRef(ctx context.Context, r Ref) (*unstructured.Unstructured, error) {
	live := r.object()
	err := c.kube.Get(ctx, client.ObjectKeyFromObject(live), live)
	if meta.IsNoMatchError(err) {
		gv, perr := schema.ParseGroupVersion(r.APIVersion)
		if perr != nil {
			return nil, perr
		}
		mapping, merr := c.kube.RESTMapper().RESTMapping(schema.GroupKind{Group: gv.Group, Kind: r.Kind})
		if meta.IsNoMatchError(merr) {
			return nil, nil
		}
		if merr != nil {
			return nil, merr
		}
		live = r.object()
		live.SetAPIVersion(mapping.GroupVersionKind.GroupVersion().String())
		err = c.kube.Get(ctx, client.ObjectKeyFromObject(live), live)
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return live, nil
}

// pruneRank orders deletions: namespaced objects first, then cluster-scoped
// ones, then CRDs, then Namespaces, so containers go last.
func pruneRank(r Ref) int {
	switch {
	case r.Kind == "Namespace" && r.APIVersion == "v1":
		return 3
	case r.Kind == "CustomResourceDefinition":
		return 2
	case r.Namespace == "":
		return 1
	}
	return 0
}

// prune deletes the candidates, in order, within the safety rules, and
// returns those that must stay in the inventory (kept because they still
// hold foreign objects, or because deleting them failed).
func (c *Client) prune(ctx context.Context, cands []Ref, o Options, res *Result) ([]Ref, error) {
	sorted := append([]Ref(nil), cands...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if a, b := pruneRank(sorted[i]), pruneRank(sorted[j]); a != b {
			return a < b
		}
		return sorted[i].key() < sorted[j].key()
	})
	pruning := refSet(cands)
	var keep []Ref
	for _, r := range sorted {
		live, err := c.getRef(ctx, r)
		if err != nil {
			return keep, fmt.Errorf("prune: reading %s: %w", r.ID(), err)
		}
		if live == nil {
			continue // already gone
		}
		action, reason, stay, err := c.verdict(ctx, r, live, pruning)
		if err != nil {
			return keep, fmt.Errorf("prune: checking %s: %w", r.ID(), err)
		}
		e := entryFor(live, "prune", action)
		e.Reason = reason
		switch action {
		case Configured:
			if _, err := c.release(ctx, r, o.DryRun); err != nil {
				return keep, fmt.Errorf("prune: releasing %s: %w", r.ID(), err)
			}
		case Deleted:
			if !o.DryRun {
				if err := c.kube.Delete(ctx, live, client.PropagationPolicy("Background")); err != nil && !apierrors.IsNotFound(err) {
					return append(keep, r), fmt.Errorf("prune: deleting %s: %w", r.ID(), err)
				}
			}
		}
		if stay {
			keep = append(keep, r)
		}
		res.add(e)
		fmt.Fprintln(o.Progress, e)
	}
	return keep, nil
}

// verdict decides what prune does with one live candidate, for apply and
// diff alike: Deleted; Skipped, with the reason, and stay when it must
// remain in the inventory (it still holds foreign objects); or Configured,
// for a namespace meshctl only annotated or a Service it only labelled,
// whose meshctl fields are released.
func (c *Client) verdict(ctx context.Context, r Ref, live *unstructured.Unstructured, pruning map[string]Ref) (action Action, reason string, stay bool, err error) {
	if live.GetAnnotations()[AnnotationPrune] == "disabled" {
		// A Namespace or Service meshctl only labelled (an export): the
		// object stays, meshctl's fields go.
		if (r.Kind == "Namespace" || r.Kind == "Service") && r.APIVersion == "v1" && live.GetLabels()[LabelManagedBy] != ManagedByMeshctl {
			return Configured, "not meshctl's: kept, and the fields meshctl set are removed", false, nil
		}
		return Skipped, AnnotationPrune + ": disabled; no longer managed", false, nil
	}
	var why string
	switch pruneRank(r) {
	case 3:
		why, err = c.namespaceInUse(ctx, r.Name, pruning)
	case 2:
		why, err = c.crdInUse(ctx, live, pruning)
	}
	if err != nil {
		return "", "", false, err
	}
	if why != "" {
		return Skipped, "kept: " + why, true, nil
	}
	return Deleted, "", false, nil
}

// crdInUse reports custom resources of the CRD that meshctl is not
// pruning in this run.
func (c *Client) crdInUse(ctx context.Context, crd *unstructured.Unstructured, pruning map[string]Ref) (string, error) {
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	version := ""
	for _, v := range versions {
		vm, _ := v.(map[string]any)
		if served, _ := vm["served"].(bool); served {
			version, _ = vm["name"].(string)
			if storage, _ := vm["storage"].(bool); storage {
				break
			}
		}
	}
	if version == "" {
		return "", nil
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(schema.GroupVersionKind{Group: group, Version: version, Kind: kind + "List"})
	if err := c.kube.List(ctx, list); err != nil {
		if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
			return "", nil
		}
		return "", err
	}
	// A custom resource owned by something else (a rollout controller's
	// routes, say) would be deleted with the CRD: it counts.
	return foreign(list.Items, pruning, kind, false), nil
}

// namespaceInUse reports objects in the namespace that meshctl does not
// manage: deleting the namespace would delete them too.
func (c *Client) namespaceInUse(ctx context.Context, ns string, pruning map[string]Ref) (string, error) {
	// Deleting a namespace deletes everything in it, so every kind must be
	// listed: when one cannot be, the namespace is kept.
	lists, err := c.disco.ServerPreferredNamespacedResources()
	if err != nil && !aggregatedGoing(err, pruning) {
		return fmt.Sprintf("cannot list every kind in it, so cannot tell what it holds (%v)", err), nil
	}
	var items []unstructured.Unstructured
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") || ignoredKind(gv.Group, r.Kind) {
				continue
			}
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(gv.WithKind(r.Kind + "List"))
			if err := c.kube.List(ctx, list, client.InNamespace(ns)); err != nil {
				if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
					continue // its CRD went earlier in this prune: it holds nothing
				}
				return fmt.Sprintf("cannot list %s in it, so cannot tell what it holds (%v)", r.Name, err), nil
			}
			items = append(items, list.Items...)
		}
	}
	return foreign(items, pruning, "", true), nil
}

// aggregatedGoing: discovery failed only for API groups whose APIService
// this prune deletes (viz's tap.linkerd.io, whose server goes with the
// namespace). Their kinds live in that server, not in the namespace, and
// go with it; any other failure keeps the namespace.
func aggregatedGoing(err error, pruning map[string]Ref) bool {
	var failed *discovery.ErrGroupDiscoveryFailed
	if !errors.As(err, &failed) {
		return false
	}
	for gv := range failed.Groups {
		apiService := Ref{APIVersion: "apiregistration.k8s.io/v1", Kind: "APIService", Name: gv.Version + "." + gv.Group}
		if _, ok := pruning[apiService.key()]; !ok {
			return false
		}
	}
	return true
}

// ignoredKind lists kinds that controllers make and clean up themselves.
func ignoredKind(group, kind string) bool {
	switch {
	case kind == "Event", kind == "Endpoints" && group == "":
		return true
	}
	return false
}

// foreign describes the items that are neither being pruned, nor made by
// Kubernetes in every namespace, nor (when ownedOK) made by a controller
// whose owner is listed with them.
func foreign(items []unstructured.Unstructured, pruning map[string]Ref, kind string, ownedOK bool) string {
	var ids []string
	for i := range items {
		u := &items[i]
		if _, ok := pruning[refOf(u).key()]; ok {
			continue
		}
		if ownedOK && len(u.GetOwnerReferences()) > 0 {
			continue
		}
		if (u.GetKind() == "ServiceAccount" && u.GetName() == "default") ||
			(u.GetKind() == "ConfigMap" && u.GetName() == "kube-root-ca.crt") {
			continue
		}
		ids = append(ids, ID(u))
	}
	if len(ids) == 0 {
		return ""
	}
	sort.Strings(ids)
	n := len(ids)
	if len(ids) > 3 {
		ids = append(ids[:3], "…")
	}
	what := "objects"
	if kind != "" {
		what = kind + " objects"
	}
	return fmt.Sprintf("still holds %d %s meshctl does not manage (%s)", n, what, strings.Join(ids, ", "))
}

// release server-side applies an empty configuration as meshctl, which
// removes every field meshctl owns on the object and nothing else. It
// returns the object as the server left it (or would leave it).
func (c *Client) release(ctx context.Context, r Ref, dryRun bool) (*unstructured.Unstructured, error) {
	u := r.object()
	opts := []client.PatchOption{client.FieldOwner(FieldManager), client.ForceOwnership}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	return u, c.kube.Patch(ctx, u, client.Apply, opts...)
}
