package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	"github.com/fluxcd/pkg/ssa/utils"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// Options control one apply.
type Options struct {
	// Wait makes each stage wait for its objects to become ready (kstatus)
	// before the next stage starts. CRDs are always waited for, because
	// later stages cannot be applied until they are established.
	Wait bool
	// Timeout bounds each stage's wait.
	Timeout time.Duration
	// DryRun asks the server to dry-run everything; nothing is written.
	DryRun bool
	// Prune deletes inventoried objects that the render no longer holds.
	Prune bool
	// ForcePrune lifts the empty-render and MaxDeletions guards.
	ForcePrune bool
	// MaxDeletions caps how much one run may prune; zero means 50%.
	MaxDeletions Limit
	// Force recreates objects whose immutable fields changed.
	Force bool
	// Progress receives a line per object and per stage; nil discards.
	Progress io.Writer
	// ReportEvery is how often a long wait says what it is still waiting
	// for; zero means every 10 seconds.
	ReportEvery time.Duration
	// Live holds the live objects; nil makes Apply list them, one LIST
	// per kind. Objects in sync with their live copy are neither
	// dry-run nor written.
	Live LiveObjects
	// CRDs are the schemas custom resources are compared with (their
	// defaults); nil makes Apply read them from the set. ApplyObjects
	// reads none: the reconcile loop hands it those of its whole set.
	CRDs *CRDSchemas

	// absent are objects Live knows do not exist: they are created with
	// one request, without ssa's read and dry-run.
	absent map[object.ObjMetadata]bool
	// repaired are objects this run repaired (repair.go).
	repaired map[object.ObjMetadata]bool
	// gone are the set's Namespaces and CRDs being deleted: in a dry run,
	// what they hold is reported created, not dry-run (terminating.go).
	gone terminating
}

// Limit is a count ("10") or a percentage of the inventory ("50%"). The
// zero Limit is the default, 50%.
type Limit struct {
	Count   int
	Percent int
	// IsCount says Count applies; otherwise Percent does (0 meaning 50).
	IsCount bool
}

// ParseLimit reads "N" or "N%".
func ParseLimit(s string) (Limit, error) {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 100 {
			return Limit{}, fmt.Errorf("invalid percentage %q: want 0%%..100%%", s)
		}
		if n == 0 {
			return Limit{IsCount: true}, nil
		}
		return Limit{Percent: n}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return Limit{}, fmt.Errorf("invalid limit %q: want a count like 10 or a percentage like 50%%", s)
	}
	return Limit{Count: n, IsCount: true}, nil
}

func (l Limit) String() string {
	if l.IsCount {
		return strconv.Itoa(l.Count)
	}
	return fmt.Sprintf("%d%%", l.percent())
}

func (l Limit) percent() int {
	if l.Percent == 0 {
		return 50
	}
	return l.Percent
}

func (l Limit) allows(n, total int) bool {
	if l.IsCount {
		return n <= l.Count
	}
	return n*100 <= l.percent()*total
}

// ErrPruneRefused is wrapped when a prune guard stops the run.
var ErrPruneRefused = errors.New("prune refused")

