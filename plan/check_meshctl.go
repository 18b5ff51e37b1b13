package plan

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kschema "k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
)

// checkCRDsExist checks that every CRD the render holds exists and serves
// the versions the render serves.
func checkCRDsExist(ctx context.Context, e *checkEnv) verdict {
	out, err := e.problems(ctx, "crds", kindIs("CustomResourceDefinition"), func(u, l *unstructured.Unstructured) []string {
		if l == nil {
			return missing(u, l)
		}
		var out []string
		vs, _, _ := unstructured.NestedSlice(u.Object, "spec", "versions")
		for _, v := range vs {
			vm, _ := v.(map[string]any)
			name, _ := vm["name"].(string)
			if vm["served"] == true && !serves(l, name) {
				out = append(out, fmt.Sprintf("%s does not serve %s", apply.ID(u), name))
			}
		}
		return out
	})
	if err != nil {
		return unread(err)
	}
	return found(CheckError, out, "meshctl apply installs them as mesh.cue renders them")
}

// checkCRDSchemas checks that every CRD the render holds is the one
// meshctl renders, schema included, by the comparison apply uses.
func checkCRDSchemas(ctx context.Context, e *checkEnv) verdict {
	p, err := e.prepared(ctx)
	if err != nil {
		return unread(err)
	}
	drifted, err := e.drifted(ctx, p)
	if err != nil {
		return unread(err)
	}
	var out []string
	for _, d := range drifted {
		if strings.HasPrefix(d.ID, "CustomResourceDefinition/") && d.Reason != "missing" {
			out = append(out, d.ID+": "+d.Reason)
		}
	}
	return found(CheckError, out, "meshctl apply writes the schemas meshctl renders (meshctl diff shows how they differ)")
}

// drifted is the objects of the render that differ from the live ones.
func (e *checkEnv) drifted(ctx context.Context, p *prepared) ([]apply.Drift, error) {
	if e.drift == nil {
		d, err := p.mem.Client.Drifted(ctx, p.set, p.live)
		if err != nil {
			return nil, err
		}
		e.drift = &d
	}
	return *e.drift, nil
}

// checkInSync names the objects that differ from mesh.cue's render.
func checkInSync(ctx context.Context, e *checkEnv) verdict {
	p, err := e.prepared(ctx)
	if err != nil {
		return fail(err.Error(), "fix what keeps mesh.cue from rendering for this cluster; meshctl diff says the same")
	}
	drifted, err := e.drifted(ctx, p)
	if err != nil {
		return unread(err)
	}
	var out []string
	for _, d := range drifted {
		out = append(out, d.ID+" ("+d.Reason+")")
	}
	if len(out) == 0 {
		return pass(fmt.Sprintf("%d objects", p.set.Count()))
	}
	return fail(fmt.Sprintf("%d of %d objects differ from mesh.cue: %s", len(out), p.set.Count(), listed(out)), "meshctl diff shows the changes; meshctl apply (or the reconcile loop) makes them")
}

// checkInventory checks that meshctl applied here, and that no run was
// left unfinished.
func checkInventory(ctx context.Context, e *checkEnv) verdict {
	inv, err := e.mem.Client.ReadInventory(ctx)
	switch {
	case err != nil:
		return unread(err)
	case inv == nil:
		return fail("meshctl has not applied to this cluster (no inventory in namespace "+e.mem.Client.Namespace()+")", "meshctl apply")
	case len(inv.Pending) > 0:
		return warn(fmt.Sprintf("%d objects are pending from a run that did not finish", len(inv.Pending)), "the next meshctl apply completes the run or prunes them")
	}
	return pass(fmt.Sprintf("%d objects, written by meshctl %s", len(inv.Objects), inv.Version))
}

