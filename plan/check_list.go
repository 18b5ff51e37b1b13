package plan

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
)

// The first two checks run before any other, on their own.
var (
	checkClient = checkDef{category: "kubernetes-api", id: "k8s-api-client", anchor: "k8s-api", upstream: true, name: "can initialize the client"}
	checkAPI    = checkDef{category: "kubernetes-api", id: "k8s-api", upstream: true, name: "can query the Kubernetes API"}
)

// minKubernetes is the oldest Kubernetes Linkerd 2.19 installs on (its
// charts' kubeVersion).
const minKubernetes = 21

// checkList is every check after kubernetes-api, in upstream's order of
// categories, meshctl's own last. applies nil: the check runs without
// --pre, and a pre-… category only with it.
func checkList() []checkDef {
	cni := func(e *checkEnv) bool { return !e.o.Pre && e.m.CNI.Enabled }
	ha := func(e *checkEnv) bool { return !e.o.Pre && e.m.ControlPlane.HA }
	dataPlane := func(e *checkEnv) bool { return !e.o.Pre && e.o.DataPlane }
	viz := func(e *checkEnv) bool { return !e.o.Pre && e.m.Viz.Enabled }
	multicluster := func(e *checkEnv) bool { return !e.o.Pre && len(e.m.Clusters) > 0 }
	always := func(e *checkEnv) bool { return true }
	controlPlane := func(stage string, kinds ...string) func(ctx context.Context, e *checkEnv) verdict {
		return exists(stage, func(u *unstructured.Unstructured) bool {
			return slices.Contains(kinds, u.GetKind()) && (u.GetNamespace() == "" || u.GetNamespace() == linkerdNamespace)
		})
	}
	list := []checkDef{
		{category: "kubernetes-version", id: "k8s-version", name: "is running the minimum Kubernetes API version", upstream: true, applies: always, run: checkKubernetesVersion},
	}
	list = append(list, preChecks()...)
	list = append(list,
		checkDef{category: "linkerd-crd", id: "l5d-existence-crd", name: "control plane CustomResourceDefinitions exist", upstream: true, run: checkCRDsExist},
		checkDef{category: "linkerd-crd", id: "meshctl-crd-schema", name: "control plane CustomResourceDefinitions have the schemas meshctl renders", run: checkCRDSchemas},
		checkDef{category: "linkerd-existence", id: "l5d-existence-linkerd-config", name: "'linkerd-config' config map exists", upstream: true, run: exists("control-plane", func(u *unstructured.Unstructured) bool {
			return u.GetKind() == "ConfigMap" && u.GetName() == "linkerd-config"
		})},
		checkDef{category: "linkerd-existence", id: "l5d-existence-sa-heartbeat", anchor: "l5d-existence-sa", name: "heartbeat ServiceAccount exist", upstream: true, run: exists("control-plane", func(u *unstructured.Unstructured) bool {
			return u.GetKind() == "ServiceAccount" && u.GetName() == "linkerd-heartbeat"
		})},
		checkDef{category: "linkerd-existence", id: "l5d-existence-unschedulable-pods", name: "no unschedulable pods", upstream: true, run: checkUnschedulable(linkerdNamespace)},
		checkDef{category: "linkerd-existence", id: "l5d-api-control-ready", name: "control plane pods are ready", upstream: true, run: checkWorkloadsReady("control-plane", linkerdNamespace, "")},
		checkDef{category: "linkerd-existence", id: "l5d-cluster-networks-cidr", name: "cluster networks contains all node podCIDRs", upstream: true, run: checkClusterNetworks},
		checkDef{category: "linkerd-config", id: "l5d-existence-ns", name: "control plane Namespace exists", upstream: true, run: exists("", func(u *unstructured.Unstructured) bool {
			return u.GetKind() == "Namespace" && u.GetName() == linkerdNamespace
		})},
		checkDef{category: "linkerd-config", id: "l5d-existence-cr", name: "control plane ClusterRoles exist", upstream: true, run: controlPlane("control-plane", "ClusterRole")},
		checkDef{category: "linkerd-config", id: "l5d-existence-crb", name: "control plane ClusterRoleBindings exist", upstream: true, run: controlPlane("control-plane", "ClusterRoleBinding")},
		checkDef{category: "linkerd-config", id: "l5d-existence-sa", name: "control plane ServiceAccounts exist", upstream: true, run: controlPlane("control-plane", "ServiceAccount")},
		checkDef{category: "linkerd-config", id: "l5d-existence-mwc", name: "control plane MutatingWebhookConfigurations exist", upstream: true, run: controlPlane("control-plane", "MutatingWebhookConfiguration")},
		checkDef{category: "linkerd-config", id: "l5d-existence-vwc", name: "control plane ValidatingWebhookConfigurations exist", upstream: true, run: controlPlane("control-plane", "ValidatingWebhookConfiguration")},
		checkDef{category: "linkerd-cni-plugin", id: "cni-plugin-cm-exists", name: "cni plugin ConfigMap exists", upstream: true, applies: cni, run: exists("cni", kindIs("ConfigMap"))},
		checkDef{category: "linkerd-cni-plugin", id: "cni-plugin-cr-exists", name: "cni plugin ClusterRole exists", upstream: true, applies: cni, run: exists("cni", kindIs("ClusterRole"))},
		checkDef{category: "linkerd-cni-plugin", id: "cni-plugin-crb-exists", name: "cni plugin ClusterRoleBinding exists", upstream: true, applies: cni, run: exists("cni", kindIs("ClusterRoleBinding"))},
		checkDef{category: "linkerd-cni-plugin", id: "cni-plugin-sa-exists", name: "cni plugin ServiceAccount exists", upstream: true, applies: cni, run: exists("cni", kindIs("ServiceAccount"))},
		checkDef{category: "linkerd-cni-plugin", id: "cni-plugin-ds-exists", name: "cni plugin DaemonSet exists", upstream: true, applies: cni, run: exists("cni", kindIs("DaemonSet"))},
		checkDef{category: "linkerd-cni-plugin", id: "cni-plugin-ready", name: "cni plugin pod is running on all nodes", upstream: true, applies: cni, run: checkCNINodes},
	)
	list = append(list, identityChecks()...)
	list = append(list, webhookChecks("linkerd-webhooks-and-apisvc-tls", linkerdNamespace)...)
	list = append(list,
		checkDef{category: "linkerd-version", id: "l5d-version-latest", name: "can determine the latest version", upstream: true, run: checkPinned},
		checkDef{category: "control-plane-version", id: "l5d-version-control", name: "control plane is up-to-date", upstream: true, run: checkControlPlaneVersion},
		checkDef{category: "linkerd-control-plane-proxy", id: "l5d-cp-proxy-healthy", name: "control plane proxies are healthy", upstream: true, run: checkProxies(linkerdNamespace, false)},
		checkDef{category: "linkerd-control-plane-proxy", id: "l5d-cp-proxy-version", name: "control plane proxies are up-to-date", upstream: true, run: checkProxies(linkerdNamespace, true)},
		checkDef{category: "linkerd-data-plane", id: "l5d-data-plane-ready", name: "data plane proxies are ready", upstream: true, applies: dataPlane, run: checkProxies("", false)},
		checkDef{category: "linkerd-data-plane", id: "l5d-data-plane-version", name: "data plane is up-to-date", upstream: true, applies: dataPlane, run: checkProxies("", true)},
		checkDef{category: "linkerd-identity-data-plane", id: "l5d-identity-data-plane-proxies-certs-match-ca", name: "data plane proxies certificate match CA", upstream: true, applies: dataPlane, run: checkTrustRoots},
		checkDef{category: "linkerd-ha-checks", id: "l5d-control-plane-replicas", name: "multiple replicas of control plane pods", upstream: true, applies: ha, run: checkReplicas},
		checkDef{category: "linkerd-ha-checks", id: "meshctl-ha-placement", name: "nodes and zones enough for the control plane's anti-affinity", applies: ha, run: checkPlacement},
	)
	list = append(list, vizChecks(viz)...)
	list = append(list, multiclusterChecks(multicluster)...)
	list = append(list,
		checkDef{category: "gateway-api", id: "meshctl-gateway-api-crds", name: "Gateway API CRDs are those Linkerd 2.19 needs", run: checkGatewayAPI},
		checkDef{category: "meshctl", id: "meshctl-split-endpoints", name: "every split backend with weight has ready endpoints", run: checkSplitEndpoints},
		checkDef{category: "meshctl", id: "meshctl-in-sync", name: "the cluster matches mesh.cue", run: checkInSync},
		checkDef{category: "meshctl", id: "meshctl-inventory", name: "the inventory has no unfinished run", run: checkInventory},
		checkDef{category: "meshctl", id: "meshctl-reconciler", name: "the reconcile loop's record is healthy and recent", run: checkLoopRecord},
		checkDef{category: "meshctl", id: "meshctl-warnings", name: "apply has nothing to warn about", run: checkApplyWarnings},
	)
	return list
}

