package generators

import (
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/meshctl/meshctl/schema"
)

// proxyInjector renders the proxy injector, its webhook, RBAC and Service.
func proxyInjector(m *schema.Mesh, in Inputs) []Object {
	const comp, name = "proxy-injector", "linkerd-proxy-injector"
	objs := clusterRoleBound("linkerd-linkerd-proxy-injector", "linkerd-linkerd-proxy-injector", comp, name, []rbacv1.PolicyRule{
		rule(core, []string{"events"}, []string{"create", "patch"}),
		rule(core, []string{"namespaces", "replicationcontrollers"}, readVerbs),
		rule(core, []string{"pods"}, []string{"list", "watch"}),
		rule([]string{"extensions", "apps"}, []string{"deployments", "replicasets", "daemonsets", "statefulsets"}, readVerbs),
		rule([]string{"extensions", "batch"}, []string{"cronjobs", "jobs"}, readVerbs),
	})
	objs = append(objs, serviceAccount(name, comp))
	webhooks := tlsSecret(m, in, name, comp)
	webhooks = append(webhooks, toObject(StageControlPlane, gvkMWC, &admissionv1.MutatingWebhookConfiguration{
		ObjectMeta: objectMeta("linkerd-proxy-injector-webhook-config", "", cpLabels(comp), nil),
		Webhooks: []admissionv1.MutatingWebhook{{
			Name:              "linkerd-proxy-injector.linkerd.io",
			NamespaceSelector: webhookNamespaces("kube-system", "cert-manager"),
			ClientConfig:      webhookClient(in, name),
			FailurePolicy:     failurePolicy(m),
			Rules: []admissionv1.RuleWithOperations{{
				Operations: []admissionv1.OperationType{admissionv1.Create},
				Rule: admissionv1.Rule{APIGroups: core, APIVersions: []string{"v1"}, Resources: []string{"pods", "services"},
					Scope: ptr.To(admissionv1.NamespacedScope)},
			}},
			SideEffects:             ptr.To(admissionv1.SideEffectClassNone),
			TimeoutSeconds:          ptr.To(int32(10)),
			AdmissionReviewVersions: []string{"v1", "v1beta1"},
		}},
	}))
	objs = append(objs, webhooks...)

	args := append(append([]string{"proxy-injector"}, logArgs(m)...), "-linkerd-namespace="+linkerdNamespace, "-enable-pprof=false")
	c := controllerContainer(m, "proxy-injector", args, intstr.FromInt32(9995), m.ControlPlane.Resources.ProxyInjector)
	c.Ports = []corev1.ContainerPort{{Name: "proxy-injector", ContainerPort: 8443}, {Name: "injector-admin", ContainerPort: 9995}}
	c.VolumeMounts = []corev1.VolumeMount{
		{Name: "config", MountPath: "/var/run/linkerd/config"},
		{Name: "trust-roots", MountPath: "/var/run/linkerd/identity/trust-roots"},
		{Name: "tls", MountPath: "/var/run/linkerd/tls", ReadOnly: true},
	}
	objs = append(objs, deployment(m, in, cpDeploy{
		name: name, component: comp, sa: name, proxyFirst: true, selectorComponentOnly: true,
		containers: []corev1.Container{c},
		proxy:      podProxy{inboundPorts: "8443,9995", await: true},
		volumes: []corev1.Volume{
			{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "linkerd-config"}}}},
			{Name: "trust-roots", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "linkerd-identity-trust-roots"}}}},
			secretVolume("tls", name+"-k8s-tls"),
		},
		annotations: map[string]string{
			"checksum/config":                checksum(webhooks),
			"config.linkerd.io/opaque-ports": "8443",
		},
	}))
	objs = append(objs, service(m, name, comp, false,
		[]corev1.ServicePort{{Name: "proxy-injector", Port: 443, TargetPort: intstr.FromString("proxy-injector")}},
		map[string]string{"config.linkerd.io/opaque-ports": "443"}))
	return append(objs, pdb(m, name, comp)...)
}