// checkLoopRecord checks the reconcile loop's record, when a loop runs
// against the cluster: not failing, and, with leader election, a leader
// that renews its Lease.
func checkLoopRecord(ctx context.Context, e *checkEnv) verdict {
	kube := e.mem.Client.Kube()
	rec, err := ReadLoopRecord(ctx, kube, e.mem.Client.Namespace())
	if err != nil {
		return unread(err)
	}
	if rec == nil {
		return pass("no reconcile loop has run against this cluster")
	}
	lease := &coordinationv1.Lease{}
	err = kube.Get(ctx, client.ObjectKey{Namespace: e.mem.Client.Namespace(), Name: LoopRecordName}, lease)
	if client.IgnoreNotFound(err) != nil {
		return unread(err)
	}
	if err == nil && lease.Spec.RenewTime != nil && lease.Spec.LeaseDurationSeconds != nil {
		// Three missed renewals: no replica leads.
		limit := 3 * time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second
		if age := e.now.Sub(lease.Spec.RenewTime.Time); age > limit {
			return fail(fmt.Sprintf("the loop's Lease %s/%s was last renewed %s ago, by %s: no replica leads", lease.Namespace, lease.Name, age.Round(time.Second), ptrOr(lease.Spec.HolderIdentity)),
				"kubectl -n "+lease.Namespace+" get pods -l app.kubernetes.io/name=meshctl-reconciler; kubectl logs shows why")
		}
	}
	switch {
	case rec.State == LoopFailing || rec.LastError != "":
		return fail(fmt.Sprintf("the loop is %s: %s", rec.State, firstLine(rec.LastError)), "meshctl status shows the loop's whole record")
	case rec.FailedRevision != "":
		return warn(fmt.Sprintf("revision %s does not render; %s stays applied", rec.FailedRevision, rec.Revision), "fix mesh.cue at that revision (meshctl vet says where)")
	case rec.State == LoopDrifted:
		return warn(fmt.Sprintf("the loop (mode %s) records %d drifted objects", rec.Mode, rec.DriftedTotal), "meshctl diff shows them; meshctl apply, or --mode correct, corrects them")
	}
	return pass(fmt.Sprintf("%s, revision %s, mode %s", rec.State, rec.Revision, rec.Mode))
}

