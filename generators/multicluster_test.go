package generators

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshctl/meshctl/internal/ident"
)

const twoClusters = `
clusters: {west: context: "kind-west", east: context: "kind-east"}
controlPlane: identity: {trustAnchor: source: "external", issuer: source: "secret"}
`

// mcInstall is `linkerd multicluster install` (FACTS §11.1), 20 objects.
var mcInstall = []string{
	"Namespace/linkerd-multicluster",
	"CustomResourceDefinition/links.multicluster.linkerd.io",
	// gateway
	"Deployment/linkerd-multicluster/linkerd-gateway", "Service/linkerd-multicluster/linkerd-gateway",
	"ServiceAccount/linkerd-multicluster/linkerd-gateway", "Server/linkerd-multicluster/linkerd-gateway",
	"AuthorizationPolicy/linkerd-multicluster/linkerd-gateway", "MeshTLSAuthentication/linkerd-multicluster/any-meshed",
	"NetworkAuthentication/linkerd-multicluster/source-cluster",
	// remote access
	"ClusterRole/linkerd-service-mirror-remote-access-default", "ClusterRoleBinding/linkerd-service-mirror-remote-access-default",
	"ServiceAccount/linkerd-multicluster/linkerd-service-mirror-remote-access-default",
	"Secret/linkerd-multicluster/linkerd-service-mirror-remote-access-default-token",
	// metrics policy
	"Server/linkerd-multicluster/service-mirror", "AuthorizationPolicy/linkerd-multicluster/service-mirror",
	// local service mirror
	"ClusterRole/linkerd-local-service-mirror-access-local-resources", "ClusterRoleBinding/linkerd-local-service-mirror-access-local-resources",
	"ServiceAccount/linkerd-multicluster/linkerd-local-service-mirror", "Deployment/linkerd-multicluster/linkerd-local-service-mirror",
	// per-link controllers
	"ClusterRole/linkerd-multicluster-controller-access-local-resources",
}

var mcGatewayObjects = []string{
	"Deployment/linkerd-multicluster/linkerd-gateway", "Service/linkerd-multicluster/linkerd-gateway",
	"ServiceAccount/linkerd-multicluster/linkerd-gateway", "Server/linkerd-multicluster/linkerd-gateway",
	"AuthorizationPolicy/linkerd-multicluster/linkerd-gateway", "MeshTLSAuthentication/linkerd-multicluster/any-meshed",
	"NetworkAuthentication/linkerd-multicluster/source-cluster",
}

var mcHAPDBs = []string{"PodDisruptionBudget/linkerd-multicluster/linkerd-gateway", "PodDisruptionBudget/linkerd-multicluster/linkerd-local-service-mirror"}

// controllerEast is the controller for a Link east (FACTS §11.3), 6 objects.
var controllerEast = []string{
	"Deployment/linkerd-multicluster/controller-east", "Service/linkerd-multicluster/probe-east",
	"ServiceAccount/linkerd-multicluster/controller-east",
	"ClusterRoleBinding/linkerd-multicluster-controller-access-local-resources-east",
	"Role/linkerd-multicluster/controller-read-remote-creds-east", "RoleBinding/linkerd-multicluster/controller-read-remote-creds-east",
}

// linkGenEast is link-gen's output for east (FACTS §11.5).
var linkGenEast = []string{
	"Secret/linkerd-multicluster/cluster-credentials-east", "Secret/linkerd/cluster-credentials-east", "Link/linkerd-multicluster/east",
}

func cat(lists ...[]string) []string { return slices.Concat(lists...) }

