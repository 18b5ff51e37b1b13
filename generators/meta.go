package generators

import (
	"maps"

	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshctl/meshctl/schema"
)

// Linkerd's namespaces, labels and annotations; meshctl's own keys are in
// internal/ident.
const (
	linkerdNamespace  = "linkerd"
	cniNamespace      = "linkerd-cni"
	labelCPComponent  = "linkerd.io/control-plane-component"
	labelCPNamespace  = "linkerd.io/control-plane-ns"
	annotationCreated = "linkerd.io/created-by"
)

// createdBy is the linkerd.io/created-by value upstream's CLI stamps.
func createdBy(m *schema.Mesh) string {
	return "linkerd/cli " + m.Linkerd.Version
}

// objectMeta builds metadata; nil maps stay nil so they render as absent.
func objectMeta(name, namespace string, labels, annotations map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:        name,
		Namespace:   namespace,
		Labels:      labels,
		Annotations: annotations,
	}
}

// merge returns a new map with the entries of all ms, later ones winning.
func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// image is registry/name:version.
func image(m *schema.Mesh, name, version string) string {
	return m.Linkerd.Registry + "/" + name + ":" + version
}

// anyMap converts labels for an unstructured object, whose nested maps must
// hold plain values.
func anyMap(in map[string]string) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// saSubject is ServiceAccount sa of namespace ns, as a binding names it.
func saSubject(sa, ns string) []rbacv1.Subject {
	return []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}
}

// maxOneUnavailable is the PodDisruptionBudget every Linkerd component
// with one has: name in ns, one pod of selector down at a time.
func maxOneUnavailable(m *schema.Mesh, stage Stage, name, ns string, labels, selector map[string]string) Object {
	one := intstr.FromInt32(1)
	return toObject(stage, gvkPDB, &policyv1.PodDisruptionBudget{
		ObjectMeta: objectMeta(name, ns, labels, map[string]string{annotationCreated: createdBy(m)}),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: &one,
			Selector:       &metav1.LabelSelector{MatchLabels: selector},
		},
	})
}

// customResource is a custom resource (or any object meshctl writes as
// plain data) with a spec; empty namespace, labels and annotations stay
// absent.
func customResource(stage Stage, apiVersion, kind, name, ns string, labels, annotations map[string]string, spec map[string]any) Object {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetName(name)
	if ns != "" {
		u.SetNamespace(ns)
	}
	if labels != nil {
		u.SetLabels(labels)
	}
	if annotations != nil {
		u.SetAnnotations(annotations)
	}
	return Object{Stage: stage, Object: u}
}
