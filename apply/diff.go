package apply

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/fluxcd/pkg/ssa"
	"github.com/pmezard/go-difflib/difflib"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// ObjectDiff is one object's change.
type ObjectDiff struct {
	Entry
	// Diff is a unified diff of the object's YAML, live against merged;
	// Secret values are masked and server-managed fields left out.
	Diff string `json:"diff,omitempty"`

	before, after map[string]any
	// local: found in sync with its live copy (InSync), so not dry-run.
	local bool
}

// InSyncLocally reports an object that InSync found in sync with its live
// copy, so that the server was not asked.
func (d *ObjectDiff) InSyncLocally() bool { return d.local }

// Before and After are the cleaned, masked objects (nil when absent).
func (d *ObjectDiff) Before() map[string]any { return d.before }
func (d *ObjectDiff) After() map[string]any  { return d.after }

// DiffResult is what would change.
type DiffResult struct {
	Objects []ObjectDiff `json:"objects"`
	// Meanings are one-line readings of the changes that matter most.
	Meanings []string `json:"meanings,omitempty"`
	// Warnings are what in the cluster keeps the render from working as
	// intended (too few nodes for HA, say); they do not count as changes.
	Warnings []string       `json:"warnings,omitempty"`
	Summary  map[Action]int `json:"summary"`
	// DryRuns counts the server dry-runs the diff made.
	DryRuns int `json:"dryRuns"`
}

// Changed reports whether anything differs.
func (r *DiffResult) Changed() bool {
	for _, o := range r.Objects {
		if o.Action != Unchanged && o.Action != Skipped {
			return true
		}
	}
	return false
}

func (r *DiffResult) add(d ObjectDiff) {
	r.Objects = append(r.Objects, d)
	if r.Summary == nil {
		r.Summary = map[Action]int{}
	}
	r.Summary[d.Action]++
}

// DiffOptions control a diff.
type DiffOptions struct {
	// Force: immutable-field changes count as a recreate, not an error.
	Force bool
	// Live holds the live objects; nil makes Diff list them, one LIST
	// per kind. Objects in sync with their live copy are not dry-run.
	Live LiveObjects
	// CRDs: as Options.CRDs.
	CRDs *CRDSchemas
}

