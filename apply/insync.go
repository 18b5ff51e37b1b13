package apply

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"math"
	"reflect"
	"strconv"
	"strings"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// InSync reports whether server-side applying desired as meshctl would
// change nothing in live. It reads only meshctl's own managed-fields entry
// (and the names of the other managers), so it works on informer objects
// whose other entries were stripped.
//
// It is conservative: false whenever it cannot tell, and the caller then
// dry-runs as before. A false "true" would lose a change; a false "false"
// costs a round trip.
//
// A custom resource is compared without its CRD's defaults; use
// CRDSchemas.InSync where the set holds the CRD.
func InSync(desired, live *unstructured.Unstructured) bool {
	return (*CRDSchemas)(nil).InSync(desired, live)
}

// NotInSync says why InSync is false: the first place where desired and
// live differ ("spec.replicas: differs"), or "" when they do not.
func NotInSync(desired, live *unstructured.Unstructured) string {
	return (*CRDSchemas)(nil).NotInSync(desired, live)
}

// InSync is the package's InSync, with the defaults that the CRD of
// desired declares filled in where meshctl owns a value whole.
func (s *CRDSchemas) InSync(desired, live *unstructured.Unstructured) bool {
	return s.NotInSync(desired, live) == ""
}

// NotInSync is the package's NotInSync, with the CRD's defaults.
func (s *CRDSchemas) NotInSync(desired, live *unstructured.Unstructured) string {
	w := &walk{}
	if desired != nil {
		w.schema = s.of(desired.GroupVersionKind())
	}
	w.check(desired, live)
	return w.first()
}

// check walks desired against live, reporting every difference to w.
func (w *walk) check(desired, live *unstructured.Unstructured) {
	if why := notComparable(desired, live); why != "" {
		w.differ(why)
		return
	}
	if awaitsTakeover(desired, live) {
		w.differ("awaits takeover")
		return
	}
	w.compare(desired, live)
}

// compare walks desired against the fields meshctl owns in live, which
// notComparable accepts.
func (w *walk) compare(desired, live *unstructured.Unstructured) {
	owned := meshctlFields(live, desired.GetAPIVersion())
	if owned == nil {
		w.differ("no meshctl apply entry at " + desired.GetAPIVersion())
		return
	}
	w.mapAt(nil, desired.Object, withStringData(desired, live).Object, owned, topLevel(builtinGroup(desired.GroupVersionKind().Group)))
}

// notComparable says why desired and live cannot be compared field by
// field, or "".
func notComparable(desired, live *unstructured.Unstructured) string {
	switch {
	case desired == nil || live == nil:
		return "no live object"
	case live.GetDeletionTimestamp() != nil:
		return "being deleted"
	case live.GetAPIVersion() != "" && live.GetAPIVersion() != desired.GetAPIVersion() ||
		live.GetKind() != "" && live.GetKind() != desired.GetKind():
		return "live is a " + live.GetAPIVersion() + " " + live.GetKind()
	}
	return ""
}

// withStringData returns live with the stringData that desired sets, read
// back from data: the server writes a Secret's stringData into its data
// and keeps none, though the managed fields record it.
func withStringData(desired, live *unstructured.Unstructured) *unstructured.Unstructured {
	want, ok := desired.Object["stringData"].(map[string]any)
	if !ok || desired.GetAPIVersion() != "v1" || desired.GetKind() != "Secret" || hasKey(live.Object, "stringData") {
		return live
	}
	data, _ := live.Object["data"].(map[string]any)
	sd := map[string]any{}
	for k := range want {
		enc, ok := data[k].(string)
		if !ok {
			continue
		}
		dec, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			continue
		}
		sd[k] = string(dec)
	}
	out := &unstructured.Unstructured{Object: maps.Clone(live.Object)}
	out.Object["stringData"] = sd
	return out
}

