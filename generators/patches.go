package generators

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/kustomize/api/filters/patchjson6902"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/kustomize/kyaml/yaml/merge2"

	"github.com/meshctl/meshctl/schema"
)

// PatchError is a patch of mesh.cue that does not parse, selects no object
// or does not apply to one. Render returns it and renders nothing.
type PatchError struct {
	Index  int    // the patch's index in patches
	Pos    string // "mesh.cue:12:3", when the loader records the position
	Target string // the target as a person reads it
	Object string // Kind/namespace/name of the object it failed on, if any
	Err    error
}

func (e *PatchError) Error() string {
	var b strings.Builder
	if e.Pos != "" {
		b.WriteString(e.Pos + ": ")
	}
	fmt.Fprintf(&b, "patches[%d] (%s)", e.Index, e.Target)
	if e.Object != "" {
		b.WriteString(" on " + e.Object)
	}
	// Errors from the YAML and JSON libraries may span lines; the user
	// gets one line per problem.
	b.WriteString(": " + strings.Join(strings.Fields(e.Err.Error()), " "))
	return b.String()
}

func (e *PatchError) Unwrap() error { return e.Err }

// ErrPatchMatchesNothing is the PatchError.Err of a patch whose target
// selects none of the rendered objects.
var ErrPatchMatchesNothing = errors.New("matches no rendered object (meshctl build lists them)")

// applyPatches applies the mesh's patches, in order, to the rendered objects.
// Patched objects are replaced, never changed in place, and keep their stage.
func applyPatches(m *schema.Mesh, objs []Object) ([]Object, error) {
	for i, p := range m.Patches {
		pp, err := parsePatch(i, p)
		if err != nil {
			return nil, err
		}
		matched := false
		for j := range objs {
			if !pp.selects(objs[j].Object) {
				continue
			}
			matched = true
			u, err := pp.apply(objs[j].Object)
			if err != nil {
				return nil, pp.fail(objs[j].ID(), err)
			}
			objs[j].Object = u
		}
		if !matched {
			return nil, pp.fail("", ErrPatchMatchesNothing)
		}
	}
	return objs, nil
}

// patchPos is where patch p is written in mesh.cue, as the loader found it
// ("" for a mesh made in Go).
func patchPos(p schema.Patch) string { return p.Pos }

// parsedPatch is one patch of mesh.cue, parsed once and applied to every
// object its target selects.
type parsedPatch struct {
	index  int
	pos    string
	target string // for errors
	sel    types.Selector
	regex  *types.SelectorRegex
	labels labels.Selector
	// Exactly one of merge (a strategic-merge patch) and ops (a JSON 6902
	// patch, as JSON) is set.
	merge *yaml.RNode
	ops   string
}

func (p *parsedPatch) fail(object string, err error) error {
	return &PatchError{Index: p.index, Pos: p.pos, Target: p.target, Object: object, Err: err}
}

// parsePatch tells a JSON 6902 patch (a list of operations) from a
// strategic-merge patch (an object) and compiles its target selector.
func parsePatch(i int, p schema.Patch) (*parsedPatch, error) {
	pp := &parsedPatch{index: i, pos: patchPos(p), target: describeTarget(p.Target), sel: selector(p.Target)}
	root, err := parsePatchText(p.Patch)
	if err != nil {
		return nil, pp.fail("", err)
	}
	switch root.Kind {
	case yaml.MappingNode:
		pp.merge = yaml.NewRNode(root)
		if err := pp.fromHeader(); err != nil {
			return nil, pp.fail("", err)
		}
	case yaml.SequenceNode:
		if pp.sel == (types.Selector{}) {
			return nil, pp.fail("", errors.New("a JSON 6902 patch needs a target: set at least its kind and name"))
		}
		if pp.ops, err = jsonOps(root); err != nil {
			return nil, pp.fail("", err)
		}
	default:
		return nil, pp.fail("", errors.New("patch is neither a strategic-merge patch (a YAML or JSON object) nor a JSON 6902 patch (a list of operations)"))
	}
	for _, f := range []struct{ field, re string }{{"group", p.Target.Group}, {"version", p.Target.Version},
		{"kind", p.Target.Kind}, {"name", p.Target.Name}, {"namespace", p.Target.Namespace}} {
		if _, err := regexp.Compile(f.re); err != nil {
			return nil, pp.fail("", fmt.Errorf("target.%s is not a regular expression: %v", f.field, err))
		}
	}
	if pp.regex, err = types.NewSelectorRegex(&pp.sel); err != nil {
		return nil, pp.fail("", err)
	}
	if pp.labels, err = labels.Parse(p.Target.LabelSelector); err != nil {
		return nil, pp.fail("", fmt.Errorf("target.labelSelector: %v", err))
	}
	return pp, nil
}

