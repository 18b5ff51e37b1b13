package generators

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// crdFactsFile holds upstream Linkerd 2.19's CRD schemas, one row per node.
const crdFactsFile = "../testdata/linkerd/crd-schemas-2.19.tsv"

// tsvVersion is one CRD version of the facts file.
type tsvVersion struct {
	Served, Storage bool
	Subresources    []string
	Columns         []string
	Rows            []string
}

var tsvHeader = regexp.MustCompile(`^## (\S+) (\S+) served=(\w+) storage=(\w+) subresources=\[(.*?)\] printerColumns=\[(.*)\]$`)

// readCRDFacts reads the facts file, keyed by "CRD-name version". Rows are
// normalized with canonicalRow, so that both sides print alike.
func readCRDFacts(t *testing.T) map[string]*tsvVersion {
	t.Helper()
	f, err := os.Open(crdFactsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]*tsvVersion{}
	var cur *tsvVersion
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := tsvHeader.FindStringSubmatch(line); m != nil {
			cur = &tsvVersion{Served: m[3] == "True", Storage: m[4] == "True", Subresources: pyList(m[5]), Columns: pyList(m[6])}
			out[m[1]+" "+m[2]] = cur
			continue
		}
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 4 || cur == nil {
			t.Fatalf("%s: malformed row %q", crdFactsFile, line)
		}
		cur.Rows = append(cur.Rows, canonicalRow(t, cols[0], cols[1], cols[2] == "req", parseConstraints(t, cols[3])))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// pyList reads a Python list of strings: 'a', 'b c'.
func pyList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, e := range strings.Split(s, "', '") {
		out = append(out, strings.Trim(e, "'"))
	}
	return out
}

// constraintKeys are the facts file's constraint names, in the order rows
// are printed; keys the file never uses come after them, so that a schema
// that has them shows up in the diff.
var constraintKeys = []string{"enum", "pattern", "format", "minimum", "maximum", "minLength", "maxLength",
	"minItems", "maxItems", "default", "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "cel", "oneOf/anyOf"}

// parseConstraints splits "k=v k=v flag" into a map; a value may hold
// spaces, so a token starts a new constraint only when it names a key.
func parseConstraints(t *testing.T, s string) map[string]string {
	t.Helper()
	out := map[string]string{}
	last := ""
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			continue
		}
		key, val, _ := strings.Cut(tok, "=")
		if slices.Contains(constraintKeys, key) {
			out[key], last = val, key
			continue
		}
		if last == "" {
			t.Fatalf("unknown constraint %q in %q", tok, s)
		}
		out[last] += " " + tok
	}
	return out
}