// meshctlFields is the field set of live's entry for meshctl's apply at
// apiVersion, or nil.
func meshctlFields(live *unstructured.Unstructured, apiVersion string) *fieldpath.Set {
	var found *metav1.ManagedFieldsEntry
	for _, mf := range live.GetManagedFields() {
		if mf.Manager != FieldManager || mf.Operation != metav1.ManagedFieldsOperationApply || mf.Subresource != "" {
			continue
		}
		if found != nil {
			return nil // two entries: the server never writes that
		}
		found = &mf
	}
	if found == nil || found.APIVersion != apiVersion || found.FieldsV1 == nil {
		return nil
	}
	set := &fieldpath.Set{}
	if err := set.FromJSON(bytes.NewReader(found.FieldsV1.Raw)); err != nil {
		return nil
	}
	return set
}

// awaitsTakeover reports an object that the next apply's takeover cleanup
// would patch: it carries kubectl's or Helm's bookkeeping annotations, or
// fields of a manager meshctl takes over.
func awaitsTakeover(desired, live *unstructured.Unstructured) bool {
	for k, v := range takeover.Exclusions {
		if desired.GetAnnotations()[k] == v || live.GetAnnotations()[k] == v ||
			desired.GetLabels()[k] == v || live.GetLabels()[k] == v {
			return false
		}
	}
	ann := live.GetAnnotations()
	for _, a := range takeover.Annotations {
		if _, ok := ann[a]; ok {
			return true
		}
	}
	for _, mf := range live.GetManagedFields() {
		if TakenOver(mf) {
			return true
		}
	}
	return false
}

// skipFn says which of a map's keys are not recorded in managed fields.
type skipFn func(path []string, key string, value any) bool

// topLevel skips the object's identity (apiVersion, kind, and metadata's
// name and namespace) and what a typed object leaves behind when it is
// made unstructured, which the server drops: a null creationTimestamp, and
// the status of a built-in kind (its status subresource resets it on
// writes to the object) or an empty one.
func topLevel(builtin bool) skipFn {
	return func(path []string, key string, value any) bool {
		switch len(path) {
		case 0:
			if m, ok := value.(map[string]any); ok && key == "status" && (builtin || len(m) == 0) {
				return true
			}
			return key == "apiVersion" || key == "kind"
		case 1:
			return path[0] == "metadata" && (key == "name" || key == "namespace" || key == "creationTimestamp" && value == nil)
		}
		return false
	}
}

// builtinGroup reports an API group that Kubernetes serves itself, rather
// than a CRD (whose status may be an ordinary field).
func builtinGroup(group string) bool {
	if !strings.Contains(group, ".") {
		return true // the core group, apps, batch, policy, autoscaling
	}
	switch group {
	case "apiextensions.k8s.io", "apiregistration.k8s.io", "admissionregistration.k8s.io", "rbac.authorization.k8s.io",
		"networking.k8s.io", "storage.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "node.k8s.io",
		"discovery.k8s.io", "flowcontrol.apiserver.k8s.io", "certificates.k8s.io", "events.k8s.io", "resource.k8s.io":
		return true
	}
	return false
}

// walk compares desired with live under meshctl's field set. Each place
// where they differ is reported to differ, which says whether the walk
// stops there. InSync stops at the first; the fuzz test's reference
// (insync_fuzz_test.go) walks on and records them all, so that an early
// exit can be checked against a walk that has none.
type walk struct {
	all     bool
	reasons []string
	// schema is the CRD's schema of a custom resource, or nil.
	schema *apiextv1.JSONSchemaProps
}

// differ records why, and reports whether the walk stops.
func (w *walk) differ(why string) bool {
	w.reasons = append(w.reasons, why)
	return !w.all
}

// first is the first difference found, or "".
func (w *walk) first() string {
	if len(w.reasons) == 0 {
		return ""
	}
	return w.reasons[0]
}