// Apply makes the cluster match set, stage by stage, then prunes.
//
// Nothing is written when the prune guards refuse. A pending inventory is
// recorded before the first new object is created, and the committed one
// after the last stage, so a run killed halfway is finished by the next.
func (c *Client) Apply(ctx context.Context, set Set, o Options) (*Result, error) {
	start := time.Now()
	o = o.withDefaults()
	res := &Result{DryRun: o.DryRun, Summary: map[Action]int{}}
	dryRuns := c.dryRuns.Load()
	defer func() { res.DryRuns = int(c.dryRuns.Load() - dryRuns) }()
	prev, err := c.ReadInventory(ctx)
	if err != nil {
		return nil, err
	}
	next := refsOf(set)
	digest := set.Digest
	if digest == "" {
		if digest, err = Digest(set); err != nil {
			return nil, err
		}
	}
	candidates := pruneCandidates(prev, next)
	if o.Prune {
		if err := checkPrune(prev, next, candidates, o); err != nil {
			return nil, err
		}
	}
	objs := setObjects(set)
	if o.Live, err = c.liveFor(ctx, o.Live, objs); err != nil {
		return nil, err
	}
	if o.CRDs == nil {
		o.CRDs = SchemasOf(objs)
	}
	if o.gone, err = c.findTerminating(ctx, objs, o.Live); err != nil {
		return nil, err
	}
	if !o.gone.empty() && !o.DryRun {
		if err := c.awaitGone(ctx, o.gone, o); err != nil {
			return nil, err
		}
		o.Live, o.gone = goneNow{LiveObjects: o.Live, t: o.gone}, terminating{}
	}
	if !o.DryRun && needPending(prev, next) {
		pending := &Inventory{Version: set.Version, Objects: prev.all(), Pending: next}
		if prev != nil {
			pending.Digest = prev.Digest
			pending.resourceVersion = prev.resourceVersion
		}
		if err := c.writeInventory(ctx, pending); err != nil {
			return nil, err
		}
		prev = pending
	}

	p := providedBy(set)
	for _, st := range set.Stages {
		if err := c.applyStage(ctx, st, o, res, p); err != nil {
			res.Duration = time.Since(start)
			return res, err
		}
	}

	keep := candidates
	if o.Prune && len(candidates) > 0 {
		if keep, err = c.prune(ctx, candidates, o, res); err != nil {
			res.Duration = time.Since(start)
			return res, err
		}
	}
	if !o.DryRun {
		inv := &Inventory{Version: set.Version, Digest: digest, Objects: append(next, keep...)}
		if prev != nil {
			inv.resourceVersion = prev.resourceVersion
		}
		// Written when it changed, and whenever this run wrote objects: the
		// update carries the resourceVersion read at the start, so a run
		// that raced this one is reported rather than silently undone.
		if prev == nil || prev.Digest != digest || prev.Version != set.Version || len(prev.Pending) > 0 ||
			!sameRefs(prev.Objects, inv.Objects) || res.Writes > 0 {
			if err := c.writeInventory(ctx, inv); err != nil {
				return res, err
			}
		}
	}
	res.Duration = time.Since(start)
	return res, nil
}

func (o Options) withDefaults() Options {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.ReportEvery == 0 {
		o.ReportEvery = waitReportEvery
	}
	return o
}

// needPending reports whether the run may create objects the inventory
// does not yet list.
func needPending(prev *Inventory, next []Ref) bool {
	if prev == nil {
		return true
	}
	have := refSet(prev.all())
	for _, r := range next {
		if _, ok := have[r.key()]; !ok {
			return true
		}
	}
	return false
}

func checkPrune(prev *Inventory, next, candidates []Ref, o Options) error {
	if o.ForcePrune || len(candidates) == 0 {
		return nil
	}
	if len(next) == 0 {
		return fmt.Errorf("%w: the render is empty, and pruning would delete all %d objects in the inventory; check mesh.cue, or pass --force-prune to remove the whole mesh", ErrPruneRefused, len(candidates))
	}
	total := len(prev.all())
	if !o.MaxDeletions.allows(len(candidates), total) {
		ids := make([]string, 0, 5)
		for i, r := range candidates {
			if i == 5 {
				ids = append(ids, "…")
				break
			}
			ids = append(ids, r.ID())
		}
		return fmt.Errorf("%w: this run would delete %d of the %d inventoried objects (%s), more than --max-deletions=%s allows; check mesh.cue, or pass --force-prune",
			ErrPruneRefused, len(candidates), total, strings.Join(ids, ", "), o.MaxDeletions)
	}
	return nil
}

func (c *Client) ssaOptions(o Options) ssa.ApplyOptions {
	opts := ssa.DefaultApplyOptions()
	opts.Force = o.Force
	opts.ForceSelector = map[string]string{AnnotationForce: "enabled"}
	opts.WaitInterval = time.Second
	opts.WaitTimeout = o.Timeout
	opts.Cleanup = takeover
	return opts
}

// takeover is how meshctl adopts objects that `linkerd install | kubectl
// apply`, Helm or kubectl created: their field managers' fields become
// meshctl's, so fields meshctl no longer sets are removed by the next
// apply, and their bookkeeping annotations go. Objects with
// meshctl.io/prune: disabled (namespaces meshctl does not own) are left
// with their managers.
var takeover = ssa.ApplyCleanupOptions{
	Annotations: []string{
		corev1.LastAppliedConfigAnnotation,
		"meta.helm.sh/release-name",
		"meta.helm.sh/release-namespace",
	},
	FieldManagers: []ssa.FieldManager{
		{Name: "kubectl-client-side-apply", OperationType: metav1.ManagedFieldsOperationUpdate},
		{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationApply, ExactMatch: true},
		{Name: "helm", OperationType: metav1.ManagedFieldsOperationUpdate},
		// A repair's update (repair.go) is meshctl's own, and is folded
		// into meshctl's apply by the apply that follows it.
		{Name: RepairManager, OperationType: metav1.ManagedFieldsOperationUpdate, ExactMatch: true},
		// Not "before-first-apply": the API server gives that manager the
		// fields it sets itself on a taken-over object (a Namespace's
		// kubernetes.io/metadata.name label and finalizers), and claiming
		// them made every takeover take two applies to settle.
	},
	Exclusions: map[string]string{AnnotationPrune: "disabled"},
}

