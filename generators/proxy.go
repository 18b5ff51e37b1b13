package generators

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/meshctl/meshctl/schema"
)

// Images and fixed values of the 2.19 release.
const (
	proxyInitVersion = "v2.4.3"
	controllerUID    = 2103
	nobodyUID        = 65534
)

// podProxy describes how one control-plane pod's proxy differs from the rest.
type podProxy struct {
	inboundPorts string // LINKERD2_PROXY_INBOUND_PORTS
	requireTLS   string // LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_TLS, identity only
	identityAddr string // overrides the identity service address
	destAddr     string // overrides the destination service address
	policyAddr   string // overrides the policy service address
	await        bool   // postStart linkerd-await
	extraEnv     []corev1.EnvVar
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
}

func env(name, value string) corev1.EnvVar { return corev1.EnvVar{Name: name, Value: value} }

// identityName is <sa>.<ns>.serviceaccount.identity.<control-plane ns>.<trust domain>.
func identityName(m *schema.Mesh, sa, ns string) string {
	return fmt.Sprintf("%s.%s.serviceaccount.identity.%s.%s", sa, ns, linkerdNamespace, m.ControlPlane.Identity.TrustDomain)
}

func svcAddr(m *schema.Mesh, svc string, port int) string {
	return fmt.Sprintf("%s.%s.svc.%s.:%d", svc, linkerdNamespace, m.Linkerd.ClusterDomain, port)
}

