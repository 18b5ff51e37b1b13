package generators

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshctl/meshctl/schema"
)

// config renders ConfigMap linkerd-config, whose values the proxy injector
// builds every injected proxy from, the extensions' read Role, and the
// overrides Secret `linkerd upgrade` reads. Neither ever holds a key.
func config(m *schema.Mesh, in Inputs) []Object {
	const comp = "controller"
	values := mustYAML(linkerdValues(m, in))
	objs := []Object{
		toObject(StageControlPlane, gvkConfigMap, &corev1.ConfigMap{
			ObjectMeta: objectMeta("linkerd-config", linkerdNamespace, cpLabels(comp), map[string]string{annotationCreated: createdBy(m)}),
			Data: map[string]string{
				"linkerd-crds-chart-version": "linkerd-crds-1.0.0-edge",
				"values":                     values,
			},
		}),
		toObject(StageControlPlane, gvkRole, &rbacv1.Role{
			ObjectMeta: objectMeta("ext-namespace-metadata-linkerd-config", linkerdNamespace, map[string]string{labelCPNamespace: linkerdNamespace}, nil),
			Rules: []rbacv1.PolicyRule{{
				APIGroups: core, Resources: []string{"configmaps"}, Verbs: []string{"get"}, ResourceNames: []string{"linkerd-config"},
			}},
		}),
		toObject(StageControlPlane, gvkSecret, &corev1.Secret{
			ObjectMeta: objectMeta("linkerd-config-overrides", linkerdNamespace, map[string]string{labelCPNamespace: linkerdNamespace}, nil),
			Data:       map[string][]byte{"linkerd-config-overrides": []byte(mustYAML(overrides(m, in)))},
		}),
	}
	return objs
}

func mustYAML(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		panic(err) // maps of plain values always marshal
	}
	return string(b)
}

func csv(ports []string) string { return strings.Join(ports, ",") }

// valueResources is a resources block as Linkerd's values spell it.
func valueResources(r schema.Resources) map[string]any {
	rl := func(x schema.RequestLimit) map[string]any {
		return map[string]any{"request": x.Request, "limit": x.Limit}
	}
	return map[string]any{"cpu": rl(r.CPU), "memory": rl(r.Memory), "ephemeral-storage": rl(r.EphemeralStorage)}
}

// linkerdValues is the control plane's values document: what upstream's
// chart would hold for this mesh, without the issuer's private key.
func linkerdValues(m *schema.Mesh, in Inputs) map[string]any {
	cp, p, id := m.ControlPlane, m.ControlPlane.Proxy, m.ControlPlane.Identity
	img := func(name, version string) map[string]any {
		return map[string]any{"name": m.Linkerd.Registry + "/" + name, "version": version, "pullPolicy": m.Linkerd.ImagePullPolicy}
	}
	tracing := map[string]any{"enabled": m.Tracing.Enabled}
	if m.Tracing.Enabled {
		tracing = map[string]any{
			"enabled":          true,
			"traceServiceName": m.Tracing.ServiceName,
			"protocol":         m.Tracing.Protocol,
			"collector": map[string]any{
				"endpoint":     m.Tracing.Collector.Endpoint,
				"meshIdentity": map[string]any{"serviceAccountName": m.Tracing.Collector.ServiceAccount, "namespace": m.Tracing.Collector.Namespace},
			},
		}
		if labels := traceProxyLabels(m); labels != nil {
			tracing["labels"] = labels
		}
	}
	return map[string]any{
		"cliVersion":      createdBy(m),
		"clusterDomain":   m.Linkerd.ClusterDomain,
		"clusterNetworks": strings.Join(m.Linkerd.ClusterNetworks, ","),
		"cniEnabled":      m.CNI.Enabled,
		"controller": map[string]any{
			"podDisruptionBudget": map[string]any{"maxUnavailable": 1},
			"tracing":             map[string]any{"enabled": m.Tracing.Enabled && m.Tracing.ControlPlane},
		},
		"controllerImage":           m.Linkerd.Registry + "/controller",
		"controllerLogFormat":       cp.LogFormat,
		"controllerLogLevel":        cp.LogLevel,
		"controllerReplicas":        cp.Replicas,
		"controllerUID":             controllerUID,
		"controllerGID":             -1,
		"debugContainer":            map[string]any{"image": img("debug", m.Linkerd.Version)},
		"disableHeartBeat":          !cp.Heartbeat.Enabled,
		"disableIPv6":               true,
		"egress":                    map[string]any{"globalEgressNetworkNamespace": "linkerd-egress"},
		"enableEndpointSlices":      true,
		"enableH2Upgrade":           true,
		"enablePodAntiAffinity":     cp.PodAntiAffinity,
		"enablePodDisruptionBudget": cp.PodDisruptionBudget,
		"heartbeatSchedule":         cp.Heartbeat.Schedule,
		"highAvailability":          cp.HA,
		"identity": map[string]any{
			"externalCA": id.TrustAnchor.Source == schema.SourceExternal,
			"issuer": map[string]any{
				"scheme":             id.Issuer.Scheme,
				"clockSkewAllowance": id.ClockSkewAllowance,
				"issuanceLifetime":   id.IssuanceLifetime,
				"tls":                map[string]any{"crtPEM": issuerCert(in)},
			},
			"kubeAPI":                       map[string]any{"clientQPS": 100, "clientBurst": 200},
			"serviceAccountTokenProjection": true,
		},
		"identityTrustAnchorsPEM": in.trustAnchors(m),
		"identityTrustDomain":     id.TrustDomain,
		"imagePullPolicy":         m.Linkerd.ImagePullPolicy,
		"linkerdVersion":          m.Linkerd.Version,
		"networkValidator": map[string]any{
			"logLevel": "debug", "logFormat": "plain", "connectAddr": "1.1.1.1:20001",
			"listenAddr": "0.0.0.0", "timeout": "10s",
		},
		"podMonitor":         map[string]any{"enabled": false},
		"prometheusUrl":      cp.PrometheusURL,
		"proxy":              proxyValues(m, img, tracing),
		"proxyContainerName": "linkerd-proxy",
		"proxyInit": map[string]any{
			"image":               img("proxy-init", proxyInitVersion),
			"ignoreInboundPorts":  csv(p.SkipInboundPorts),
			"ignoreOutboundPorts": csv(p.SkipOutboundPorts),
			"kubeAPIServerPorts":  csv(p.KubeAPIServerPorts),
			"iptablesMode":        p.IptablesMode,
			"runAsUser":           nobodyUID,
			"runAsGroup":          nobodyUID,
			"xtMountPath":         map[string]any{"mountPath": "/run", "name": "linkerd-proxy-init-xtables-lock"},
		},
		"revisionHistoryLimit": 10,
		"webhookFailurePolicy": cp.WebhookFailurePolicy,
	}
}

