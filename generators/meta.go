package generators

import (
	"maps"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
