package generators

import (
	"encoding/base64"
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/meshctl/meshctl/schema"
)

var (
	workloadGroups = []string{"extensions", "apps"}
	workloadKinds  = []string{"daemonsets", "deployments", "replicasets", "statefulsets"}
	jobGroups      = []string{"extensions", "batch"}
	jobKinds       = []string{"cronjobs", "jobs"}
	listVerb       = []string{"list"}
)

func svcPort(name string, port int32, target intstr.IntOrString) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, TargetPort: target}
}

func containerPort(name string, port int32) corev1.ContainerPort {
	return corev1.ContainerPort{Name: name, ContainerPort: port}
}

// vizMetricsAPI renders metrics-api, which answers the CLI's and the
// dashboard's queries from Prometheus.
func vizMetricsAPI(m *schema.Mesh) []Object {
	const name = "metrics-api"
	labels := vizLabels(name)
	objs := []Object{
		vizClusterRole("linkerd-linkerd-viz-metrics-api", labels,
			rule(workloadGroups, workloadKinds, readVerbs),
			rule(jobGroups, jobKinds, readVerbs),
			rule(core, []string{"pods", "endpoints", "services", "replicationcontrollers", "namespaces"}, readVerbs),
			rule([]string{"linkerd.io"}, []string{"serviceprofiles"}, readVerbs),
			rule([]string{"policy.linkerd.io"}, []string{"servers", "serverauthorizations", "authorizationpolicies", "httproutes"}, []string{"list", "get"}),
		),
		vizClusterRoleBinding("linkerd-linkerd-viz-metrics-api", "linkerd-linkerd-viz-metrics-api", name, labels),
		vizServiceAccount(name, labels),
		vizService(m, name, labels, labels, []corev1.ServicePort{svcPort("http", 8085, intstr.FromInt32(8085))}),
	}
	args := []string{"-controller-namespace=" + linkerdNamespace}
	args = append(args, vizLogArgs()...)
	args = append(args,
		"-cluster-domain="+m.Linkerd.ClusterDomain,
		"-prometheus-url="+vizPrometheusURL(m),
		"-enable-pprof=false",
	)
	c := vizContainer(m, name, "metrics-api", args,
		[]corev1.ContainerPort{containerPort("http", 8085), containerPort("admin", 9995)}, 9995, schema.Resources{})
	return append(objs, vizDeployment(m, vizDeploy{name: name, container: c, labels: labels, selector: labels}))
}

// vizTap renders tap, the aggregated API (tap.linkerd.io) that streams
// live requests from the proxies.
func vizTap(m *schema.Mesh, in Inputs) []Object {
	const name = "tap"
	labels := vizLabels(name)
	nsLabels := withNamespaceLabel(labels, vizNamespace)
	objs := []Object{
		vizClusterRole("linkerd-linkerd-viz-tap", labels,
			rule(core, []string{"pods", "services", "replicationcontrollers", "namespaces", "nodes"}, readVerbs),
			rule(workloadGroups, workloadKinds, readVerbs),
			rule(jobGroups, jobKinds, readVerbs),
		),
		vizClusterRole("linkerd-linkerd-viz-tap-admin", labels,
			rule(core, []string{"namespaces"}, listVerb),
			rule([]string{"tap.linkerd.io"}, []string{"*"}, []string{"watch"}),
		),
		vizClusterRoleBinding("linkerd-linkerd-viz-tap", "linkerd-linkerd-viz-tap", name, labels),
		vizClusterRoleBinding("linkerd-linkerd-viz-tap-auth-delegator", "system:auth-delegator", name, labels),
		vizServiceAccount(name, nsLabels),
		vizRoleBinding("linkerd-linkerd-viz-tap-auth-reader", "kube-system", "extension-apiserver-authentication-reader", name, nsLabels),
	}
	objs = append(objs, vizTLSSecret(m, in, name, nsLabels)...)
	objs = append(objs, tapAPIService(in, labels))
	objs = append(objs, vizService(m, name, nsLabels, labels, []corev1.ServicePort{
		svcPort("grpc", 8088, intstr.FromInt32(8088)),
		svcPort("apiserver", 443, intstr.FromString("apiserver")),
	}))

	args := append([]string{"api", "-api-namespace=" + linkerdNamespace}, vizLogArgs()...)
	args = append(args, "-identity-trust-domain="+m.ControlPlane.Identity.TrustDomain, "-enable-pprof=false")
	c := vizContainer(m, name, "tap", args, []corev1.ContainerPort{
		containerPort("grpc", 8088), containerPort("apiserver", 8089), containerPort("admin", 9998),
	}, 9998, vizHAResources(m))
	vol, mount := vizTLSVolume(name)
	c.VolumeMounts = []corev1.VolumeMount{mount}
	replicas := int32(1)
	if m.Viz.HA {
		replicas = 3
	}
	objs = append(objs, vizDeployment(m, vizDeploy{
		name: name, container: c, volumes: []corev1.Volume{vol},
		labels: nsLabels, selector: nsLabels, replicas: replicas, haStrategy: true,
	}))
	return append(objs, vizPDB(m, name, nsLabels)...)
}