const (
	vizNamespace          = "linkerd-viz"
	multiclusterNamespace = "linkerd-multicluster"
)

// vizKind keeps viz's objects of kind.
func vizKind(kind string) func(u *unstructured.Unstructured) bool {
	return func(u *unstructured.Unstructured) bool {
		return u.GetKind() == kind && (u.GetNamespace() == vizNamespace || u.GetLabels()["linkerd.io/extension"] == "viz")
	}
}

func checkKubernetesVersion(_ context.Context, e *checkEnv) verdict {
	v, err := e.mem.Client.ServerVersion()
	if err != nil {
		return unread(fmt.Errorf("reading the server's version: %w", err))
	}
	major, _ := strconv.Atoi(strings.TrimRight(v.Major, "+"))
	minor, _ := strconv.Atoi(strings.TrimRight(v.Minor, "+"))
	if major > 1 || (major == 1 && minor >= minKubernetes) {
		return pass(v.GitVersion)
	}
	return fail(fmt.Sprintf("the API server runs Kubernetes %s; Linkerd 2.19 needs 1.%d or later", v.GitVersion, minKubernetes), "upgrade the cluster")
}

// checkUnschedulable names the pods in namespace the scheduler cannot place.
func checkUnschedulable(namespace string) func(ctx context.Context, e *checkEnv) verdict {
	return func(ctx context.Context, e *checkEnv) verdict {
		pods, err := e.pods(ctx, namespace, nil)
		if err != nil {
			return unread(err)
		}
		var out []string
		for _, p := range pods {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
					out = append(out, fmt.Sprintf("pod %s/%s: %s", p.Namespace, p.Name, c.Message))
				}
			}
		}
		return found(CheckWarning, out, "add nodes, or free room on them, where the pods' affinity and tolerations allow (kubectl describe pod shows why)")
	}
}

