package generators

import (
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshctl/meshctl/internal/ident"
	"github.com/meshctl/meshctl/schema"
)

// namespaces renders namespace linkerd, the meshed namespaces, and the
// kube-system label. Namespaces meshctl does not create carry only the
// fields it sets and are marked never to be pruned.
func namespaces(m *schema.Mesh, _ Inputs) []Object {
	psa := podSecurityLevel(m)
	objs := []Object{nsObject("linkerd", map[string]string{
		"linkerd.io/is-control-plane":          "true",
		"config.linkerd.io/admission-webhooks": "disabled",
		labelCPNamespace:                       linkerdNamespace,
		"pod-security.kubernetes.io/enforce":   psa,
	}, map[string]string{"linkerd.io/inject": "disabled"})}

	if m.ControlPlane.LabelKubeSystem {
		objs = append(objs, nsObject("kube-system",
			map[string]string{"config.linkerd.io/admission-webhooks": "disabled"},
			map[string]string{ident.AnnotationPrune: "disabled"}))
	}

	names := make([]string, 0, len(m.Namespaces))
	for n := range m.Namespaces {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		objs = append(objs, meshedNamespace(n, m.Namespaces[n]))
	}
	return objs
}

func nsObject(name string, labels, annotations map[string]string) Object {
	return toObject(StageCRDs, gvkNamespace, &corev1.Namespace{ObjectMeta: objectMeta(name, "", labels, annotations)})
}

// meshedNamespace carries the inject annotation and namespace-wide proxy
// settings of one meshed namespace.
//
// safeToEvict stays on the Namespace although the cluster autoscaler reads
// it on pods only: it is where `kubectl get ns` shows the setting, and the
// one rendered trace of it on clusters where plan, not an admission policy
// (evict.go), puts it on the pods, so that diff sees it change.
func meshedNamespace(name string, ns schema.Namespace) Object {
	ann := map[string]string{"linkerd.io/inject": ns.Inject}
	if ns.SafeToEvict != nil {
		ann[AnnotationSafeToEvict] = strconv.FormatBool(*ns.SafeToEvict)
	}
	if p := ns.Proxy; p != nil {
		set := func(key, v string) {
			if v != "" {
				ann["config.linkerd.io/"+key] = v
			}
		}
		set("proxy-log-level", p.LogLevel)
		set("opaque-ports", csv(p.OpaquePorts))
		set("skip-inbound-ports", csv(p.SkipInboundPorts))
		set("skip-outbound-ports", csv(p.SkipOutboundPorts))
		if r := p.Resources; r != nil {
			set("proxy-cpu-request", r.CPU.Request)
			set("proxy-cpu-limit", r.CPU.Limit)
			set("proxy-memory-request", r.Memory.Request)
			set("proxy-memory-limit", r.Memory.Limit)
			set("proxy-ephemeral-storage-request", r.EphemeralStorage.Request)
			set("proxy-ephemeral-storage-limit", r.EphemeralStorage.Limit)
		}
	}
	if !ns.Create {
		ann[ident.AnnotationPrune] = "disabled"
	}
	return nsObject(name, nil, ann)
}
