package apply

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// neverRecreated reports the kinds that force never deletes to recreate,
// whatever the flags say: deleting a CustomResourceDefinition deletes every
// custom resource of its kind in the cluster, and deleting a Namespace
// deletes everything in it.
func neverRecreated(u *unstructured.Unstructured) (why string, never bool) {
	switch gvk := u.GroupVersionKind(); {
	case gvk.Group == "apiextensions.k8s.io" && gvk.Kind == "CustomResourceDefinition":
		return "deleting a CustomResourceDefinition deletes every custom resource of its kind in the cluster", true
	case gvk.Group == "" && gvk.Kind == "Namespace":
		return "deleting a Namespace deletes everything in it", true
	}
	return "", false
}

// forceRequested reports whether the run asks to recreate u when an
// immutable field stands in the way: --force, or the force annotation.
func forceRequested(u *unstructured.Unstructured, o Options) bool {
	return o.Force || u.GetAnnotations()[AnnotationForce] == "enabled"
}

// immutableFields returns the fields the API server refused to change
// because they are immutable. ok is true only when every cause the server
// gave is an immutability: recreating the object then succeeds. Other
// validation errors stay errors, so force never deletes an object that
// could not be created again.
func immutableFields(err error) (fields []string, ok bool) {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return nil, false
	}
	status := st.Status()
	if status.Reason != metav1.StatusReasonInvalid || status.Details == nil || len(status.Details.Causes) == 0 {
		return nil, false
	}
	for _, c := range status.Details.Causes {
		if !strings.Contains(c.Message, "immutable") {
			return nil, false
		}
		fields = append(fields, c.Field)
	}
	return fields, true
}

// forceRefusal is the error for an object that carries the force annotation
// but is of a kind force never recreates.
func forceRefusal(u *unstructured.Unstructured) error {
	why, _ := neverRecreated(u)
	return fmt.Errorf("%s carries %s=enabled, but meshctl never deletes and recreates a %s, whatever the flags say: %s; remove the annotation from mesh.cue",
		ID(u), AnnotationForce, u.GetKind(), why)
}

// toRecreate picks, among the objects the run asks to force, those the
// server refuses only for immutable fields. Each candidate is dry-run once;
// the rest of the stage is applied without force, so a CRD, a Namespace or
// an object that is invalid for another reason is never deleted.
func (c *Client) toRecreate(ctx context.Context, objs []*unstructured.Unstructured, o Options) (map[object.ObjMetadata]bool, error) {
	var cands []*unstructured.Unstructured
	for _, u := range objs {
		if o.absent[object.UnstructuredToObjMetadata(u)] {
			continue // nothing to recreate
		}
		if _, never := neverRecreated(u); never {
			if u.GetAnnotations()[AnnotationForce] == "enabled" {
				return nil, forceRefusal(u)
			}
			continue
		}
		if forceRequested(u, o) {
			cands = append(cands, u)
		}
	}
	hit := make([]bool, len(cands))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, u := range cands {
		g.Go(func() error {
			err := c.kube.Patch(gctx, u.DeepCopy(), client.Apply, client.FieldOwner(FieldManager), client.ForceOwnership, client.DryRunAll)
			_, hit[i] = immutableFields(err)
			return nil
		})
	}
	_ = g.Wait()
	out := map[object.ObjMetadata]bool{}
	for i, u := range cands {
		if hit[i] {
			out[object.UnstructuredToObjMetadata(u)] = true
		}
	}
	return out, nil
}

// applyWithForce applies a stage: the objects that must be recreated with
// force, the others without, so that ssa's force (which treats every
// Invalid error as immutable) reaches only real immutable-field changes.
func (c *Client) applyWithForce(ctx context.Context, objs []*unstructured.Unstructured, o Options) (map[object.ObjMetadata]ssa.Action, error) {
	opts := c.ssaOptions(o)
	opts.Force, opts.ForceSelector = false, nil
	recreate, err := c.toRecreate(ctx, objs, o)
	if err != nil {
		return nil, err
	}
	var plain, forced []*unstructured.Unstructured
	for _, u := range objs {
		if recreate[object.UnstructuredToObjMetadata(u)] {
			forced = append(forced, u)
		} else {
			plain = append(plain, u)
		}
	}
	actions, err := c.applyRepairing(ctx, plain, opts, o.absent, o.repaired)
	if err != nil || len(forced) == 0 {
		return actions, err
	}
	opts.Force = true
	more, err := c.applyAll(ctx, forced, opts, nil)
	for k, v := range more {
		actions[k] = v
	}
	return actions, err
}

// diffOptions are the ssa diff options for u: force only where apply would
// force it.
func diffOptions(u *unstructured.Unstructured, force bool) ssa.DiffOptions {
	if _, never := neverRecreated(u); never {
		return ssa.DiffOptions{}
	}
	return ssa.DiffOptions{Force: force, ForceSelector: map[string]string{AnnotationForce: "enabled"}}
}
