package generators

import (
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
	gvkVWC = admissionv1.SchemeGroupVersion.WithKind("ValidatingWebhookConfiguration")
	gvkMWC = admissionv1.SchemeGroupVersion.WithKind("MutatingWebhookConfiguration")

	policyKinds  = []string{"authorizationpolicies", "httplocalratelimitpolicies", "httproutes", "networkauthentications", "meshtlsauthentications", "serverauthorizations", "servers", "egressnetworks"}
	gatewayKinds = []string{"httproutes", "grpcroutes", "tlsroutes", "tcproutes"}
)

// destination renders the destination controller with its sp-validator and
// policy containers, their webhooks, RBAC and Services.
func destination(m *schema.Mesh, in Inputs) []Object {
	const comp, name = "destination", "linkerd-destination"
	objs := clusterRoleBound("linkerd-linkerd-destination", "linkerd-linkerd-destination", comp, name, []rbacv1.PolicyRule{
		rule([]string{"apps"}, []string{"replicasets"}, readVerbs),
		rule([]string{"batch"}, []string{"jobs"}, readVerbs),
		rule(core, []string{"pods", "endpoints", "services", "nodes"}, readVerbs),
		rule([]string{"linkerd.io"}, []string{"serviceprofiles"}, readVerbs),
		rule([]string{"workload.linkerd.io"}, []string{"externalworkloads"}, readVerbs),
		rule([]string{"coordination.k8s.io"}, []string{"leases"}, []string{"create", "get", "update", "patch"}),
		rule([]string{"discovery.k8s.io"}, []string{"endpointslices"}, []string{"list", "get", "watch", "create", "update", "patch", "delete"}),
	})
	objs = append(objs, serviceAccount(name, comp))

	webhooks := tlsSecret(m, in, "linkerd-sp-validator", comp)
	webhooks = append(webhooks, spValidatorWebhook(m, in))
	webhooks = append(webhooks, tlsSecret(m, in, "linkerd-policy-validator", comp)...)
	webhooks = append(webhooks, policyValidatorWebhook(m, in))
	objs = append(objs, webhooks...)

	objs = append(objs, clusterRoleBound("linkerd-policy", "linkerd-destination-policy", comp, name, policyRules())...)
	objs = append(objs, roleBound("remote-discovery", "linkerd-destination-remote-discovery", comp, name, []rbacv1.PolicyRule{
		rule(core, []string{"secrets"}, []string{"get", "list", "watch"}),
	})...)

	port := func(name string, p int32, target intstr.IntOrString) []corev1.ServicePort {
		return []corev1.ServicePort{{Name: name, Port: p, TargetPort: target}}
	}
	objs = append(objs,
		service(m, "linkerd-dst", comp, false, port("grpc", 8086, intstr.FromInt32(8086)), nil),
		service(m, "linkerd-dst-headless", comp, true, port("grpc", 8086, intstr.FromInt32(8086)), nil),
		service(m, "linkerd-sp-validator", comp, false, port("sp-validator", 443, intstr.FromString("sp-validator")), nil),
		service(m, "linkerd-policy", comp, true, port("grpc", 8090, intstr.FromInt32(8090)), nil),
		service(m, "linkerd-policy-validator", comp, false, port("policy-https", 443, intstr.FromString("policy-https")), nil),
	)

	objs = append(objs, deployment(m, in, cpDeploy{
		name: name, component: comp, sa: name, proxyFirst: true,
		containers: []corev1.Container{destinationContainer(m), spValidatorContainer(m), policyContainer(m)},
		proxy: podProxy{
			inboundPorts: "8086,8090,8443,9443,9990,9996,9997",
			destAddr:     "localhost.:8086",
			policyAddr:   "localhost.:8090",
			await:        true,
		},
		volumes: []corev1.Volume{
			secretVolume("sp-tls", "linkerd-sp-validator-k8s-tls"),
			secretVolume("policy-tls", "linkerd-policy-validator-k8s-tls"),
		},
		annotations: map[string]string{"checksum/config": checksum(webhooks)},
	}))
	return append(objs, pdb(m, "linkerd-dst", comp)...)
}

