package generators

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshctl/meshctl/internal/ident"
)

func find(t *testing.T, objs []Object, id string, into any) {
	t.Helper()
	for _, o := range objs {
		if o.ID() == id {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object.Object, into); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("%s not rendered", id)
}

func render(t *testing.T, src string, in Inputs) []Object {
	t.Helper()
	objs, err := Render(load(t, src), in)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func containerNames(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func TestDeploymentsMatchUpstream(t *testing.T) {
	objs := render(t, "", Inputs{})
	tests := []struct {
		name       string
		containers []string
		selector   map[string]string
		inbound    string
	}{
		{"linkerd-identity", []string{"identity", "linkerd-proxy"},
			map[string]string{labelCPComponent: "identity", labelCPNamespace: "linkerd", "linkerd.io/proxy-deployment": "linkerd-identity"}, "8080,9990"},
		{"linkerd-destination", []string{"linkerd-proxy", "destination", "sp-validator", "policy"},
			map[string]string{labelCPComponent: "destination", labelCPNamespace: "linkerd", "linkerd.io/proxy-deployment": "linkerd-destination"}, "8086,8090,8443,9443,9990,9996,9997"},
		{"linkerd-proxy-injector", []string{"linkerd-proxy", "proxy-injector"},
			map[string]string{labelCPComponent: "proxy-injector"}, "8443,9995"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d appsv1.Deployment
			find(t, objs, "Deployment/linkerd/"+tc.name, &d)
			spec := d.Spec.Template.Spec
			if diff := cmp.Diff(tc.containers, containerNames(spec.Containers)); diff != "" {
				t.Errorf("containers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.selector, d.Spec.Selector.MatchLabels); diff != "" {
				t.Errorf("selector (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"linkerd-init"}, containerNames(spec.InitContainers)); diff != "" {
				t.Errorf("init containers (-want +got):\n%s", diff)
			}
			for _, c := range spec.Containers {
				if c.Name != "linkerd-proxy" {
					continue
				}
				for _, e := range c.Env {
					if e.Name == "LINKERD2_PROXY_INBOUND_PORTS" && e.Value != tc.inbound {
						t.Errorf("inbound ports %q, want %q", e.Value, tc.inbound)
					}
				}
			}
			if *d.Spec.Replicas != 1 || spec.Affinity != nil || *d.Spec.RevisionHistoryLimit != 10 {
				t.Errorf("replicas %d, affinity %v, history %d", *d.Spec.Replicas, spec.Affinity, *d.Spec.RevisionHistoryLimit)
			}
			if d.Labels[ident.LabelManagedBy] != "meshctl" {
				t.Errorf("missing %s label", ident.LabelManagedBy)
			}
		})
	}
}

func TestHAVariant(t *testing.T) {
	objs := render(t, "controlPlane: ha: true", Inputs{})
	var d appsv1.Deployment
	find(t, objs, "Deployment/linkerd/linkerd-destination", &d)
	if *d.Spec.Replicas != 3 || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 1 {
		t.Errorf("replicas %d, maxUnavailable %v", *d.Spec.Replicas, d.Spec.Strategy.RollingUpdate.MaxUnavailable)
	}
	aa := d.Spec.Template.Spec.Affinity.PodAntiAffinity
	if aa.RequiredDuringSchedulingIgnoredDuringExecution[0].TopologyKey != "kubernetes.io/hostname" ||
		aa.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != "topology.kubernetes.io/zone" {
		t.Errorf("anti-affinity: %+v", aa)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		want := map[string]string{"linkerd-proxy": "20Mi", "destination": "50Mi", "sp-validator": "", "policy": ""}[c.Name]
		got := ""
		if q, ok := c.Resources.Requests[corev1.ResourceMemory]; ok {
			got = q.String()
		}
		if got != want {
			t.Errorf("%s memory request %q, want %q", c.Name, got, want)
		}
	}
	var mwc admissionv1.MutatingWebhookConfiguration
	find(t, objs, "MutatingWebhookConfiguration/linkerd-proxy-injector-webhook-config", &mwc)
	if *mwc.Webhooks[0].FailurePolicy != admissionv1.Fail {
		t.Errorf("injector failurePolicy %s, want Fail", *mwc.Webhooks[0].FailurePolicy)
	}
}

func TestCNIVariant(t *testing.T) {
	objs := render(t, "cni: enabled: true", Inputs{})
	var ns corev1.Namespace
	find(t, objs, "Namespace/linkerd", &ns)
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("PSA %q, want restricted", ns.Labels["pod-security.kubernetes.io/enforce"])
	}
	var d appsv1.Deployment
	find(t, objs, "Deployment/linkerd/linkerd-identity", &d)
	if diff := cmp.Diff([]string{"linkerd-network-validator"}, containerNames(d.Spec.Template.Spec.InitContainers)); diff != "" {
		t.Errorf("init containers (-want +got):\n%s", diff)
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "linkerd-proxy-init-xtables-lock" {
			t.Error("xtables lock volume kept with CNI")
		}
	}
	var cm corev1.ConfigMap
	find(t, objs, "ConfigMap/linkerd/linkerd-config", &cm)
	if !strings.Contains(cm.Data["values"], "cniEnabled: true") {
		t.Error("linkerd-config does not say cniEnabled: true")
	}
}

// TestNoPrivateKeysWithoutCerts: a plain render never holds key material,
// and one with certificates holds exactly the inputs' keys.
func TestNoPrivateKeysWithoutCerts(t *testing.T) {
	out := string(build(t, load(t, "controlPlane: ha: true"), Inputs{}))
	if strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, "key.pem") || strings.Contains(out, "tls.key:") {
		t.Error("render without certificates holds key material")
	}
	c := testCerts(t)
	objs := render(t, "", Inputs{Certs: c})
	var s corev1.Secret
	find(t, objs, "Secret/linkerd/linkerd-identity-issuer", &s)
	if string(s.Data["key.pem"]) != c.Issuer.KeyPEM {
		t.Error("issuer Secret does not hold the input key")
	}
	var vwc admissionv1.ValidatingWebhookConfiguration
	find(t, objs, "ValidatingWebhookConfiguration/linkerd-sp-validator-webhook-config", &vwc)
	if string(vwc.Webhooks[0].ClientConfig.CABundle) != c.Webhooks["linkerd-sp-validator"].CertPEM {
		t.Error("caBundle is not the webhook's certificate")
	}
	var cm corev1.ConfigMap
	find(t, objs, "ConfigMap/linkerd/linkerd-config", &cm)
	if strings.Contains(cm.Data["values"], "PRIVATE KEY") {
		t.Error("linkerd-config holds a private key")
	}
}

func TestMeshedNamespaces(t *testing.T) {
	objs := render(t, `namespaces: {shop: {safeToEvict: true}, edge: {inject: "ingress", create: true}}`, Inputs{})
	var shop, edge corev1.Namespace
	find(t, objs, "Namespace/shop", &shop)
	find(t, objs, "Namespace/edge", &edge)
	want := map[string]string{"linkerd.io/inject": "enabled", "cluster-autoscaler.kubernetes.io/safe-to-evict": "true", ident.AnnotationPrune: "disabled"}
	if d := cmp.Diff(want, shop.Annotations); d != "" {
		t.Errorf("shop annotations (-want +got):\n%s", d)
	}
	if shop.Labels[ident.LabelManagedBy] != "" || edge.Labels[ident.LabelManagedBy] != "meshctl" {
		t.Errorf("ownership labels: shop %v, edge %v", shop.Labels, edge.Labels)
	}
}