// proxyEnv is the linkerd-proxy environment, in upstream's order.
func proxyEnv(m *schema.Mesh, pp podProxy) []corev1.EnvVar {
	p := m.ControlPlane.Proxy
	nets := strings.Join(m.Linkerd.ClusterNetworks, ",")
	or := func(v, def string) string {
		if v != "" {
			return v
		}
		return def
	}
	e := []corev1.EnvVar{
		fieldEnv("_pod_name", "metadata.name"),
		fieldEnv("_pod_ns", "metadata.namespace"),
		fieldEnv("_pod_uid", "metadata.uid"),
		fieldEnv("_pod_ip", "status.podIP"),
		fieldEnv("_pod_nodeName", "spec.nodeName"),
		fieldEnv("_pod_sa", "spec.serviceAccountName"),
		env("_pod_containerName", "linkerd-proxy"),
		env("LINKERD2_PROXY_CORES", "1"),
		env("LINKERD2_PROXY_CORES_MIN", "1"),
		env("LINKERD2_PROXY_SHUTDOWN_ENDPOINT_ENABLED", "false"),
		env("LINKERD2_PROXY_LOG", p.LogLevel+",[{headers}]=off,[{request}]=off"),
		env("LINKERD2_PROXY_LOG_FORMAT", p.LogFormat),
		env("LINKERD2_PROXY_DESTINATION_SVC_ADDR", or(pp.destAddr, svcAddr(m, "linkerd-dst-headless", 8086))),
		env("LINKERD2_PROXY_DESTINATION_PROFILE_NETWORKS", nets),
		env("LINKERD2_PROXY_POLICY_SVC_ADDR", or(pp.policyAddr, svcAddr(m, "linkerd-policy", 8090))),
		env("LINKERD2_PROXY_POLICY_WORKLOAD", `{"ns":"$(_pod_ns)", "pod":"$(_pod_name)"}`),
		env("LINKERD2_PROXY_INBOUND_DEFAULT_POLICY", p.DefaultInboundPolicy),
		env("LINKERD2_PROXY_POLICY_CLUSTER_NETWORKS", nets),
		env("LINKERD2_PROXY_CONTROL_STREAM_INITIAL_TIMEOUT", "3s"),
		env("LINKERD2_PROXY_CONTROL_STREAM_IDLE_TIMEOUT", "5m"),
		env("LINKERD2_PROXY_CONTROL_STREAM_LIFETIME", "1h"),
		env("LINKERD2_PROXY_INBOUND_CONNECT_TIMEOUT", "100ms"),
		env("LINKERD2_PROXY_OUTBOUND_CONNECT_TIMEOUT", "1000ms"),
		env("LINKERD2_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT", "5s"),
		env("LINKERD2_PROXY_INBOUND_DISCOVERY_IDLE_TIMEOUT", "90s"),
		env("LINKERD2_PROXY_CONTROL_LISTEN_ADDR", fmt.Sprintf("0.0.0.0:%d", p.Ports.Control)),
		env("LINKERD2_PROXY_ADMIN_LISTEN_ADDR", fmt.Sprintf("0.0.0.0:%d", p.Ports.Admin)),
		env("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", fmt.Sprintf("127.0.0.1:%d", p.Ports.Outbound)),
		env("LINKERD2_PROXY_OUTBOUND_LISTEN_ADDRS", fmt.Sprintf("127.0.0.1:%d", p.Ports.Outbound)),
		env("LINKERD2_PROXY_INBOUND_LISTEN_ADDR", fmt.Sprintf("0.0.0.0:%d", p.Ports.Inbound)),
		fieldEnv("LINKERD2_PROXY_INBOUND_IPS", "status.podIPs"),
		env("LINKERD2_PROXY_INBOUND_PORTS", pp.inboundPorts),
	}
	if pp.requireTLS != "" {
		e = append(e, env("LINKERD2_PROXY_INBOUND_PORTS_REQUIRE_TLS", pp.requireTLS))
	}
	e = append(e,
		env("LINKERD2_PROXY_DESTINATION_PROFILE_SUFFIXES", "svc."+m.Linkerd.ClusterDomain+"."),
		env("LINKERD2_PROXY_INBOUND_ACCEPT_KEEPALIVE", "10000ms"),
		env("LINKERD2_PROXY_OUTBOUND_CONNECT_KEEPALIVE", "10000ms"),
		env("LINKERD2_PROXY_INBOUND_ACCEPT_USER_TIMEOUT", "30s"),
		env("LINKERD2_PROXY_OUTBOUND_CONNECT_USER_TIMEOUT", "30s"),
		env("LINKERD2_PROXY_OUTBOUND_METRICS_HOSTNAME_LABELS", "false"),
		env("LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL", "10s"),
		env("LINKERD2_PROXY_INBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT", "3s"),
		env("LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_INTERVAL", "10s"),
		env("LINKERD2_PROXY_OUTBOUND_SERVER_HTTP2_KEEP_ALIVE_TIMEOUT", "3s"),
		env("LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION", strings.Join(p.OpaquePorts, ",")),
		env("LINKERD2_PROXY_DESTINATION_CONTEXT", `{"ns":"$(_pod_ns)", "nodeName":"$(_pod_nodeName)", "pod":"$(_pod_name)"}`),
		env("_l5d_ns", linkerdNamespace),
		env("_l5d_trustdomain", m.ControlPlane.Identity.TrustDomain),
		env("LINKERD2_PROXY_IDENTITY_DIR", "/var/run/linkerd/identity/end-entity"),
		corev1.EnvVar{Name: "LINKERD2_PROXY_IDENTITY_TRUST_ANCHORS", ValueFrom: &corev1.EnvVarSource{
			ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "linkerd-identity-trust-roots"},
				Key:                  "ca-bundle.crt",
			}}},
		env("LINKERD2_PROXY_IDENTITY_TOKEN_FILE", "/var/run/secrets/tokens/linkerd-identity-token"),
		env("LINKERD2_PROXY_IDENTITY_SVC_ADDR", or(pp.identityAddr, svcAddr(m, "linkerd-identity-headless", 8080))),
		env("LINKERD2_PROXY_IDENTITY_LOCAL_NAME", fmt.Sprintf("$(_pod_sa).$(_pod_ns).serviceaccount.identity.%s.%s", linkerdNamespace, m.ControlPlane.Identity.TrustDomain)),
		env("LINKERD2_PROXY_IDENTITY_SVC_NAME", identityName(m, "linkerd-identity", linkerdNamespace)),
		env("LINKERD2_PROXY_DESTINATION_SVC_NAME", identityName(m, "linkerd-destination", linkerdNamespace)),
		env("LINKERD2_PROXY_POLICY_SVC_NAME", identityName(m, "linkerd-destination", linkerdNamespace)),
	)
	e = append(e, tracingEnv(m)...)
	return append(e, pp.extraEnv...)
}