func secretVolume(name, secret string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}
}

// policyRules grants the policy controller its indexes and status writes.
func policyRules() []rbacv1.PolicyRule {
	status := func(kinds []string) []string {
		out := make([]string, len(kinds))
		for i, k := range kinds {
			out[i] = k + "/status"
		}
		return out
	}
	return []rbacv1.PolicyRule{
		rule(core, []string{"pods"}, []string{"get", "list", "watch"}),
		rule([]string{"apps"}, []string{"deployments"}, []string{"get"}),
		rule([]string{"policy.linkerd.io"}, policyKinds, []string{"get", "list", "watch"}),
		rule([]string{"gateway.networking.k8s.io"}, gatewayKinds, []string{"get", "list", "watch"}),
		rule([]string{"workload.linkerd.io"}, []string{"externalworkloads"}, []string{"get", "list", "watch"}),
		rule([]string{"policy.linkerd.io"}, status([]string{"httproutes", "httplocalratelimitpolicies", "egressnetworks"}), []string{"patch"}),
		rule([]string{"gateway.networking.k8s.io"}, status(gatewayKinds), []string{"patch"}),
		rule([]string{"coordination.k8s.io"}, []string{"leases"}, []string{"create", "get", "patch"}),
	}
}

func destinationContainer(m *schema.Mesh) corev1.Container {
	cd, id := m.Linkerd.ClusterDomain, m.ControlPlane.Identity.TrustDomain
	args := []string{
		"destination",
		"-addr=:8086",
		"-controller-namespace=" + linkerdNamespace,
		"-outbound-transport-mode=transport-header",
		"-enable-h2-upgrade=true",
	}
	args = append(args, logArgs(m)...)
	args = append(args,
		"-enable-endpoint-slices=true",
		"-cluster-domain="+cd,
		"-identity-trust-domain="+id,
		"-default-opaque-ports="+strings.Join(m.ControlPlane.Proxy.OpaquePorts, ","),
		"-enable-ipv6=false",
		"-enable-pprof=false",
		`--meshed-http2-client-params={"keep_alive":{"interval":{"seconds":10},"timeout":{"seconds":3},"while_idle":true}}`,
	)
	args = append(args, controllerTracingArgs(m)...)
	c := controllerContainer(m, "destination", args, intstr.FromInt32(9996), m.ControlPlane.Resources.Destination)
	c.Ports = []corev1.ContainerPort{{Name: "dest-grpc", ContainerPort: 8086}, {Name: "dest-admin", ContainerPort: 9996}}
	return c
}

func spValidatorContainer(m *schema.Mesh) corev1.Container {
	args := append(append([]string{"sp-validator"}, logArgs(m)...), "-enable-pprof=false")
	c := controllerContainer(m, "sp-validator", args, intstr.FromInt32(9997), schema.Resources{})
	c.LivenessProbe.TimeoutSeconds, c.ReadinessProbe.TimeoutSeconds = 1, 1
	c.Ports = []corev1.ContainerPort{{Name: "sp-validator", ContainerPort: 8443}, {Name: "spval-admin", ContainerPort: 9997}}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "sp-tls", MountPath: "/var/run/linkerd/tls", ReadOnly: true}}
	return c
}

