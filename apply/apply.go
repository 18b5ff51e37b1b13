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
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.ReportEvery == 0 {
		o.ReportEvery = waitReportEvery
	}
	res := &Result{DryRun: o.DryRun, Summary: map[Action]int{}}
	prev, err := c.ReadInventory(ctx)
	if err != nil {
		return nil, err
	}
	next := refsOf(set)
	digest, err := Digest(set)
	if err != nil {
		return nil, err
	}
	candidates := pruneCandidates(prev, next)
	if o.Prune {
		if err := checkPrune(prev, next, candidates, o); err != nil {
			return nil, err
		}
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
	objs, err := c.prepare(ctx, st.Objects)
	if err != nil {
		return err
	}
	entries := make([]Entry, len(objs))
	if o.DryRun {
		if err := c.dryRunAll(ctx, st.Name, objs, o, entries, p); err != nil {
			return err
		}
	} else {
		actions, err := c.applyWithForce(ctx, objs, o)
		if err != nil {
			return explain(st.Name, err, o.Force)
		}
		for i, u := range objs {
			entries[i] = entryFor(u, st.Name, Action(actions[object.UnstructuredToObjMetadata(u)]))
		}
	}
	for _, e := range entries {
		res.add(e)
		fmt.Fprintln(o.Progress, e)
	}
	if o.DryRun {
		return nil
	}
	waitAll := o.Wait
	var waitFor []*unstructured.Unstructured
	for _, u := range objs {
		if waitAll || u.GetKind() == "CustomResourceDefinition" {
			waitFor = append(waitFor, u)
		}
	}
	if len(waitFor) == 0 {
		return nil
	}
	set := object.UnstructuredSetToObjMetadataSet(waitFor)
	fmt.Fprintf(o.Progress, "stage %s: waiting for %d objects to become ready (timeout %s)\n", st.Name, len(set), o.Timeout)
	stop := c.reportWaiting(ctx, st.Name, waitFor, o.Progress, began, o.ReportEvery)
	err = c.rm.WaitForSetWithContext(ctx, set, ssa.WaitOptions{Interval: time.Second, Timeout: o.Timeout})
	stop()
	if err != nil {
		return fmt.Errorf("stage %s: not ready after %s: %w%s", st.Name, o.Timeout, err, c.explainNotReady(ctx, waitFor))
	}
	fmt.Fprintf(o.Progress, "stage %s: ready (%s)\n", st.Name, time.Since(began).Round(100*time.Millisecond))
	return nil
}

// applyShards is how many ApplyAll calls run at once within a stage.
const applyShards = 4

// applyAll applies a stage's objects. ssa.ApplyAll dry-runs concurrently
// but writes one object at a time, so the stage is split into shards that
// apply in parallel. Admission webhook configurations and APIServices go
// last, on their own, so that they never guard objects of their own stage.
func (c *Client) applyAll(ctx context.Context, objs []*unstructured.Unstructured, opts ssa.ApplyOptions) (map[object.ObjMetadata]ssa.Action, error) {
	var shards [applyShards][]*unstructured.Unstructured
	var last []*unstructured.Unstructured
	n := 0
	for _, u := range objs {
		switch u.GetKind() {
		case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "APIService":
			last = append(last, u)
		default:
			shards[n%applyShards] = append(shards[n%applyShards], u)
			n++
		}
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
	g, gctx := errgroup.WithContext(ctx)
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
	if len(last) > 0 {
		cs, err := c.rm.ApplyAll(ctx, last, opts)
		if cs != nil {
			record(cs)
		}
		if err != nil {
			return actions, err
		}
	}
	return actions, nil
}

// dryRunAll asks the server what applying each object would do.
func (c *Client) dryRunAll(ctx context.Context, stage string, objs []*unstructured.Unstructured, o Options, entries []Entry, p provided) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, u := range objs {
		g.Go(func() error {
			cse, _, _, err := c.rm.Diff(gctx, u.DeepCopy(), diffOptions(u, o.Force))
			if err != nil {
				if reason, ok := p.dependsOnThisRun(err, u); ok {
					entries[i] = entryFor(u, stage, Created)
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
	if meta.IsNoMatchError(err) && p["kind:"+u.GroupVersionKind().Group+"/"+u.GetKind()] {
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

// prepare copies the objects and lets other controllers keep the fields
// they own: a Deployment's replicas that an autoscaler manages are left
// out of the payload.
func (c *Client) prepare(ctx context.Context, in []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, len(in))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, u := range in {
		out[i] = u.DeepCopy()
		switch u.GetKind() {
		case "Deployment", "StatefulSet":
		default:
			continue
		}
		if _, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "replicas"); !ok {
			continue
		}
		g.Go(func() error {
			live := &unstructured.Unstructured{}
			live.SetGroupVersionKind(u.GroupVersionKind())
			err := c.kube.Get(gctx, client.ObjectKeyFromObject(u), live)
			if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("reading %s: %w", ID(u), err)
			}
			if owner := replicasOwner(live); owner != "" {
				mu.Lock()
				unstructured.RemoveNestedField(out[i].Object, "spec", "replicas")
				mu.Unlock()
			}
			return nil
		})
	}
	return out, g.Wait()
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
		if strings.HasPrefix(mf.Manager, "kubectl") || takenOver(mf) {
			continue
		}
		owner = mf.Manager
	}
	return owner
}

// takenOver reports a managed-fields entry that apply's takeover turns
// into meshctl's (Helm, kubectl client-side apply).
func takenOver(mf metav1.ManagedFieldsEntry) bool {
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
