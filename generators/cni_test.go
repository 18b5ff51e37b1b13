package generators

import (
	"encoding/json"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestCNIPlugin checks install-cni's six objects against FACTS §8.2.
func TestCNIPlugin(t *testing.T) {
	objs := render(t, "cni: {enabled: true, skipOutboundPorts: [\"443\"], redirectPorts: [8080]}", Inputs{})
	var ids []string
	for _, o := range objs {
		if o.Object.GetLabels()["linkerd.io/cni-resource"] != "true" {
			continue
		}
		ids = append(ids, o.ID())
		want := StageCNI
		if o.Object.GetKind() == "Namespace" {
			want = StageCRDs
		}
		if o.Stage != want {
			t.Errorf("%s in stage %s, want %s", o.ID(), o.Stage, want)
		}
	}
	sort.Strings(ids)
	wantIDs := []string{
		"ClusterRole/linkerd-cni", "ClusterRoleBinding/linkerd-cni", "ConfigMap/linkerd-cni/linkerd-cni-config",
		"DaemonSet/linkerd-cni/linkerd-cni", "Namespace/linkerd-cni", "ServiceAccount/linkerd-cni/linkerd-cni",
	}
	if diff := cmp.Diff(wantIDs, ids); diff != "" {
		t.Errorf("CNI objects (-want +got):\n%s", diff)
	}

	var ds appsv1.DaemonSet
	find(t, objs, "DaemonSet/linkerd-cni/linkerd-cni", &ds)
	pod := ds.Spec.Template.Spec
	c := pod.Containers[0]
	if c.Name != "install-cni" || c.Image != "cr.l5d.io/linkerd/cni-plugin:v1.6.4" {
		t.Errorf("container %s image %s", c.Name, c.Image)
	}
	if ds.Spec.Selector.MatchLabels["k8s-app"] != "linkerd-cni" || ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable.IntValue() != 1 {
		t.Errorf("selector %v, strategy %+v", ds.Spec.Selector, ds.Spec.UpdateStrategy)
	}
	if len(pod.Tolerations) != 1 || pod.Tolerations[0].Operator != corev1.TolerationOpExists || pod.NodeSelector["kubernetes.io/os"] != "linux" {
		t.Errorf("tolerations %v, nodeSelector %v", pod.Tolerations, pod.NodeSelector)
	}
	if ds.Spec.Template.Annotations["linkerd.io/inject"] != "disabled" || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod annotations %v, security %v", ds.Spec.Template.Annotations, pod.SecurityContext)
	}
	if *c.SecurityContext.Privileged || !*c.SecurityContext.ReadOnlyRootFilesystem || c.SecurityContext.RunAsUser != nil || c.Resources.Requests != nil || c.LivenessProbe != nil {
		t.Errorf("container security %+v", c.SecurityContext)
	}
	var env []string
	for _, e := range c.Env {
		env = append(env, e.Name)
	}
	if diff := cmp.Diff([]string{"DEST_CNI_NET_DIR", "DEST_CNI_BIN_DIR", "CNI_NETWORK_CONFIG", "SLEEP"}, env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	var mounts []string
	for _, m := range c.VolumeMounts {
		mounts = append(mounts, m.MountPath)
	}
	if diff := cmp.Diff([]string{"/host/opt/cni/bin", "/host/etc/cni/net.d", "/tmp"}, mounts); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}

	var cm corev1.ConfigMap
	find(t, objs, "ConfigMap/linkerd-cni/linkerd-cni-config", &cm)
	if cm.Data["dest_cni_net_dir"] != "/etc/cni/net.d" || cm.Data["dest_cni_bin_dir"] != "/opt/cni/bin" {
		t.Errorf("dirs %v", cm.Data)
	}
	var conf struct {
		Name, Type string
		LogLevel   string `json:"log_level"`
		Kubernetes struct{ Kubeconfig string }
		Linkerd    map[string]any
	}
	if err := json.Unmarshal([]byte(cm.Data["cni_network_config"]), &conf); err != nil {
		t.Fatal(err)
	}
	if conf.Name != "linkerd-cni" || conf.Type != "linkerd-cni" || conf.LogLevel != "info" || conf.Kubernetes.Kubeconfig != "__KUBECONFIG_FILEPATH__" {
		t.Errorf("conf %+v", conf)
	}
	want := map[string]any{
		"incoming-proxy-port": 4143.0, "outgoing-proxy-port": 4140.0, "proxy-uid": 2102.0,
		"ports-to-redirect": []any{8080.0}, "inbound-ports-to-ignore": []any{"4191", "4190"},
		"outbound-ports-to-ignore": []any{"443"},
		"simulate":                 false, "use-wait-flag": false, "iptables-mode": "nft", "ipv6": false,
	}
	if diff := cmp.Diff(want, conf.Linkerd); diff != "" {
		t.Errorf("linkerd block (-want +got):\n%s", diff)
	}

	for _, o := range render(t, "", Inputs{}) {
		if o.Object.GetLabels()["linkerd.io/cni-resource"] == "true" {
			t.Errorf("%s rendered with cni off", o.ID())
		}
	}
}
