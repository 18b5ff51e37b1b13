package generators

import (
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/meshctl/meshctl/schema"
)

// The multicluster extension's namespace, names and labels (FACTS §11).
// multicluster.go renders the extension every cluster gets,
// multicluster_link.go what a link renders in its source cluster and the
// exports of its target, multicluster_crd.go the Link CRD.
const (
	mcNamespace        = "linkerd-multicluster"
	mcGatewayName      = "linkerd-gateway"
	mcRemoteAccess     = "linkerd-service-mirror-remote-access-default"
	mcLocalMirror      = "linkerd-local-service-mirror"
	mcLocalMirrorRole  = "linkerd-local-service-mirror-access-local-resources"
	mcControllerRole   = "linkerd-multicluster-controller-access-local-resources"
	mcUID              = 2103
	mcAdminPort        = 9999
	mcPauseImage       = "gcr.io/google_containers/pause:3.2"
	mcProbePath        = "/ready"
	labelMirrorCluster = "mirror.linkerd.io/cluster-name"
	labelExported      = "mirror.linkerd.io/exported"
	labelFederated     = "mirror.linkerd.io/federated"
	// The service mirrors' log settings and retry limit: upstream's
	// defaults, which the CLI leaves alone.
	mcLogLevel   = "info"
	mcLogFormat  = "plain"
	mcRetryLimit = 3
)

// multicluster renders the multicluster extension, links and exports of the
// cluster in.Cluster (FACTS §11): nothing when the mesh declares no
// clusters or the render is for none of them.
func multicluster(m *schema.Mesh, in Inputs) []Object {
	c, ok := m.Clusters[in.Cluster]
	if !ok || in.Cluster == "" {
		return nil
	}
	objs := mcExtension(m, c)
	for _, l := range m.Links {
		if l.From == in.Cluster {
			objs = append(objs, mcLinkController(m, c, l)...)
			objs = append(objs, mcLinkGen(m, l, in.Links[l.To])...)
		}
	}
	return append(objs, mcExports(m, in.Cluster)...)
}

// mcLabels are the labels of a multicluster object, with extra ones.
func mcLabels(extra map[string]string) map[string]string {
	return merge(map[string]string{labelExtension: "multicluster"}, extra)
}

// mcExtension is `linkerd multicluster install` for one cluster (FACTS
// §11.1): 20 objects, 13 without a gateway, and with HA a PodDisruptionBudget
// each for the gateway and the local service mirror (§11.4).
func mcExtension(m *schema.Mesh, c schema.Cluster) []Object {
	var objs []Object
	// A mesh that also meshes the namespace renders it there.
	if _, meshed := m.Namespaces[mcNamespace]; !meshed {
		objs = append(objs, nsObject(mcNamespace, mcLabels(map[string]string{
			"pod-security.kubernetes.io/enforce": "privileged",
		}), nil))
	}
	if c.Gateway.Enabled {
		objs = append(objs, mcGateway(m, c)...)
		objs = append(objs, mcGatewayPolicy(m)...)
	}
	objs = append(objs, mcRemoteAccessSet(m)...)
	objs = append(objs, linkCRD(m))
	objs = append(objs, mcServiceMirrorPolicy()...)
	objs = append(objs, mcLocalServiceMirror(m, c)...)
	return append(objs, mcClusterRole(mcControllerRole, "controller",
		rule(core, []string{"endpoints", "services"}, mcWriteVerbs),
		rule(core, []string{"namespaces"}, readVerbs)))
}

var (
	mcWriteVerbs  = []string{"list", "get", "watch", "create", "delete", "update"}
	mcLeaseVerbs  = []string{"create", "get", "update", "patch"}
	coordination  = []string{"coordination.k8s.io"}
	linkAPIGroups = []string{linkGroup}
)

