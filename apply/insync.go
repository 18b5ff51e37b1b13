package apply

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"maps"
	"math"
	"reflect"
	"strconv"
	"strings"

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
func InSync(desired, live *unstructured.Unstructured) bool {
	return notInSync(desired, live) == ""
}

// notInSync says why InSync is false, or "" when it is true.
func notInSync(desired, live *unstructured.Unstructured) string {
	switch {
	case desired == nil || live == nil:
		return "no live object"
	case live.GetDeletionTimestamp() != nil:
		return "being deleted"
	case live.GetAPIVersion() != "" && live.GetAPIVersion() != desired.GetAPIVersion() ||
		live.GetKind() != "" && live.GetKind() != desired.GetKind():
		return "live is a " + live.GetAPIVersion() + " " + live.GetKind()
	case awaitsTakeover(desired, live):
		return "awaits takeover"
	}
	owned := meshctlFields(live, desired.GetAPIVersion())
	if owned == nil {
		return "no meshctl apply entry at " + desired.GetAPIVersion()
	}
	return syncMapAt(nil, desired.Object, withStringData(desired, live).Object, owned, topLevel(builtinGroup(desired.GroupVersionKind().Group)))
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
		if takenOver(mf) {
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

// syncMapAt checks one map: every key desired sets is owned by meshctl and
// equal in live, and every field meshctl owns here is set by desired. It
// returns where they differ, or "".
func syncMapAt(path []string, d, l map[string]any, owned *fieldpath.Set, skip skipFn) string {
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
		if !hasChild && !owned.Members.Has(pe) {
			return where(at) + ": not meshctl's"
		}
		lv, ok := l[k]
		if !ok {
			return where(at) + ": not in live"
		}
		if why := syncValue(at, dv, lv, child, skip); why != "" {
			return why
		}
	}
	for pe := range owned.Members.All() {
		if pe.FieldName == nil || !hasKey(d, *pe.FieldName) {
			return where(path) + ": meshctl owns " + pe.String() + ", which desired lacks"
		}
	}
	for pe := range owned.Children.All() {
		if pe.FieldName == nil || !hasKey(d, *pe.FieldName) {
			return where(path) + ": meshctl owns " + pe.String() + ", which desired lacks"
		}
	}
	return ""
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

// syncValue compares one field; child is meshctl's field set below it, nil
// when meshctl owns the field as a whole.
func syncValue(path []string, dv, lv any, child *fieldpath.Set, skip skipFn) string {
	switch d := dv.(type) {
	case map[string]any:
		lm, ok := lv.(map[string]any)
		if !ok {
			return where(path) + ": not a map in live"
		}
		if child == nil {
			return within(path, d, lm) // an atomic map, or an empty one
		}
		return syncMapAt(path, d, lm, child, skip)
	case []any:
		ll, ok := lv.([]any)
		if !ok {
			return where(path) + ": not a list in live"
		}
		if child == nil {
			return within(path, d, ll) // an atomic list
		}
		return syncList(path, d, ll, child)
	case nil:
		return where(path) + ": null"
	default:
		if child != nil {
			return where(path) + ": meshctl owns fields below a scalar"
		}
		return differs(path, d, lv)
	}
}

func differs(path []string, d, l any) string {
	if equalJSON(d, l) {
		return ""
	}
	return where(path) + ": differs"
}

// syncList compares a list whose items meshctl owns one by one: an
// associative list (k:{...} keys) or a set (v: values). Items must come in
// the same order in both, since apply would reorder them otherwise.
func syncList(path []string, d, l []any, owned *fieldpath.Set) string {
	var pes []fieldpath.PathElement
	keyed, valued := 0, 0
	for pe := range owned.Members.All() {
		pes = append(pes, pe)
	}
	for pe := range owned.Children.All() {
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
		return fmt.Sprintf("%s: desired has %d items, meshctl owns %d", where(path), len(d), len(pes))
	case len(pes) > 0 && keyed == len(pes):
		return syncAssociative(path, d, l, pes, owned)
	case len(pes) > 0 && valued == len(pes):
		return syncSet(path, d, l, pes)
	}
	return where(path) + ": neither associative nor a set"
}

func syncAssociative(path []string, d, l []any, pes []fieldpath.PathElement, owned *fieldpath.Set) string {
	used := make([]bool, len(pes))
	last := -1
	for i, item := range d {
		at := append(path[:len(path):len(path)], strconv.Itoa(i))
		dm, ok := item.(map[string]any)
		if !ok {
			return where(at) + ": not a map"
		}
		match := -1
		for i, pe := range pes {
			if keyMatches(pe, dm, true) {
				if match >= 0 {
					return where(at) + ": matches two keys"
				}
				match = i
			}
		}
		if match < 0 || used[match] {
			return where(at) + ": no key of meshctl's matches"
		}
		used[match] = true
		j := -1
		for k, li := range l {
			if lm, ok := li.(map[string]any); ok && keyMatches(pes[match], lm, false) {
				if j >= 0 {
					return where(at) + ": two live items with its key"
				}
				j = k
			}
		}
		if j < 0 {
			return where(at) + ": not in live"
		}
		if j <= last {
			return where(at) + ": in another order in live"
		}
		last = j
		child, ok := owned.Children.Get(pes[match])
		if !ok {
			if why := differs(at, dm, l[j]); why != "" {
				return why
			}
			continue
		}
		if why := syncMapAt(at, dm, l[j].(map[string]any), child, noSkip); why != "" {
			return why
		}
	}
	// Items of other managers beside meshctl's: the server's merge may
	// reorder them, and whether it would is not known here.
	if len(l) != len(d) {
		return where(path) + ": live holds items of other managers"
	}
	return ""
}

func noSkip([]string, string, any) bool { return false }

// keyMatches reports whether an item has pe's key. A desired item may lack
// a key field the server defaults (a port's protocol); the field is then
// not meshctl's, which syncMapAt checks.
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

func syncSet(path []string, d, l []any, pes []fieldpath.PathElement) string {
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
			return fmt.Sprintf("%s: %v is not meshctl's", where(path), v)
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
			return fmt.Sprintf("%s: %v missing or in another order in live", where(path), v)
		}
		last = at
	}
	return ""
}

