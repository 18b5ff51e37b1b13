package generators

import (
	"encoding/json"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/meshctl/meshctl/schema"
)

var gvkDaemonSet = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

// cniPlugin renders what `linkerd install-cni` does when cni.enabled: the
// linkerd-cni namespace, its service account and RBAC, the CNI
// configuration, and the DaemonSet that installs the plugin on every node.
// The namespace goes in the first stage; the rest in the CNI stage, which
// waits for the DaemonSet to roll out before the control plane starts.
func cniPlugin(m *schema.Mesh, _ Inputs) []Object {
	if !m.CNI.Enabled {
		return nil
	}
	cni := m.CNI
	labels := func() map[string]string { return map[string]string{"linkerd.io/cni-resource": "true"} }
	nsLabels := labels()
	nsLabels["config.linkerd.io/admission-webhooks"] = "disabled"
	nsLabels["pod-security.kubernetes.io/enforce"] = "privileged"
	const name = "linkerd-cni"

	return []Object{
		toObject(StageCRDs, gvkNamespace, &corev1.Namespace{ObjectMeta: objectMeta(cniNamespace, "", nsLabels, nil)}),
		toObject(StageCNI, gvkSA, &corev1.ServiceAccount{ObjectMeta: objectMeta(name, cniNamespace, labels(), nil)}),
		toObject(StageCNI, gvkClusterRole, &rbacv1.ClusterRole{
			ObjectMeta: objectMeta(name, "", labels(), nil),
			Rules: []rbacv1.PolicyRule{{
				APIGroups: []string{""}, Resources: []string{"pods", "nodes", "namespaces", "services"},
				Verbs: []string{"list", "get", "watch"},
			}},
		}),
		toObject(StageCNI, gvkCRB, &rbacv1.ClusterRoleBinding{
			ObjectMeta: objectMeta(name, "", labels(), nil),
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
			Subjects:   saSubject(name, cniNamespace),
		}),
		toObject(StageCNI, gvkConfigMap, &corev1.ConfigMap{
			ObjectMeta: objectMeta("linkerd-cni-config", cniNamespace, labels(), nil),
			Data: map[string]string{
				"dest_cni_net_dir":   cni.DestCNINetDir,
				"dest_cni_bin_dir":   cni.DestCNIBinDir,
				"cni_network_config": cniNetworkConfig(m),
			},
		}),
		cniDaemonSet(m),
	}
}

// cniNetworkConfig is the CNI conf the plugin installs on each node. The
// __PLACEHOLDERS__ are filled in on the node by the install script.
func cniNetworkConfig(m *schema.Mesh) string {
	p := m.ControlPlane.Proxy
	redirect := make([]int32, 0, len(m.CNI.RedirectPorts))
	redirect = append(redirect, m.CNI.RedirectPorts...)
	ignoreIn := []string{strconv.Itoa(int(p.Ports.Admin)), strconv.Itoa(int(p.Ports.Control))}
	ignoreIn = append(ignoreIn, m.CNI.SkipInboundPorts...)
	ld := map[string]any{
		"incoming-proxy-port":     p.Ports.Inbound,
		"outgoing-proxy-port":     p.Ports.Outbound,
		"proxy-uid":               p.UID,
		"ports-to-redirect":       redirect,
		"inbound-ports-to-ignore": ignoreIn,
		"simulate":                false,
		"use-wait-flag":           false,
		"iptables-mode":           p.IptablesMode,
		"ipv6":                    false,
	}
	if len(m.CNI.SkipOutboundPorts) > 0 {
		ld["outbound-ports-to-ignore"] = m.CNI.SkipOutboundPorts
	}
	conf := map[string]any{
		"name":      "linkerd-cni",
		"type":      "linkerd-cni",
		"log_level": m.CNI.LogLevel,
		"policy": map[string]any{
			"type":           "k8s",
			"k8s_api_root":   "https://__KUBERNETES_SERVICE_HOST__:__KUBERNETES_SERVICE_PORT__",
			"k8s_auth_token": "__SERVICEACCOUNT_TOKEN__",
		},
		"kubernetes": map[string]any{"kubeconfig": "__KUBECONFIG_FILEPATH__"},
		"linkerd":    ld,
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		panic(err) // only maps of plain values: cannot fail
	}
	return string(b)
}

func cniDaemonSet(m *schema.Mesh) Object {
	cni := m.CNI
	sel := map[string]string{"k8s-app": "linkerd-cni"}
	fromCM := func(env, key string) corev1.EnvVar {
		return corev1.EnvVar{Name: env, ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "linkerd-cni-config"}, Key: key,
		}}}
	}
	hostPath := func(name, path string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path}}}
	}
	mounts := []corev1.VolumeMount{}
	volumes := []corev1.Volume{}
	if cni.DestCNIBinDir != cni.DestCNINetDir {
		mounts = append(mounts, corev1.VolumeMount{Name: "cni-bin-dir", MountPath: "/host" + cni.DestCNIBinDir})
		volumes = append(volumes, hostPath("cni-bin-dir", cni.DestCNIBinDir))
	}
	mounts = append(mounts,
		corev1.VolumeMount{Name: "cni-net-dir", MountPath: "/host" + cni.DestCNINetDir},
		corev1.VolumeMount{Name: "linkerd-tmp-dir", MountPath: "/tmp"})
	volumes = append(volumes,
		hostPath("cni-net-dir", cni.DestCNINetDir),
		corev1.Volume{Name: "linkerd-tmp-dir", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	created := map[string]string{annotationCreated: createdBy(m)}
	return toObject(StageCNI, gvkDaemonSet, &appsv1.DaemonSet{
		ObjectMeta: objectMeta("linkerd-cni", cniNamespace,
			map[string]string{"k8s-app": "linkerd-cni", "linkerd.io/cni-resource": "true"}, created),
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type:          appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr.To(intstr.FromInt32(1))},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: objectMeta("", "", sel, merge(created, map[string]string{
					"linkerd.io/cni-resource": "true",
					"linkerd.io/inject":       "disabled",
				})),
				Spec: corev1.PodSpec{
					Tolerations:        []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					NodeSelector:       map[string]string{"kubernetes.io/os": "linux"},
					HostNetwork:        true,
					ServiceAccountName: "linkerd-cni",
					SecurityContext:    &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name:  "install-cni",
						Image: image(m, cni.Image.Name, cni.Image.Version),
						Env: []corev1.EnvVar{
							fromCM("DEST_CNI_NET_DIR", "dest_cni_net_dir"),
							fromCM("DEST_CNI_BIN_DIR", "dest_cni_bin_dir"),
							fromCM("CNI_NETWORK_CONFIG", "cni_network_config"),
							{Name: "SLEEP", Value: "true"},
						},
						Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
							Command: []string{"/bin/sh", "-c", "kill -15 1; sleep 15s"},
						}}},
						VolumeMounts: mounts,
						SecurityContext: &corev1.SecurityContext{
							ReadOnlyRootFilesystem: ptr.To(true),
							Privileged:             ptr.To(false),
						},
					}},
					Volumes: volumes,
				},
			},
		},
	})
}
