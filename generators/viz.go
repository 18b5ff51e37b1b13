package generators

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/meshctl/meshctl/schema"
)

// Viz's own log settings: upstream's defaultLogLevel and defaultLogFormat,
// which the CLI leaves alone.
const (
	vizLogLevel  = "info"
	vizLogFormat = "plain"
)

// viz renders the viz extension (FACTS §10) but its Prometheus: the
// namespace, metrics-api, tap, tap-injector and web, their RBAC, the tap
// APIService and webhook, and the policy that lets the API server and web
// reach them.
func viz(m *schema.Mesh, in Inputs) []Object {
	if !m.Viz.Enabled {
		return nil
	}
	objs := []Object{nsObject(vizNamespace, map[string]string{
		labelExtension:                       "viz",
		"pod-security.kubernetes.io/enforce": "privileged",
	}, nil)}
	objs = append(objs, vizMetricsAPI(m)...)
	objs = append(objs, vizTap(m, in)...)
	objs = append(objs, vizTapInjector(m, in)...)
	objs = append(objs, vizWeb(m)...)
	return append(objs, vizPolicy(m)...)
}

// withNamespaceLabel adds the namespace=<ns> label upstream puts on some
// viz objects (tap's and web's, not metrics-api's).
func withNamespaceLabel(labels map[string]string, ns string) map[string]string {
	return merge(labels, map[string]string{"namespace": ns})
}

// vizDeploy describes one viz Deployment. Its name is also its component,
// ServiceAccount and app.kubernetes.io/name.
type vizDeploy struct {
	name      string
	container corev1.Container
	volumes   []corev1.Volume
	// labels are the pod's, and the Deployment's before app.kubernetes.io/*.
	labels   map[string]string
	selector map[string]string
	// noVersionLabel: upstream's tap-injector has no app.kubernetes.io/version.
	noVersionLabel bool
	replicas       int32
	// haStrategy: with HA, rolling updates take one pod down at a time.
	haStrategy bool
	// prometheus: upstream's Prometheus pod differs from the others: no
	// safe-to-evict, no anti-affinity, and an fsGroup for its data volume.
	prometheus bool
}

// vizDeployment renders a viz Deployment. Viz pods carry no proxy: the
// inject annotation has the core injector add one (FACTS §10.1).
func vizDeployment(m *schema.Mesh, d vizDeploy) Object {
	kv, km := kubeAPIAccess()
	c := d.container
	c.VolumeMounts = append(c.VolumeMounts, km)
	labels := merge(d.labels, map[string]string{
		"app.kubernetes.io/name":    d.name,
		"app.kubernetes.io/part-of": "Linkerd",
		"app.kubernetes.io/version": m.Linkerd.Version,
	})
	if d.noVersionLabel {
		delete(labels, "app.kubernetes.io/version")
	}
	replicas := d.replicas
	if replicas == 0 {
		replicas = 1
	}
	var strategy appsv1.DeploymentStrategy
	if d.haStrategy && m.Viz.HA {
		one := intstr.FromInt32(1)
		strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: &one}
	}
	podAnn := map[string]string{
		annotationCreated:     createdBy(m),
		"linkerd.io/inject":   "enabled",
		AnnotationSafeToEvict: "true",
		"config.alpha.linkerd.io/proxy-wait-before-exit-seconds": "0",
	}
	affinity := antiAffinity(m.Viz.HA, labelComponent, d.name)
	podSC := &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
	if d.prometheus {
		delete(podAnn, AnnotationSafeToEvict)
		affinity = nil
		podSC.FSGroup = ptr.To(int64(nobodyUID))
	}
	dep := &appsv1.Deployment{
		ObjectMeta: objectMeta(d.name, vizNamespace, labels, map[string]string{
			annotationCreated:               createdBy(m),
			"linkerd.io/inject":             "enabled",
			"config.linkerd.io/proxy-await": "enabled",
		}),
		Spec: appsv1.DeploymentSpec{
			Replicas:             ptr.To(replicas),
			RevisionHistoryLimit: ptr.To(int32(10)),
			Selector:             &metav1.LabelSelector{MatchLabels: d.selector},
			Strategy:             strategy,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: d.labels, Annotations: podAnn},
				Spec: corev1.PodSpec{
					Affinity:                     affinity,
					AutomountServiceAccountToken: ptr.To(false),
					NodeSelector:                 map[string]string{"kubernetes.io/os": "linux"},
					Containers:                   []corev1.Container{c},
					SecurityContext:              podSC,
					ServiceAccountName:           d.name,
					Volumes:                      append(append([]corev1.Volume{}, d.volumes...), kv),
				},
			},
		},
	}
	o := toObject(StageExtensions, gvkDeployment, dep)
	if strategy.RollingUpdate == nil {
		// Upstream sets no strategy at all; the typed struct renders {}.
		unstructured.RemoveNestedField(o.Object.Object, "spec", "strategy")
	}
	return o
}