func TestMulticlusterObjectSets(t *testing.T) {
	link := "links: [{from: \"west\", to: \"east\"}]\n"
	tests := []struct {
		name, src, cluster string
		want               []string
	}{
		{"a mesh without clusters", "", "", nil},
		{"a render for no cluster", twoClusters + link, "", nil},
		{"a cluster the mesh does not declare", twoClusters + link, "north", nil},
		{"install", twoClusters, "west", mcInstall},
		{"install without a gateway", twoClusters + "clusters: west: gateway: enabled: false", "west", without(mcInstall, mcGatewayObjects...)},
		{"install with ha", twoClusters + "clusters: west: ha: true", "west", cat(mcInstall, mcHAPDBs)},
		{"the link's source", twoClusters + link, "west", cat(mcInstall, controllerEast, linkGenEast)},
		{"the link's source, ha", twoClusters + link + "clusters: west: ha: true", "west",
			cat(mcInstall, mcHAPDBs, controllerEast, linkGenEast, []string{"PodDisruptionBudget/linkerd-multicluster/controller-east"})},
		{"the link's target", twoClusters + link, "east", mcInstall},
		{"a link without gateway has no probe Service", twoClusters + `links: [{from: "west", to: "east", gateway: false}]`, "west",
			cat(mcInstall, without(controllerEast, "Service/linkerd-multicluster/probe-east"), linkGenEast)},
		{"the target's export", twoClusters + link + `services: "shop/books": export: "gateway"`, "east",
			cat(mcInstall, []string{"Service/shop/books"})},
		{"no export in the source", twoClusters + link + `services: "shop/books": export: "gateway"`, "west",
			cat(mcInstall, controllerEast, linkGenEast)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := objectIDs(multicluster(load(t, tc.src), Inputs{Cluster: tc.cluster}))
			if d := cmp.Diff(sorted(tc.want), got); d != "" {
				t.Errorf("objects (-want +got):\n%s", d)
			}
		})
	}
}

// field is one fact about one rendered object.
type field struct {
	id   string
	path string // dot-separated; [n] indexes a list
	want any
}

