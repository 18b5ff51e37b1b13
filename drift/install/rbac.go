package install

import (
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
)

// Rule is one row of the reconciler's ClusterRole: the verbs it needs on
// one resource, and why.
type Rule struct {
	Group    string
	Resource string
	// Kind is the kind meshctl renders as this resource; "" for a resource
	// the apply path only reads.
	Kind  string
	Verbs []string
	Why   string
}

// Verb sets of the table.
var (
	// manage: what apply, diff, prune and the watch need on a kind meshctl
	// renders. Server-side apply of a new object is a patch that the API
	// server also authorizes as a create; prune deletes; the loop's
	// informers list and watch; prune and the readiness checks get.
	manage = []string{"create", "delete", "get", "list", "patch", "watch"}
	// manageUpdated adds update, for the objects meshctl writes with a
	// plain update: its inventory and status ConfigMaps, and the Secret
	// meshctl-certificates when a certificate is rotated.
	manageUpdated = []string{"create", "delete", "get", "list", "patch", "update", "watch"}
	// manageRBAC adds bind and escalate, see rbacWhy.
	manageRBAC = []string{"bind", "create", "delete", "escalate", "get", "list", "patch", "watch"}
	// listOnly: the prune guards list what a CRD or a Namespace holds
	// before either is deleted.
	listOnly = []string{"list"}
)

// rbacWhy says why the ClusterRole holds bind and escalate: the API server
// refuses to let anyone create a Role or ClusterRole granting permissions
// they do not hold (escalate), or a binding to one (bind). Linkerd's
// control plane, viz and multicluster need permissions the reconciler has
// no use for itself (pods, endpoints, endpointslices, tokenreviews...), so
// without these verbs every apply of Linkerd's RBAC would be Forbidden.
// They make the reconciler able to grant anything: managing Linkerd's RBAC
// is admin-equivalent by nature, and the install is for clusters where
// that is accepted.
const rbacWhy = "Linkerd's RBAC grants what the reconciler does not hold: bind and escalate let it write it (admin-equivalent by nature)"

