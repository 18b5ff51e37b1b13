package generators

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/meshctl/meshctl/schema"
)

var (
	gvkDeployment  = appsv1.SchemeGroupVersion.WithKind("Deployment")
	gvkService     = corev1.SchemeGroupVersion.WithKind("Service")
	gvkSA          = corev1.SchemeGroupVersion.WithKind("ServiceAccount")
	gvkSecret      = corev1.SchemeGroupVersion.WithKind("Secret")
	gvkConfigMap   = corev1.SchemeGroupVersion.WithKind("ConfigMap")
	gvkNamespace   = corev1.SchemeGroupVersion.WithKind("Namespace")
	gvkPDB         = policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget")
	gvkClusterRole = rbacv1.SchemeGroupVersion.WithKind("ClusterRole")
	gvkCRB         = rbacv1.SchemeGroupVersion.WithKind("ClusterRoleBinding")
	gvkRole        = rbacv1.SchemeGroupVersion.WithKind("Role")
	gvkRoleBinding = rbacv1.SchemeGroupVersion.WithKind("RoleBinding")
)

// controlPlane renders the core Linkerd control plane in namespace linkerd.
func controlPlane(m *schema.Mesh, in Inputs) []Object {
	var objs []Object
	objs = append(objs, identity(m, in)...)
	objs = append(objs, destination(m, in)...)
	objs = append(objs, proxyInjector(m, in)...)
	objs = append(objs, heartbeat(m)...)
	objs = append(objs, config(m, in)...)
	return objs
}

// cpLabels are the labels of every control-plane object of a component.
func cpLabels(component string) map[string]string {
	return map[string]string{labelCPComponent: component, labelCPNamespace: linkerdNamespace}
}

// cpDeploy describes one control-plane Deployment.
type cpDeploy struct {
	name, component, sa string
	// containers are the app containers; the proxy goes first or last.
	containers  []corev1.Container
	proxyFirst  bool
	proxy       podProxy
	volumes     []corev1.Volume
	annotations map[string]string // extra pod annotations
	// selectorComponentOnly keeps the selector to the component label, as
	// upstream does for the proxy injector.
	selectorComponentOnly bool
	resources             schema.Resources
}

// deployment builds a control-plane Deployment with its inline proxy.
func deployment(m *schema.Mesh, in Inputs, d cpDeploy) Object {
	cp := m.ControlPlane
	podLabels := merge(cpLabels(d.component), map[string]string{
		"linkerd.io/workload-ns":      linkerdNamespace,
		"linkerd.io/proxy-deployment": d.name,
	})
	selector := merge(cpLabels(d.component), map[string]string{"linkerd.io/proxy-deployment": d.name})
	if d.selectorComponentOnly {
		selector = map[string]string{labelCPComponent: d.component}
	}
	podAnn := merge(map[string]string{
		annotationCreated:                          createdBy(m),
		"linkerd.io/proxy-version":                 m.Linkerd.Version,
		AnnotationSafeToEvict:                      "true",
		"config.linkerd.io/default-inbound-policy": cp.Proxy.DefaultInboundPolicy,
	}, d.annotations)
	if pem := in.trustAnchors(m); pem != "" {
		podAnn[AnnotationTrustRoot] = TrustRootHash(pem)
	}
	kv, km := kubeAPIAccess()
	containers := make([]corev1.Container, 0, len(d.containers)+1)
	for _, c := range d.containers {
		c.VolumeMounts = append(c.VolumeMounts, km)
		containers = append(containers, c)
	}
	if d.proxyFirst {
		containers = append([]corev1.Container{proxyContainer(m, d.proxy)}, containers...)
	} else {
		containers = append(containers, proxyContainer(m, d.proxy))
	}
	maxUnavailable := intstr.FromString("25%")
	if cp.HA {
		maxUnavailable = intstr.FromInt32(1)
	}
	maxSurge := intstr.FromString("25%")
	dep := &appsv1.Deployment{
		ObjectMeta: objectMeta(d.name, linkerdNamespace, merge(cpLabels(d.component), map[string]string{
			"app.kubernetes.io/name":    d.component,
			"app.kubernetes.io/part-of": "Linkerd",
			"app.kubernetes.io/version": m.Linkerd.Version,
		}), map[string]string{annotationCreated: createdBy(m)}),
		Spec: appsv1.DeploymentSpec{
			Replicas:             ptr.To(int32(cp.Replicas)),
			RevisionHistoryLimit: ptr.To(int32(10)),
			Selector:             &metav1.LabelSelector{MatchLabels: selector},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge: &maxSurge, MaxUnavailable: &maxUnavailable,
			}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: podAnn},
				Spec: corev1.PodSpec{
					Affinity:                     antiAffinity(cp.PodAntiAffinity, labelCPComponent, d.component),
					AutomountServiceAccountToken: ptr.To(false),
					NodeSelector:                 map[string]string{"kubernetes.io/os": "linux"},
					Containers:                   containers,
					InitContainers:               []corev1.Container{initContainer(m)},
					SecurityContext:              &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					ServiceAccountName:           d.sa,
					Volumes:                      append(append(d.volumes, proxyVolumes(m)...), kv),
				},
			},
		},
	}
	return toObject(StageControlPlane, gvkDeployment, dep)
}