// mapAt checks one map: every key desired sets is owned by meshctl and
// equal in live, and every field meshctl owns here is set by desired. It
// reports whether the walk stopped.
func (w *walk) mapAt(path []string, d, l map[string]any, owned *fieldpath.Set, skip skipFn) bool {
	for k, dv := range d {
		if skip(path, k, dv) {
			continue
		}
		at := append(path[:len(path):len(path)], k)
		pe := fieldpath.PathElement{FieldName: &k}
		child, hasChild := owned.Children.Get(pe)
		if !hasChild && len(path) == 0 && k == "metadata" {
			// Only a name and a namespace: nothing recorded.
			child, hasChild = &fieldpath.Set{}, true
		}
		lv, inLive := l[k]
		var stop bool
		switch {
		case !hasChild && !owned.Members.Has(pe):
			stop = w.differ(where(at) + ": not meshctl's")
		case !inLive:
			stop = w.differ(where(at) + ": not in live")
		default:
			stop = w.value(at, dv, lv, child, skip)
		}
		if stop {
			return true
		}
	}
	// Collected, not ranged over the library's iterators (fieldset.go).
	for _, pe := range append(members(owned), children(owned)...) {
		if pe.FieldName == nil || !hasKey(d, *pe.FieldName) {
			if w.differ(where(path) + ": meshctl owns " + pe.String() + ", which desired lacks") {
				return true
			}
		}
	}
	return false
}

func where(path []string) string {
	if len(path) == 0 {
		return "."
	}
	return strings.Join(path, ".")
}

func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}

// value compares one field; child is meshctl's field set below it, nil
// when meshctl owns the field as a whole.
func (w *walk) value(path []string, dv, lv any, child *fieldpath.Set, skip skipFn) bool {
	switch d := dv.(type) {
	case map[string]any:
		lm, ok := lv.(map[string]any)
		switch {
		case !ok:
			return w.differ(where(path) + ": not a map in live")
		case child == nil:
			return w.within(path, d, lm) // an atomic map, or an empty one
		}
		return w.mapAt(path, d, lm, child, skip)
	case []any:
		ll, ok := lv.([]any)
		switch {
		case !ok:
			return w.differ(where(path) + ": not a list in live")
		case child == nil:
			return w.within(path, d, ll) // an atomic list
		}
		return w.list(path, d, ll, child)
	case nil:
		return w.differ(where(path) + ": null")
	default:
		if child != nil {
			return w.differ(where(path) + ": meshctl owns fields below a scalar")
		}
		return w.differs(path, d, lv)
	}
}

func (w *walk) differs(path []string, d, l any) bool {
	if equalJSON(d, l) {
		return false
	}
	return w.differ(where(path) + ": differs")
}

// list compares a list whose items meshctl owns one by one: an associative
// list (k:{...} keys) or a set (v: values). Items must come in the same
// order in both, since apply would reorder them otherwise.
func (w *walk) list(path []string, d, l []any, owned *fieldpath.Set) bool {
	pes := members(owned)
	keyed, valued := 0, 0
	for _, pe := range children(owned) {
		if !owned.Members.Has(pe) {
			pes = append(pes, pe)
		}
	}
	for _, pe := range pes {
		switch {
		case pe.Key != nil:
			keyed++
		case pe.Value != nil:
			valued++
		}
	}
	switch {
	case len(pes) != len(d):
		return w.differ(fmt.Sprintf("%s: desired has %d items, meshctl owns %d", where(path), len(d), len(pes)))
	case len(pes) > 0 && keyed == len(pes):
		return w.associative(path, d, l, pes, owned)
	case len(pes) > 0 && valued == len(pes):
		return w.set(path, d, l, pes)
	}
	return w.differ(where(path) + ": neither associative nor a set")
}

