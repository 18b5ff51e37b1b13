package apply

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshctl/meshctl/internal/ident"
)

// Labels and annotations apply honours; their home is internal/ident.
const (
	// FieldManager owns every field meshctl sets.
	FieldManager = ident.FieldManager
	// LabelManagedBy marks objects meshctl owns outright.
	LabelManagedBy = ident.LabelManagedBy
	// ManagedByMeshctl is LabelManagedBy's value on meshctl's objects.
	ManagedByMeshctl = ident.ManagedByMeshctl
	// AnnotationPrune: "disabled" keeps an object off the prune list.
	AnnotationPrune = ident.AnnotationPrune
	// AnnotationForce: "enabled" allows delete-and-recreate when an
	// immutable field changes.
	AnnotationForce = ident.AnnotationForce
	// DefaultNamespace holds the inventory and meshctl's own state.
	DefaultNamespace = ident.Namespace
)

// Stage is a group of objects applied together. Stages are applied in
// order; with Wait, each must be ready before the next starts.
type Stage struct {
	Name    string
	Objects []*unstructured.Unstructured
}

// Set is everything one render asks for.
type Set struct {
	Stages []Stage
	// Version is the meshctl version, recorded in the inventory.
	Version string
	// Digest is Digest(set), when the caller keeps the set and applies it
	// again (the reconcile loop); empty makes Apply compute it.
	Digest string
}

// Count is the number of objects in the set.
func (s Set) Count() int {
	n := 0
	for _, st := range s.Stages {
		n += len(st.Objects)
	}
	return n
}

// Action is what happened, or would happen, to one object.
type Action string

const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
	Deleted    Action = "deleted"
	Skipped    Action = "skipped"
)

// Entry is one object's line in a result.
type Entry struct {
	ID         string `json:"id"`
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	Stage      string `json:"stage,omitempty"`
	Action     Action `json:"action"`
	// Reason says why an object was skipped or kept.
	Reason string `json:"reason,omitempty"`
	// TookOverFrom names the managers (kubectl, Helm) whose fields apply
	// made meshctl's on an object it left unchanged: their managed-fields
	// entries held only fields meshctl owns with the same values, and
	// were removed.
	TookOverFrom []string `json:"tookOverFrom,omitempty"`
}

func (e Entry) String() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s %s (%s)", e.ID, e.Action, e.Reason)
	}
	return fmt.Sprintf("%s %s", e.ID, e.Action)
}

// Result is the change set of one apply.
type Result struct {
	DryRun  bool           `json:"dryRun"`
	Entries []Entry        `json:"entries"`
	Summary map[Action]int `json:"summary"`
	// Writes counts the objects created, configured or deleted.
	Writes int `json:"writes"`
	// DryRuns counts the server dry-runs the run made; objects found in
	// sync with their live copy need none.
	DryRuns int `json:"dryRuns"`
	// TakenOver counts the objects whose only change was that meshctl
	// took over another manager's entry (TookOverFrom); each is a write.
	TakenOver int           `json:"takenOver"`
	Duration  time.Duration `json:"durationNanos"`
}

func (r *Result) add(e Entry) {
	r.Entries = append(r.Entries, e)
	if r.Summary == nil {
		r.Summary = map[Action]int{}
	}
	r.Summary[e.Action]++
	switch e.Action {
	case Created, Configured, Deleted:
		r.Writes++
	}
	if len(e.TookOverFrom) > 0 {
		r.TakenOver++
		r.Writes++
	}
}

// SummaryLine is the one-line summary printed after the entries.
func (r *Result) SummaryLine() string {
	order := []Action{Created, Configured, Unchanged, Deleted, Skipped}
	s := ""
	for _, a := range order {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%d %s", r.Summary[a], a)
	}
	if r.TakenOver > 0 {
		// Counted as unchanged too: their content was.
		s += fmt.Sprintf(", %d taken over", r.TakenOver)
	}
	return s
}

// ID is an object's identity in output and in the inventory: Kind/ns/name,
// or Kind/name for cluster-scoped objects.
func ID(u *unstructured.Unstructured) string {
	return ident.ID(u.GetKind(), u.GetNamespace(), u.GetName())
}

func entryFor(u *unstructured.Unstructured, stage string, a Action) Entry {
	return Entry{ID: ID(u), APIVersion: u.GetAPIVersion(), Kind: u.GetKind(),
		Namespace: u.GetNamespace(), Name: u.GetName(), Stage: stage, Action: a}
}

// Ref names an object in the inventory.
type Ref struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

func refOf(u *unstructured.Unstructured) Ref {
	return Ref{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
}

// key identifies a Ref regardless of its API version.
func (r Ref) key() string {
	return groupOf(r.APIVersion) + "|" + r.Kind + "|" + r.Namespace + "|" + r.Name
}

// ID is the Ref's Kind/ns/name.
func (r Ref) ID() string {
	return ident.ID(r.Kind, r.Namespace, r.Name)
}

func (r Ref) object() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(r.APIVersion)
	u.SetKind(r.Kind)
	u.SetNamespace(r.Namespace)
	u.SetName(r.Name)
	return u
}

func groupOf(apiVersion string) string {
	group, _, ok := strings.Cut(apiVersion, "/")
	if !ok {
		return "" // the core group: "v1"
	}
	return group
}

// sortRefs orders refs for stable storage and output.
func sortRefs(rs []Ref) {
	sort.Slice(rs, func(i, j int) bool { return rs[i].key() < rs[j].key() })
}
