// Package install renders what it takes to run `meshctl reconcile` in the
// cluster: its Namespace, ServiceAccount, least-privilege RBAC and a
// Deployment, wired to where mesh.cue comes from (a ConfigMap, or a Flux
// source). It returns objects; cmd/meshctl prints them.
package install

import (
	"fmt"
	"time"

	"github.com/meshctl/meshctl/drift/source"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/internal/ident"
)

// Name is the reconciler's ServiceAccount, Deployment, RBAC objects and
// Lease (reconcile's default --lease-name).
const Name = ident.Reconciler

// Where the ConfigMap source is mounted, and the file the loop renders.
const (
	ConfigMapMount = "/etc/mesh"
	ConfigMapPath  = ConfigMapMount + "/mesh.cue"
)

// The container's ports.
const (
	MetricsPort = 8080
	HealthPort  = 8081
)

// Options say what to install.
type Options struct {
	// Namespace holds the reconciler and meshctl's inventory (reconcile's
	// --meshctl-namespace).
	Namespace string
	// Image is the meshctl image the Deployment runs.
	Image string
	// Interval is reconcile's --interval, the full resync.
	Interval time.Duration
	// Source is reconcile's --source, flux:GitRepository/NS/NAME or
	// flux:OCIRepository/NS/NAME; "" reads ConfigMap instead.
	Source string
	// SourcePath is reconcile's --source-path inside a Flux artifact; ""
	// leaves reconcile's default.
	SourcePath string
	// ConfigMap holds mesh.cue (key mesh.cue) when there is no Source.
	ConfigMap string
	// Cluster is reconcile's --cluster: for a mesh that declares clusters,
	// the one this reconciler runs in and keeps. It reaches the others
	// through the Secrets meshctl apply stores (plan.PeerConnector), with
	// the least-privilege ServiceAccounts each of them renders for it
	// (generators/peers.go).
	Cluster string
	// Meshed gives the reconciler a Linkerd proxy, so that viz's
	// Prometheus, which admits only meshed clients it names, answers the
	// rollouts' queries. Traffic to the API server and to the health and
	// metrics ports bypasses the proxy: a broken mesh never cuts the loop
	// off from the cluster it repairs.
	Meshed bool
}

// DefaultOptions are the install of meshctl version: the meshctl
// namespace, the release image, a 10m resync and the ConfigMap "mesh".
func DefaultOptions(version string) Options {
	return Options{
		Namespace: apply.DefaultNamespace,
		Image:     "ghcr.io/meshctl/meshctl:" + version,
		Interval:  10 * time.Minute,
		ConfigMap: "mesh",
	}
}