func (c *Client) applyStage(ctx context.Context, st Stage, o Options, res *Result, p provided) error {
	if len(st.Objects) == 0 {
		return nil
	}
	began := time.Now()
	fmt.Fprintf(o.Progress, "stage %s: applying %d objects\n", st.Name, len(st.Objects))
	entries, err := c.applyObjects(ctx, st.Name, st.Objects, o, p)
	for _, e := range entries {
		res.add(e)
		fmt.Fprintln(o.Progress, e)
	}
	if err != nil || o.DryRun {
		return err
	}
	return c.waitStage(ctx, st.Name, st.Objects, entries, o, began)
}

// ApplyObjects applies a few objects of one stage by the rules of Apply
// (force, replicas left to autoscalers, RBAC and webhook order, waiting)
// without reading or writing the inventory: the reconcile loop re-applies
// one drifted object with it. The objects must already be inventoried.
func (c *Client) ApplyObjects(ctx context.Context, stage string, objs []*unstructured.Unstructured, o Options) ([]Entry, error) {
	began := time.Now()
	o = o.withDefaults()
	entries, err := c.applyObjects(ctx, stage, objs, o, providedBy(Set{Stages: []Stage{{Objects: objs}}}))
	if err != nil || o.DryRun {
		return entries, err
	}
	return entries, c.waitStage(ctx, stage, objs, entries, o, began)
}

// applyObjects applies (or dry-runs) objs. Those in sync with o.Live are
// reported unchanged and never reach the server; the others go through
// ssa, which dry-runs and then writes them.
func (c *Client) applyObjects(ctx context.Context, stage string, in []*unstructured.Unstructured, o Options, p provided) ([]Entry, error) {
	objs, err := c.prepare(ctx, in, o.Live)
	if err != nil {
		return nil, err
	}
	entries := make([]Entry, len(objs))
	var rest []*unstructured.Unstructured
	var at []int
	o.absent = map[object.ObjMetadata]bool{}
	o.repaired = map[object.ObjMetadata]bool{}
	var shared []coOwned
	for i, u := range objs {
		live, ok := lookup(o.Live, u)
		if ok && o.CRDs.InSync(u, live) {
			entries[i] = entryFor(u, stage, Unchanged)
			continue
		}
		if at, names := o.CRDs.coOwners(u, live); len(at) > 0 {
			shared = append(shared, coOwned{i: i, live: live, at: at, names: names})
			continue
		}
		if ok && live == nil {
			o.absent[object.UnstructuredToObjMetadata(u)] = true
		}
		// What reaches ssa is a copy: ssa may change what it is given,
		// and u may be the render's own object.
		rest = append(rest, u.DeepCopy())
		at = append(at, i)
	}
	for _, co := range c.takeOverCoOwned(ctx, shared, o.DryRun) {
		if co.err == nil {
			e := entryFor(objs[co.i], stage, Unchanged)
			e.Reason = "would take over " + theirFields(co.names)
			if !o.DryRun {
				e.Reason, e.TookOverFrom = "took over "+theirFields(co.names), co.names
			}
			entries[co.i] = e
			continue
		}
		// Changed since it was read, or refused: the full apply decides.
		rest = append(rest, objs[co.i].DeepCopy())
		at = append(at, co.i)
	}
	if len(rest) == 0 {
		return entries, nil
	}
	if o.DryRun {
		sub := make([]Entry, len(rest))
		if err := c.dryRunAll(ctx, stage, rest, o, sub, p); err != nil {
			return nil, err
		}
		for j, i := range at {
			entries[i] = sub[j]
		}
		return entries, nil
	}
	actions, err := c.applyWithForce(ctx, rest, o)
	if err != nil {
		return nil, explain(stage, err, o.Force)
	}
	var claim []*unstructured.Unstructured
	for j, i := range at {
		entries[i] = entryFor(rest[j], stage, Action(actions[object.UnstructuredToObjMetadata(rest[j])]))
		if o.repaired[object.UnstructuredToObjMetadata(rest[j])] {
			entries[i].Reason = "repaired: the server refused its apply as invalid, as after an edit of a list item's key; its rendered fields were written whole"
		}
		if live, ok := lookup(o.Live, rest[j]); ok && live != nil && entries[i].Action == Unchanged && meshctlFields(live, rest[j].GetAPIVersion()) == nil {
			claim = append(claim, rest[j])
		}
	}
	// ssa writes nothing when the content already matches, so an object
	// another tool created just as meshctl renders it would never record
	// meshctl's fields, and never be found in sync: claim them.
	if _, err := c.createAll(ctx, claim); err != nil {
		return nil, explain(stage, err, o.Force)
	}
	return entries, nil
}