func (w *walk) associative(path []string, d, l []any, pes []fieldpath.PathElement, owned *fieldpath.Set) bool {
	used := make([]bool, len(pes))
	last := -1
	for i, item := range d {
		at := append(path[:len(path):len(path)], strconv.Itoa(i))
		why, j, match := matchItem(at, item, l, pes, used, last)
		if why != "" {
			if w.differ(why) {
				return true
			}
			continue
		}
		used[match] = true
		last = j
		dm := item.(map[string]any)
		child, ok := owned.Children.Get(pes[match])
		if !ok {
			if w.differs(at, dm, l[j]) {
				return true
			}
			continue
		}
		if w.mapAt(at, dm, l[j].(map[string]any), child, noSkip) {
			return true
		}
	}
	// Items of other managers beside meshctl's: the server's merge may
	// reorder them, and whether it would is not known here.
	if len(l) != len(d) {
		return w.differ(where(path) + ": live holds items of other managers")
	}
	return false
}

// matchItem finds desired item's key among meshctl's (pes, match) and its
// live item (l[j]), after the live item of the previous one (last). why
// says what is wrong instead, when it cannot.
func matchItem(at []string, item any, l []any, pes []fieldpath.PathElement, used []bool, last int) (why string, j, match int) {
	dm, ok := item.(map[string]any)
	if !ok {
		return where(at) + ": not a map", 0, 0
	}
	match = -1
	for i, pe := range pes {
		if keyMatches(pe, dm, true) {
			if match >= 0 {
				return where(at) + ": matches two keys", 0, 0
			}
			match = i
		}
	}
	if match < 0 || used[match] {
		return where(at) + ": no key of meshctl's matches", 0, 0
	}
	j = -1
	for k, li := range l {
		if lm, ok := li.(map[string]any); ok && keyMatches(pes[match], lm, false) {
			if j >= 0 {
				return where(at) + ": two live items with its key", 0, 0
			}
			j = k
		}
	}
	switch {
	case j < 0:
		return where(at) + ": not in live", 0, 0
	case j <= last:
		return where(at) + ": in another order in live", 0, 0
	}
	return "", j, match
}

func noSkip([]string, string, any) bool { return false }

// keyMatches reports whether an item has pe's key. A desired item may lack
// a key field the server defaults (a port's protocol); the field is then
// not meshctl's, which mapAt checks.
func keyMatches(pe fieldpath.PathElement, item map[string]any, partial bool) bool {
	for _, f := range *pe.Key {
		v, ok := item[f.Name]
		if !ok && partial {
			continue
		}
		if !ok || !equalJSON(v, f.Value.Unstructured()) {
			return false
		}
	}
	return true
}

func (w *walk) set(path []string, d, l []any, pes []fieldpath.PathElement) bool {
	used := make([]bool, len(pes))
	last := -1
	for _, v := range d {
		match := -1
		for i, pe := range pes {
			if !used[i] && equalJSON(v, (*pe.Value).Unstructured()) {
				match = i
				break
			}
		}
		if match < 0 {
			if w.differ(fmt.Sprintf("%s: %v is not meshctl's", where(path), v)) {
				return true
			}
			continue
		}
		used[match] = true
		at := -1
		for j, lv := range l {
			if equalJSON(v, lv) {
				at = j
				break
			}
		}
		if at <= last {
			if w.differ(fmt.Sprintf("%s: %v missing or in another order in live", where(path), v)) {
				return true
			}
			continue
		}
		last = at
	}
	return false
}

// within compares a value meshctl owns as a whole (an atomic map or list,
// or an empty map) with live's. Apply replaces such a value whole, so live
// may differ only by what the server defaults in it: the fields of
// serverDefault, and the contents of a granular struct that desired leaves
// empty (granularEmpty). Anything else in live may be meshctl's own former
// value, which apply would remove.
func (w *walk) within(path []string, d, l any) bool {
	if dm, ok := d.(map[string]any); ok && len(dm) == 0 && len(path) > 0 && (granularEmpty[path[len(path)-1]] || where(path) == "spec") {
		if _, ok := l.(map[string]any); ok {
			return false
		}
	}
	if w.schema != nil {
		d = withSchemaDefaults(d, at(w.schema, path))
	}
	if equalJSON(d, withoutDefaults(d, l)) {
		return false
	}
	return w.differ(where(path) + ": differs")
}