// Objects renders the install, in apply order: the Namespace, the
// ServiceAccount, RBAC (each role before its binding), then the Deployment.
func Objects(o Options) ([]*unstructured.Unstructured, error) {
	src, err := o.check()
	if err != nil {
		return nil, err
	}
	labels := map[string]string{"app.kubernetes.io/name": Name, "app.kubernetes.io/part-of": "meshctl"}
	meta := func(name, ns string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}
	}
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: Name, Namespace: o.Namespace}}
	nsMeta := meta(o.Namespace, "")
	// The reconciler's pod passes "restricted"; meshctl keeps only Secrets
	// and ConfigMaps there besides.
	nsMeta.Labels = map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}
	objs := []runtime.Object{
		&corev1.Namespace{TypeMeta: typeMeta("v1", "Namespace"), ObjectMeta: nsMeta},
		&corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: meta(Name, o.Namespace)},
		&rbacv1.ClusterRole{TypeMeta: typeMeta(rbacAPI, "ClusterRole"), ObjectMeta: meta(Name, ""), Rules: clusterRules()},
		&rbacv1.ClusterRoleBinding{TypeMeta: typeMeta(rbacAPI, "ClusterRoleBinding"), ObjectMeta: meta(Name, ""),
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: Name}, Subjects: subject},
		&rbacv1.Role{TypeMeta: typeMeta(rbacAPI, "Role"), ObjectMeta: meta(Name, o.Namespace), Rules: namespaceRules(Name)},
		&rbacv1.RoleBinding{TypeMeta: typeMeta(rbacAPI, "RoleBinding"), ObjectMeta: meta(Name, o.Namespace),
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: Name}, Subjects: subject},
	}
	if src != nil {
		// Only the one source object, in its own namespace.
		objs = append(objs,
			&rbacv1.Role{TypeMeta: typeMeta(rbacAPI, "Role"), ObjectMeta: meta(Name+"-source", src.Namespace), Rules: []rbacv1.PolicyRule{{
				APIGroups: []string{fluxGroup}, Resources: []string{src.Resource}, ResourceNames: []string{src.Name}, Verbs: []string{"get", "list", "watch"},
			}}},
			&rbacv1.RoleBinding{TypeMeta: typeMeta(rbacAPI, "RoleBinding"), ObjectMeta: meta(Name+"-source", src.Namespace),
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: Name + "-source"}, Subjects: subject},
		)
	}
	objs = append(objs, deployment(o, src, labels, meta(Name, o.Namespace)))
	out := make([]*unstructured.Unstructured, len(objs))
	for i, obj := range objs {
		if out[i], err = toUnstructured(obj); err != nil {
			return nil, err
		}
	}
	return out, nil
}

const (
	rbacAPI   = "rbac.authorization.k8s.io/v1"
	fluxGroup = "source.toolkit.fluxcd.io"
)

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// check validates o, and returns the Flux source when there is one.
func (o Options) check() (*source.FluxRef, error) {
	if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
		return nil, fmt.Errorf("--meshctl-namespace %q: %s", o.Namespace, errs[0])
	}
	if o.Image == "" {
		return nil, fmt.Errorf("--image is empty: give the meshctl image to run")
	}
	if o.Interval <= 0 {
		return nil, fmt.Errorf("--interval %s: want a positive duration, such as 10m", o.Interval)
	}
	if o.Cluster != "" {
		if errs := validation.IsDNS1123Label(o.Cluster); len(errs) > 0 {
			return nil, fmt.Errorf("--cluster %q: %s", o.Cluster, errs[0])
		}
	}
	if o.Source == "" {
		if o.SourcePath != "" {
			return nil, fmt.Errorf("--source-path needs --source: the ConfigMap's mesh.cue is mounted at %s", ConfigMapPath)
		}
		if errs := validation.IsDNS1123Subdomain(o.ConfigMap); len(errs) > 0 {
			return nil, fmt.Errorf("--configmap %q: %s", o.ConfigMap, errs[0])
		}
		return nil, nil
	}
	ref, err := source.ParseFluxRef(o.Source)
	if err != nil {
		return nil, err
	}
	return &ref, nil
}

// args are the reconcile command line.
func (o Options) args(src *source.FluxRef) []string {
	args := []string{"reconcile"}
	if src == nil {
		args = append(args, ConfigMapPath)
	}
	args = append(args, "--leader-elect",
		fmt.Sprintf("--metrics-addr=:%d", MetricsPort), fmt.Sprintf("--health-addr=:%d", HealthPort),
		"--log-format=json", "--interval="+o.Interval.String(), "--meshctl-namespace="+o.Namespace)
	if o.Cluster != "" {
		args = append(args, "--cluster="+o.Cluster)
	}
	if src != nil {
		args = append(args, "--source="+o.Source)
		if o.SourcePath != "" {
			args = append(args, "--source-path="+o.SourcePath)
		}
	}
	return args
}

// Resources of the container. GOMEMLIMIT sits below the limit so that the
// Go runtime collects harder before the kernel kills it. The limit leaves
// room above a resync of a 10,000-object mesh, which renders the mesh
// again beside the caches: 219 MiB at its peak (BENCHMARKS.md).
const (
	cpuRequest    = "100m"
	memoryRequest = "128Mi"
	memoryLimit   = "320Mi"
	goMemLimit    = "288MiB"
)

