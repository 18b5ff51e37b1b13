package generators

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshctl/meshctl/schema"
)

// identity renders the identity controller, its RBAC and Services, and the
// trust-root and issuer objects whose material the render knows.
func identity(m *schema.Mesh, in Inputs) []Object {
	const comp, name = "identity", "linkerd-identity"
	id := m.ControlPlane.Identity
	objs := clusterRoleBound("linkerd-linkerd-identity", "linkerd-linkerd-identity", comp, name, []rbacv1.PolicyRule{
		rule([]string{"authentication.k8s.io"}, []string{"tokenreviews"}, []string{"create"}),
		rule(core, []string{"events"}, []string{"create", "patch"}),
	})
	objs = append(objs, serviceAccount(name, comp))
	objs = append(objs, trustRoots(m, in)...)
	objs = append(objs, issuer(m, in)...)
	grpc := []corev1.ServicePort{{Name: "grpc", Port: 8080, TargetPort: intstr.FromInt32(8080)}}
	objs = append(objs,
		service(m, "linkerd-identity", comp, false, grpc, nil),
		service(m, "linkerd-identity-headless", comp, true, grpc, nil),
	)

	args := []string{"identity"}
	args = append(args, logArgs(m)...)
	args = append(args,
		"-controller-namespace="+linkerdNamespace,
		"-identity-trust-domain="+id.TrustDomain,
		"-identity-issuance-lifetime="+id.IssuanceLifetime,
		"-identity-clock-skew-allowance="+id.ClockSkewAllowance,
		"-identity-scheme="+id.Issuer.Scheme,
		"-enable-pprof=false",
		"-kube-apiclient-qps=100",
		"-kube-apiclient-burst=200",
	)
	args = append(args, controllerTracingArgs(m)...)
	c := controllerContainer(m, "identity", args, intstr.FromInt32(9990), m.ControlPlane.Resources.Identity)
	c.Env = []corev1.EnvVar{env("LINKERD_DISABLED", "linkerd-await cannot block the identity controller")}
	c.Ports = []corev1.ContainerPort{{Name: "ident-grpc", ContainerPort: 8080}, {Name: "ident-admin", ContainerPort: 9990}}
	c.VolumeMounts = []corev1.VolumeMount{
		{Name: "identity-issuer", MountPath: "/var/run/linkerd/identity/issuer"},
		{Name: "trust-roots", MountPath: "/var/run/linkerd/identity/trust-roots/"},
	}
	objs = append(objs, deployment(m, in, cpDeploy{
		name: name, component: comp, sa: name,
		containers: []corev1.Container{c},
		proxy: podProxy{
			inboundPorts: "8080,9990",
			requireTLS:   "8080",
			identityAddr: "localhost.:8080",
		},
		volumes: []corev1.Volume{
			{Name: "identity-issuer", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "linkerd-identity-issuer"}}},
			{Name: "trust-roots", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "linkerd-identity-trust-roots"}}}},
		},
	}))
	return append(objs, pdb(m, name, comp)...)
}

// controllerTracingArgs points identity and destination at the collector.
func controllerTracingArgs(m *schema.Mesh) []string {
	if !m.Tracing.Enabled || !m.Tracing.ControlPlane {
		return nil
	}
	return []string{"-trace-collector=" + m.Tracing.Collector.Endpoint}
}

// trustRoots renders ConfigMap linkerd-identity-trust-roots when the anchors
// are known; otherwise meshctl apply creates it from the cluster's material.
func trustRoots(m *schema.Mesh, in Inputs) []Object {
	pem := in.trustAnchors(m)
	if pem == "" || m.ControlPlane.Identity.TrustAnchor.Source == schema.SourceExternal {
		return nil
	}
	return []Object{toObject(StageControlPlane, gvkConfigMap, &corev1.ConfigMap{
		ObjectMeta: objectMeta("linkerd-identity-trust-roots", linkerdNamespace, cpLabels("identity"), map[string]string{annotationCreated: createdBy(m)}),
		Data:       map[string]string{"ca-bundle.crt": pem},
	})}
}

// issuer renders the issuer: a cert-manager Certificate, or the generated
// Secret when its key is among the inputs (build --certs-dir, or apply).
func issuer(m *schema.Mesh, in Inputs) []Object {
	iss := m.ControlPlane.Identity.Issuer
	switch iss.Source {
	case schema.SourceCertManager:
		return []Object{certManagerIssuer(m)}
	case schema.SourceGenerated:
		if in.Certs == nil || in.Certs.Issuer == nil {
			return nil
		}
		return []Object{toObject(StageControlPlane, gvkSecret, &corev1.Secret{
			ObjectMeta: objectMeta("linkerd-identity-issuer", linkerdNamespace, cpLabels("identity"), map[string]string{annotationCreated: createdBy(m)}),
			Data: map[string][]byte{
				"crt.pem": []byte(in.Certs.Issuer.CertPEM),
				"key.pem": []byte(in.Certs.Issuer.KeyPEM),
			},
		})}
	}
	return nil
}

// certManagerIssuer is the cert-manager Certificate that keeps the issuer
// Secret (scheme kubernetes.io/tls) signed by the user's Issuer.
func certManagerIssuer(m *schema.Mesh) Object {
	cm := m.ControlPlane.Identity.Issuer.CertManager
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"secretName":  "linkerd-identity-issuer",
			"duration":    cm.Duration,
			"renewBefore": cm.RenewBefore,
			"issuerRef":   map[string]any{"name": cm.IssuerRef.Name, "kind": cm.IssuerRef.Kind, "group": cm.IssuerRef.Group},
			"commonName":  fmt.Sprintf("identity.%s.%s", linkerdNamespace, m.ControlPlane.Identity.TrustDomain),
			"dnsNames":    []any{fmt.Sprintf("identity.%s.%s", linkerdNamespace, m.ControlPlane.Identity.TrustDomain)},
			"isCA":        true,
			"privateKey":  map[string]any{"algorithm": "ECDSA"},
			"usages":      []any{"cert sign", "crl sign", "server auth", "client auth"},
		},
	}}
	u.SetAPIVersion("cert-manager.io/v1")
	u.SetKind("Certificate")
	u.SetName("linkerd-identity-issuer")
	u.SetNamespace(linkerdNamespace)
	u.SetLabels(cpLabels("identity"))
	return Object{Stage: StageControlPlane, Object: u}
}

// AnnotationTrustRoot is the sha256 (hex) of the trust roots a pod started
// with: on the control plane's pod templates, and on meshed pods, where the
// proxy injector sets it.
const AnnotationTrustRoot = "linkerd.io/trust-root-sha256"

// TrustRootHash is the value of AnnotationTrustRoot for a trust-roots PEM.
func TrustRootHash(pem string) string { return sha256Hex([]byte(pem)) }
