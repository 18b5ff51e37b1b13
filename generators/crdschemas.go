package generators

import (
	"encoding/json"
	"fmt"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/utils/ptr"
)

// The structural schemas of Linkerd's CRDs (issue 8) are built from the
// small constructors below, so that a schema reads like the tree it is:
//
//	object("...", props{"name": str("...", minLen(1))}, required("name"))
//
// The node-by-node facts are in testdata/linkerd/crd-schemas-2.19.tsv, and
// TestCRDSchemasMatchUpstream holds every schema to them.

// schemaNode is one node of an OpenAPI v3 schema.
type schemaNode = apiextv1.JSONSchemaProps

// props are an object node's properties.
type props = map[string]schemaNode

// opt sets one constraint on a schema node.
type opt func(*schemaNode)

func newNode(typ, desc string, opts []opt) schemaNode {
	n := schemaNode{Type: typ, Description: desc}
	for _, o := range opts {
		o(&n)
	}
	return n
}

func str(desc string, opts ...opt) schemaNode     { return newNode("string", desc, opts) }
func integer(desc string, opts ...opt) schemaNode { return newNode("integer", desc, opts) }
func number(desc string, opts ...opt) schemaNode  { return newNode("number", desc, opts) }
func boolean(desc string, opts ...opt) schemaNode { return newNode("boolean", desc, opts) }

// object is an object node with the given properties.
func object(desc string, p props, opts ...opt) schemaNode {
	n := newNode("object", desc, opts)
	n.Properties = p
	return n
}

// openObject is an object whose fields the API server keeps unchecked
// (x-kubernetes-preserve-unknown-fields).
func openObject(desc string) schemaNode {
	return schemaNode{Type: "object", Description: desc, XPreserveUnknownFields: ptr.To(true)}
}

// array is an array node whose items all follow items.
func array(desc string, items schemaNode, opts ...opt) schemaNode {
	n := newNode("array", desc, opts)
	n.Items = &apiextv1.JSONSchemaPropsOrArray{Schema: &items}
	return n
}

// intOrString is a node that takes an integer or a string.
func intOrString(desc string, opts ...opt) schemaNode {
	n := newNode("", desc, opts)
	n.XIntOrString = true
	return n
}

func required(names ...string) opt { return func(n *schemaNode) { n.Required = names } }
func pattern(p string) opt         { return func(n *schemaNode) { n.Pattern = p } }
func format(f string) opt          { return func(n *schemaNode) { n.Format = f } }
func minLen(v int64) opt           { return func(n *schemaNode) { n.MinLength = ptr.To(v) } }
func maxLen(v int64) opt           { return func(n *schemaNode) { n.MaxLength = ptr.To(v) } }
func minItems(v int64) opt         { return func(n *schemaNode) { n.MinItems = ptr.To(v) } }
func maxItems(v int64) opt         { return func(n *schemaNode) { n.MaxItems = ptr.To(v) } }
func minimum(v float64) opt        { return func(n *schemaNode) { n.Minimum = ptr.To(v) } }
func maximum(v float64) opt        { return func(n *schemaNode) { n.Maximum = ptr.To(v) } }

// enum limits a node to the given values (strings or numbers).
func enum[T string | int](values ...T) opt {
	return func(n *schemaNode) {
		for _, v := range values {
			n.Enum = append(n.Enum, rawJSON(v))
		}
	}
}

// def is the value the API server fills in when the field is absent.
func def(v any) opt { return func(n *schemaNode) { n.Default = ptr.To(rawJSON(v)) } }

// defJSON is def for a value written as JSON.
func defJSON(s string) opt {
	return func(n *schemaNode) { n.Default = &apiextv1.JSON{Raw: []byte(s)} }
}

// listMap makes an array a map keyed by the given fields of its items, for
// server-side apply.
func listMap(keys ...string) opt {
	return func(n *schemaNode) {
		n.XListType = ptr.To("map")
		n.XListMapKeys = keys
	}
}

// oneOfRequired accepts an object only when exactly one of the fields is set.
func oneOfRequired(fields ...string) opt {
	return func(n *schemaNode) {
		for _, f := range fields {
			n.OneOf = append(n.OneOf, schemaNode{Required: []string{f}})
		}
	}
}