func proxyValues(m *schema.Mesh, img func(string, string) map[string]any, tracing map[string]any) map[string]any {
	p := m.ControlPlane.Proxy
	return map[string]any{
		"image":                               img("proxy", m.Linkerd.Version),
		"logLevel":                            p.LogLevel,
		"logFormat":                           p.LogFormat,
		"logHTTPHeaders":                      "off",
		"resources":                           valueResources(p.Resources),
		"defaultInboundPolicy":                p.DefaultInboundPolicy,
		"opaquePorts":                         csv(p.OpaquePorts),
		"ports":                               map[string]any{"admin": p.Ports.Admin, "control": p.Ports.Control, "inbound": p.Ports.Inbound, "outbound": p.Ports.Outbound},
		"uid":                                 p.UID,
		"gid":                                 -1,
		"await":                               p.Await,
		"nativeSidecar":                       p.NativeSidecar,
		"enableExternalProfiles":              false,
		"enableShutdownEndpoint":              false,
		"inboundConnectTimeout":               "100ms",
		"outboundConnectTimeout":              "1000ms",
		"outboundDiscoveryCacheUnusedTimeout": "5s",
		"inboundDiscoveryCacheUnusedTimeout":  "90s",
		"outboundTransportMode":               "transport-header",
		"control":                             map[string]any{"streams": map[string]any{"initialTimeout": "3s", "idleTimeout": "5m", "lifetime": "1h"}},
		"runtime":                             map[string]any{"workers": map[string]any{"minimum": 1}},
		"metrics":                             map[string]any{"hostnameLabels": false},
		"tracing":                             tracing,
	}
}

func issuerCert(in Inputs) string {
	if in.Certs != nil && in.Certs.Issuer != nil {
		return in.Certs.Issuer.CertPEM
	}
	return ""
}

// overrides are the values that differ from upstream's defaults, which
// `linkerd upgrade` reads back. Upstream also stores the issuer key here;
// meshctl never does.
func overrides(m *schema.Mesh, in Inputs) map[string]any {
	cp := m.ControlPlane
	o := map[string]any{}
	if pem := in.trustAnchors(m); pem != "" {
		o["identityTrustAnchorsPEM"] = pem
	}
	if c := issuerCert(in); c != "" {
		o["identity"] = map[string]any{"issuer": map[string]any{"tls": map[string]any{"crtPEM": c}}}
	}
	if cp.Replicas != 1 {
		o["controllerReplicas"] = cp.Replicas
	}
	if cp.HA {
		o["highAvailability"] = true
		o["deploymentStrategy"] = map[string]any{"rollingUpdate": map[string]any{"maxUnavailable": 1}}
	}
	if cp.PodAntiAffinity {
		o["enablePodAntiAffinity"] = true
	}
	if cp.PodDisruptionBudget {
		o["enablePodDisruptionBudget"] = true
	}
	if cp.WebhookFailurePolicy != "Ignore" {
		o["webhookFailurePolicy"] = cp.WebhookFailurePolicy
	}
	if m.CNI.Enabled {
		o["cniEnabled"] = true
	}
	return o
}