func policyContainer(m *schema.Mesh) corev1.Container {
	cd, id := m.Linkerd.ClusterDomain, m.ControlPlane.Identity.TrustDomain
	p := m.ControlPlane.Proxy
	c := controllerContainer(m, "policy", []string{
		"--admin-addr=0.0.0.0:9990",
		"--control-plane-namespace=" + linkerdNamespace,
		"--grpc-addr=0.0.0.0:8090",
		"--server-addr=0.0.0.0:9443",
		"--server-tls-key=/var/run/linkerd/tls/tls.key",
		"--server-tls-certs=/var/run/linkerd/tls/tls.crt",
		"--cluster-networks=" + strings.Join(m.Linkerd.ClusterNetworks, ","),
		"--identity-domain=" + id,
		"--cluster-domain=" + cd,
		"--default-policy=" + p.DefaultInboundPolicy,
		"--log-level=" + m.ControlPlane.LogLevel,
		"--log-format=" + m.ControlPlane.LogFormat,
		"--default-opaque-ports=" + strings.Join(p.OpaquePorts, ","),
		"--global-egress-network-namespace=linkerd-egress",
		"--probe-networks=0.0.0.0/0,::/0",
	}, intstr.FromString("policy-admin"), schema.Resources{})
	c.Command = []string{"/linkerd-policy-controller"}
	c.LivenessProbe = httpProbe("/live", intstr.FromString("policy-admin"))
	c.ReadinessProbe = httpProbe("/ready", intstr.FromString("policy-admin"))
	c.Ports = []corev1.ContainerPort{
		{Name: "policy-grpc", ContainerPort: 8090},
		{Name: "policy-admin", ContainerPort: 9990},
		{Name: "policy-https", ContainerPort: 9443},
	}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "policy-tls", MountPath: "/var/run/linkerd/tls", ReadOnly: true}}
	return c
}

// webhookNamespaces exempts namespaces labelled admission-webhooks=disabled.
func webhookNamespaces(exclude ...string) *metav1.LabelSelector {
	sel := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "config.linkerd.io/admission-webhooks", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"disabled"}},
	}}
	if len(exclude) > 0 {
		sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: exclude,
		})
	}
	return sel
}

func webhookClient(in Inputs, svc string) admissionv1.WebhookClientConfig {
	return admissionv1.WebhookClientConfig{
		Service:  &admissionv1.ServiceReference{Name: svc, Namespace: linkerdNamespace, Path: ptr.To("/")},
		CABundle: caBundle(in, svc),
	}
}

func failurePolicy(m *schema.Mesh) *admissionv1.FailurePolicyType {
	return ptr.To(admissionv1.FailurePolicyType(m.ControlPlane.WebhookFailurePolicy))
}

func spValidatorWebhook(m *schema.Mesh, in Inputs) Object {
	return toObject(StageControlPlane, gvkVWC, &admissionv1.ValidatingWebhookConfiguration{
		ObjectMeta: objectMeta("linkerd-sp-validator-webhook-config", "", cpLabels("sp-validator"), nil),
		Webhooks: []admissionv1.ValidatingWebhook{{
			Name:                    "linkerd-sp-validator.linkerd.io",
			NamespaceSelector:       webhookNamespaces(),
			ClientConfig:            webhookClient(in, "linkerd-sp-validator"),
			FailurePolicy:           failurePolicy(m),
			Rules:                   []admissionv1.RuleWithOperations{webhookRule([]string{"linkerd.io"}, []string{"v1alpha1", "v1alpha2"}, []string{"serviceprofiles"})},
			SideEffects:             ptr.To(admissionv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1", "v1beta1"},
		}},
	})
}

func policyValidatorWebhook(m *schema.Mesh, in Inputs) Object {
	return toObject(StageControlPlane, gvkVWC, &admissionv1.ValidatingWebhookConfiguration{
		ObjectMeta: objectMeta("linkerd-policy-validator-webhook-config", "", cpLabels("policy-validator"), nil),
		Webhooks: []admissionv1.ValidatingWebhook{{
			Name:              "linkerd-policy-validator.linkerd.io",
			NamespaceSelector: webhookNamespaces(),
			ClientConfig:      webhookClient(in, "linkerd-policy-validator"),
			FailurePolicy:     failurePolicy(m),
			Rules: []admissionv1.RuleWithOperations{
				webhookRule([]string{"policy.linkerd.io"}, []string{"*"}, policyKinds),
				webhookRule([]string{"gateway.networking.k8s.io"}, []string{"*"}, gatewayKinds),
			},
			SideEffects:             ptr.To(admissionv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1", "v1beta1"},
		}},
	})
}

func webhookRule(groups, versions, resources []string) admissionv1.RuleWithOperations {
	return admissionv1.RuleWithOperations{
		Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
		Rule:       admissionv1.Rule{APIGroups: groups, APIVersions: versions, Resources: resources},
	}
}