// parsePatchText parses a patch written in YAML or JSON into its one
// document's root node.
func parsePatchText(text string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(strings.NewReader(text))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("patch is not valid YAML or JSON: %v", err)
		}
		if len(doc.Content) > 0 {
			docs = append(docs, doc.Content[0])
		}
	}
	switch len(docs) {
	case 0:
		return nil, errors.New("patch is empty")
	case 1:
	default:
		return nil, fmt.Errorf("patch holds %d YAML documents; write each as its own entry of patches", len(docs))
	}
	timestampsAsStrings(docs[0])
	return docs[0], nil
}

// timestampsAsStrings keeps an unquoted date in a patch a string, as
// kubectl reads manifests: the YAML library would turn 2026-01-01 into a
// time and print it back as 2026-01-01T00:00:00Z.
func timestampsAsStrings(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!timestamp" {
		n.Tag = yaml.NodeTagString
	}
	for _, c := range n.Content {
		timestampsAsStrings(c)
	}
}

// fromHeader takes the patch's apiVersion, kind, metadata.name and
// metadata.namespace out of a strategic-merge patch. As in kustomize, they
// identify what the patch applies to and are never merged into it; they
// are the target when mesh.cue's target is empty.
func (p *parsedPatch) fromHeader() error {
	var header types.Selector
	header.Group, header.Version = splitAPIVersion(fieldString(p.merge, yaml.APIVersionField))
	header.Kind = fieldString(p.merge, yaml.KindField)
	header.Name = fieldString(p.merge, yaml.MetadataField, yaml.NameField)
	header.Namespace = fieldString(p.merge, yaml.MetadataField, yaml.NamespaceField)
	for _, f := range []yaml.Filter{yaml.Clear(yaml.APIVersionField), yaml.Clear(yaml.KindField),
		yaml.Tee(yaml.Lookup(yaml.MetadataField), yaml.Clear(yaml.NameField)),
		yaml.Tee(yaml.Lookup(yaml.MetadataField), yaml.Clear(yaml.NamespaceField))} {
		if _, err := p.merge.Pipe(f); err != nil {
			return err
		}
	}
	if meta := p.merge.Field(yaml.MetadataField); meta != nil && len(meta.Value.Content()) == 0 {
		if _, err := p.merge.Pipe(yaml.Clear(yaml.MetadataField)); err != nil {
			return err
		}
	}
	if p.sel != (types.Selector{}) {
		return nil
	}
	if header.Kind == "" || header.Name == "" {
		return errors.New("the target is empty and the patch names no kind and metadata.name: set target")
	}
	p.sel = types.Selector{ResId: resid.ResId{
		Gvk:       resid.Gvk{Group: regexp.QuoteMeta(header.Group), Version: regexp.QuoteMeta(header.Version), Kind: regexp.QuoteMeta(header.Kind)},
		Name:      regexp.QuoteMeta(header.Name),
		Namespace: regexp.QuoteMeta(header.Namespace),
	}}
	p.target = describeTarget(schema.PatchTarget{Group: header.Group, Version: header.Version, Kind: header.Kind,
		Name: header.Name, Namespace: header.Namespace}) + ", from the patch"
	return nil
}

func splitAPIVersion(v string) (group, version string) {
	if v == "" {
		return "", ""
	}
	if g, ver, ok := strings.Cut(v, "/"); ok {
		return g, ver
	}
	return "", v
}

func fieldString(n *yaml.RNode, path ...string) string {
	f, err := n.Pipe(yaml.Lookup(path...))
	if err != nil || f == nil {
		return ""
	}
	return yaml.GetValue(f)
}

// jsonOps checks a JSON 6902 patch's operations before any object is
// patched, so that a malformed patch is reported once, as the patch's.
func jsonOps(root *yaml.Node) (string, error) {
	data, err := yaml.NewRNode(root).MarshalJSON()
	if err != nil {
		return "", fmt.Errorf("JSON 6902 patch: %v", err)
	}
	ops, err := jsonpatch.DecodePatch(data)
	if err != nil {
		return "", fmt.Errorf("JSON 6902 patch: %v", err)
	}
	for k, op := range ops {
		switch op.Kind() {
		case "add", "remove", "replace", "move", "copy", "test":
		default:
			return "", fmt.Errorf("JSON 6902 patch, operation %d: op %q is not add, remove, replace, move, copy or test", k, op.Kind())
		}
		if _, err := op.Path(); err != nil {
			return "", fmt.Errorf("JSON 6902 patch, operation %d (%s): no path", k, op.Kind())
		}
	}
	return string(data), nil
}

