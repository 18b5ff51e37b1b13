// Package ident is the one home of what identifies meshctl's objects: the
// labels and annotations it writes, its field manager, and the Kind/ns/name
// object ID it prints and records. It is a leaf, so that apply and
// generators can share it without importing each other.
package ident

// Labels, annotations and the field manager (ARCHITECTURE.md).
const (
	// FieldManager owns every field meshctl sets.
	FieldManager = "meshctl"
	// LabelManagedBy marks objects meshctl owns outright, with value
	// ManagedByMeshctl.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByMeshctl is LabelManagedBy's value on meshctl's objects.
	ManagedByMeshctl = "meshctl"
	// AnnotationPrune: "disabled" keeps an object off the prune list.
	AnnotationPrune = "meshctl.io/prune"
	// AnnotationForce: "enabled" allows delete-and-recreate when an
	// immutable field changes.
	AnnotationForce = "meshctl.io/force"
	// Namespace is meshctl's own namespace by default: the inventory, the
	// certificates, the rollout states and the reconciler.
	Namespace = "meshctl"
	// Reconciler names the reconcile loop's ServiceAccount, Deployment
	// and RBAC objects; viz's Prometheus admits its rollout queries.
	Reconciler = "meshctl-reconciler"
)

// ID is an object's identity in output and in the inventory: Kind/ns/name,
// or Kind/name for a cluster-scoped object. It is the text of
// github.com/fluxcd/pkg/ssa/utils.FmtObjMetadata, which generators cannot
// import (it pulls in client-go).
func ID(kind, namespace, name string) string {
	if namespace == "" {
		return kind + "/" + name
	}
	return kind + "/" + namespace + "/" + name
}