// within compares a value meshctl owns as a whole (an atomic map or list,
// or an empty map) with live's. Apply replaces such a value whole, so live
// may differ only by what the server defaults in it: the fields of
// serverDefault, and the contents of a granular struct that desired leaves
// empty (granularEmpty). Anything else in live may be meshctl's own former
// value, which apply would remove.
func within(path []string, d, l any) string {
	if dm, ok := d.(map[string]any); ok && len(dm) == 0 && len(path) > 0 && (granularEmpty[path[len(path)-1]] || where(path) == "spec") {
		if _, ok := l.(map[string]any); ok {
			return ""
		}
	}
	if equalJSON(d, withoutDefaults(d, l)) {
		return ""
	}
	return where(path) + ": differs"
}

// granularEmpty are structs, granular in every API that has them, that a
// typed object renders as {} and the server fills with defaults; so is an
// object's spec (a Namespace's holds its finalizers).
var granularEmpty = map[string]bool{
	"strategy": true, "updateStrategy": true, "rollingUpdate": true, "emptyDir": true,
	"resources": true, "securityContext": true,
}

// serverDefault are fields the server defaults inside atomic values, found
// by a field that marks the struct: an ObjectFieldSelector's apiVersion,
// an admission rule's scope.
var serverDefault = []struct{ marker, field, value string }{
	{"fieldPath", "apiVersion", "v1"},
	{"operations", "scope", "*"},
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
			if _, marked := lv[sd.marker]; marked && !hasKey(dm, sd.field) && lv[sd.field] == sd.value {
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