func rawJSON(v any) apiextv1.JSON {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("schema value %v: %v", v, err)) // a programming error
	}
	return apiextv1.JSON{Raw: b}
}

// root is a CRD version's top-level schema.
func root(p props, opts ...opt) *schemaNode {
	n := object("", p, opts...)
	return &n
}

// typeMeta adds the apiVersion, kind and metadata nodes that some upstream
// CRDs spell out. The EgressNetwork and ExternalWorkload CRDs spell
// apiVersion "apiVerson": kept, to match upstream node for node; the API
// server handles apiVersion itself either way.
func typeMeta(p props, apiVersion string) props {
	p[apiVersion] = str("APIVersion defines the versioned schema of this representation of an object.")
	p["kind"] = str("Kind is a string value representing the REST resource this object represents.")
	p["metadata"] = object("", nil)
	return p
}

// Patterns shared by several kinds.
const (
	patGroup      = `^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	patKind       = `^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$`
	patDNSLabel   = `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	patSubdomain  = `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	patHostname   = `^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	patHeaderName = `^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$`
	patReason     = `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`
	patCondType   = `^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$`
	patController = `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$`
	patIdentity   = `^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	patQuantity   = `^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$`
)

// Fields of object references, shared by every kind that points at others.

func groupField(desc string, opts ...opt) schemaNode {
	return str(desc, append([]opt{pattern(patGroup), maxLen(253)}, opts...)...)
}

func kindField(desc string, opts ...opt) schemaNode {
	return str(desc, append([]opt{pattern(patKind), minLen(1), maxLen(63)}, opts...)...)
}

func nameField(desc string) schemaNode { return str(desc, minLen(1), maxLen(253)) }

// namespaceLabel is a namespace name checked as a DNS label.
func namespaceLabel(desc string) schemaNode {
	return str(desc, pattern(patDNSLabel), minLen(1), maxLen(63))
}

// portField is a TCP port number.
func portField(desc string) schemaNode {
	return integer(desc, format("int32"), minimum(1), maximum(65535))
}

// localRef points at an object in the same namespace: group, kind and name.
func localRef(desc string, opts ...opt) schemaNode {
	return object(desc, props{
		"group": groupField("Group of the referent; empty for the core API group."),
		"kind":  kindField("Kind of the referent."),
		"name":  nameField("Name of the referent."),
	}, append([]opt{required("kind", "name")}, opts...)...)
}

// labelSelector is a metav1.LabelSelector.
func labelSelector(desc string, opts ...opt) schemaNode {
	return object(desc, props{
		"matchExpressions": array("Label selector requirements; all must match.", object("", props{
			"key":      str("The label key the requirement applies to."),
			"operator": str("How the key relates to the values.", enum("In", "NotIn", "Exists", "DoesNotExist")),
			"values":   array("Values for In and NotIn; empty for Exists and DoesNotExist.", str("")),
		}, required("key", "operator"))),
		"matchLabels": openObject("Labels that must all match, as key: value pairs."),
	}, opts...)
}

// networks is a list of IP networks, each with exceptions.
func networks(desc string) schemaNode {
	return array(desc, object("", props{
		"cidr":   str("A network in CIDR form, or a single IP address."),
		"except": array("Networks within cidr that are left out.", str("")),
	}, required("cidr")))
}

// conditions is a status.conditions list; ExternalWorkload's conditions
// also have lastProbeTime.
func conditions(probeTime bool) schemaNode {
	p := props{
		"lastTransitionTime": str("When the condition last changed status.", format("date-time")),
		"message":            str("A human-readable message about the transition.", maxLen(32768)),
		"reason":             str("A CamelCase reason for the condition's last transition.", pattern(patReason), minLen(1), maxLen(1024)),
		"status":             str("Status of the condition.", enum("True", "False", "Unknown")),
		"type":               str("Type of the condition.", pattern(patCondType), maxLen(316)),
	}
	if probeTime {
		p["lastProbeTime"] = str("When the condition was last probed.", format("date-time"))
	}
	return array("The latest observations of the object's state.", object("", p))
}
