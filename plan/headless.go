package plan

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kschema "k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/schema"
)

// serviceGVK is the Service kind, as LiveObjects are asked for it.
var serviceGVK = corev1.SchemeGroupVersion.WithKind("Service")

// WideKinds are the kinds HeadlessWarnings reads in every namespace:
// Services, when mesh.cue gives any service traffic settings. The CLI lists
// them with the render's own kinds (apply.Client.ListLive(ctx, set,
// WideKinds(m)...)) and hands the answer to HeadlessWarnings and to Apply or
// Diff, so that one LIST of Services serves all of them.
func WideKinds(m *schema.Mesh) []kschema.GroupVersionKind {
	for _, svc := range m.Services {
		if routed(svc) {
			return []kschema.GroupVersionKind{serviceGVK}
		}
	}
	return nil
}

// HeadlessWarnings reads the Services that mesh.cue gives traffic settings
// (routes, a retry budget, a split or a fault) and says, a line each, what
// in the cluster keeps them from taking effect:
//   - a headless Service (clusterIP None): clients reach its pods by their
//     own addresses, so Linkerd has no Service address to route, and the
//     settings do nothing;
//   - a split backend with a share of the traffic whose Service does not
//     exist: that share of the requests fails.
//
// A Service that does not exist yet is not warned of: the settings take
// effect once it is deployed. Its backends are not checked either, since
// an application not yet deployed lacks them all.
//
// The Services come from live when it knows them (WideKinds says how to
// list it); a namespace whose Services live does not know (nil live, or a
// client that may not list Services in every namespace) costs one LIST of
// that namespace.
func HeadlessWarnings(ctx context.Context, m *schema.Mesh, c *apply.Client, live apply.LiveObjects) []string {
	byNS := map[string][]string{}
	for _, key := range sortedKeys(m.Services) {
		if !routed(m.Services[key]) {
			continue
		}
		ns, _, _ := strings.Cut(key, "/")
		byNS[ns] = append(byNS[ns], key)
	}
	var out []string
	for _, ns := range sortedKeys(byNS) {
		services, err := servicesIn(ctx, c, live, ns, namesOf(m, byNS[ns]))
		if err != nil {
			out = append(out, fmt.Sprintf("namespace %s: cannot list Services (%v), so whether %s headless was not checked", ns, err, isOrAre(byNS[ns])))
			continue
		}
		for _, key := range byNS[ns] {
			out = append(out, serviceWarnings(key, m.Services[key], services)...)
		}
	}
	return out
}

// namesOf are the Service names that keys and their split backends name.
func namesOf(m *schema.Mesh, keys []string) []string {
	var names []string
	for _, key := range keys {
		_, name, _ := strings.Cut(key, "/")
		names = append(names, name)
		for b := range m.Services[key].Split {
			names = append(names, b)
		}
	}
	return names
}

// servicesIn returns the live Services of namespace ns among names, by
// name: from live when it knows every one of them (present or absent),
// else from one LIST of the namespace.
func servicesIn(ctx context.Context, c *apply.Client, live apply.LiveObjects, ns string, names []string) (map[string]*corev1.Service, error) {
	if live != nil {
		out := map[string]*corev1.Service{}
		known := true
		for _, name := range names {
			u, ok := live.Live(serviceGVK, ns, name)
			if !ok {
				known = false
				break
			}
			if u == nil {
				continue
			}
			// serviceWarnings reads the cluster IP alone.
			ip, _, _ := unstructured.NestedString(u.Object, "spec", "clusterIP")
			out[name] = &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.ServiceSpec{ClusterIP: ip}}
		}
		if known {
			return out, nil
		}
	}
	list := &corev1.ServiceList{}
	if err := c.Kube().List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	out := map[string]*corev1.Service{}
	for i := range list.Items {
		out[list.Items[i].Name] = &list.Items[i]
	}
	return out, nil
}

// serviceWarnings is the pure part of HeadlessWarnings, for one service and
// the live Services of its namespace by name.
func serviceWarnings(key string, svc schema.Service, live map[string]*corev1.Service) []string {
	ns, name, _ := strings.Cut(key, "/")
	s, ok := live[name]
	if !ok {
		return nil
	}
	if s.Spec.ClusterIP == corev1.ClusterIPNone {
		return []string{fmt.Sprintf("Service %s is headless (clusterIP: None): Linkerd cannot route a headless Service, so what mesh.cue gives it (%s) does nothing; "+
			"give the Service a cluster IP, or add a Service with a cluster IP for the same pods and key the settings by it", key, settings(svc))}
	}
	var out []string
	for _, b := range sortedKeys(svc.Split) {
		if _, ok := live[b]; !ok && svc.Split[b] > 0 {
			out = append(out, fmt.Sprintf("Service %s: split backend Service %s/%s does not exist, so its %d%% of the requests will fail; deploy it, or give it weight 0", key, ns, b, svc.Split[b]))
		}
	}
	return out
}

// routed says whether mesh.cue gives the service settings that only a
// routed Service can carry.
func routed(svc schema.Service) bool { return len(settingList(svc)) > 0 }

func settingList(svc schema.Service) []string {
	var out []string
	if len(svc.Routes) > 0 {
		out = append(out, "routes")
	}
	if svc.RetryBudget != nil {
		out = append(out, "retry budget")
	}
	if len(svc.Split) > 0 {
		out = append(out, "split")
	}
	if svc.Fault != nil {
		out = append(out, "fault")
	}
	return out
}

// settings is "split and fault", "routes, split and fault".
func settings(svc schema.Service) string {
	l := settingList(svc)
	if len(l) == 1 {
		return l[0]
	}
	return strings.Join(l[:len(l)-1], ", ") + " and " + l[len(l)-1]
}

func isOrAre(keys []string) string {
	if len(keys) == 1 {
		return "Service " + keys[0] + " is"
	}
	return "Services " + strings.Join(keys, ", ") + " are"
}
