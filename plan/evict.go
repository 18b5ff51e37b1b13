package plan

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kschema "k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/schema"
)

// SafeToEvictManager is the field manager of the pod-template fallback. It
// owns the safe-to-evict annotation on the templates it set it on and
// nothing else, so that taking the setting away removes only that field.
const SafeToEvictManager = "meshctl-safe-to-evict"

// ServesAdmissionPolicy reports whether the cluster serves
// MutatingAdmissionPolicy in admissionregistration.k8s.io/v1 (Kubernetes
// 1.36 and later, unless turned off).
func ServesAdmissionPolicy(c *apply.Client) (bool, error) {
	_, err := c.Kube().RESTMapper().RESTMapping(kschema.GroupKind{Group: "admissionregistration.k8s.io", Kind: "MutatingAdmissionPolicy"}, "v1")
	if meta.IsNoMatchError(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discovering MutatingAdmissionPolicy: %w", err)
	}
	return true, nil
}

// templateKind is a workload kind whose pod template the fallback
// annotates, and where the template's annotations are. Jobs are left out:
// their template cannot change.
type templateKind struct {
	gvk  kschema.GroupVersionKind
	path []string
}

var templateKinds = []templateKind{
	{kschema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, []string{"spec", "template", "metadata", "annotations"}},
	{kschema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, []string{"spec", "template", "metadata", "annotations"}},
	{kschema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}, []string{"spec", "template", "metadata", "annotations"}},
	{kschema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}, []string{"spec", "jobTemplate", "spec", "template", "metadata", "annotations"}},
}

// outcome is what the fallback did, or would do, to one workload.
type outcome int

const (
	untouched  outcome = iota
	configured         // the template changed: its pods restart
	unchanged          // the template already has the value
	explicit           // the template sets its own value, which is kept
	controlled         // another controller renders the template
	released           // the value meshctl set is gone again
)

// templateResult is one namespace's and kind's outcomes, by workload ID.
type templateResult map[outcome][]string

// policyNote says how safeToEvict reaches pods when the render holds the
// admission policy; nil when no namespace asks for it.
func policyNote(m *schema.Mesh) []string {
	names, _ := generators.SafeToEvict(m)
	if len(names) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("safeToEvict: MutatingAdmissionPolicy %s puts %s on new pods in %s (a pod's own value is kept); running pods get it when they restart",
		generators.SafeToEvictPolicy, generators.AnnotationSafeToEvict, strings.Join(names, ", "))}
}

// SafeToEvictTemplates is the fallback for clusters that do not serve
// MutatingAdmissionPolicy: it sets safeToEvict on the pod templates of the
// mesh's namespaces, and removes the value it set where safeToEvict is
// gone. It changes workloads (their pods restart), so apply runs it only
// after the render was applied, never on a run a guard refused; with
// c.DryRun it only says what it would do. On a cluster that serves the
// policy it does nothing. restarts reports templates that change.
//
// The workloads come from live when it enumerates their kinds (the verbs
// list them with the render's kinds: templateKindsFor), else from one
// LIST per kind.
func SafeToEvictTemplates(ctx context.Context, m *schema.Mesh, c Cluster, live apply.LiveObjects) (note string, restarts bool, err error) {
	served, err := ServesAdmissionPolicy(c.Client)
	if err != nil || served {
		return "", false, err
	}
	names, _ := generators.SafeToEvict(m)
	res, err := annotateTemplates(ctx, m, c, live)
	if err != nil {
		return "", false, err
	}
	if len(names) == 0 && len(res[released]) == 0 {
		return "", false, nil
	}
	return fallbackNote(res, c.DryRun), len(res[configured])+len(res[released]) > 0, nil
}

// fallbackNote says what the fallback did to pod templates.
func fallbackNote(res templateResult, dryRun bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "safeToEvict: the cluster does not serve MutatingAdmissionPolicy, so meshctl sets %s on pod templates (field manager %s); workloads created later get it on the next apply",
		generators.AnnotationSafeToEvict, SafeToEvictManager)
	would := map[bool]string{false: "", true: "would be "}[dryRun]
	list := func(o outcome, format string) {
		if ids := res[o]; len(ids) > 0 {
			fmt.Fprintf(&b, "; "+format, would, strings.Join(ids, ", "))
		}
	}
	list(configured, "%sset on %s: their pods restart")
	list(released, "%sremoved from %s: their pods restart")
	list(explicit, "%sleft off %s, whose templates set their own value")
	list(controlled, "%sleft off %s, whose templates another controller owns")
	if n := len(res[unchanged]); n > 0 {
		fmt.Fprintf(&b, "; %d already set", n)
	}
	return b.String()
}