// mcGateway is the gateway: a pause container whose injected proxy does the
// work, and the Service other clusters reach it by (FACTS §11.2).
func mcGateway(m *schema.Mesh, c schema.Cluster) []Object {
	gw := c.Gateway
	app := map[string]string{"app": mcGatewayName}
	created := map[string]string{annotationCreated: createdBy(m)}
	sc := restrictedContext(mcUID, nil)
	sc.RunAsGroup = ptr.To(int64(mcUID))
	replicas := int32(1)
	if c.HA {
		replicas = 3
	}
	dep := mcDeploymentSpec(c.HA, mcGatewayName, app, corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: mcLabels(app), Annotations: map[string]string{
			annotationCreated:   createdBy(m),
			"linkerd.io/inject": "enabled",
			"config.linkerd.io/proxy-require-identity-inbound-ports": strconv.Itoa(int(gw.Port)),
			"config.linkerd.io/enable-gateway":                       "true",
			"config.linkerd.io/default-inbound-policy":               "all-authenticated",
			AnnotationSafeToEvict:                                    "true",
		}},
		Spec: corev1.PodSpec{
			Affinity:                     antiAffinity(c.HA, "app", mcGatewayName),
			AutomountServiceAccountToken: ptr.To(false),
			Containers:                   []corev1.Container{{Name: "pause", Image: mcPauseImage, SecurityContext: sc}},
			SecurityContext:              mcPodSecurity(),
			ServiceAccountName:           mcGatewayName,
		},
	}, replicas)
	dep.ObjectMeta = objectMeta(mcGatewayName, mcNamespace, mcLabels(map[string]string{
		"app.kubernetes.io/name":    "gateway",
		"app.kubernetes.io/part-of": "Linkerd",
		"app.kubernetes.io/version": m.Linkerd.Version,
		labelComponent:              "gateway",
		"app":                       mcGatewayName,
	}), created)
	svc := &corev1.Service{
		ObjectMeta: objectMeta(mcGatewayName, mcNamespace, mcLabels(nil), map[string]string{
			"mirror.linkerd.io/gateway-identity":     mcGatewayIdentity(m),
			"mirror.linkerd.io/probe-period":         strconv.Itoa(gw.ProbeSeconds),
			"mirror.linkerd.io/probe-path":           mcProbePath,
			"mirror.linkerd.io/multicluster-gateway": "true",
			labelComponent:                           "gateway",
			annotationCreated:                        createdBy(m),
		}),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceType(gw.ServiceType),
			Selector: app,
			Ports: []corev1.ServicePort{
				{Name: "mc-gateway", Port: gw.Port, Protocol: corev1.ProtocolTCP},
				{Name: "mc-probe", Port: gw.ProbePort, Protocol: corev1.ProtocolTCP},
			},
		},
	}
	objs := []Object{
		mcDeploymentObject(dep),
		mcServiceObject(svc),
		toObject(StageExtensions, gvkSA, &corev1.ServiceAccount{ObjectMeta: objectMeta(mcGatewayName, mcNamespace, mcLabels(nil), nil)}),
	}
	return append(objs, mcPDB(m, c.HA, mcGatewayName, mcLabels(app), app)...)
}

// mcGatewayIdentity is the gateway's TLS identity, which the gateway
// Service announces and a Link to this cluster carries.
func mcGatewayIdentity(m *schema.Mesh) string {
	return identityName(m, mcGatewayName, mcNamespace)
}

// mcGatewayPolicy admits meshed clients from any network to the gateway's
// proxy, and nothing else.
func mcGatewayPolicy(m *schema.Mesh) []Object {
	labels := mcLabels(map[string]string{"app": mcGatewayName})
	ann := map[string]string{annotationCreated: createdBy(m)}
	return []Object{
		mcResource(serverVersion, "Server", mcGatewayName, labels, ann, map[string]any{
			"podSelector": map[string]any{"matchLabels": map[string]any{"app": mcGatewayName}},
			"port":        "linkerd-proxy",
		}),
		mcResource(authPolicyVersion, "AuthorizationPolicy", mcGatewayName, labels, ann, map[string]any{
			"targetRef": map[string]any{"group": policyGroup, "kind": "Server", "name": mcGatewayName},
			"requiredAuthenticationRefs": []any{
				map[string]any{"group": policyGroup, "kind": "MeshTLSAuthentication", "name": "any-meshed", "namespace": mcNamespace},
				map[string]any{"group": policyGroup, "kind": "NetworkAuthentication", "name": "source-cluster", "namespace": mcNamespace},
			},
		}),
		mcResource(authPolicyVersion, "MeshTLSAuthentication", "any-meshed", labels, ann, map[string]any{
			"identities": []any{"*"},
		}),
		// Upstream's too: the source cluster's addresses cannot be known
		// here (some providers show the node's address, not the cluster's).
		mcResource(authPolicyVersion, "NetworkAuthentication", "source-cluster", labels, ann, map[string]any{
			"networks": []any{map[string]any{"cidr": "0.0.0.0/0"}, map[string]any{"cidr": "::/0"}},
		}),
	}
}