// tapAPIService registers tap with the API server's aggregation layer.
func tapAPIService(in Inputs, labels map[string]string) Object {
	spec := map[string]any{
		"group":                "tap.linkerd.io",
		"version":              "v1alpha1",
		"groupPriorityMinimum": int64(1000),
		"versionPriority":      int64(100),
		"service":              map[string]any{"name": "tap", "namespace": vizNamespace},
	}
	if ca := vizCABundle(in, "tap"); ca != nil {
		spec["caBundle"] = base64.StdEncoding.EncodeToString(ca)
	}
	return vizResource("apiregistration.k8s.io/v1", "APIService", "v1alpha1.tap.linkerd.io", "", labels, nil, spec)
}

// vizTapInjector renders tap-injector, the webhook that marks pods tap
// may watch.
func vizTapInjector(m *schema.Mesh, in Inputs) []Object {
	const name = "tap-injector"
	ext := map[string]string{labelExtension: "viz"}
	objs := []Object{
		vizClusterRole("linkerd-tap-injector", ext, rule(core, []string{"namespaces"}, []string{"get", "list", "watch"})),
		vizClusterRoleBinding("linkerd-tap-injector", "linkerd-tap-injector", name, ext),
		vizServiceAccount(name, ext),
	}
	objs = append(objs, vizTLSSecret(m, in, name, ext)...)
	objs = append(objs, toObject(StageExtensions, gvkMWC, &admissionv1.MutatingWebhookConfiguration{
		ObjectMeta: objectMeta("linkerd-tap-injector-webhook-config", "", ext, nil),
		Webhooks: []admissionv1.MutatingWebhook{{
			Name: "tap-injector.linkerd.io",
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: labelNamespaceName, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system"}},
			}},
			ClientConfig: admissionv1.WebhookClientConfig{
				Service:  &admissionv1.ServiceReference{Name: name, Namespace: vizNamespace, Path: ptr.To("/")},
				CABundle: vizCABundle(in, name),
			},
			// Ignore even with HA, as upstream: tap is a debugging aid
			// that must never stop a pod from being created.
			FailurePolicy:      ptr.To(admissionv1.Ignore),
			ReinvocationPolicy: ptr.To(admissionv1.IfNeededReinvocationPolicy),
			Rules: []admissionv1.RuleWithOperations{{
				Operations: []admissionv1.OperationType{admissionv1.Create},
				Rule: admissionv1.Rule{APIGroups: core, APIVersions: []string{"v1"}, Resources: []string{"pods"},
					Scope: ptr.To(admissionv1.NamespacedScope)},
			}},
			SideEffects:             ptr.To(admissionv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1", "v1beta1"},
		}},
	}))
	labels := vizLabels(name)
	objs = append(objs, vizService(m, name, labels, labels, []corev1.ServicePort{
		svcPort("tap-injector", 443, intstr.FromString("tap-injector")),
	}))
	args := []string{"injector", "-tap-service-name=" + identityName(m, "tap", vizNamespace)}
	args = append(append(args, vizLogArgs()...), "-enable-pprof=false")
	c := vizContainer(m, name, "tap", args, []corev1.ContainerPort{
		containerPort("tap-injector", 8443), containerPort("admin", 9995),
	}, 9995, schema.Resources{})
	vol, mount := vizTLSVolume(name)
	c.VolumeMounts = []corev1.VolumeMount{mount}
	return append(objs, vizDeployment(m, vizDeploy{
		name: name, container: c, volumes: []corev1.Volume{vol},
		labels: labels, selector: map[string]string{labelComponent: name},
		noVersionLabel: true, haStrategy: true,
	}))
}