// annotateTemplates sets the annotation on the pod templates of every
// namespace in the mesh that asks for it, and removes the one meshctl set
// from the others. Only the namespaces in the mesh are read: one that
// leaves mesh.cue keeps its settings, as it does for the rest.
func annotateTemplates(ctx context.Context, m *schema.Mesh, c Cluster, live apply.LiveObjects) (templateResult, error) {
	_, values := generators.SafeToEvict(m)
	namespaces := sortedKeys(m.Namespaces)
	type job struct {
		k    templateKind
		u    *unstructured.Unstructured
		want string
	}
	byKind := make([]map[string][]*unstructured.Unstructured, len(templateKinds))
	for i, k := range templateKinds {
		var err error
		if byKind[i], err = k.workloads(ctx, c, live, namespaces); err != nil {
			return nil, err
		}
	}
	var jobs []job
	for _, ns := range namespaces {
		for i, k := range templateKinds {
			for _, u := range byKind[i][ns] {
				jobs = append(jobs, job{k, u, values[ns]})
			}
		}
	}
	outcomes := make([]outcome, len(jobs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, j := range jobs {
		g.Go(func() (err error) {
			outcomes[i], err = j.k.annotateOne(gctx, c, j.u, j.want)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	all := templateResult{}
	for i, o := range outcomes {
		if o != untouched {
			all[o] = append(all[o], apply.ID(jobs[i].u))
		}
	}
	return all, nil
}

// templateKindsFor are the workload kinds the fallback reads, for the
// verbs to list with the render's kinds (one LIST each, shared), when the
// cluster does not serve MutatingAdmissionPolicy; none when it does.
func templateKindsFor(m *schema.Mesh, served bool) []kschema.GroupVersionKind {
	if served || len(m.Namespaces) == 0 {
		return nil
	}
	out := make([]kschema.GroupVersionKind, len(templateKinds))
	for i, k := range templateKinds {
		out[i] = k.gvk
	}
	return out
}

// workloads returns k's workloads in each of namespaces: from live when it
// enumerates them, else with one LIST (in the one namespace, or in all).
func (k templateKind) workloads(ctx context.Context, c Cluster, live apply.LiveObjects, namespaces []string) (map[string][]*unstructured.Unstructured, error) {
	out := map[string][]*unstructured.Unstructured{}
	if e, ok := live.(apply.Enumerator); ok {
		complete := true
		for _, ns := range namespaces {
			objs, ok := e.All(k.gvk, ns)
			complete = complete && ok
			out[ns] = objs
		}
		if complete {
			return out, nil
		}
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(k.gvk.GroupVersion().WithKind(k.gvk.Kind + "List"))
	var opts []client.ListOption
	if len(namespaces) == 1 {
		opts = append(opts, client.InNamespace(namespaces[0]))
	}
	if err := c.Client.Kube().List(ctx, list, opts...); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing %ss: %w", k.gvk.Kind, err)
	}
	clear(out)
	for i := range list.Items {
		u := &list.Items[i]
		out[u.GetNamespace()] = append(out[u.GetNamespace()], u)
	}
	return out, nil
}

func (k templateKind) annotateOne(ctx context.Context, c Cluster, u *unstructured.Unstructured, want string) (outcome, error) {
	anns, _, _ := unstructured.NestedStringMap(u.Object, k.path...)
	have, set := anns[generators.AnnotationSafeToEvict]
	ours := ownsApply(u.GetManagedFields())
	switch {
	case want == "" && !ours:
		return untouched, nil
	case want != "" && set && have == want:
		return unchanged, nil
	case want != "" && metav1.GetControllerOf(u) != nil:
		return controlled, nil
	case want != "" && set && !ours:
		return explicit, nil
	}
	patch := &unstructured.Unstructured{}
	patch.SetGroupVersionKind(u.GroupVersionKind())
	patch.SetNamespace(u.GetNamespace())
	patch.SetName(u.GetName())
	if want != "" {
		if err := unstructured.SetNestedStringMap(patch.Object, map[string]string{generators.AnnotationSafeToEvict: want}, k.path...); err != nil {
			return untouched, err
		}
	}
	opts := []client.ApplyOption{client.FieldOwner(SafeToEvictManager)}
	if c.DryRun {
		opts = append(opts, client.DryRunAll)
	}
	// No force: a conflict means another manager owns a different value.
	err := c.Client.Kube().Apply(ctx, client.ApplyConfigurationFromUnstructured(patch), opts...)
	switch {
	case apierrors.IsConflict(err):
		return explicit, nil
	case err != nil && gone(ctx, c, u):
		return untouched, nil
	case err != nil:
		return untouched, fmt.Errorf("%s: setting %s: %w", apply.ID(u), generators.AnnotationSafeToEvict, err)
	}
	after, _, _ := unstructured.NestedStringMap(patch.Object, k.path...)
	if v, ok := after[generators.AnnotationSafeToEvict]; want == "" && ok && v == have {
		// Another manager set the same value: it stays.
		return untouched, nil
	}
	if want == "" {
		return released, nil
	}
	return configured, nil
}

// gone reports a workload deleted since it was listed, which the apply
// would have tried to create.
func gone(ctx context.Context, c Cluster, u *unstructured.Unstructured) bool {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(u.GroupVersionKind())
	return apierrors.IsNotFound(c.Client.Kube().Get(ctx, client.ObjectKeyFromObject(u), live))
}

// ownsApply reports whether the fallback's field manager has applied to
// the object.
func ownsApply(fields []metav1.ManagedFieldsEntry) bool {
	for _, f := range fields {
		if f.Manager == SafeToEvictManager && f.Operation == metav1.ManagedFieldsOperationApply {
			return true
		}
	}
	return false
}
