// Package generators expands a typed mesh into Kubernetes objects. Every
// generator is a pure function: the same mesh and inputs give the same
// objects, with no cluster, clock or randomness involved.
package generators

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshctl/meshctl/internal/ident"
)

// Stage is the apply stage an object belongs to; each stage waits for the
// one before it.
type Stage int

// The apply stages, in order.
const (
	StageCRDs         Stage = iota + 1 // CRDs and Namespaces
	StageCNI                           // the CNI plugin
	StageControlPlane                  // the Linkerd control plane
	StageExtensions                    // viz, tracing, multicluster
	StageMeshConfig                    // profiles, routes and splits, links
)

var stageNames = map[Stage]string{
	StageCRDs:         "crds",
	StageCNI:          "cni",
	StageControlPlane: "control-plane",
	StageExtensions:   "extensions",
	StageMeshConfig:   "mesh-config",
}

func (s Stage) String() string {
	if n, ok := stageNames[s]; ok {
		return n
	}
	return fmt.Sprintf("stage-%d", int(s))
}

// Object is one rendered object and the stage it is applied in.
type Object struct {
	Stage  Stage
	Object *unstructured.Unstructured
}

// ID is the object's Kind/namespace/name, as meshctl prints it.
func (o Object) ID() string {
	return ident.ID(o.Object.GetKind(), o.Object.GetNamespace(), o.Object.GetName())
}

// typed is a k8s.io/api struct together with the group/version/kind it is
// rendered as.
type typed interface {
	runtime.Object
}

// toObject converts a typed object into an unstructured one, dropping the
// empty creationTimestamp and status that typed structs always carry.
func toObject(stage Stage, gvk schema.GroupVersionKind, obj typed) Object {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		// Only unconvertible Go types fail here: a programming error.
		panic(fmt.Sprintf("convert %s: %v", gvk.Kind, err))
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	if st, ok := u.Object["status"].(map[string]any); ok && isEmpty(st) {
		delete(u.Object, "status")
	}
	scrubTemplateTimestamps(u.Object)
	return Object{Stage: stage, Object: u}
}

// scrubTemplateTimestamps removes creationTimestamp: null from pod templates
// and job templates nested anywhere in the object.
func scrubTemplateTimestamps(m map[string]any) {
	for k, v := range m {
		switch x := v.(type) {
		case map[string]any:
			if k == "metadata" {
				if ts, ok := x["creationTimestamp"]; ok && ts == nil {
					delete(x, "creationTimestamp")
				}
			}
			scrubTemplateTimestamps(x)
		case []any:
			for _, e := range x {
				if em, ok := e.(map[string]any); ok {
					scrubTemplateTimestamps(em)
				}
			}
		}
	}
}

func isEmpty(m map[string]any) bool {
	for _, v := range m {
		switch x := v.(type) {
		case map[string]any:
			if !isEmpty(x) {
				return false
			}
		case nil:
		default:
			return false
		}
	}
	return true
}