// canonicalRow prints a row with its JSON values re-encoded, so that the
// facts file's encoding and Go's compare equal when they mean the same.
func canonicalRow(t *testing.T, path, typ string, req bool, cons map[string]string) string {
	t.Helper()
	var parts []string
	keys := slices.Clone(constraintKeys)
	var extra []string
	for k := range cons {
		if !slices.Contains(keys, k) {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range append(keys, extra...) {
		v, ok := cons[k]
		if !ok {
			continue
		}
		if v == "" {
			parts = append(parts, k)
			continue
		}
		parts = append(parts, k+"="+canonicalJSON(t, v))
	}
	r := ""
	if req {
		r = "req"
	}
	return strings.Join([]string{path, typ, r, strings.Join(parts, " ")}, "\t")
}

func canonicalJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("constraint value %s: %v", s, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(buf.String())
}

// schemaRows flattens a rendered schema into the facts file's rows.
func schemaRows(t *testing.T, path string, n apiextv1.JSONSchemaProps, req bool, out *[]string) {
	t.Helper()
	typ := n.Type
	if n.XIntOrString {
		typ = "int-or-string"
	} else if n.XPreserveUnknownFields != nil && *n.XPreserveUnknownFields {
		typ += "+open"
	}
	*out = append(*out, canonicalRow(t, path, typ, req, nodeConstraints(t, n)))
	for name, p := range n.Properties {
		child := path + "." + name
		if path == "." {
			child = "." + name
		}
		schemaRows(t, child, p, slices.Contains(n.Required, name), out)
	}
	if n.Items != nil && n.Items.Schema != nil {
		schemaRows(t, path+"[]", *n.Items.Schema, false, out)
	}
	if n.AdditionalProperties != nil && n.AdditionalProperties.Schema != nil {
		schemaRows(t, path+"{}", *n.AdditionalProperties.Schema, false, out)
	}
}

// nodeConstraints are a node's constraints as the facts file names them,
// and anything else that would make it differ from upstream's.
func nodeConstraints(t *testing.T, n apiextv1.JSONSchemaProps) map[string]string {
	t.Helper()
	c := map[string]string{}
	js := func(k string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		c[k] = string(b)
	}
	if len(n.Enum) > 0 {
		js("enum", n.Enum)
	}
	for k, v := range map[string]string{"pattern": n.Pattern, "format": n.Format} {
		if v != "" {
			js(k, v)
		}
	}
	for k, v := range map[string]any{
		"minimum": n.Minimum, "maximum": n.Maximum, "minLength": n.MinLength, "maxLength": n.MaxLength,
		"minItems": n.MinItems, "maxItems": n.MaxItems, "default": n.Default,
		"x-kubernetes-list-type": n.XListType, "x-kubernetes-map-type": n.XMapType,
		"multipleOf": n.MultipleOf, "minProperties": n.MinProperties, "maxProperties": n.MaxProperties, "not": n.Not,
	} {
		if b, _ := json.Marshal(v); string(b) != "null" {
			c[k] = string(b)
		}
	}
	if len(n.XListMapKeys) > 0 {
		js("x-kubernetes-list-map-keys", n.XListMapKeys)
	}
	if len(n.XValidations) > 0 {
		c["cel"] = fmt.Sprint(len(n.XValidations))
	}
	if len(n.OneOf) > 0 || len(n.AnyOf) > 0 {
		c["oneOf/anyOf"] = ""
	}
	for k, set := range map[string]bool{"allOf": len(n.AllOf) > 0, "nullable": n.Nullable, "uniqueItems": n.UniqueItems,
		"exclusiveMinimum": n.ExclusiveMinimum, "exclusiveMaximum": n.ExclusiveMaximum, "x-kubernetes-embedded-resource": n.XEmbeddedResource} {
		if set {
			c[k] = "true"
		}
	}
	return c
}

// linkerdCRDVersions renders the default mesh and returns its Linkerd CRDs,
// keyed by "CRD-name version".
func linkerdCRDVersions(t *testing.T) map[string]apiextv1.CustomResourceDefinitionVersion {
	t.Helper()
	objs := render(t, "", Inputs{})
	out := map[string]apiextv1.CustomResourceDefinitionVersion{}
	for _, o := range objs {
		if o.Object.GetKind() != "CustomResourceDefinition" || !strings.HasSuffix(o.Object.GetName(), "linkerd.io") {
			continue
		}
		var c apiextv1.CustomResourceDefinition
		find(t, objs, o.ID(), &c)
		for _, v := range c.Spec.Versions {
			out[c.Name+" "+v.Name] = v
		}
	}
	return out
}

// TestCRDSchemasMatchUpstream walks every rendered Linkerd CRD schema and
// compares it with upstream 2.19's, row for row: every node with the same
// type, required flag and constraints, and no node more. It also checks
// each version's served and storage flags, subresources and printer columns.
func TestCRDSchemasMatchUpstream(t *testing.T) {
	matchFacts(t, "linkerd.io", 19, linkerdCRDVersions(t))
}

// matchFacts compares the rendered versions of the CRDs whose group ends in
// suffix with the facts table: the same versions (want of them), and for
// each the schema row for row, its served and storage flags, subresources
// and printer columns.
func matchFacts(t *testing.T, suffix string, want int, got map[string]apiextv1.CustomResourceDefinitionVersion) {
	t.Helper()
	facts := readCRDFacts(t)
	var wantKeys []string
	for k := range facts {
		if name, _, _ := strings.Cut(k, " "); strings.HasSuffix(name, suffix) {
			wantKeys = append(wantKeys, k)
		}
	}
	sort.Strings(wantKeys)
	if len(wantKeys) != want {
		t.Fatalf("the facts list %d CRD versions in *%s, want %d: %v", len(wantKeys), suffix, want, wantKeys)
	}
	if d := cmp.Diff(wantKeys, slices.Sorted(maps.Keys(got))); d != "" {
		t.Fatalf("CRD versions (-want +got):\n%s", d)
	}
	for _, k := range wantKeys {
		t.Run(k, func(t *testing.T) {
			want, v := facts[k], got[k]
			var rows []string
			schemaRows(t, ".", *v.Schema.OpenAPIV3Schema, false, &rows)
			sort.Strings(rows)
			if d := cmp.Diff(slices.Sorted(slices.Values(want.Rows)), rows); d != "" {
				t.Errorf("schema (-want +got):\n%s", d)
			}
			var subs, columns []string
			if v.Subresources != nil && v.Subresources.Status != nil {
				subs = append(subs, "status")
			}
			for _, c := range v.AdditionalPrinterColumns {
				columns = append(columns, c.Name)
			}
			wantV := *want
			wantV.Rows = nil
			if d := cmp.Diff(wantV, tsvVersion{Served: v.Served, Storage: v.Storage, Subresources: subs, Columns: columns}); d != "" {
				t.Errorf("version (-want +got):\n%s", d)
			}
		})
	}
}

// TestCRDSchemasExplainTheSpec: kubectl explain has something to say about
// spec, status and every top-level field of spec, in every Linkerd CRD.
func TestCRDSchemasExplainTheSpec(t *testing.T) {
	for k, v := range linkerdCRDVersions(t) {
		top := v.Schema.OpenAPIV3Schema.Properties
		for _, part := range []string{"spec", "status"} {
			node, ok := top[part]
			if !ok {
				continue
			}
			if node.Description == "" {
				t.Errorf("%s: .%s has no description", k, part)
			}
			if part != "spec" {
				continue
			}
			for name, p := range node.Properties {
				if p.Description == "" {
					t.Errorf("%s: .spec.%s has no description", k, name)
				}
			}
		}
	}
}

// TestCRDSchemasOneOf pins what the facts file only flags (oneOf/anyOf):
// which fields each alternative requires, and the int-or-string quantity.
func TestCRDSchemasOneOf(t *testing.T) {
	oneOf := func(n apiextv1.JSONSchemaProps) []string {
		var out []string
		for _, alt := range n.OneOf {
			out = append(out, strings.Join(alt.Required, "+"))
		}
		for _, alt := range n.AnyOf {
			out = append(out, "type:"+alt.Type)
		}
		return out
	}
	vs := linkerdCRDVersions(t)
	spec := func(k string) apiextv1.JSONSchemaProps { return vs[k].Schema.OpenAPIV3Schema.Properties["spec"] }
	sp := spec("serviceprofiles.linkerd.io v1alpha2").Properties["dstOverrides"].Items.Schema.Properties["weight"]
	got := map[string][]string{
		"meshtls spec":         oneOf(spec("meshtlsauthentications.policy.linkerd.io v1alpha1")),
		"saz v1beta1 server":   oneOf(spec("serverauthorizations.policy.linkerd.io v1beta1").Properties["server"]),
		"server v1alpha1 pods": oneOf(spec("servers.policy.linkerd.io v1alpha1").Properties["podSelector"]),
		"server v1beta3 spec":  oneOf(spec("servers.policy.linkerd.io v1beta3")),
		"sp weight":            oneOf(sp),
	}
	want := map[string][]string{
		"meshtls spec":         {"identities", "identityRefs"},
		"saz v1beta1 server":   {"name", "selector"},
		"server v1alpha1 pods": {"matchExpressions", "matchLabels"},
		"server v1beta3 spec":  {"podSelector", "externalWorkloadSelector"},
		"sp weight":            {"type:integer", "type:string"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("oneOf/anyOf (-want +got):\n%s", d)
	}
}