// waitStage waits for a stage's objects to become ready: all of them with
// o.Wait, and CRDs always, unless they were in sync and established.
func (c *Client) waitStage(ctx context.Context, stage string, objs []*unstructured.Unstructured, entries []Entry, o Options, began time.Time) error {
	var waitFor []*unstructured.Unstructured
	for i, u := range objs {
		if o.Wait || u.GetKind() == "CustomResourceDefinition" && !establishedInSync(u, entries[i], o.Live) {
			waitFor = append(waitFor, u)
		}
	}
	if len(waitFor) == 0 {
		return nil
	}
	set := object.UnstructuredSetToObjMetadataSet(waitFor)
	fmt.Fprintf(o.Progress, "stage %s: waiting for %d objects to become ready (timeout %s)\n", stage, len(set), o.Timeout)
	stop := c.reportWaiting(ctx, stage, waitFor, o.Progress, began, o.ReportEvery)
	err := c.rm.WaitForSetWithContext(ctx, set, ssa.WaitOptions{Interval: time.Second, Timeout: o.Timeout})
	stop()
	if err != nil {
		return fmt.Errorf("stage %s: not ready after %s: %w%s", stage, o.Timeout, err, c.explainNotReady(ctx, waitFor))
	}
	fmt.Fprintf(o.Progress, "stage %s: ready (%s)\n", stage, time.Since(began).Round(100*time.Millisecond))
	return nil
}

// establishedInSync reports a CRD that this run left unchanged and whose
// live copy does not say it is unestablished (the reconcile loop's copies
// carry no status): the run that wrote it waited for it.
func establishedInSync(u *unstructured.Unstructured, e Entry, live LiveObjects) bool {
	if e.Action != Unchanged {
		return false
	}
	l, ok := lookup(live, u)
	if !ok || l == nil {
		return false
	}
	conds, found, _ := unstructured.NestedSlice(l.Object, "status", "conditions")
	if !found {
		return true
	}
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Established" {
			return m["status"] == "True"
		}
	}
	return false
}

// applyShards is how many ApplyAll calls run at once within a stage.
const applyShards = 4

// applyPhase orders a stage's writes. Roles, ClusterRoles and
// ServiceAccounts come first, and are finished before anything else
// starts: RBAC's escalation check lets a non-admin applier bind only
// permissions that exist, and a ServiceAccount's token Secret needs it. Admission
// webhook configurations and APIServices come last, so that they never
// guard objects of their own stage.
func applyPhase(u *unstructured.Unstructured) int {
	gvk := u.GroupVersionKind()
	switch {
	case gvk.Group == "rbac.authorization.k8s.io" && (gvk.Kind == "ClusterRole" || gvk.Kind == "Role"),
		// A token Secret created before its ServiceAccount is deleted by
		// the token controller, and the next apply creates it again.
		gvk.Group == "" && gvk.Kind == "ServiceAccount":
		return 0
	case gvk.Kind == "MutatingWebhookConfiguration", gvk.Kind == "ValidatingWebhookConfiguration", gvk.Kind == "APIService":
		return 2
	}
	return 1
}