// checkWorkloadsReady checks that each Deployment, StatefulSet and
// DaemonSet the render holds in namespace (whose name starts with prefix)
// has its pods available: as many
// as mesh.cue asks for, not as many as the live object asks for, so that a
// control plane scaled to 0 out of band fails.
func checkWorkloadsReady(stage, namespace, prefix string) func(ctx context.Context, e *checkEnv) verdict {
	return func(ctx context.Context, e *checkEnv) verdict {
		out, err := e.problems(ctx, stage, func(u *unstructured.Unstructured) bool {
			return u.GetNamespace() == namespace && strings.HasPrefix(u.GetName(), prefix) && slices.Contains([]string{"Deployment", "StatefulSet", "DaemonSet"}, u.GetKind())
		}, func(u, l *unstructured.Unstructured) []string {
			if l == nil {
				return missing(u, l)
			}
			if why := notAvailable(u, l); why != "" {
				return []string{apply.ID(u) + ": " + why}
			}
			return nil
		})
		if err != nil {
			return unread(err)
		}
		return found(CheckError, out, "kubectl describe shows why; meshctl apply restores what mesh.cue asks for")
	}
}

// notAvailable says why the live workload l does not run what its render
// u asks for, "" when it does.
func notAvailable(u, l *unstructured.Unstructured) string {
	want, ok, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
	if !ok {
		want = 1
	}
	switch l.GetKind() {
	case "DaemonSet":
		desired, _, _ := unstructured.NestedInt64(l.Object, "status", "desiredNumberScheduled")
		ready, _, _ := unstructured.NestedInt64(l.Object, "status", "numberReady")
		if ready < desired || desired == 0 {
			return fmt.Sprintf("%d of %d pods ready", ready, desired)
		}
		return ""
	}
	spec, _, _ := unstructured.NestedInt64(l.Object, "spec", "replicas")
	avail, _, _ := unstructured.NestedInt64(l.Object, "status", "availableReplicas")
	if l.GetKind() == "StatefulSet" {
		avail, _, _ = unstructured.NestedInt64(l.Object, "status", "readyReplicas")
	}
	if avail >= want {
		return ""
	}
	why := fmt.Sprintf("%d of %d replicas available", avail, want)
	if spec < want {
		why += fmt.Sprintf(" (spec.replicas is %d)", spec)
	}
	return why
}