func selector(t schema.PatchTarget) types.Selector {
	return types.Selector{ResId: resid.ResId{
		Gvk:  resid.Gvk{Group: t.Group, Version: t.Version, Kind: t.Kind},
		Name: t.Name, Namespace: t.Namespace,
	}, LabelSelector: t.LabelSelector}
}

// describeTarget writes a target as "apps/v1 Deployment linkerd/linkerd-destination".
func describeTarget(t schema.PatchTarget) string {
	var parts []string
	if gv := strings.Trim(t.Group+"/"+t.Version, "/"); gv != "" {
		parts = append(parts, gv)
	}
	if t.Kind != "" {
		parts = append(parts, t.Kind)
	} else {
		parts = append(parts, "any kind")
	}
	switch {
	case t.Name != "" && t.Namespace != "":
		parts = append(parts, t.Namespace+"/"+t.Name)
	case t.Name != "":
		parts = append(parts, t.Name)
	case t.Namespace != "":
		parts = append(parts, "in namespace "+t.Namespace)
	}
	if t.LabelSelector != "" {
		parts = append(parts, "with labels "+t.LabelSelector)
	}
	return strings.Join(parts, " ")
}

// selects matches u as kustomize's resmap.Select does: group, version,
// kind, name and namespace are regular expressions matched whole, an empty
// one matches anything, and a namespace never matches a cluster-scoped
// object.
func (p *parsedPatch) selects(u *unstructured.Unstructured) bool {
	gvk := u.GroupVersionKind()
	if !p.regex.MatchGvk(resid.Gvk{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind}) || !p.regex.MatchName(u.GetName()) {
		return false
	}
	if p.sel.Namespace != "" && (u.GetNamespace() == "" || !p.regex.MatchNamespace(u.GetNamespace())) {
		return false
	}
	return p.labels.Matches(labels.Set(u.GetLabels()))
}

// apply returns a patched copy of u. A strategic-merge patch is merged
// with kustomize's merge2, which follows the patch strategy of the kinds
// in its Kubernetes schema; other kinds (Linkerd's CRDs) have none there,
// so their lists are replaced whole and maps merged: a JSON merge patch.
// New list elements are appended, not prepended as kustomize's
// patchstrategicmerge filter does: prepending moves a patched container
// ahead of linkerd-proxy, which must stay first.
func (p *parsedPatch) apply(u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(u.Object)
	if err != nil {
		return nil, err
	}
	node, err := yaml.Parse(string(data))
	if err != nil {
		return nil, err
	}
	if p.merge != nil {
		node, err = merge2.Merge(p.merge.Copy(), node, yaml.MergeOptions{ListIncreaseDirection: yaml.MergeOptionsListAppend})
		if err != nil {
			return nil, err
		}
		if node == nil {
			return nil, errors.New("the patch deletes the object; turn it off in mesh.cue instead, so that meshctl prunes it")
		}
	} else {
		out, err := patchjson6902.Filter{Patch: p.ops}.Filter([]*yaml.RNode{node})
		if err != nil {
			return nil, err
		}
		node = out[0]
	}
	data, err = node.MarshalJSON()
	if err != nil {
		return nil, err
	}
	obj := map[string]any{}
	// apimachinery's decoder gives int64 and float64, as unstructured holds.
	if err := utiljson.Unmarshal(data, &obj); err != nil {
		return nil, err
	}
	patched := &unstructured.Unstructured{Object: obj}
	return patched, sameIdentity(u, patched)
}

// sameIdentity refuses a patch that renames or moves an object.
func sameIdentity(before, after *unstructured.Unstructured) error {
	for _, f := range []struct{ field, before, after string }{
		{"apiVersion", before.GetAPIVersion(), after.GetAPIVersion()},
		{"kind", before.GetKind(), after.GetKind()},
		{"namespace", before.GetNamespace(), after.GetNamespace()},
		{"name", before.GetName(), after.GetName()},
	} {
		if f.before != f.after {
			return fmt.Errorf("the patch changes the %s from %q to %q; a patch may not change an object's apiVersion, kind, namespace or name, since meshctl's inventory, prune and apply stages know the object by them",
				f.field, f.before, f.after)
		}
	}
	return nil
}