func deployment(o Options, src *source.FluxRef, labels map[string]string, meta metav1.ObjectMeta) *appsv1.Deployment {
	selector := map[string]string{"app.kubernetes.io/name": Name}
	volumes := []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	mounts := []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}}
	if src == nil {
		volumes = append(volumes, corev1.Volume{Name: "mesh", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: o.ConfigMap}}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "mesh", MountPath: ConfigMapMount, ReadOnly: true})
	}
	probe := func(path string, period int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("health")}},
			PeriodSeconds: period, FailureThreshold: 3, TimeoutSeconds: 2,
		}
	}
	return &appsv1.Deployment{
		TypeMeta:   typeMeta("apps/v1", "Deployment"),
		ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{
			// Two replicas: one holds the Lease and writes, the other stands
			// by to take over within the Lease's duration.
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      labels,
					Annotations: podAnnotations(o.Meshed),
				},
				Spec: corev1.PodSpec{
					ServiceAccountName:           Name,
					AutomountServiceAccountToken: ptr.To(true),
					// A started apply is finished on SIGTERM (reconcile's
					// --apply-timeout bounds it); give it time.
					TerminationGracePeriodSeconds: ptr.To[int64](60),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](65532),
						RunAsGroup:     ptr.To[int64](65532),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
							Weight: 100,
							PodAffinityTerm: corev1.PodAffinityTerm{
								LabelSelector: &metav1.LabelSelector{MatchLabels: selector},
								TopologyKey:   corev1.LabelHostname,
							},
						}},
					}},
					Containers: []corev1.Container{{
						Name:  "reconciler",
						Image: o.Image,
						Args:  o.args(src),
						Env: []corev1.EnvVar{
							{Name: "GOMEMLIMIT", Value: goMemLimit},
							// reconcile names its replica in the Lease after the pod.
							{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
						},
						Ports: []corev1.ContainerPort{
							{Name: "metrics", ContainerPort: MetricsPort, Protocol: corev1.ProtocolTCP},
							{Name: "health", ContainerPort: HealthPort, Protocol: corev1.ProtocolTCP},
						},
						LivenessProbe:  probe("/healthz", 20),
						ReadinessProbe: probe("/readyz", 10),
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpuRequest), corev1.ResourceMemory: resource.MustParse(memoryRequest)},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(memoryLimit)},
						},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						VolumeMounts: mounts,
					}},
					Volumes: volumes,
				},
			},
		},
	}
}

// toUnstructured converts a typed object, dropping the empty
// creationTimestamp and status that typed structs always carry.
func toUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "spec", "template", "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "status")
	if spec, ok := u.Object["spec"].(map[string]any); ok {
		if len(spec) == 0 {
			delete(u.Object, "spec") // a Namespace's
		} else if st, ok := spec["strategy"].(map[string]any); ok && len(st) == 0 {
			delete(spec, "strategy") // a Deployment's default
		}
	}
	return u, nil
}

// podAnnotations keep the reconciler off the mesh, or put it on with the
// API server and its own ports outside the proxy. It repairs the mesh, so
// it must not depend on the mesh to start or to reach the API server: the
// injector's failure policy is Ignore, and a pod it missed runs unmeshed
// (its rollouts then hold, saying Prometheus refused them).
func podAnnotations(meshed bool) map[string]string {
	if !meshed {
		return map[string]string{"linkerd.io/inject": "disabled"}
	}
	return map[string]string{
		"linkerd.io/inject":                     "enabled",
		"config.linkerd.io/skip-outbound-ports": "443,6443",
		"config.linkerd.io/skip-inbound-ports":  fmt.Sprintf("%d,%d", MetricsPort, HealthPort),
	}
}