// granularEmpty are structs, granular in every API that has them, that a
// typed object renders as {} and the server fills with defaults; so is an
// object's spec (a Namespace's holds its finalizers).
var granularEmpty = map[string]bool{
	"strategy": true, "updateStrategy": true, "rollingUpdate": true, "emptyDir": true,
	"resources": true, "securityContext": true,
}

// serverDefault are fields the server defaults inside atomic values of
// built-in kinds, found by a field that marks the struct: an
// ObjectFieldSelector's apiVersion, an admission rule's scope, an
// admission policy's match constraints. (Custom resources take their
// defaults from their CRD's schema: CRDSchemas.)
var serverDefault = []struct {
	marker, field string
	value         any
}{
	{"fieldPath", "apiVersion", "v1"},
	{"operations", "scope", "*"},
	{"resourceRules", "matchPolicy", "Equivalent"},
	{"resourceRules", "objectSelector", map[string]any{}},
	{"resourceRules", "namespaceSelector", map[string]any{}},
}

// withoutDefaults returns live's value l less the serverDefault fields that
// desired d does not set.
func withoutDefaults(d, l any) any {
	switch lv := l.(type) {
	case map[string]any:
		dm, ok := d.(map[string]any)
		if !ok {
			return l
		}
		out := make(map[string]any, len(lv))
		for k, v := range lv {
			out[k] = withoutDefaults(dm[k], v)
		}
		for _, sd := range serverDefault {
			if _, marked := lv[sd.marker]; marked && !hasKey(dm, sd.field) && hasKey(lv, sd.field) && equalJSON(lv[sd.field], sd.value) {
				delete(out, sd.field)
			}
		}
		return out
	case []any:
		dl, ok := d.([]any)
		if !ok || len(dl) != len(lv) {
			return l
		}
		out := make([]any, len(lv))
		for i := range lv {
			out[i] = withoutDefaults(dl[i], lv[i])
		}
		return out
	}
	return l
}

// equalJSON compares two JSON values, numbers by value whatever their Go
// type.
func equalJSON(a, b any) bool {
	// Walked rather than normalised whole: a resync compares every object
	// of the mesh, and copies of each were most of its garbage.
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equalJSON(xv, yv) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(normalize(a), normalize(b))
}

func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case int64:
		return x
	case float32:
		return normalizeFloat(float64(x))
	case float64:
		return normalizeFloat(x)
	}
	return v
}

func normalizeFloat(f float64) any {
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int64(f)
	}
	return f
}

// Drift is an object that differs from its live copy, and how.
type Drift struct {
	ID string `json:"id"`
	// Reason is "missing", or the first field that differs.
	Reason string `json:"reason"`
}

// Drifted compares each object of set with its live copy, by the
// comparison Apply and Diff use to skip what is in sync (InSync, on the
// payload apply would send), and returns those that differ. It sends no
// dry-run: an object it names may still be one the server would leave as
// it is (a field another manager co-owns with the same value), as Diff
// then says.
func (c *Client) Drifted(ctx context.Context, set Set, live LiveObjects) ([]Drift, error) {
	objs := setObjects(set)
	live, err := c.liveFor(ctx, live, objs)
	if err != nil {
		return nil, err
	}
	crds := SchemasOf(objs)
	var out []Drift
	for _, st := range set.Stages {
		payload, err := c.prepare(ctx, st.Objects, live)
		if err != nil {
			return nil, err
		}
		for _, u := range payload {
			l, ok := lookup(live, u)
			switch {
			case !ok || l == nil:
				out = append(out, Drift{ID: ID(u), Reason: "missing"})
			default:
				// An object whose only difference is a co-owner apply
				// takes over is in sync, as Apply and Diff report it.
				if at, _ := crds.coOwners(u, l); len(at) > 0 {
					continue
				}
				if why := crds.NotInSync(u, l); why != "" {
					out = append(out, Drift{ID: ID(u), Reason: why})
				}
			}
		}
	}
	return out, nil
}
