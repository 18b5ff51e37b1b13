package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// RepairManager is the field manager of a repair: an update that writes
// the rendered fields when server-side apply cannot. The next apply takes
// its fields over (takeover), so it never outlives the repair.
const RepairManager = "meshctl-repair"

// maxRepairs bounds the objects one stage repairs.
const maxRepairs = 10

// applyRepairing is applyAll, with objects that the server refuses as
// invalid repaired and the stage applied again.
//
// Server-side apply merges a list of items keyed by a field (a Service's
// ports by port and protocol, a container's env by name) item by item. An
// edit out of band that changes an item's key leaves the edited item to
// its editor and the rendered one missing; applying the rendered item then
// adds it beside the edited one, which duplicates another of its fields
// (two ports named http), and the server refuses the apply. Apply would
// then fail on every run, and the loop could never correct the edit. The
// repair writes the rendered object's fields with a JSON merge patch,
// which replaces lists whole, guarded by the resourceVersion it read; the
// apply that follows makes the fields meshctl's again.
//
// Only objects that exist and that meshctl applied are repaired, only for
// an invalid apply that is not an immutable field's (force handles those),
// and each once: a render the server refuses on its own stays an error.
func (c *Client) applyRepairing(ctx context.Context, objs []*unstructured.Unstructured, opts ssa.ApplyOptions, absent map[object.ObjMetadata]bool, repaired map[object.ObjMetadata]bool) (map[object.ObjMetadata]ssa.Action, error) {
	for {
		actions, err := c.applyAll(ctx, objs, opts, absent)
		u := refusedAsInvalid(err, objs)
		if u == nil || repaired[object.UnstructuredToObjMetadata(u)] || len(repaired) >= maxRepairs {
			return actions, err
		}
		if rerr := c.repair(ctx, u); rerr != nil {
			return actions, err
		}
		repaired[object.UnstructuredToObjMetadata(u)] = true
	}
}

// refusedAsInvalid is the rendered object whose apply err reports the
// server refused as invalid for a reason other than an immutable field,
// or nil.
func refusedAsInvalid(err error, objs []*unstructured.Unstructured) *unstructured.Unstructured {
	var dr *ssaerrors.DryRunErr
	// Not ssa's IsImmutableError, which holds for every Invalid error.
	if err == nil || !errors.As(err, &dr) || !apierrors.IsInvalid(err) {
		return nil
	}
	if _, immutable := immutableFields(err); immutable {
		return nil
	}
	in := dr.InvolvedObject()
	if in == nil {
		return nil
	}
	key := object.UnstructuredToObjMetadata(in)
	for _, u := range objs {
		if object.UnstructuredToObjMetadata(u) == key {
			return u
		}
	}
	return nil
}

// repair writes u's rendered fields over the live object with a JSON merge
// patch (lists replaced whole, maps merged, so fields meshctl does not
// render stay), as RepairManager, if the live object is meshctl's.
func (c *Client) repair(ctx context.Context, u *unstructured.Unstructured) error {
	_, _, err := c.repairAs(ctx, u, false)
	return err
}

// repairPreview says what apply would do about an object whose dry-run
// failed with err: when the server refused it as invalid and a repair
// would take, the live object, what the repair makes of it, and the
// reason to show. Diff, apply --dry-run and the loop's detect mode say so
// instead of failing.
func (c *Client) repairPreview(ctx context.Context, u *unstructured.Unstructured, err error) (before, after *unstructured.Unstructured, reason string, ok bool) {
	if refusedAsInvalid(err, []*unstructured.Unstructured{u}) == nil {
		return nil, nil, "", false
	}
	before, after, rerr := c.repairAs(ctx, u, true)
	if rerr != nil {
		return nil, nil, "", false
	}
	return before, after, "apply will repair it: the server refuses its apply as invalid (" + invalidCauses(err) + ")", true
}

// repairAs is repair, or its dry-run: it returns the live object it read
// and what the patch made of it.
func (c *Client) repairAs(ctx context.Context, u *unstructured.Unstructured, dryRun bool) (before, after *unstructured.Unstructured, err error) {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(u.GroupVersionKind())
	if err := c.kube.Get(ctx, client.ObjectKeyFromObject(u), live); err != nil {
		return nil, nil, err
	}
	if meshctlFields(live, u.GetAPIVersion()) == nil {
		return nil, nil, fmt.Errorf("%s: not applied by meshctl at %s", ID(u), u.GetAPIVersion())
	}
	before = live.DeepCopy()
	body := map[string]any{}
	for k, v := range u.Object {
		if k != "apiVersion" && k != "kind" && k != "metadata" && k != "status" {
			body[k] = v
		}
	}
	md := map[string]any{"resourceVersion": live.GetResourceVersion()}
	if l := u.GetLabels(); len(l) > 0 {
		md["labels"] = l
	}
	if a := u.GetAnnotations(); len(a) > 0 {
		md["annotations"] = a
	}
	body["metadata"] = md
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, nil, err
	}
	opts := []client.PatchOption{client.FieldOwner(RepairManager)}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	if err := c.kube.Patch(ctx, live, client.RawPatch(types.MergePatchType, raw), opts...); err != nil {
		return nil, nil, err
	}
	return before, live, nil
}