// checkClusterNetworks warns of nodes whose pod CIDRs lie outside
// linkerd.clusterNetworks: the proxies would not resolve their pods.
func checkClusterNetworks(ctx context.Context, e *checkEnv) verdict {
	nodes, err := e.nodeList(ctx)
	if err != nil {
		return unread(err)
	}
	var nets []*net.IPNet
	for _, s := range e.m.Linkerd.ClusterNetworks {
		if _, n, err := net.ParseCIDR(s); err == nil {
			nets = append(nets, n)
		}
	}
	var out []string
	for _, n := range nodes {
		cidrs := n.Spec.PodCIDRs
		if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
			cidrs = []string{n.Spec.PodCIDR}
		}
		for _, c := range cidrs {
			ip, _, err := net.ParseCIDR(c)
			if err != nil {
				continue
			}
			if !slices.ContainsFunc(nets, func(n *net.IPNet) bool { return n.Contains(ip) }) {
				out = append(out, fmt.Sprintf("node %s has pod CIDR %s", n.Name, c))
			}
		}
	}
	return found(CheckWarning, out, "add the CIDRs to linkerd.clusterNetworks in mesh.cue, then meshctl apply")
}

// checkCNINodes checks that a ready CNI pod runs on every node that can
// run pods: a pod placed on a node without one starts unmeshed, or not at
// all.
func checkCNINodes(ctx context.Context, e *checkEnv) verdict {
	nodes, err := e.nodeList(ctx)
	if err != nil {
		return unread(err)
	}
	ds := &appsv1.DaemonSet{}
	if err := e.mem.Client.Kube().Get(ctx, client.ObjectKey{Namespace: "linkerd-cni", Name: "linkerd-cni"}, ds); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return fail("DaemonSet linkerd-cni/linkerd-cni is missing", "meshctl apply creates it again")
		}
		return unread(err)
	}
	pods, err := e.pods(ctx, ds.Namespace, client.MatchingLabels(ds.Spec.Selector.MatchLabels))
	if err != nil {
		return unread(err)
	}
	ready := map[string]bool{}
	for _, p := range pods {
		if p.DeletionTimestamp == nil && podReady(p) {
			ready[p.Spec.NodeName] = true
		}
	}
	var out []string
	for _, n := range nodes {
		if n.Spec.Unschedulable || !nodeReady(n) || ready[n.Name] {
			continue
		}
		why := "no CNI pod is ready on it"
		if t := untolerated(n, ds.Spec.Template.Spec.Tolerations); t != "" {
			why = "the DaemonSet does not tolerate its taint " + t
		}
		out = append(out, fmt.Sprintf("node %s: %s", n.Name, why))
	}
	return found(CheckError, out, "pods placed on these nodes start without the CNI plugin's redirect: fix the DaemonSet's tolerations in mesh.cue (patches) or the node, then meshctl apply")
}

func podReady(p corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func nodeReady(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// untolerated is the first NoSchedule or NoExecute taint of n that none of
// tolerations tolerates, as key=value:effect; "" when there is none.
func untolerated(n corev1.Node, tolerations []corev1.Toleration) string {
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		if !slices.ContainsFunc(tolerations, func(tol corev1.Toleration) bool { return tol.ToleratesTaint(klog.Background(), &t, true) }) {
			return fmt.Sprintf("%s=%s:%s", t.Key, t.Value, t.Effect)
		}
	}
	return ""
}

// vizChecks are linkerd-viz's, which run when applies says.
func vizChecks(applies func(e *checkEnv) bool) []checkDef {
	viz := func(id, name string, run func(ctx context.Context, e *checkEnv) verdict) checkDef {
		return checkDef{category: "linkerd-viz", id: id, name: name, upstream: true, applies: applies, run: run}
	}
	list := []checkDef{
		viz("l5d-viz-ns-exists", "linkerd-viz Namespace exists", exists("", func(u *unstructured.Unstructured) bool {
			return u.GetKind() == "Namespace" && u.GetName() == vizNamespace
		})),
		viz("l5d-viz-cr-exists", "linkerd-viz ClusterRoles exist", exists("extensions", vizKind("ClusterRole"))),
		viz("l5d-viz-crb-exists", "linkerd-viz ClusterRoleBindings exist", exists("extensions", vizKind("ClusterRoleBinding"))),
	}
	for _, d := range webhookChecks("linkerd-viz", vizNamespace) {
		d.applies = applies
		list = append(list, d)
	}
	return append(list,
		viz("l5d-tap-api", "tap API service is running", checkTapAPI),
		viz("l5d-viz-pods-running", "viz extension pods are running", checkWorkloadsReady("extensions", vizNamespace, "")),
		viz("l5d-viz-prometheus", "prometheus is installed and configured correctly", checkPrometheus),
	)
}