func ptrOr(s *string) string {
	if s == nil {
		return "no one"
	}
	return *s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// checkApplyWarnings gives what apply would warn about that no check
// above covers: a headless Service that routes cannot reach, a link target
// not ready, and the like.
func checkApplyWarnings(ctx context.Context, e *checkEnv) verdict {
	p, err := e.prepared(ctx)
	if err != nil {
		return unread(err)
	}
	covered := Warnings(ctx, e.m, e.mem.Client)
	covered = append(covered, certificateWarnings(e.m, e.mem.Client, p.report.Certificates, nil)...)
	var out []string
	for _, w := range p.report.Warnings {
		if !slices.Contains(covered, w) {
			out = append(out, w)
		}
	}
	return found(CheckWarning, out, "meshctl diff shows the same warnings, with what apply would change")
}

// preChecks are --pre's: whether the caller may write what apply writes,
// and whether the server serves every kind the render holds.
func preChecks() []checkDef {
	pre := func(id, anchor, name string, run func(ctx context.Context, e *checkEnv) verdict) checkDef {
		return checkDef{category: "pre-kubernetes-setup", id: id, anchor: anchor, name: name, upstream: anchor != "", run: run}
	}
	core := func(kind string) func(u *unstructured.Unstructured) bool {
		return func(u *unstructured.Unstructured) bool { return u.GetKind() == kind && u.GetNamespace() != "" }
	}
	return []checkDef{
		pre("pre-k8s-cluster-k8s", "pre-k8s-cluster-k8s", "can create non-namespaced resources", canApply(func(u *unstructured.Unstructured) bool { return u.GetNamespace() == "" })),
		pre("pre-k8s-serviceaccounts", "pre-k8s", "can create ServiceAccounts", canApply(core("ServiceAccount"))),
		pre("pre-k8s-services", "pre-k8s", "can create Services", canApply(core("Service"))),
		pre("pre-k8s-deployments", "pre-k8s", "can create Deployments", canApply(core("Deployment"))),
		pre("pre-k8s-cronjobs", "pre-k8s", "can create CronJobs", canApply(core("CronJob"))),
		pre("pre-k8s-configmaps", "pre-k8s", "can create ConfigMaps", canApply(core("ConfigMap"))),
		pre("pre-k8s-secrets", "pre-k8s", "can create Secrets", canApply(core("Secret"))),
		pre("meshctl-pre-other-kinds", "", "can create every other kind mesh.cue renders", canApply(func(u *unstructured.Unstructured) bool {
			return u.GetNamespace() != "" && !slices.Contains([]string{"ServiceAccount", "Service", "Deployment", "CronJob", "ConfigMap", "Secret"}, u.GetKind())
		})),
		pre("meshctl-pre-served-kinds", "", "the server serves every kind mesh.cue renders", checkServed),
	}
}

// canApply asks the server (SelfSubjectAccessReview) whether the caller
// may create and patch each kind, in each namespace, of the render's
// objects that keep picks: what a server-side apply needs.
func canApply(keep func(u *unstructured.Unstructured) bool) func(ctx context.Context, e *checkEnv) verdict {
	return func(ctx context.Context, e *checkEnv) verdict {
		objs, err := e.rendered(ctx, "", keep)
		if err != nil {
			return unread(err)
		}
		plurals := renderedPlurals(e)
		type attr struct{ group, resource, namespace, verb string }
		seen := map[attr]bool{}
		var out []string
		for _, u := range objs {
			gvk := u.GroupVersionKind()
			resource, ok := plurals[gvk.GroupKind()]
			if !ok {
				mapping, err := e.mem.Client.Kube().RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
				if err != nil {
					continue // the served-kinds check names it
				}
				resource = mapping.Resource.Resource
			}
			for _, verb := range []string{"create", "patch"} {
				a := attr{gvk.Group, resource, u.GetNamespace(), verb}
				if seen[a] {
					continue
				}
				seen[a] = true
				review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
					Group: a.group, Resource: a.resource, Namespace: a.namespace, Verb: a.verb}}}
				if err := e.mem.Client.Kube().Create(ctx, review); err != nil {
					return unread(fmt.Errorf("asking whether %s %s may be written: %w", a.verb, a.resource, err))
				}
				if !review.Status.Allowed {
					where := "cluster-wide"
					if a.namespace != "" {
						where = "in namespace " + a.namespace
					}
					out = append(out, fmt.Sprintf("may not %s %s %s", a.verb, qualified(a.group, a.resource), where))
				}
			}
		}
		return found(CheckError, out, "grant them to the credentials apply runs with (cluster-admin installs Linkerd), or run with credentials that have them")
	}
}

func qualified(group, resource string) string {
	if group == "" {
		return resource
	}
	return resource + "." + group
}

// renderedPlurals are the resources of the kinds the render's own CRDs
// define: the server knows them only once they are applied.
func renderedPlurals(e *checkEnv) map[kschema.GroupKind]string {
	out := map[kschema.GroupKind]string{}
	if e.p == nil {
		return out
	}
	for _, st := range e.p.set.Stages {
		for _, u := range st.Objects {
			if u.GetKind() != "CustomResourceDefinition" {
				continue
			}
			group, _, _ := unstructured.NestedString(u.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(u.Object, "spec", "names", "kind")
			plural, _, _ := unstructured.NestedString(u.Object, "spec", "names", "plural")
			out[kschema.GroupKind{Group: group, Kind: kind}] = plural
		}
	}
	return out
}

// checkServed names the kinds of the render that the server does not
// serve, and that no CRD of the render defines.
func checkServed(ctx context.Context, e *checkEnv) verdict {
	objs, err := e.rendered(ctx, "", nil)
	if err != nil {
		return unread(err)
	}
	plurals := renderedPlurals(e)
	seen := map[kschema.GroupVersionKind]bool{}
	var out []string
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		if seen[gvk] {
			continue
		}
		seen[gvk] = true
		if _, ok := plurals[gvk.GroupKind()]; ok {
			continue
		}
		if _, err := e.mem.Client.Kube().RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			if meta.IsNoMatchError(err) {
				out = append(out, fmt.Sprintf("%s %s is not served", gvk.GroupVersion(), gvk.Kind))
				continue
			}
			return unread(err)
		}
	}
	return found(CheckError, out, "meshctl renders the API versions Kubernetes 1.37 serves: upgrade the cluster, or turn off the feature that needs the kind")
}