// applyAll applies a stage's objects, phase by phase (applyPhase).
// ssa.ApplyAll dry-runs concurrently but writes one object at a time, so
// each phase is split into shards that apply in parallel.
func (c *Client) applyAll(ctx context.Context, objs []*unstructured.Unstructured, opts ssa.ApplyOptions, absent map[object.ObjMetadata]bool) (map[object.ObjMetadata]ssa.Action, error) {
	var phases [3][]*unstructured.Unstructured
	for _, u := range objs {
		n := applyPhase(u)
		phases[n] = append(phases[n], u)
	}
	actions := map[object.ObjMetadata]ssa.Action{}
	var mu sync.Mutex
	record := func(cs *ssa.ChangeSet) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range cs.Entries {
			actions[e.ObjMetadata] = e.Action
		}
	}
	for _, phase := range phases {
		var shards [applyShards][]*unstructured.Unstructured
		var create []*unstructured.Unstructured
		n := 0
		for _, u := range phase {
			if absent[object.UnstructuredToObjMetadata(u)] {
				create = append(create, u)
				continue
			}
			shards[n%applyShards] = append(shards[n%applyShards], u)
			n++
		}
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error {
			cs, err := c.createAll(gctx, create)
			record(cs)
			return err
		})
		for _, shard := range shards {
			if len(shard) == 0 {
				continue
			}
			g.Go(func() error {
				cs, err := c.rm.ApplyAll(gctx, shard, opts)
				if cs != nil {
					record(cs)
				}
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return actions, err
		}
	}
	return actions, nil
}

// createAll server-side applies objects with one request each, without
// ssa's read and dry-run: objects known not to exist (the dry-run could
// only say "created"; should one exist after all, the apply updates it, as
// ssa would have), and objects whose content already matches, to record
// meshctl's fields.
func (c *Client) createAll(ctx context.Context, objs []*unstructured.Unstructured) (*ssa.ChangeSet, error) {
	cs := ssa.NewChangeSet()
	if len(objs) == 0 {
		return cs, nil
	}
	done := make([]bool, len(objs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, u := range objs {
		g.Go(func() error {
			if err := c.kube.Patch(gctx, u.DeepCopy(), client.Apply, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
				return fmt.Errorf("%s apply failed: %w", ID(u), err)
			}
			done[i] = true
			return nil
		})
	}
	err := g.Wait()
	for i, u := range objs {
		if done[i] {
			cs.Add(ssa.ChangeSetEntry{ObjMetadata: object.UnstructuredToObjMetadata(u), Subject: ID(u), Action: ssa.CreatedAction})
		}
	}
	return cs, err
}

// dryRunAll asks the server what applying each object would do.
func (c *Client) dryRunAll(ctx context.Context, stage string, objs []*unstructured.Unstructured, o Options, entries []Entry, p provided) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, u := range objs {
		if why := o.gone.holds(u); why != "" {
			entries[i] = entryFor(u, stage, Created)
			entries[i].Reason = why
			continue
		}
		g.Go(func() error {
			cse, _, _, err := c.rm.Diff(gctx, u.DeepCopy(), diffOptions(u, o.Force))
			if err != nil {
				if reason, ok := p.dependsOnThisRun(err, u); ok {
					entries[i] = entryFor(u, stage, Created)
					entries[i].Reason = reason
					return nil
				}
				if _, _, reason, ok := c.repairPreview(gctx, u, err); ok {
					entries[i] = entryFor(u, stage, Configured)
					entries[i].Reason = reason
					return nil
				}
				return explain(stage, err, o.Force)
			}
			entries[i] = entryFor(u, stage, Action(cse.Action))
			return nil
		})
	}
	return g.Wait()
}

// provided is what a set creates that other objects of the set depend on:
// namespaces ("ns:<name>") and custom kinds ("kind:<group>/<Kind>").
type provided map[string]bool

func providedBy(set Set) provided {
	p := provided{}
	for _, st := range set.Stages {
		for _, u := range st.Objects {
			switch u.GetKind() {
			case "Namespace":
				p["ns:"+u.GetName()] = true
			case "CustomResourceDefinition":
				group, _, _ := unstructured.NestedString(u.Object, "spec", "group")
				kind, _, _ := unstructured.NestedString(u.Object, "spec", "names", "kind")
				p["kind:"+group+"/"+kind] = true
			}
		}
	}
	return p
}

// dependsOnThisRun reports a dry-run failure that only means the object's
// namespace or CRD does not exist yet, and that this set creates it.
// The reason says which.
func (p provided) dependsOnThisRun(err error, u *unstructured.Unstructured) (reason string, ok bool) {
	var dre *ssaerrors.DryRunErr
	if errors.As(err, &dre) {
		err = dre.Unwrap()
	}
	// A kind whose CRD is gone is NoMatch, or, while this client's
	// discovery still remembers it (pruned a moment ago), a 404 of the
	// kind: an apply never answers 404 for an object it may create.
	if (meta.IsNoMatchError(err) || apierrors.IsNotFound(err) && notFoundKind(err)) && p["kind:"+u.GroupVersionKind().Group+"/"+u.GetKind()] {
		return "not dry-run: its CRD is created by this apply", true
	}
	if apierrors.IsNotFound(err) {
		var st apierrors.APIStatus
		if errors.As(err, &st) && st.Status().Details != nil && st.Status().Details.Kind == "namespaces" && p["ns:"+u.GetNamespace()] {
			return "not dry-run: namespace " + u.GetNamespace() + " is created by this apply", true
		}
	}
	return "", false
}

// notFoundKind reports a 404 that names no object: the server does not
// serve the kind (its CRD is gone), rather than a namespace it lacks.
func notFoundKind(err error) bool {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return false
	}
	d := st.Status().Details
	return d == nil || d.Kind != "namespaces"
}