// mcRemoteAccessSet lets other clusters' service mirrors read this one:
// the ServiceAccount whose token a Link's credentials carry (FACTS §11.1).
func mcRemoteAccessSet(m *schema.Mesh) []Object {
	labels := mcLabels(nil)
	ann := map[string]string{annotationCreated: createdBy(m)}
	return []Object{
		toObject(StageExtensions, gvkClusterRole, &rbacv1.ClusterRole{
			ObjectMeta: objectMeta(mcRemoteAccess, "", labels, ann),
			Rules: []rbacv1.PolicyRule{
				rule([]string{"apps"}, []string{"replicasets"}, readVerbs),
				rule([]string{"batch"}, []string{"jobs"}, readVerbs),
				rule(core, []string{"pods", "endpoints", "services"}, readVerbs),
				rule([]string{"discovery.k8s.io"}, []string{"endpointslices"}, readVerbs),
				rule([]string{policyGroup}, []string{"servers"}, readVerbs),
				{APIGroups: core, Resources: []string{"configmaps"}, Verbs: []string{"get"}, ResourceNames: []string{"linkerd-config"}},
				rule(core, []string{"events"}, []string{"create", "patch"}),
			},
		}),
		toObject(StageExtensions, gvkSA, &corev1.ServiceAccount{ObjectMeta: objectMeta(mcRemoteAccess, mcNamespace, labels, ann)}),
		toObject(StageExtensions, gvkSecret, &corev1.Secret{
			ObjectMeta: objectMeta(mcRemoteAccess+"-token", mcNamespace, labels, merge(ann, map[string]string{
				corev1.ServiceAccountNameKey: mcRemoteAccess,
			})),
			Type: corev1.SecretTypeServiceAccountToken,
		}),
		toObject(StageExtensions, gvkCRB, &rbacv1.ClusterRoleBinding{
			ObjectMeta: objectMeta(mcRemoteAccess, "", labels, ann),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: mcRemoteAccess},
			Subjects:   saSubject(mcRemoteAccess, mcNamespace),
		}),
	}
}

// mcServiceMirrorPolicy lets viz's Prometheus scrape the service mirrors.
// The port name is upstream's, although its containers name their admin
// ports otherwise (FACTS §11.3).
func mcServiceMirrorPolicy() []Object {
	labels := mcLabels(map[string]string{labelComponent: "linkerd-service-mirror"})
	return []Object{
		mcResource(serverVersion, "Server", "service-mirror", labels, nil, map[string]any{
			"podSelector": map[string]any{"matchExpressions": []any{map[string]any{
				"key": labelComponent, "operator": "In", "values": []any{"linkerd-service-mirror", "controller"},
			}}},
			"port":          "svcmi-admin",
			"proxyProtocol": "HTTP/1",
		}),
		mcResource(authPolicyVersion, "AuthorizationPolicy", "service-mirror", labels, nil, map[string]any{
			"targetRef": map[string]any{"group": policyGroup, "kind": "Server", "name": "service-mirror"},
			"requiredAuthenticationRefs": []any{
				map[string]any{"kind": "ServiceAccount", "name": "prometheus", "namespace": vizNamespace},
			},
		}),
	}
}

// mcLocalServiceMirror mirrors this cluster's own federated-service members
// (FACTS §11.3).
func mcLocalServiceMirror(m *schema.Mesh, c schema.Cluster) []Object {
	comp := "local-service-mirror"
	sel := map[string]string{labelComponent: comp}
	labels := mcLabels(sel)
	args := append(mcMirrorArgs(),
		"-local-mirror",
		"-federated-service-selector="+labelFederated+"=member",
		"-excluded-labels=",
		"-excluded-annotations=",
	)
	dep := mcMirrorDeployment(m, c.HA, mcLocalMirror, labels, sel, "service-mirror", args, "locsm-admin", labelComponent, mcLocalMirror)
	objs := []Object{
		mcClusterRole(mcLocalMirrorRole, comp,
			rule(core, []string{"endpoints", "services"}, mcWriteVerbs),
			rule(core, []string{"namespaces"}, readVerbs),
			rule(coordination, []string{"leases"}, mcLeaseVerbs),
			rule(linkAPIGroups, []string{"links"}, readVerbs),
			rule(linkAPIGroups, []string{"links/status"}, []string{"update"})),
		toObject(StageExtensions, gvkCRB, &rbacv1.ClusterRoleBinding{
			ObjectMeta: objectMeta(mcLocalMirrorRole, "", labels, nil),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: mcLocalMirrorRole},
			Subjects:   saSubject(mcLocalMirror, mcNamespace),
		}),
		toObject(StageExtensions, gvkSA, &corev1.ServiceAccount{ObjectMeta: objectMeta(mcLocalMirror, mcNamespace, labels, nil)}),
		dep,
	}
	return append(objs, mcPDB(m, c.HA, mcLocalMirror, sel, sel)...)
}

// mcMirrorArgs are the arguments every service mirror starts with.
func mcMirrorArgs() []string {
	return []string{
		"service-mirror",
		"-log-level=" + mcLogLevel,
		"-log-format=" + mcLogFormat,
		fmt.Sprintf("-event-requeue-limit=%d", mcRetryLimit),
		"-namespace=" + mcNamespace,
		"-enable-pprof=false",
	}
}