// tracingEnv is the proxy's tracing configuration (mesh-wide in 2.19).
func tracingEnv(m *schema.Mesh) []corev1.EnvVar {
	t := m.Tracing
	if !t.Enabled {
		return nil
	}
	extra := "k8s.pod.ip=$(_pod_ip)\nk8s.pod.uid=$(_pod_uid)\nk8s.container.name=$(_pod_containerName)\n"
	if len(t.Namespaces) > 0 {
		// As traceProxyLabels does for the workloads' proxies.
		extra += traceNamespaceAttr + "=" + tracePodNamespace + "\n"
	}
	return []corev1.EnvVar{
		env("LINKERD2_PROXY_TRACE_ATTRIBUTES_PATH", "/var/run/linkerd/podinfo/labels"),
		env("LINKERD2_PROXY_TRACE_ANNOTATIONS_PATH", "/var/run/linkerd/podinfo/annotations"),
		env("LINKERD2_PROXY_TRACE_PROTOCOL", t.Protocol),
		env("LINKERD2_PROXY_TRACE_SERVICE_NAME", t.ServiceName),
		env("LINKERD2_PROXY_TRACE_COLLECTOR_SVC_ADDR", t.Collector.Endpoint),
		env("LINKERD2_PROXY_TRACE_COLLECTOR_SVC_NAME", identityName(m, t.Collector.ServiceAccount, t.Collector.Namespace)),
		env("LINKERD2_PROXY_TRACE_EXTRA_ATTRIBUTES", extra),
	}
}

func httpProbe(path string, port intstr.IntOrString) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port}}}
}

// proxyContainer is the linkerd-proxy sidecar, rendered inline as upstream
// does for control-plane pods.
func proxyContainer(m *schema.Mesh, pp podProxy) corev1.Container {
	p := m.ControlPlane.Proxy
	live := httpProbe("/live", intstr.FromInt32(p.Ports.Admin))
	live.InitialDelaySeconds, live.TimeoutSeconds = 10, 1
	ready := httpProbe("/ready", intstr.FromInt32(p.Ports.Admin))
	ready.InitialDelaySeconds, ready.TimeoutSeconds = 2, 1
	c := corev1.Container{
		Name:            "linkerd-proxy",
		Image:           image(m, "proxy", m.Linkerd.Version),
		ImagePullPolicy: corev1.PullPolicy(m.Linkerd.ImagePullPolicy),
		Env:             proxyEnv(m, pp),
		LivenessProbe:   live,
		ReadinessProbe:  ready,
		Ports: []corev1.ContainerPort{
			{Name: "linkerd-proxy", ContainerPort: p.Ports.Inbound},
			{Name: "linkerd-admin", ContainerPort: p.Ports.Admin},
		},
		Resources:                resources(p.Resources),
		SecurityContext:          restrictedContext(p.UID, nil),
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		VolumeMounts: []corev1.VolumeMount{
			{Name: "linkerd-identity-end-entity", MountPath: "/var/run/linkerd/identity/end-entity"},
			{Name: "linkerd-identity-token", MountPath: "/var/run/secrets/tokens"},
		},
	}
	if pp.await && p.Await {
		c.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
			Command: []string{"/usr/lib/linkerd/linkerd-await", "--timeout=2m", fmt.Sprintf("--port=%d", p.Ports.Admin)},
		}}}
	}
	return c
}

// restrictedContext is the non-root, read-only, no-capability context every
// Linkerd container runs with; add lists capabilities to add back.
func restrictedContext(uid int64, add []corev1.Capability) *corev1.SecurityContext {
	sc := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To(uid),
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	if add != nil {
		sc.Capabilities = &corev1.Capabilities{Add: add}
		sc.Privileged = ptr.To(false)
	}
	return sc
}