// prepare copies the objects as apply will send them: a Deployment's
// replicas that an autoscaler manages are left out of the payload, so other
// controllers keep the fields they own. The replicas' owner is read from
// live, or from the server when live does not know the object.
func (c *Client) prepare(ctx context.Context, in []*unstructured.Unstructured, live LiveObjects) ([]*unstructured.Unstructured, error) {
	// Objects are copied only when they change here: a resync of a large
	// mesh compares thousands of objects that are in sync, and copying
	// them all was most of its garbage. Callers copy what they send.
	out := make([]*unstructured.Unstructured, len(in))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, u := range in {
		out[i] = u
		if u.GetKind() == "CustomResourceDefinition" {
			// ssa drops a CRD's invalid caBundle before it applies; so
			// does the payload that InSync compares.
			out[i] = u.DeepCopy()
			utils.RemoveCABundleFromCRD(out[i])
		}
		if !mayYieldReplicas(u) {
			continue
		}
		if l, ok := lookup(live, u); ok {
			out[i] = withoutYieldedReplicas(out[i], l)
			continue
		}
		g.Go(func() error {
			l := &unstructured.Unstructured{}
			l.SetGroupVersionKind(u.GroupVersionKind())
			err := c.kube.Get(gctx, client.ObjectKeyFromObject(u), l)
			if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("reading %s: %w", ID(u), err)
			}
			out[i] = withoutYieldedReplicas(out[i], l)
			return nil
		})
	}
	return out, g.Wait()
}

// mayYieldReplicas reports an object whose replicas an autoscaler may own.
func mayYieldReplicas(u *unstructured.Unstructured) bool {
	switch u.GetKind() {
	case "Deployment", "StatefulSet":
		_, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "replicas")
		return ok
	}
	return false
}

// withoutYieldedReplicas is u without spec.replicas (a copy) when another
// controller owns them in live (nil: the object does not exist yet), else
// u itself.
func withoutYieldedReplicas(u, live *unstructured.Unstructured) *unstructured.Unstructured {
	if live == nil || replicasOwner(live) == "" {
		return u
	}
	u = u.DeepCopy()
	unstructured.RemoveNestedField(u.Object, "spec", "replicas")
	return u
}

// replicasOwner returns the manager that owns spec.replicas when it is a
// controller other than meshctl (an autoscaler, say) and meshctl no longer
// owns it. kubectl edits and scales are drift, not ownership, and meshctl
// takes those back.
func replicasOwner(live *unstructured.Unstructured) string {
	owner := ""
	for _, mf := range live.GetManagedFields() {
		if !ownsSpecReplicas(mf.FieldsV1) {
			continue
		}
		if mf.Manager == FieldManager {
			return ""
		}
		if strings.HasPrefix(mf.Manager, "kubectl") || TakenOver(mf) {
			continue
		}
		owner = mf.Manager
	}
	return owner
}

var specReplicas = fieldpath.MakePathOrDie("spec", "replicas")

// ownsSpecReplicas reports whether a managed-fields entry's field set holds
// spec.replicas. A write through /scale is recorded against the parent's
// fields, so an autoscaler's entry holds it too.
func ownsSpecReplicas(f *metav1.FieldsV1) bool {
	if f == nil {
		return false
	}
	set := &fieldpath.Set{}
	if err := set.FromJSON(bytes.NewReader(f.Raw)); err != nil {
		return false
	}
	return set.Has(specReplicas)
}