// vizWeb renders the dashboard and the RBAC that its checks and views use.
func vizWeb(m *schema.Mesh) []Object {
	const name = "web"
	labels := vizLabels(name)
	nsLabels := withNamespaceLabel(labels, vizNamespace)
	inLinkerd := withNamespaceLabel(labels, linkerdNamespace)
	objs := []Object{
		toObject(StageExtensions, gvkRole, &rbacv1.Role{
			ObjectMeta: objectMeta(name, linkerdNamespace, inLinkerd, nil),
			Rules: []rbacv1.PolicyRule{
				{APIGroups: core, Resources: []string{"configmaps"}, Verbs: []string{"get"}, ResourceNames: []string{"linkerd-config"}},
				rule(core, []string{"namespaces", "configmaps"}, []string{"get"}),
				rule(core, []string{"serviceaccounts", "pods"}, listVerb),
				rule([]string{"apps"}, []string{"replicasets"}, listVerb),
			},
		}),
		vizRoleBinding(name, linkerdNamespace, name, name, inLinkerd),
		vizClusterRole("linkerd-linkerd-viz-web-check", labels,
			rule([]string{"rbac.authorization.k8s.io"}, []string{"clusterroles", "clusterrolebindings"}, listVerb),
			rule([]string{"apiextensions.k8s.io"}, []string{"customresourcedefinitions"}, listVerb),
			rule([]string{"admissionregistration.k8s.io"}, []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"}, listVerb),
			rule([]string{"linkerd.io"}, []string{"serviceprofiles"}, listVerb),
			rule(core, []string{"nodes", "pods", "services"}, listVerb),
			rule([]string{"apiregistration.k8s.io"}, []string{"apiservices"}, []string{"get"}),
		),
		vizClusterRoleBinding("linkerd-linkerd-viz-web-check", "linkerd-linkerd-viz-web-check", name, labels),
		vizClusterRoleBinding("linkerd-linkerd-viz-web-admin", "linkerd-linkerd-viz-tap-admin", name, labels),
		vizClusterRole("linkerd-linkerd-viz-web-api", labels, rule(core, []string{"namespaces"}, listVerb)),
		vizClusterRoleBinding("linkerd-linkerd-viz-web-api", "linkerd-linkerd-viz-web-api", name, labels),
		vizServiceAccount(name, nsLabels),
		vizService(m, name, nsLabels, labels, []corev1.ServicePort{
			svcPort("http", 8084, intstr.FromInt32(8084)),
			svcPort("admin", 9994, intstr.FromInt32(9994)),
		}),
	}
	c := vizContainer(m, name, "web", webArgs(m), []corev1.ContainerPort{
		containerPort("http", 8084), containerPort("admin", 9994),
	}, 9994, vizHAResources(m))
	return append(objs, vizDeployment(m, vizDeploy{name: name, container: c, labels: nsLabels, selector: nsLabels}))
}

// webArgs are the dashboard's flags, in upstream's order.
//
// grafana.url is a browser-facing http(s) URL (the schema insists on the
// scheme), so it is upstream's grafana.externalUrl, -grafana-external-addr;
// -grafana-addr takes a bare in-cluster host:port that web proxies to.
// -jaeger-addr does take host:port, which vizJaegerURL defaults to.
func webArgs(m *schema.Mesh) []string {
	args := []string{
		fmt.Sprintf("-linkerd-metrics-api-addr=metrics-api.%s.svc.%s:8085", vizNamespace, m.Linkerd.ClusterDomain),
		"-cluster-domain=" + m.Linkerd.ClusterDomain,
	}
	if u := m.Viz.Grafana.URL; u != "" {
		args = append(args, "-grafana-external-addr="+u)
	}
	if u := vizJaegerURL(m); u != "" {
		args = append(args, "-jaeger-addr="+u)
	}
	args = append(args, "-controller-namespace="+linkerdNamespace)
	args = append(args, vizLogArgs()...)
	quote := func(s string) string { return strings.ReplaceAll(s, ".", `\.`) }
	full := quote(fmt.Sprintf("web.%s.svc.%s", vizNamespace, m.Linkerd.ClusterDomain))
	short := quote(fmt.Sprintf("web.%s.svc", vizNamespace))
	args = append(args, fmt.Sprintf(`-enforced-host=^(localhost|127\.0\.0\.1|%s|%s|\[::1\])(:\d+)?$`, full, short))
	return append(args, "-enable-pprof=false")
}