// initContainer is linkerd-init (proxy-init), or, with the CNI plugin,
// linkerd-network-validator, which only checks that the plugin did its work.
func initContainer(m *schema.Mesh) corev1.Container {
	p := m.ControlPlane.Proxy
	if m.CNI.Enabled {
		sc := restrictedContext(nobodyUID, nil)
		sc.RunAsGroup = ptr.To(int64(nobodyUID))
		return corev1.Container{
			Name:            "linkerd-network-validator",
			Image:           image(m, "proxy", m.Linkerd.Version),
			ImagePullPolicy: corev1.PullPolicy(m.Linkerd.ImagePullPolicy),
			Command:         []string{"/usr/lib/linkerd/linkerd2-network-validator"},
			Args: []string{
				"--log-format", "plain",
				"--log-level", "debug",
				"--connect-addr", "1.1.1.1:20001",
				"--listen-addr", fmt.Sprintf("0.0.0.0:%d", p.Ports.Outbound),
				"--timeout", "10s",
			},
			SecurityContext: sc,
		}
	}
	bin := "iptables-nft"
	if p.IptablesMode == "legacy" {
		bin = "iptables-legacy"
	}
	inbound := append([]string{fmt.Sprint(p.Ports.Control), fmt.Sprint(p.Ports.Admin)}, p.SkipInboundPorts...)
	sc := restrictedContext(nobodyUID, []corev1.Capability{"NET_ADMIN", "NET_RAW"})
	sc.RunAsGroup = ptr.To(int64(nobodyUID))
	return corev1.Container{
		Name:            "linkerd-init",
		Image:           image(m, "proxy-init", proxyInitVersion),
		ImagePullPolicy: corev1.PullPolicy(m.Linkerd.ImagePullPolicy),
		Args: []string{
			"--firewall-bin-path", bin,
			"--firewall-save-bin-path", bin + "-save",
			"--ipv6=false",
			"--incoming-proxy-port", fmt.Sprint(p.Ports.Inbound),
			"--outgoing-proxy-port", fmt.Sprint(p.Ports.Outbound),
			"--proxy-uid", fmt.Sprint(p.UID),
			"--inbound-ports-to-ignore", strings.Join(inbound, ","),
			// Control-plane pods skip the API server ports, not proxyInit's.
			"--outbound-ports-to-ignore", strings.Join(p.KubeAPIServerPorts, ","),
		},
		Resources:                resources(p.Resources),
		SecurityContext:          sc,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		VolumeMounts:             []corev1.VolumeMount{{Name: "linkerd-proxy-init-xtables-lock", MountPath: "/run"}},
	}
}

// resources converts schema resources; unset values stay absent.
func resources(r schema.Resources) corev1.ResourceRequirements {
	var out corev1.ResourceRequirements
	set := func(list *corev1.ResourceList, name corev1.ResourceName, v string) {
		if v == "" {
			return
		}
		if *list == nil {
			*list = corev1.ResourceList{}
		}
		(*list)[name] = resource.MustParse(v) // the schema checked the syntax
	}
	set(&out.Requests, corev1.ResourceCPU, r.CPU.Request)
	set(&out.Limits, corev1.ResourceCPU, r.CPU.Limit)
	set(&out.Requests, corev1.ResourceMemory, r.Memory.Request)
	set(&out.Limits, corev1.ResourceMemory, r.Memory.Limit)
	set(&out.Requests, corev1.ResourceEphemeralStorage, r.EphemeralStorage.Request)
	set(&out.Limits, corev1.ResourceEphemeralStorage, r.EphemeralStorage.Limit)
	return out
}

// proxyVolumes are the volumes every control-plane pod with a proxy has.
func proxyVolumes(m *schema.Mesh) []corev1.Volume {
	var vs []corev1.Volume
	if !m.CNI.Enabled {
		vs = append(vs, corev1.Volume{Name: "linkerd-proxy-init-xtables-lock", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	}
	return append(vs,
		corev1.Volume{Name: "linkerd-identity-end-entity", VolumeSource: corev1.VolumeSource{
			EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		corev1.Volume{Name: "linkerd-identity-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: "identity.l5d.io", ExpirationSeconds: ptr.To(int64(86400)), Path: "linkerd-identity-token",
			}}},
		}}},
	)
}

// kubeAPIAccess is the projected service-account volume that replaces the
// automounted token (pods set automountServiceAccountToken: false).
func kubeAPIAccess() (corev1.Volume, corev1.VolumeMount) {
	v := corev1.Volume{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: ptr.To(int32(420)),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: ptr.To(int64(3607)), Path: "token"}},
			{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
			}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}},
			}}},
		},
	}}}
	return v, corev1.VolumeMount{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}
}