// vizContainer is a viz app container: the controllers' probes on the
// admin port, viz's image and user.
func vizContainer(m *schema.Mesh, name, img string, args []string, ports []corev1.ContainerPort, adminPort int32, r schema.Resources) corev1.Container {
	c := controllerContainer(m, name, args, intstr.FromInt32(adminPort), r)
	c.Image = image(m, img, m.Linkerd.Version)
	c.Ports = ports
	sc := restrictedContext(vizUID, nil)
	sc.RunAsGroup = ptr.To(int64(vizUID))
	c.SecurityContext = sc
	return c
}

// vizHAResources are what tap and web request with HA (FACTS §10.5).
func vizHAResources(m *schema.Mesh) schema.Resources {
	if !m.Viz.HA {
		return schema.Resources{}
	}
	return schema.Resources{
		CPU:    schema.RequestLimit{Request: "100m"},
		Memory: schema.RequestLimit{Request: "50Mi", Limit: "250Mi"},
	}
}

// vizLogArgs are viz's -log-level and -log-format flags.
func vizLogArgs() []string {
	return []string{"-log-level=" + vizLogLevel, "-log-format=" + vizLogFormat}
}

// vizService renders a ClusterIP Service, which viz has meshed too.
func vizService(m *schema.Mesh, name string, labels, selector map[string]string, ports []corev1.ServicePort) Object {
	return toObject(StageExtensions, gvkService, &corev1.Service{
		ObjectMeta: objectMeta(name, vizNamespace, labels, map[string]string{
			annotationCreated:   createdBy(m),
			"linkerd.io/inject": "enabled",
		}),
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: selector, Ports: ports},
	})
}

func vizServiceAccount(name string, labels map[string]string) Object {
	return toObject(StageExtensions, gvkSA, &corev1.ServiceAccount{ObjectMeta: objectMeta(name, vizNamespace, labels, nil)})
}

// vizClusterRole renders a ClusterRole.
func vizClusterRole(name string, labels map[string]string, rules ...rbacv1.PolicyRule) Object {
	return toObject(StageExtensions, gvkClusterRole, &rbacv1.ClusterRole{ObjectMeta: objectMeta(name, "", labels, nil), Rules: rules})
}

// vizClusterRoleBinding binds ClusterRole role to viz's ServiceAccount sa.
func vizClusterRoleBinding(name, role, sa string, labels map[string]string) Object {
	return toObject(StageExtensions, gvkCRB, &rbacv1.ClusterRoleBinding{
		ObjectMeta: objectMeta(name, "", labels, nil),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   saSubject(sa, vizNamespace),
	})
}

// vizRoleBinding binds Role role in namespace ns to viz's ServiceAccount sa.
func vizRoleBinding(name, ns, role, sa string, labels map[string]string) Object {
	return toObject(StageExtensions, gvkRoleBinding, &rbacv1.RoleBinding{
		ObjectMeta: objectMeta(name, ns, labels, nil),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role},
		Subjects:   saSubject(sa, vizNamespace),
	})
}

// vizWebhookKey is how Inputs and certs.Options name a viz Service's pair.
func vizWebhookKey(svc string) string { return svc + "." + vizNamespace }

// vizTLSSecret renders <svc>-k8s-tls, the serving pair of a viz Service
// the API server calls, when the pair is among the inputs.
func vizTLSSecret(m *schema.Mesh, in Inputs, svc string, labels map[string]string) []Object {
	kp, ok := in.webhook(vizWebhookKey(svc))
	if !ok {
		return nil
	}
	return []Object{toObject(StageExtensions, gvkSecret, &corev1.Secret{
		ObjectMeta: objectMeta(svc+"-k8s-tls", vizNamespace, labels, map[string]string{annotationCreated: createdBy(m)}),
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": []byte(kp.CertPEM), "tls.key": []byte(kp.KeyPEM)},
	})}
}

// vizCABundle is the serving certificate of viz Service svc, when known.
func vizCABundle(in Inputs, svc string) []byte {
	return caBundle(in, vizWebhookKey(svc))
}

// vizTLSVolume mounts <svc>-k8s-tls where tap and tap-injector read it.
func vizTLSVolume(svc string) (corev1.Volume, corev1.VolumeMount) {
	return secretVolume("tls", svc+"-k8s-tls"), corev1.VolumeMount{Name: "tls", MountPath: "/var/run/linkerd/tls", ReadOnly: true}
}

// vizPDB renders a PodDisruptionBudget for component c when viz is HA.
func vizPDB(m *schema.Mesh, c string, labels map[string]string) []Object {
	if !m.Viz.HA {
		return nil
	}
	return []Object{maxOneUnavailable(m, StageExtensions, c, vizNamespace, labels, vizLabels(c))}
}

// vizResource renders a custom resource (or an aggregated API object) in
// the extensions stage.
func vizResource(apiVersion, kind, name, ns string, labels, annotations map[string]string, spec map[string]any) Object {
	return customResource(StageExtensions, apiVersion, kind, name, ns, labels, annotations, spec)
}