// antiAffinity spreads replicas: required per node, preferred per zone.
func antiAffinity(enabled bool, key, value string) *corev1.Affinity {
	if !enabled {
		return nil
	}
	sel := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: key, Operator: metav1.LabelSelectorOpIn, Values: []string{value}},
	}}
	return &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{
			{LabelSelector: sel, TopologyKey: "kubernetes.io/hostname"},
		},
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
			{Weight: 100, PodAffinityTerm: corev1.PodAffinityTerm{LabelSelector: sel, TopologyKey: "topology.kubernetes.io/zone"}},
		},
	}}
}

// pdb renders a control-plane PodDisruptionBudget when HA asks for one.
func pdb(m *schema.Mesh, name, component string) []Object {
	if !m.ControlPlane.PodDisruptionBudget {
		return nil
	}
	return []Object{maxOneUnavailable(m, StageControlPlane, name, linkerdNamespace, cpLabels(component), map[string]string{labelCPComponent: component})}
}

// controllerContainer is a Linkerd controller container with the shared
// image, security context and health probes on its admin port.
func controllerContainer(m *schema.Mesh, name string, args []string, adminPort intstr.IntOrString, r schema.Resources) corev1.Container {
	live := httpProbe("/ping", adminPort)
	live.InitialDelaySeconds = 10
	ready := httpProbe("/ready", adminPort)
	ready.FailureThreshold = 7
	return corev1.Container{
		Name:            name,
		Image:           image(m, "controller", m.Linkerd.Version),
		ImagePullPolicy: corev1.PullPolicy(m.Linkerd.ImagePullPolicy),
		Args:            args,
		LivenessProbe:   live,
		ReadinessProbe:  ready,
		Resources:       resources(r),
		SecurityContext: restrictedContext(controllerUID, nil),
	}
}

// logArgs are the controllers' -log-level and -log-format flags.
func logArgs(m *schema.Mesh) []string {
	return []string{"-log-level=" + m.ControlPlane.LogLevel, "-log-format=" + m.ControlPlane.LogFormat}
}

// service renders a control-plane Service.
func service(m *schema.Mesh, name, component string, headless bool, ports []corev1.ServicePort, ann map[string]string) Object {
	svc := &corev1.Service{
		ObjectMeta: objectMeta(name, linkerdNamespace, cpLabels(component), merge(map[string]string{annotationCreated: createdBy(m)}, ann)),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{labelCPComponent: component},
			Ports:    ports,
		},
	}
	if headless {
		svc.Spec.ClusterIP = corev1.ClusterIPNone
	}
	return toObject(StageControlPlane, gvkService, svc)
}

func serviceAccount(name, component string) Object {
	return toObject(StageControlPlane, gvkSA, &corev1.ServiceAccount{ObjectMeta: objectMeta(name, linkerdNamespace, cpLabels(component), nil)})
}

// clusterRoleBound renders a ClusterRole and a ClusterRoleBinding to sa.
func clusterRoleBound(role, binding, component, sa string, rules []rbacv1.PolicyRule) []Object {
	return []Object{
		toObject(StageControlPlane, gvkClusterRole, &rbacv1.ClusterRole{ObjectMeta: objectMeta(role, "", cpLabels(component), nil), Rules: rules}),
		toObject(StageControlPlane, gvkCRB, &rbacv1.ClusterRoleBinding{
			ObjectMeta: objectMeta(binding, "", cpLabels(component), nil),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   saSubject(sa, linkerdNamespace),
		}),
	}
}

// roleBound renders a Role and a RoleBinding to sa in namespace linkerd.
func roleBound(role, binding, component, sa string, rules []rbacv1.PolicyRule) []Object {
	return []Object{
		toObject(StageControlPlane, gvkRole, &rbacv1.Role{ObjectMeta: objectMeta(role, linkerdNamespace, cpLabels(component), nil), Rules: rules}),
		toObject(StageControlPlane, gvkRoleBinding, &rbacv1.RoleBinding{
			ObjectMeta: objectMeta(binding, linkerdNamespace, cpLabels(component), nil),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role},
			Subjects:   saSubject(sa, linkerdNamespace),
		}),
	}
}

func rule(groups, resources, verbs []string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: groups, Resources: resources, Verbs: verbs}
}

var (
	readVerbs = []string{"list", "get", "watch"}
	core      = []string{""}
)

// tlsSecret renders a webhook's kubernetes.io/tls Secret when its
// certificate is among the inputs.
func tlsSecret(m *schema.Mesh, in Inputs, svc, component string) []Object {
	kp, ok := in.webhook(svc)
	if !ok {
		return nil
	}
	return []Object{toObject(StageControlPlane, gvkSecret, &corev1.Secret{
		ObjectMeta: objectMeta(svc+"-k8s-tls", linkerdNamespace, cpLabels(component), map[string]string{annotationCreated: createdBy(m)}),
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": []byte(kp.CertPEM), "tls.key": []byte(kp.KeyPEM)},
	})}
}

// caBundle is the webhook's serving certificate, when known.
func caBundle(in Inputs, svc string) []byte {
	if kp, ok := in.webhook(svc); ok {
		return []byte(kp.CertPEM)
	}
	return nil
}

// checksum digests objects, so pods roll when what they depend on changes.
func checksum(objs []Object) string {
	h := sha256.New()
	for _, o := range objs {
		b, _ := json.Marshal(o.Object.Object) // maps of plain values always marshal
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
