package generators

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/meshctl/meshctl/schema"
)

var gvkCronJob = batchv1.SchemeGroupVersion.WithKind("CronJob")

// heartbeat renders the linkerd-heartbeat CronJob and its RBAC. Its
// schedule comes from mesh.cue, not the render time, so builds repeat.
func heartbeat(m *schema.Mesh) []Object {
	if !m.ControlPlane.Heartbeat.Enabled {
		return nil
	}
	const comp, name = "heartbeat", "linkerd-heartbeat"
	objs := roleBound(name, name, comp, name, []rbacv1.PolicyRule{
		{APIGroups: core, Resources: []string{"configmaps"}, Verbs: []string{"get"}, ResourceNames: []string{"linkerd-config"}},
	})
	objs = append(objs, clusterRoleBound(name, name, comp, name, []rbacv1.PolicyRule{
		rule(core, []string{"namespaces"}, []string{"list"}),
		rule([]string{"linkerd.io"}, []string{"serviceprofiles"}, []string{"list"}),
	})...)
	objs = append(objs, serviceAccount(name, comp))

	kv, km := kubeAPIAccess()
	args := []string{"heartbeat", "-controller-namespace=" + linkerdNamespace}
	args = append(args, logArgs(m)...)
	args = append(args, "-prometheus-url="+prometheusURL(m))
	c := corev1.Container{
		Name:            "heartbeat",
		Image:           image(m, "controller", m.Linkerd.Version),
		ImagePullPolicy: corev1.PullPolicy(m.Linkerd.ImagePullPolicy),
		Args:            args,
		Env:             []corev1.EnvVar{env("LINKERD_DISABLED", "the heartbeat controller does not use the proxy")},
		Resources:       resources(m.ControlPlane.Resources.Heartbeat),
		SecurityContext: restrictedContext(controllerUID, nil),
		VolumeMounts:    []corev1.VolumeMount{km},
	}
	cj := &batchv1.CronJob{
		ObjectMeta: objectMeta(name, linkerdNamespace, cpLabels(comp), map[string]string{annotationCreated: createdBy(m)}),
		Spec: batchv1.CronJobSpec{
			Schedule:                   m.ControlPlane.Heartbeat.Schedule,
			SuccessfulJobsHistoryLimit: ptr.To(int32(0)),
			ConcurrencyPolicy:          batchv1.ReplaceConcurrent,
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      merge(cpLabels(comp), map[string]string{"linkerd.io/workload-ns": linkerdNamespace}),
					Annotations: map[string]string{annotationCreated: createdBy(m)},
				},
				Spec: corev1.PodSpec{
					NodeSelector:                 map[string]string{"kubernetes.io/os": "linux"},
					SecurityContext:              &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					ServiceAccountName:           name,
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: ptr.To(false),
					Containers:                   []corev1.Container{c},
					Volumes:                      []corev1.Volume{kv},
				},
			}}},
		},
	}
	return append(objs, toObject(StageControlPlane, gvkCronJob, cj))
}

// prometheusURL is where the heartbeat reads metrics: the configured URL,
// viz's external Prometheus, or viz's own.
func prometheusURL(m *schema.Mesh) string {
	switch {
	case m.ControlPlane.PrometheusURL != "":
		return m.ControlPlane.PrometheusURL
	case m.Viz.Prometheus.ExternalURL != "":
		return m.Viz.Prometheus.ExternalURL
	}
	return "http://prometheus.linkerd-viz.svc." + m.Linkerd.ClusterDomain + ":9090"
}