// fieldAt reads a dotted path such as spec.template.spec.containers[0].args.
func fieldAt(t *testing.T, obj map[string]any, path string) any {
	t.Helper()
	var cur any = obj
	for _, part := range splitPath(path) {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[part]
		case []any:
			i := 0
			for _, r := range part {
				i = i*10 + int(r-'0')
			}
			if i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

// splitPath splits on dots outside keys' own dots, which are written
// between single quotes: metadata.annotations.'linkerd.io/inject'.
func splitPath(p string) []string {
	var out []string
	var b strings.Builder
	quoted := false
	for _, r := range p {
		switch {
		case r == '\'':
			quoted = !quoted
		case r == '.' && !quoted:
			out = append(out, b.String())
			b.Reset()
		case r == '[' && !quoted:
			out = append(out, b.String())
			b.Reset()
		case r == ']' && !quoted:
		default:
			b.WriteRune(r)
		}
	}
	return append(out, b.String())
}

func checkFields(t *testing.T, objs []Object, fields []field) {
	t.Helper()
	for _, f := range fields {
		got := fieldAt(t, objectByID(t, objs, f.id).Object, f.path)
		if d := cmp.Diff(f.want, got); d != "" {
			t.Errorf("%s %s (-want +got):\n%s", f.id, f.path, d)
		}
	}
}

func strs(s ...string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func TestMulticlusterFacts(t *testing.T) {
	m := load(t, twoClusters+`links: [{from: "west", to: "east"}]`)
	objs, err := Render(m, Inputs{Cluster: "west"})
	if err != nil {
		t.Fatal(err)
	}
	gw, gwSvc := "Deployment/linkerd-multicluster/linkerd-gateway", "Service/linkerd-multicluster/linkerd-gateway"
	lsm, ctl := "Deployment/linkerd-multicluster/linkerd-local-service-mirror", "Deployment/linkerd-multicluster/controller-east"
	pod := "spec.template.metadata.annotations."
	checkFields(t, objs, []field{
		{"Namespace/linkerd-multicluster", "metadata.labels.'linkerd.io/extension'", "multicluster"},
		{"Namespace/linkerd-multicluster", "metadata.labels.'pod-security.kubernetes.io/enforce'", "privileged"},
		{"Namespace/linkerd-multicluster", "metadata.annotations", nil},
		// §11.2 gateway
		{gw, "spec.replicas", int64(1)},
		{gw, "spec.strategy", nil},
		{gw, "spec.selector.matchLabels", map[string]any{"app": "linkerd-gateway"}},
		{gw, "metadata.labels.component", "gateway"},
		{gw, "metadata.labels.'app.kubernetes.io/name'", "gateway"},
		{gw, "spec.template.metadata.labels", map[string]any{"app": "linkerd-gateway", "linkerd.io/extension": "multicluster"}},
		{gw, pod + "'linkerd.io/inject'", "enabled"},
		{gw, pod + "'config.linkerd.io/enable-gateway'", "true"},
		{gw, pod + "'config.linkerd.io/proxy-require-identity-inbound-ports'", "4143"},
		{gw, pod + "'config.linkerd.io/default-inbound-policy'", "all-authenticated"},
		{gw, pod + "'cluster-autoscaler.kubernetes.io/safe-to-evict'", "true"},
		{gw, "spec.template.spec.containers[0].name", "pause"},
		{gw, "spec.template.spec.containers[0].image", "gcr.io/google_containers/pause:3.2"},
		{gw, "spec.template.spec.containers[0].securityContext.runAsUser", int64(2103)},
		{gw, "spec.template.spec.containers[0].securityContext.runAsGroup", int64(2103)},
		{gw, "spec.template.spec.containers[0].ports", nil},
		{gw, "spec.template.spec.containers[0].imagePullPolicy", nil},
		{gw, "spec.template.spec.volumes", nil},
		{gw, "spec.template.spec.affinity", nil},
		{gw, "spec.template.spec.nodeSelector", nil},
		{gw, "spec.template.spec.serviceAccountName", "linkerd-gateway"},
		{gwSvc, "spec.type", "LoadBalancer"},
		{gwSvc, "spec.selector", map[string]any{"app": "linkerd-gateway"}},
		{gwSvc, "spec.ports", []any{
			map[string]any{"name": "mc-gateway", "port": int64(4143), "protocol": "TCP"},
			map[string]any{"name": "mc-probe", "port": int64(4191), "protocol": "TCP"},
		}},
		{gwSvc, "metadata.annotations.'mirror.linkerd.io/gateway-identity'", "linkerd-gateway.linkerd-multicluster.serviceaccount.identity.linkerd.cluster.local"},
		{gwSvc, "metadata.annotations.'mirror.linkerd.io/probe-period'", "3"},
		{gwSvc, "metadata.annotations.'mirror.linkerd.io/probe-path'", "/ready"},
		{gwSvc, "metadata.annotations.'mirror.linkerd.io/multicluster-gateway'", "true"},
		{gwSvc, "metadata.annotations.component", "gateway"},
		{"Server/linkerd-multicluster/linkerd-gateway", "spec", map[string]any{
			"podSelector": map[string]any{"matchLabels": map[string]any{"app": "linkerd-gateway"}}, "port": "linkerd-proxy"}},
		{"AuthorizationPolicy/linkerd-multicluster/linkerd-gateway", "spec.requiredAuthenticationRefs[0].name", "any-meshed"},
		{"AuthorizationPolicy/linkerd-multicluster/linkerd-gateway", "spec.requiredAuthenticationRefs[1].name", "source-cluster"},
		{"MeshTLSAuthentication/linkerd-multicluster/any-meshed", "spec.identities", strs("*")},
		{"NetworkAuthentication/linkerd-multicluster/source-cluster", "spec.networks", []any{map[string]any{"cidr": "0.0.0.0/0"}, map[string]any{"cidr": "::/0"}}},
		// §11.1 remote access
		{"Secret/linkerd-multicluster/linkerd-service-mirror-remote-access-default-token", "type", "kubernetes.io/service-account-token"},
		{"Secret/linkerd-multicluster/linkerd-service-mirror-remote-access-default-token", "metadata.annotations.'kubernetes.io/service-account.name'", "linkerd-service-mirror-remote-access-default"},
		{"ClusterRoleBinding/linkerd-service-mirror-remote-access-default", "subjects[0].name", "linkerd-service-mirror-remote-access-default"},
		// §11.3 metrics policy
		{"Server/linkerd-multicluster/service-mirror", "spec.port", "svcmi-admin"},
		{"Server/linkerd-multicluster/service-mirror", "spec.podSelector.matchExpressions[0].values", strs("linkerd-service-mirror", "controller")},
		{"AuthorizationPolicy/linkerd-multicluster/service-mirror", "spec.requiredAuthenticationRefs", []any{
			map[string]any{"kind": "ServiceAccount", "name": "prometheus", "namespace": "linkerd-viz"}}},
		// §11.3 local service mirror
		{lsm, "spec.selector.matchLabels", map[string]any{"component": "local-service-mirror"}},
		{lsm, "spec.template.spec.containers[0].name", "service-mirror"},
		{lsm, "spec.template.spec.containers[0].image", "cr.l5d.io/linkerd/controller:edge-25.10.7"},
		{lsm, "spec.template.spec.containers[0].args", strs("service-mirror", "-log-level=info", "-log-format=plain",
			"-event-requeue-limit=3", "-namespace=linkerd-multicluster", "-enable-pprof=false", "-local-mirror",
			"-federated-service-selector=mirror.linkerd.io/federated=member", "-excluded-labels=", "-excluded-annotations=")},
		{lsm, "spec.template.spec.containers[0].ports", []any{map[string]any{"name": "locsm-admin", "containerPort": int64(9999)}}},
		{lsm, "spec.template.spec.containers[0].livenessProbe", nil},
		{lsm, pod + "'config.alpha.linkerd.io/proxy-wait-before-exit-seconds'", "0"},
		{lsm, "spec.template.spec.automountServiceAccountToken", false},
		{lsm, "spec.template.spec.volumes[0].name", "kube-api-access"},
		{"ClusterRole/linkerd-local-service-mirror-access-local-resources", "rules[4].resources", strs("links/status")},
		{"ClusterRole/linkerd-multicluster-controller-access-local-resources", "rules[0].verbs", strs("list", "get", "watch", "create", "delete", "update")},
		// §11.3 per link
		{ctl, "metadata.labels", map[string]any{"linkerd.io/extension": "multicluster", "component": "controller",
			"mirror.linkerd.io/cluster-name": "east", ident.LabelManagedBy: ident.ManagedByMeshctl}},
		{ctl, "spec.selector.matchLabels", map[string]any{"component": "controller", "mirror.linkerd.io/cluster-name": "east"}},
		{ctl, "spec.template.spec.containers[0].name", "controller"},
		{ctl, "spec.template.spec.containers[0].args", strs("service-mirror", "-log-level=info", "-log-format=plain",
			"-event-requeue-limit=3", "-namespace=linkerd-multicluster", "-enable-pprof=false", "-probe-service=probe-east", "east")},
		{ctl, "spec.template.spec.containers[0].ports", []any{map[string]any{"name": "ctrl-admin", "containerPort": int64(9999)}}},
		{ctl, "spec.template.spec.serviceAccountName", "controller-east"},
		{ctl, pod + "'linkerd.io/inject'", "enabled"},
		{"Service/linkerd-multicluster/probe-east", "spec.selector", nil},
		{"Service/linkerd-multicluster/probe-east", "spec.ports", []any{map[string]any{"name": "mc-probe", "port": int64(4191), "protocol": "TCP"}}},
		{"Service/linkerd-multicluster/probe-east", "metadata.labels.'mirror.linkerd.io/mirrored-gateway'", "true"},
		{"Service/linkerd-multicluster/probe-east", "metadata.labels.'mirror.linkerd.io/cluster-name'", "east"},
		{"ClusterRoleBinding/linkerd-multicluster-controller-access-local-resources-east", "roleRef.name", "linkerd-multicluster-controller-access-local-resources"},
		{"ClusterRoleBinding/linkerd-multicluster-controller-access-local-resources-east", "subjects[0].name", "controller-east"},
		{"Role/linkerd-multicluster/controller-read-remote-creds-east", "rules[0]", map[string]any{
			"apiGroups": strs(""), "resources": strs("secrets"), "resourceNames": strs("cluster-credentials-east"), "verbs": strs("list", "get", "watch")}},
		{"Role/linkerd-multicluster/controller-read-remote-creds-east", "rules[2].verbs", strs("update", "patch")},
		{"RoleBinding/linkerd-multicluster/controller-read-remote-creds-east", "subjects[0].name", "controller-east"},
	})
}

func TestMulticlusterSettings(t *testing.T) {
	src := twoClusters + `clusters: west: gateway: {serviceType: "NodePort", port: 4243, probePort: 4291, probeSeconds: 7}
controlPlane: identity: trustDomain: "mesh.example"`
	objs := multicluster(load(t, src), Inputs{Cluster: "west"})
	gwSvc := "Service/linkerd-multicluster/linkerd-gateway"
	checkFields(t, objs, []field{
		{gwSvc, "spec.type", "NodePort"},
		{gwSvc, "spec.ports[0].port", int64(4243)},
		{gwSvc, "spec.ports[1].port", int64(4291)},
		{gwSvc, "metadata.annotations.'mirror.linkerd.io/probe-period'", "7"},
		{gwSvc, "metadata.annotations.'mirror.linkerd.io/gateway-identity'", "linkerd-gateway.linkerd-multicluster.serviceaccount.identity.linkerd.mesh.example"},
		{"Deployment/linkerd-multicluster/linkerd-gateway", "spec.template.metadata.annotations.'config.linkerd.io/proxy-require-identity-inbound-ports'", "4243"},
	})
}

// TestMulticlusterHA holds the diffs of FACTS §11.4.
func TestMulticlusterHA(t *testing.T) {
	src := twoClusters + `links: [{from: "west", to: "east"}]` + "\nclusters: west: ha: true"
	objs := multicluster(load(t, src), Inputs{Cluster: "west"})
	gw, lsm, ctl := "Deployment/linkerd-multicluster/linkerd-gateway", "Deployment/linkerd-multicluster/linkerd-local-service-mirror", "Deployment/linkerd-multicluster/controller-east"
	oneAtATime := map[string]any{"rollingUpdate": map[string]any{"maxUnavailable": int64(1)}}
	spread := func(key, value string) map[string]any {
		sel := map[string]any{"matchExpressions": []any{map[string]any{"key": key, "operator": "In", "values": strs(value)}}}
		return map[string]any{"podAntiAffinity": map[string]any{
			"requiredDuringSchedulingIgnoredDuringExecution": []any{map[string]any{"labelSelector": sel, "topologyKey": "kubernetes.io/hostname"}},
			"preferredDuringSchedulingIgnoredDuringExecution": []any{map[string]any{"weight": int64(100),
				"podAffinityTerm": map[string]any{"labelSelector": sel, "topologyKey": "topology.kubernetes.io/zone"}}},
		}}
	}
	checkFields(t, objs, []field{
		{gw, "spec.replicas", int64(3)},
		{gw, "spec.strategy", oneAtATime},
		{gw, "spec.template.spec.affinity", spread("app", "linkerd-gateway")},
		{lsm, "spec.replicas", int64(1)},
		{lsm, "spec.strategy", oneAtATime},
		{lsm, "spec.template.spec.affinity", spread("component", "local-service-mirror")},
		{ctl, "spec.replicas", int64(1)},
		{ctl, "spec.strategy", nil},
		{ctl, "spec.template.spec.affinity", nil},
		{"PodDisruptionBudget/linkerd-multicluster/linkerd-gateway", "spec", map[string]any{
			"maxUnavailable": int64(1), "selector": map[string]any{"matchLabels": map[string]any{"app": "linkerd-gateway"}}}},
		{"PodDisruptionBudget/linkerd-multicluster/linkerd-local-service-mirror", "spec", map[string]any{
			"maxUnavailable": int64(1), "selector": map[string]any{"matchLabels": map[string]any{"component": "local-service-mirror"}}}},
		{"PodDisruptionBudget/linkerd-multicluster/controller-east", "spec", map[string]any{
			"maxUnavailable": int64(1), "selector": map[string]any{"matchLabels": map[string]any{"component": "controller", "mirror.linkerd.io/cluster-name": "east"}}}},
		{"PodDisruptionBudget/linkerd-multicluster/controller-east", "metadata.labels", map[string]any{"component": "controller"}},
	})
}

// eastTarget is what east would say about itself; the token is a stand-in.
var eastTarget = &LinkTarget{
	APIServer: "https://east.example.invalid:6443", CAData: []byte("-----BEGIN CERTIFICATE-----\neast\n-----END CERTIFICATE-----\n"),
	Token:            "stand-in-sa-token-7f3a",
	GatewayAddresses: "203.0.113.10,203.0.113.11", GatewayPort: "30143", GatewayIdentity: "linkerd-gateway.linkerd-multicluster.serviceaccount.identity.linkerd.east.example",
	ProbePath: "/ready", ProbePort: "30191", ProbePeriod: "5",
	TrustDomain: "east.example", ClusterDomain: "east.local",
}

func TestLinkGen(t *testing.T) {
	link := "Link/linkerd-multicluster/east"
	tests := []struct {
		name, links string
		target      *LinkTarget
		fields      []field
		kubeconfig  [3]string // server, token, context
	}{
		{"offline, with a gateway", `links: [{from: "west", to: "east"}]`, nil, []field{
			{link, "spec.gatewayAddress", "PLACEHOLDER: read from cluster east at apply time"},
			{link, "spec.gatewayIdentity", "linkerd-gateway.linkerd-multicluster.serviceaccount.identity.linkerd.cluster.local"},
			{link, "spec.gatewayPort", "4143"},
			{link, "spec.probeSpec", map[string]any{"path": "/ready", "port": "4191", "period": "3s"}},
			{link, "spec.selector", map[string]any{"matchLabels": map[string]any{"mirror.linkerd.io/exported": "true"}}},
			{link, "spec.targetClusterDomain", "cluster.local"},
			{"Secret/linkerd/cluster-credentials-east", "metadata.annotations", map[string]any{
				"multicluster.linkerd.io/trust-domain": "cluster.local", "multicluster.linkerd.io/cluster-domain": "cluster.local"}},
		}, [3]string{"PLACEHOLDER: read from cluster east at apply time", "PLACEHOLDER: read from cluster east at apply time", "kind-east"}},
		{"with east's answers", `links: [{from: "west", to: "east"}]`, eastTarget, []field{
			{link, "spec.gatewayAddress", "203.0.113.10,203.0.113.11"},
			{link, "spec.gatewayIdentity", eastTarget.GatewayIdentity},
			{link, "spec.gatewayPort", "30143"},
			{link, "spec.probeSpec", map[string]any{"path": "/ready", "port": "30191", "period": "5s"}},
			{link, "spec.targetClusterDomain", "east.local"},
			{"Secret/linkerd/cluster-credentials-east", "metadata.annotations", map[string]any{
				"multicluster.linkerd.io/trust-domain": "east.example", "multicluster.linkerd.io/cluster-domain": "east.local"}},
		}, [3]string{"https://east.example.invalid:6443", "stand-in-sa-token-7f3a", "kind-east"}},
		{"without a gateway", `links: [{from: "west", to: "east", gateway: false}]`, eastTarget, []field{
			{link, "spec.gatewayAddress", nil},
			{link, "spec.gatewayIdentity", nil},
			{link, "spec.gatewayPort", nil},
			{link, "spec.selector", nil},
			{link, "spec.probeSpec", map[string]any{}},
		}, [3]string{"https://east.example.invalid:6443", "stand-in-sa-token-7f3a", "kind-east"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := Render(load(t, twoClusters+tc.links), Inputs{Cluster: "west", Links: map[string]*LinkTarget{"east": tc.target}})
			if err != nil {
				t.Fatal(err)
			}
			common := []field{
				{link, "apiVersion", "multicluster.linkerd.io/v1alpha3"},
				{link, "metadata.annotations", map[string]any{"linkerd.io/created-by": "linkerd/cli edge-25.10.7"}},
				{link, "spec.targetClusterName", "east"},
				{link, "spec.targetClusterLinkerdNamespace", "linkerd"},
				{link, "spec.clusterCredentialsSecret", "cluster-credentials-east"},
				{link, "spec.remoteDiscoverySelector", map[string]any{"matchLabels": map[string]any{"mirror.linkerd.io/exported": "remote-discovery"}}},
				{link, "spec.federatedServiceSelector", map[string]any{"matchLabels": map[string]any{"mirror.linkerd.io/federated": "member"}}},
				{link, "status", nil},
				{"Secret/linkerd-multicluster/cluster-credentials-east", "type", "mirror.linkerd.io/remote-kubeconfig"},
				{"Secret/linkerd-multicluster/cluster-credentials-east", "metadata.labels", map[string]any{ident.LabelManagedBy: ident.ManagedByMeshctl}},
				{"Secret/linkerd-multicluster/cluster-credentials-east", "metadata.annotations", nil},
				{"Secret/linkerd/cluster-credentials-east", "type", "mirror.linkerd.io/remote-kubeconfig"},
				{"Secret/linkerd/cluster-credentials-east", "metadata.labels.'multicluster.linkerd.io/cluster-name'", "east"},
			}
			checkFields(t, objs, append(common, tc.fields...))
			for _, id := range []string{"Secret/linkerd-multicluster/cluster-credentials-east", "Secret/linkerd/cluster-credentials-east"} {
				checkKubeconfig(t, objectByID(t, objs, id), tc.kubeconfig, tc.target)
			}
			wantPlaceholders := []string(nil)
			if tc.target == nil {
				wantPlaceholders = linkGenEast
			}
			if d := cmp.Diff(sorted(wantPlaceholders), sorted(Placeholders(objs))); d != "" {
				t.Errorf("Placeholders (-want +got):\n%s", d)
			}
		})
	}
}

// checkKubeconfig parses a credentials Secret's kubeconfig as client-go does.
func checkKubeconfig(t *testing.T, secret *unstructured.Unstructured, want [3]string, target *LinkTarget) {
	t.Helper()
	enc, _, _ := unstructured.NestedString(secret.Object, "data", "kubeconfig")
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		t.Fatalf("%s: kubeconfig does not load: %v", secret.GetName(), err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || cfg.CurrentContext != want[2] {
		t.Fatalf("%s: current context %q, want %q", secret.GetName(), cfg.CurrentContext, want[2])
	}
	cl, user := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
	if cl == nil || user == nil {
		t.Fatalf("%s: context %+v names no cluster or user", secret.GetName(), ctx)
	}
	got := [3]string{cl.Server, user.Token, cfg.CurrentContext}
	if got != want || ctx.AuthInfo != "linkerd-service-mirror-remote-access-default" {
		t.Errorf("%s: server, token, context = %q, user %q", secret.GetName(), got, ctx.AuthInfo)
	}
	if target != nil && !bytes.Equal(cl.CertificateAuthorityData, target.CAData) {
		t.Errorf("%s: CA %q, want %q", secret.GetName(), cl.CertificateAuthorityData, target.CAData)
	}
}

// TestLinkTokenOnlyInCredentials: the token is in the two Secrets'
// kubeconfig and nowhere else in the render.
func TestLinkTokenOnlyInCredentials(t *testing.T) {
	objs, err := Render(load(t, twoClusters+`links: [{from: "west", to: "east"}]`), Inputs{Cluster: "west", Links: map[string]*LinkTarget{"east": eastTarget}})
	if err != nil {
		t.Fatal(err)
	}
	var holders []string
	for _, o := range objs {
		var buf bytes.Buffer
		if err := Encode(&buf, []Object{o}, "yaml"); err != nil {
			t.Fatal(err)
		}
		text := buf.String()
		if strings.Contains(text, eastTarget.Token) {
			t.Errorf("%s holds the token in clear", o.ID())
		}
		if kc, ok, _ := unstructured.NestedString(o.Object.Object, "data", "kubeconfig"); ok {
			raw, _ := base64.StdEncoding.DecodeString(kc)
			if strings.Contains(string(raw), eastTarget.Token) {
				holders = append(holders, o.ID())
			}
		}
	}
	if d := cmp.Diff(sorted(without(linkGenEast, "Link/linkerd-multicluster/east")), sorted(holders)); d != "" {
		t.Errorf("objects holding the token (-want +got):\n%s", d)
	}
}

func TestExports(t *testing.T) {
	src := `
clusters: {a: context: "a", b: context: "b", c: context: "c"}
links: [{from: "a", to: "b"}, {from: "c", to: "b", gateway: false}, {from: "b", to: "c"}]
controlPlane: identity: {trustAnchor: source: "external", issuer: source: "secret"}
services: {
	"shop/books": export: "gateway"
	"shop/authors": export: "remote-discovery"
	"shop/ratings": export: "federated"
	"shop/web": {}
}`
	m := load(t, src)
	want := map[string]map[string]any{
		"Service/shop/books":   {"mirror.linkerd.io/exported": "true"},
		"Service/shop/authors": {"mirror.linkerd.io/exported": "remote-discovery"},
		"Service/shop/ratings": {"mirror.linkerd.io/federated": "member"},
	}
	for _, tc := range []struct {
		cluster string
		target  bool
	}{{"a", false}, {"b", true}, {"c", true}} {
		t.Run(tc.cluster, func(t *testing.T) {
			objs, err := Render(m, Inputs{Cluster: tc.cluster})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]map[string]any{}
			for _, o := range objs {
				if o.Object.GetNamespace() != "shop" {
					continue
				}
				if !FieldOnly(o) {
					t.Errorf("%s is not FieldOnly", o.ID())
				}
				// The label and the prune mark, and nothing meshctl would own
				// outright: no managed-by label, no spec.
				wantObj := map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{
					"name": o.Object.GetName(), "namespace": "shop", "labels": want[o.ID()],
					"annotations": map[string]any{ident.AnnotationPrune: "disabled"},
				}}
				if d := cmp.Diff(wantObj, o.Object.Object); d != "" {
					t.Errorf("%s (-want +got):\n%s", o.ID(), d)
				}
				if o.Stage != StageMeshConfig {
					t.Errorf("%s in stage %s", o.ID(), o.Stage)
				}
				got[o.ID()] = o.Object.Object["metadata"].(map[string]any)["labels"].(map[string]any)
			}
			if !tc.target {
				want := map[string]map[string]any{}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("exports in a cluster no link points at (-want +got):\n%s", d)
				}
				return
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("export labels (-want +got):\n%s", d)
			}
		})
	}
}

func TestFieldOnly(t *testing.T) {
	objs := multicluster(load(t, twoClusters+`links: [{from: "west", to: "east"}]`+"\nservices: \"shop/books\": export: \"gateway\""), Inputs{Cluster: "east"})
	var fieldOnly []string
	for _, o := range objs {
		if FieldOnly(o) {
			fieldOnly = append(fieldOnly, o.ID())
		}
	}
	if d := cmp.Diff([]string{"Service/shop/books"}, fieldOnly); d != "" {
		t.Errorf("FieldOnly objects (-want +got):\n%s", d)
	}
}

// TestLinkCRD: the CRD's versions, and that its schemas are structural and
// accept the Links meshctl renders.
func TestLinkCRD(t *testing.T) {
	o := linkCRD(load(t, ""))
	if o.Stage != StageCRDs {
		t.Errorf("stage %s, want crds", o.Stage)
	}
	var c apiextv1.CustomResourceDefinition
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object.Object, &c); err != nil {
		t.Fatal(err)
	}
	type version struct {
		Name            string
		Served, Storage bool
		Status          bool
	}
	var got []version
	for _, v := range c.Spec.Versions {
		got = append(got, version{v.Name, v.Served, v.Storage, v.Subresources != nil && v.Subresources.Status != nil})
	}
	want := []version{{"v1alpha1", true, false, false}, {"v1alpha2", true, false, true}, {"v1alpha3", true, true, true}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("versions (-want +got):\n%s", d)
	}
	if c.Spec.Scope != apiextv1.NamespaceScoped || c.Spec.Names.Kind != "Link" || c.Spec.Names.Plural != "links" {
		t.Errorf("names %+v, scope %s", c.Spec.Names, c.Spec.Scope)
	}
	v3 := c.Spec.Versions[2].Schema.OpenAPIV3Schema.Properties["spec"].Properties
	for _, f := range []string{"excludedAnnotations", "excludedLabels", "federatedServiceSelector", "remoteDiscoverySelector", "selector", "probeSpec", "gatewayAddress"} {
		if _, ok := v3[f]; !ok {
			t.Errorf("v1alpha3 spec has no %s", f)
		}
	}
	if _, ok := c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["excludedLabels"]; ok {
		t.Error("v1alpha1 has excludedLabels")
	}
	validateLinks(t, &c)
}