// Rules is the reconciler's ClusterRole, one row per resource: exactly the
// kinds meshctl renders, with what apply, prune and the watch need, and the
// few resources the apply path reads. drift/install's RBAC test applies
// every example and golden mesh with it, and fails when a generator renders
// a kind that is not here.
var Rules = []Rule{
	// Rendered kinds: the core group and the built-in APIs.
	{"", "namespaces", "Namespace", manage, "rendered"},
	{"", "serviceaccounts", "ServiceAccount", manage, "rendered"},
	{"", "services", "Service", manage, "rendered; the headless-Service warning lists them"},
	{"", "configmaps", "ConfigMap", manageUpdated, "rendered; the inventory, the loop's status and the rollout states"},
	{"", "secrets", "Secret", manageUpdated, "rendered; the certificates meshctl keeps, and their rotation"},
	{"apps", "deployments", "Deployment", manage, "rendered; safeToEvict's pod-template fallback; the rollouts' candidates (a new pod template starts over)"},
	{"apps", "daemonsets", "DaemonSet", manage, "rendered (CNI); safeToEvict's pod-template fallback"},
	{"batch", "cronjobs", "CronJob", manage, "rendered (heartbeat); safeToEvict's pod-template fallback"},
	{"policy", "poddisruptionbudgets", "PodDisruptionBudget", manage, "rendered (HA)"},
	{"rbac.authorization.k8s.io", "clusterroles", "ClusterRole", manageRBAC, rbacWhy},
	{"rbac.authorization.k8s.io", "clusterrolebindings", "ClusterRoleBinding", manage, "rendered"},
	{"rbac.authorization.k8s.io", "roles", "Role", manageRBAC, rbacWhy},
	{"rbac.authorization.k8s.io", "rolebindings", "RoleBinding", manage, "rendered"},
	{"admissionregistration.k8s.io", "mutatingwebhookconfigurations", "MutatingWebhookConfiguration", manage, "rendered (proxy injector)"},
	{"admissionregistration.k8s.io", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", manage, "rendered (policy validator, SP validator)"},
	{"admissionregistration.k8s.io", "mutatingadmissionpolicies", "MutatingAdmissionPolicy", manage, "rendered (safeToEvict)"},
	{"admissionregistration.k8s.io", "mutatingadmissionpolicybindings", "MutatingAdmissionPolicyBinding", manage, "rendered (safeToEvict)"},
	{"apiextensions.k8s.io", "customresourcedefinitions", "CustomResourceDefinition", manage, "rendered (Linkerd's, Gateway API's, SMI's)"},
	{"apiregistration.k8s.io", "apiservices", "APIService", manage, "rendered (viz tap)"},
	// Rendered kinds: custom resources.
	{"linkerd.io", "serviceprofiles", "ServiceProfile", manage, "rendered"},
	{"policy.linkerd.io", "servers", "Server", manage, "rendered"},
	{"policy.linkerd.io", "authorizationpolicies", "AuthorizationPolicy", manage, "rendered"},
	{"policy.linkerd.io", "meshtlsauthentications", "MeshTLSAuthentication", manage, "rendered"},
	{"policy.linkerd.io", "networkauthentications", "NetworkAuthentication", manage, "rendered"},
	{"policy.linkerd.io", "httproutes", "HTTPRoute", manage, "rendered (traffic, faults)"},
	{"split.smi-spec.io", "trafficsplits", "TrafficSplit", manage, "rendered (SMI)"},
	{"multicluster.linkerd.io", "links", "Link", manage, "rendered (multicluster)"},
	{"monitoring.coreos.com", "podmonitors", "PodMonitor", manage, "rendered (viz with the Prometheus Operator)"},
	{"cert-manager.io", "certificates", "Certificate", manage, "rendered (issuer from cert-manager)"},
	// Read, or patched, by the apply path, never rendered.
	{"", "nodes", "", listOnly, "the HA check counts nodes and zones; a NodePort gateway's addresses"},
	{"", "pods", "", listOnly, "why a rollout waits (--wait); the Namespace prune guard"},
	{"apps", "statefulsets", "", []string{"get", "list", "patch"}, "safeToEvict's pod-template fallback; the Namespace prune guard"},
	// The custom resources of the CRDs meshctl renders but holds none of:
	// the CRD prune guard keeps a CRD while objects of it remain.
	{"policy.linkerd.io", "egressnetworks", "", listOnly, "CRD prune guard"},
	{"policy.linkerd.io", "httplocalratelimitpolicies", "", listOnly, "CRD prune guard"},
	{"policy.linkerd.io", "serverauthorizations", "", listOnly, "CRD prune guard"},
	{"workload.linkerd.io", "externalworkloads", "", listOnly, "CRD prune guard"},
	// The Gateway API route CRDs meshctl installs and never prunes: the
	// Namespace prune guard lists their routes.
	{"gateway.networking.k8s.io", "grpcroutes", "", listOnly, "Namespace prune guard"},
	{"gateway.networking.k8s.io", "httproutes", "", listOnly, "Namespace prune guard"},
	{"gateway.networking.k8s.io", "tcproutes", "", listOnly, "Namespace prune guard"},
	{"gateway.networking.k8s.io", "tlsroutes", "", listOnly, "Namespace prune guard"},
	// The Namespace prune guard lists every kind a namespace can hold before
	// it deletes one: these are the built-in ones not above. A namespace
	// holding a kind the reconciler cannot list is kept, and the apply
	// says which.
	{"", "limitranges", "", listOnly, "Namespace prune guard"},
	{"", "persistentvolumeclaims", "", listOnly, "Namespace prune guard"},
	{"", "podtemplates", "", listOnly, "Namespace prune guard"},
	{"", "replicationcontrollers", "", listOnly, "Namespace prune guard"},
	{"", "resourcequotas", "", listOnly, "Namespace prune guard"},
	{"apps", "controllerrevisions", "", listOnly, "Namespace prune guard"},
	{"apps", "replicasets", "", listOnly, "Namespace prune guard"},
	{"autoscaling", "horizontalpodautoscalers", "", listOnly, "Namespace prune guard"},
	{"batch", "jobs", "", listOnly, "Namespace prune guard"},
	{"certificates.k8s.io", "podcertificaterequests", "", listOnly, "Namespace prune guard"},
	{"coordination.k8s.io", "leases", "", listOnly, "Namespace prune guard"},
	{"discovery.k8s.io", "endpointslices", "", listOnly, "Namespace prune guard"},
	{"networking.k8s.io", "ingresses", "", listOnly, "Namespace prune guard"},
	{"networking.k8s.io", "networkpolicies", "", listOnly, "Namespace prune guard"},
	{"resource.k8s.io", "resourceclaims", "", listOnly, "Namespace prune guard"},
	{"resource.k8s.io", "resourceclaimtemplates", "", listOnly, "Namespace prune guard"},
	{"storage.k8s.io", "csistoragecapacities", "", listOnly, "Namespace prune guard"},
}

// clusterRules groups Rules into PolicyRules: one per API group and verb
// set, resources sorted, so that the ClusterRole is short and stable.
func clusterRules() []rbacv1.PolicyRule {
	type key struct{ group, verbs string }
	byKey := map[key][]string{}
	var keys []key
	for _, r := range Rules {
		k := key{r.Group, strings.Join(r.Verbs, ",")}
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], r.Resource)
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := strings.Compare(a.group, b.group); c != 0 {
			return c
		}
		return strings.Compare(a.verbs, b.verbs)
	})
	out := make([]rbacv1.PolicyRule, 0, len(keys))
	for _, k := range keys {
		res := slices.Sorted(slices.Values(byKey[k]))
		out = append(out, rbacv1.PolicyRule{APIGroups: []string{k.group}, Resources: res, Verbs: strings.Split(k.verbs, ",")})
	}
	return out
}

// namespaceRules is the Role in the meshctl namespace: the leader-election
// Lease, and the Events the loop records on its inventory ConfigMap
// (client-go's recorder writes core Events; events.k8s.io is the same
// resource under its newer API).
func namespaceRules(lease string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{lease}, Verbs: []string{"get", "update"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
}