// Diff server-side dry-runs every object of set that is not in sync with
// its live copy, and compares the result with the live object; objects the
// inventory holds but set lacks are listed as deleted.
func (c *Client) Diff(ctx context.Context, set Set, o DiffOptions) (*DiffResult, error) {
	res := &DiffResult{Summary: map[Action]int{}}
	dryRuns := c.dryRuns.Load()
	defer func() { res.DryRuns = int(c.dryRuns.Load() - dryRuns) }()
	prev, err := c.ReadInventory(ctx)
	if err != nil {
		return nil, err
	}
	objs := setObjects(set)
	live, err := c.liveFor(ctx, o.Live, objs)
	if err != nil {
		return nil, err
	}
	if o.CRDs == nil {
		o.CRDs = SchemasOf(objs)
	}
	gone, err := c.findTerminating(ctx, objs, live)
	if err != nil {
		return nil, err
	}
	p := providedBy(set)
	for _, st := range set.Stages {
		objs, err := c.prepare(ctx, st.Objects, live)
		if err != nil {
			return nil, err
		}
		out := make([]ObjectDiff, len(objs))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(8)
		for i, u := range objs {
			if why := gone.holds(u); why != "" {
				out[i] = ObjectDiff{Entry: entryFor(u, st.Name, Created)}
				out[i].Reason = why
				out[i].setTexts(nil, u.Object)
				continue
			}
			l, ok := lookup(live, u)
			if ok && o.CRDs.InSync(u, l) {
				out[i] = ObjectDiff{Entry: entryFor(u, st.Name, Unchanged), local: true}
				continue
			}
			if at, names := o.CRDs.coOwners(u, l); len(at) > 0 {
				out[i] = ObjectDiff{Entry: entryFor(u, st.Name, Unchanged), local: true}
				out[i].Reason = "apply will take over " + theirFields(names)
				continue
			}
			g.Go(func() error {
				d, err := c.diffOne(gctx, st.Name, u, o, p)
				out[i] = d
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		for _, d := range out {
			res.add(d)
		}
	}
	cands := pruneCandidates(prev, refsOf(set))
	pruning := refSet(cands)
	for _, r := range cands {
		live, err := c.getRef(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", r.ID(), err)
		}
		if live == nil {
			continue
		}
		action, reason, _, err := c.verdict(ctx, r, live, pruning)
		if err != nil {
			return nil, fmt.Errorf("checking %s: %w", r.ID(), err)
		}
		d := ObjectDiff{Entry: entryFor(live, "prune", action)}
		d.Reason = reason
		switch action {
		case Configured:
			released, err := c.release(ctx, r, true)
			if err != nil {
				return nil, fmt.Errorf("dry-running the release of %s: %w", r.ID(), err)
			}
			d.setTexts(live.Object, released.Object)
		case Deleted:
			d.setTexts(live.Object, nil)
		}
		res.add(d)
	}
	return res, nil
}

func (c *Client) diffOne(ctx context.Context, stage string, u *unstructured.Unstructured, o DiffOptions, p provided) (ObjectDiff, error) {
	d := ObjectDiff{Entry: entryFor(u, stage, Unchanged)}
	cse, live, merged, err := c.rm.Diff(ctx, u.DeepCopy(), diffOptions(u, o.Force))
	if err != nil {
		if _, ok := p.dependsOnThisRun(err, u); ok {
			d.Action = Created
			d.setTexts(nil, u.Object)
			return d, nil
		}
		if before, after, reason, ok := c.repairPreview(ctx, u, err); ok {
			d.Action, d.Reason = Configured, reason
			d.setTexts(before.Object, after.Object)
			return d, nil
		}
		return d, explain(stage, err, o.Force)
	}
	d.Action = Action(cse.Action)
	switch d.Action {
	case Created:
		d.setTexts(nil, u.Object)
	case Configured:
		if live == nil || merged == nil {
			// Force: the object would be deleted and recreated.
			d.Reason = "immutable field changed; would be recreated"
			d.setTexts(nil, u.Object)
			break
		}
		d.setTexts(live.Object, merged.Object)
	}
	return d, nil
}

// setTexts cleans and masks both sides and computes the unified diff,
// live against merged.
func (d *ObjectDiff) setTexts(before, after map[string]any) {
	d.setTextsLabelled(before, after, "live", "merged")
}

// setTextsLabelled is setTexts with the diff's two sides named.
func (d *ObjectDiff) setTextsLabelled(before, after map[string]any, from, to string) {
	d.before, d.after = clean(before), clean(after)
	if d.Kind == "Secret" && d.APIVersion == "v1" {
		maskSecrets(d.before, d.after)
	}
	d.Diff = unified(d.ID, d.before, d.after, from, to)
}

// clean drops what the server manages, so the diff shows only intent.
func clean(obj map[string]any) map[string]any {
	if obj == nil {
		return nil
	}
	u := (&unstructured.Unstructured{Object: obj}).DeepCopy()
	for _, f := range []string{"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink"} {
		unstructured.RemoveNestedField(u.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(u.Object, "status")
	// kubectl's copy of the whole object: for a Secret it holds the data,
	// and apply removes it when it takes the object over.
	if ann := u.GetAnnotations(); ann != nil {
		if _, ok := ann[corev1.LastAppliedConfigAnnotation]; ok {
			ann[corev1.LastAppliedConfigAnnotation] = "***"
			u.SetAnnotations(ann)
		}
	}
	return u.Object
}

// maskSecrets masks a Secret's values in place with
// ssa.SanitizeUnstructuredData: "***" when both sides agree or a key is on
// one side only, "*** (before)" and "*** (after)" when a value changed.
// The library masks data; stringData is masked the same way here.
func maskSecrets(before, after map[string]any) {
	for _, field := range []string{"data", "stringData"} {
		b, a := asData(before, field), asData(after, field)
		if err := ssa.SanitizeUnstructuredData(b, a); err != nil {
			// Not a map of values: there is nothing to compare key by
			// key, so the whole field is hidden.
			b, a = maskWhole(b), maskWhole(a)
		}
		putData(before, field, b)
		putData(after, field, a)
	}
}

// asData moves obj's field into the "data" of an object of its own, the
// only field ssa.SanitizeUnstructuredData masks; nil when obj lacks it.
func asData(obj map[string]any, field string) *unstructured.Unstructured {
	v, ok := obj[field]
	if !ok {
		return nil
	}
	return &unstructured.Unstructured{Object: map[string]any{"data": v}}
}

func putData(obj map[string]any, field string, u *unstructured.Unstructured) {
	if u != nil {
		obj[field] = u.Object["data"]
	}
}

func maskWhole(u *unstructured.Unstructured) *unstructured.Unstructured {
	if u != nil {
		u.Object["data"] = "***"
	}
	return u
}

func toYAML(obj map[string]any) []string {
	if obj == nil {
		return nil
	}
	b, err := yaml.Marshal(obj)
	if err != nil {
		return []string{fmt.Sprintf("# cannot render: %v\n", err)}
	}
	return difflib.SplitLines(string(b))
}

func unified(id string, before, after map[string]any, from, to string) string {
	s, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: toYAML(before), B: toYAML(after),
		FromFile: from + "/" + id, ToFile: to + "/" + id,
		Context: 3,
	})
	return s
}

// CompareSets diffs two renders without a cluster: objects only in old are
// deleted, only in new created, and in both configured when they differ.
// Each diff reads base (old) against head (new).
func CompareSets(old, new Set) *DiffResult {
	res := &DiffResult{Summary: map[Action]int{}}
	olds := map[string]*unstructured.Unstructured{}
	for _, st := range old.Stages {
		for _, u := range st.Objects {
			olds[refOf(u).key()] = u
		}
	}
	seen := map[string]bool{}
	for _, st := range new.Stages {
		for _, u := range st.Objects {
			k := refOf(u).key()
			seen[k] = true
			d := ObjectDiff{Entry: entryFor(u, st.Name, Unchanged)}
			if o, ok := olds[k]; !ok {
				d.Action = Created
				d.setTextsLabelled(nil, u.Object, "base", "head")
			} else {
				d.setTextsLabelled(o.Object, u.Object, "base", "head")
				if d.Diff != "" {
					d.Action = Configured
				} else {
					d.before, d.after = nil, nil
				}
			}
			res.add(d)
		}
	}
	var gone []string
	for k := range olds {
		if !seen[k] {
			gone = append(gone, k)
		}
	}
	sort.Strings(gone)
	for _, k := range gone {
		u := olds[k]
		d := ObjectDiff{Entry: entryFor(u, "prune", Deleted)}
		d.setTextsLabelled(u.Object, nil, "base", "head")
		res.add(d)
	}
	return res
}

// WriteText prints each change as a unified diff, then a summary.
func (r *DiffResult) WriteText(w io.Writer) {
	for _, m := range r.Warnings {
		fmt.Fprintf(w, "# warning: %s\n", m)
	}
	for _, m := range r.Meanings {
		fmt.Fprintf(w, "# %s\n", m)
	}
	for _, o := range r.Objects {
		switch o.Action {
		case Unchanged:
			continue
		case Skipped:
			fmt.Fprintf(w, "%s %s (%s)\n", o.ID, o.Action, o.Reason)
			continue
		}
		if o.Diff != "" {
			fmt.Fprint(w, o.Diff)
		}
		if o.Reason != "" {
			fmt.Fprintf(w, "# %s: %s\n", o.ID, o.Reason)
		}
	}
	fmt.Fprintf(w, "%s\n", r.SummaryLine())
}

// SummaryLine counts the changes.
func (r *DiffResult) SummaryLine() string {
	parts := []string{}
	for _, a := range []Action{Created, Configured, Deleted, Unchanged, Skipped} {
		if n := r.Summary[a]; n > 0 || a != Skipped {
			parts = append(parts, fmt.Sprintf("%d %s", n, map[Action]string{Created: "to create", Configured: "to configure", Deleted: "to delete", Unchanged: "unchanged", Skipped: "kept"}[a]))
		}
	}
	return strings.Join(parts, ", ")
}
