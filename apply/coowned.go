package apply

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// coOwners is what a takeover of live would do when desired is otherwise
// in sync with it: the indexes of the managed-fields entries of managers
// meshctl takes over (kubectl's server-side apply, kubectl's client-side
// apply, Helm) and their names. It is empty unless every such entry holds
// only fields meshctl already owns, at desired's apiVersion, and live
// carries none of the bookkeeping annotations the takeover removes: then
// dropping those entries is all the takeover would change. Anything else
// (an entry that owns more, or whose fields are not known, as in the
// loop's slim caches for other managers) goes through the full apply.
func (s *CRDSchemas) coOwners(desired, live *unstructured.Unstructured) (at []int, names []string) {
	if desired == nil || live == nil || !awaitsTakeover(desired, live) {
		return nil, nil
	}
	for _, a := range takeover.Annotations {
		if _, ok := live.GetAnnotations()[a]; ok {
			return nil, nil
		}
	}
	owned := meshctlFields(live, desired.GetAPIVersion())
	if owned == nil {
		return nil, nil
	}
	for i, mf := range live.GetManagedFields() {
		if !TakenOver(mf) {
			continue
		}
		if mf.APIVersion != desired.GetAPIVersion() || mf.FieldsV1 == nil {
			return nil, nil
		}
		theirs := &fieldpath.Set{}
		if err := theirs.FromJSON(bytes.NewReader(mf.FieldsV1.Raw)); err != nil || !theirs.Difference(owned).Empty() {
			return nil, nil
		}
		at = append(at, i)
		if !slices.Contains(names, mf.Manager) {
			names = append(names, mf.Manager)
		}
	}
	if len(at) == 0 {
		return nil, nil
	}
	if notComparable(desired, live) != "" {
		return nil, nil
	}
	w := &walk{schema: s.of(desired.GroupVersionKind())}
	w.compare(desired, live)
	if w.first() != "" {
		return nil, nil
	}
	return at, names
}

// dropCoOwners removes the managed-fields entries at (of managers whose
// fields are all meshctl's too) from the object live was read as, with
// one JSON patch that first tests live's resourceVersion: an object that
// changed since is left alone, and the caller applies it in full.
func (c *Client) dropCoOwners(ctx context.Context, live *unstructured.Unstructured, at []int) error {
	ops := []map[string]any{{"op": "test", "path": "/metadata/resourceVersion", "value": live.GetResourceVersion()}}
	for _, i := range slices.Backward(at) {
		ops = append(ops, map[string]any{"op": "remove", "path": fmt.Sprintf("/metadata/managedFields/%d", i)})
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	target := &unstructured.Unstructured{}
	target.SetGroupVersionKind(live.GroupVersionKind())
	target.SetNamespace(live.GetNamespace())
	target.SetName(live.GetName())
	return c.kube.Patch(ctx, target, client.RawPatch(types.JSONPatchType, raw), client.FieldOwner(FieldManager))
}

// theirFields names the fields of managers meshctl takes over, for an
// entry's reason: "kubectl's fields", "kubectl's and helm's fields".
func theirFields(names []string) string {
	return strings.Join(names, "'s and ") + "'s fields"
}

// coOwned is an object whose only difference from its render is
// managed-fields entries of managers meshctl takes over (coOwners).
type coOwned struct {
	i     int
	live  *unstructured.Unstructured
	at    []int
	names []string
	err   error
}

// takeOverCoOwned drops the co-owners' entries of each object, eight at a
// time; an object whose patch failed keeps its error, and the caller
// applies it in full. A dry run writes nothing.
func (c *Client) takeOverCoOwned(ctx context.Context, objs []coOwned, dryRun bool) []coOwned {
	if dryRun || len(objs) == 0 {
		return objs
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range objs {
		g.Go(func() error {
			objs[i].err = c.dropCoOwners(gctx, objs[i].live, objs[i].at)
			return nil
		})
	}
	_ = g.Wait()
	return objs
}

// TakenOver reports a managed-fields entry that apply's takeover turns
// into meshctl's (kubectl's apply, client-side or server-side, Helm,
// and meshctl's own repairs).
func TakenOver(mf metav1.ManagedFieldsEntry) bool {
	for _, fm := range takeover.FieldManagers {
		if mf.Operation != fm.OperationType || mf.Subresource != "" {
			continue
		}
		if mf.Manager == fm.Name || (!fm.ExactMatch && strings.HasPrefix(mf.Manager, fm.Name)) {
			return true
		}
	}
	return false
}