// TestLastLinkTargetRoundTrips: what a Link and its credentials were
// rendered from reads back from them, so that a source whose target does
// not answer renders its link unchanged.
func TestLastLinkTargetRoundTrips(t *testing.T) {
	for _, tc := range []struct{ name, extra string }{
		{"a load balancer", ""},
		{"a NodePort gateway", `clusters: east: gateway: {serviceType: "NodePort", probeSeconds: 7}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t, twoClusters+"links: [{from: \"west\", to: \"east\"}]\n"+tc.extra)
			want := &LinkTarget{APIServer: "https://east.example:6443", CAData: []byte("ca"), Token: "tok",
				GatewayAddresses: "203.0.113.7", GatewayPort: "31443", GatewayIdentity: "linkerd-gateway.linkerd-multicluster.serviceaccount.identity.linkerd.cluster.local",
				ProbePath: "/ready", ProbePort: "31191", ProbePeriod: "7s", TrustDomain: "cluster.local", ClusterDomain: "cluster.local"}
			objs := mcLinkGen(m, m.Links[0], want)
			var link *unstructured.Unstructured
			var creds corev1.Secret
			for _, o := range objs {
				switch {
				case o.Object.GetKind() == "Link":
					link = o.Object
				case o.Object.GetNamespace() == "linkerd":
					if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object.Object, &creds); err != nil {
						t.Fatal(err)
					}
				}
			}
			got, err := LastLinkTarget(link, &creds)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("(-rendered from +read back):\n%s", d)
			}
			again := mcLinkGen(m, m.Links[0], got)
			if d := cmp.Diff(objectYAML(t, objs), objectYAML(t, again)); d != "" {
				t.Errorf("re-render differs:\n%s", d)
			}
		})
	}
}

func objectYAML(t *testing.T, objs []Object) string {
	t.Helper()
	var b bytes.Buffer
	if err := Encode(&b, objs, "yaml"); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