// mcMirrorDeployment is a service-mirror Deployment: the local one or a
// link's controller. ha spreads its pods (the local mirror with HA; a
// link's controller never, as upstream's controllerDefaults say).
func mcMirrorDeployment(m *schema.Mesh, ha bool, name string, labels, sel map[string]string, container string, args []string, port, affinityKey, sa string) Object {
	kv, km := kubeAPIAccess()
	sc := restrictedContext(mcUID, nil)
	sc.RunAsGroup = ptr.To(int64(mcUID))
	affinityValue := sel[affinityKey]
	dep := mcDeploymentSpec(ha, name, sel, corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{
			"linkerd.io/inject":   "enabled",
			AnnotationSafeToEvict: "true",
			"config.alpha.linkerd.io/proxy-wait-before-exit-seconds": "0",
		}},
		Spec: corev1.PodSpec{
			Affinity:                     antiAffinity(ha, affinityKey, affinityValue),
			AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{
				Name:            container,
				Image:           image(m, "controller", m.Linkerd.Version),
				Args:            args,
				Ports:           []corev1.ContainerPort{{Name: port, ContainerPort: mcAdminPort}},
				SecurityContext: sc,
				VolumeMounts:    []corev1.VolumeMount{km},
			}},
			SecurityContext:    mcPodSecurity(),
			ServiceAccountName: sa,
			Volumes:            []corev1.Volume{kv},
		},
	}, 1)
	dep.ObjectMeta = objectMeta(name, mcNamespace, labels, nil)
	return mcDeploymentObject(dep)
}

// mcDeploymentSpec is a Deployment of the extension; ha rolls it one pod
// at a time.
func mcDeploymentSpec(ha bool, name string, sel map[string]string, tmpl corev1.PodTemplateSpec, replicas int32) *appsv1.Deployment {
	var strategy appsv1.DeploymentStrategy
	if ha {
		one := intstr.FromInt32(1)
		strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: &one}
	}
	return &appsv1.Deployment{Spec: appsv1.DeploymentSpec{
		Replicas:             ptr.To(replicas),
		RevisionHistoryLimit: ptr.To(int32(10)),
		Selector:             &metav1.LabelSelector{MatchLabels: sel},
		Strategy:             strategy,
		Template:             tmpl,
	}}
}

// mcDeploymentObject converts a Deployment; upstream sets no strategy
// without HA, where the typed struct would render {}.
func mcDeploymentObject(dep *appsv1.Deployment) Object {
	o := toObject(StageExtensions, gvkDeployment, dep)
	if dep.Spec.Strategy.RollingUpdate == nil {
		unstructured.RemoveNestedField(o.Object.Object, "spec", "strategy")
	}
	return o
}

// mcServiceObject converts a Service whose ports set no targetPort, as
// upstream's do (the API server defaults it to the port); the typed struct
// would render targetPort: 0.
func mcServiceObject(svc *corev1.Service) Object {
	o := toObject(StageExtensions, gvkService, svc)
	ports, _, _ := unstructured.NestedSlice(o.Object.Object, "spec", "ports")
	for _, p := range ports {
		if pm, ok := p.(map[string]any); ok && pm["targetPort"] == int64(0) {
			delete(pm, "targetPort")
		}
	}
	if err := unstructured.SetNestedSlice(o.Object.Object, ports, "spec", "ports"); err != nil {
		panic(err) // plain values always set
	}
	return o
}

func mcPodSecurity() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
}

// mcPDB renders a PodDisruptionBudget with HA, which upstream ties to pod
// anti-affinity (FACTS §11.4).
func mcPDB(m *schema.Mesh, ha bool, name string, labels, sel map[string]string) []Object {
	if !ha {
		return nil
	}
	return []Object{maxOneUnavailable(m, StageExtensions, name, mcNamespace, labels, sel)}
}

// mcClusterRole renders a ClusterRole of component c.
func mcClusterRole(name, c string, rules ...rbacv1.PolicyRule) Object {
	return toObject(StageExtensions, gvkClusterRole, &rbacv1.ClusterRole{
		ObjectMeta: objectMeta(name, "", mcLabels(map[string]string{labelComponent: c}), nil),
		Rules:      rules,
	})
}

// mcResource renders a custom resource of the extension in its namespace.
func mcResource(apiVersion, kind, name string, labels, annotations map[string]string, spec map[string]any) Object {
	return customResource(StageExtensions, apiVersion, kind, name, mcNamespace, labels, annotations, spec)
}
