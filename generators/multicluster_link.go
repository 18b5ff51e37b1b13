package generators

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sschema "k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/meshctl/meshctl/internal/ident"
	"github.com/meshctl/meshctl/schema"
)

// What link-gen writes (FACTS §11.5, §11.6).
const (
	// SecretTypeRemoteKubeconfig is the type of a link's credentials
	// Secrets; their kubeconfig is under key "kubeconfig".
	SecretTypeRemoteKubeconfig = "mirror.linkerd.io/remote-kubeconfig"
	labelLinkClusterName       = "multicluster.linkerd.io/cluster-name"
	annotationLinkTrustDomain  = "multicluster.linkerd.io/trust-domain"
	annotationLinkClusterDom   = "multicluster.linkerd.io/cluster-domain"
	// Placeholder starts every value that only a link's target cluster can
	// give, in a render made without it (offline build). Placeholders
	// finds them; an object holding one must never be applied.
	Placeholder = "PLACEHOLDER: "
)

// placeholder is the marker for a value cluster to gives at apply time.
func placeholder(to string) string {
	return fmt.Sprintf("%sread from cluster %s at apply time", Placeholder, to)
}

// mcLinkController renders, in the link's source cluster, the controller
// that mirrors the target's services (FACTS §11.3 "Per Link"), named after
// the target cluster as the Link is.
func mcLinkController(m *schema.Mesh, from schema.Cluster, l schema.Link) []Object {
	name := "controller-" + l.To
	sel := map[string]string{labelComponent: "controller", labelMirrorCluster: l.To}
	labels := mcLabels(sel)
	args := append(mcMirrorArgs(), "-probe-service=probe-"+l.To, l.To)
	// A link's controller keeps upstream's controllerDefaults (1 replica, no
	// anti-affinity) with HA too; only its PodDisruptionBudget follows HA.
	objs := []Object{
		mcMirrorDeployment(m, false, name, labels, sel, "controller", args, "ctrl-admin", labelMirrorCluster, name),
		toObject(StageExtensions, gvkSA, &corev1.ServiceAccount{ObjectMeta: objectMeta(name, mcNamespace, labels, nil)}),
		toObject(StageExtensions, gvkCRB, &rbacv1.ClusterRoleBinding{
			ObjectMeta: objectMeta(mcControllerRole+"-"+l.To, "", labels, nil),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: mcControllerRole},
			Subjects:   saSubject(name, mcNamespace),
		}),
		toObject(StageExtensions, gvkRole, &rbacv1.Role{
			ObjectMeta: objectMeta("controller-read-remote-creds-"+l.To, mcNamespace, labels, nil),
			Rules: []rbacv1.PolicyRule{
				{APIGroups: core, Resources: []string{"secrets"}, ResourceNames: []string{credentialsName(l.To)}, Verbs: readVerbs},
				rule(linkAPIGroups, []string{"links"}, readVerbs),
				rule(linkAPIGroups, []string{"links/status"}, []string{"update", "patch"}),
				rule(coordination, []string{"leases"}, mcLeaseVerbs),
			},
		}),
		toObject(StageExtensions, gvkRoleBinding, &rbacv1.RoleBinding{
			ObjectMeta: objectMeta("controller-read-remote-creds-"+l.To, mcNamespace, labels, nil),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "controller-read-remote-creds-" + l.To},
			Subjects:   saSubject(name, mcNamespace),
		}),
	}
	if l.Gateway {
		objs = append(objs, mcServiceObject(&corev1.Service{
			ObjectMeta: objectMeta("probe-"+l.To, mcNamespace, mcLabels(map[string]string{
				"mirror.linkerd.io/mirrored-gateway": "true",
				labelMirrorCluster:                   l.To,
			}), nil),
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
				{Name: "mc-probe", Port: mcTargetProbePort(m, l), Protocol: corev1.ProtocolTCP},
			}},
		}))
	}
	return append(objs, mcPDB(m, from.HA, name, map[string]string{labelComponent: "controller"}, sel)...)
}

// mcTargetProbePort is the probe port of the link's target gateway.
func mcTargetProbePort(m *schema.Mesh, l schema.Link) int32 {
	return m.Clusters[l.To].Gateway.ProbePort
}

func credentialsName(to string) string { return "cluster-credentials-" + to }

// mcLinkGen renders what `linkerd --context=<to> multicluster link-gen
// --cluster-name <to>` prints, for the source cluster (FACTS §11.5): the
// credentials, twice, and the Link. t is what the target cluster said
// about itself; nil renders placeholders where only it can answer.
// Values mesh.cue decides for the target (its domains, the gateway's
// identity, probe path and period, and its ports unless it is a
// NodePort) come from mesh.cue then.
func mcLinkGen(m *schema.Mesh, l schema.Link, t *LinkTarget) []Object {
	v := linkValues(m, l, t)
	kc := mcKubeconfig(m, l.To, v)
	creds := func(ns string, labels, ann map[string]string) Object {
		return toObject(StageMeshConfig, gvkSecret, &corev1.Secret{
			ObjectMeta: objectMeta(credentialsName(l.To), ns, labels, ann),
			Type:       SecretTypeRemoteKubeconfig,
			Data:       map[string][]byte{"kubeconfig": kc},
		})
	}
	return []Object{
		creds(mcNamespace, nil, nil),
		creds(linkerdNamespace, map[string]string{labelLinkClusterName: l.To}, map[string]string{
			annotationLinkTrustDomain: v.TrustDomain,
			annotationLinkClusterDom:  v.ClusterDomain,
		}),
		mcLink(m, l, v),
	}
}

// linkValues fills what the Link and its credentials need: t's values,
// or, without t, mesh.cue's and placeholders.
func linkValues(m *schema.Mesh, l schema.Link, t *LinkTarget) LinkTarget {
	gw := m.Clusters[l.To].Gateway
	ph := placeholder(l.To)
	v := LinkTarget{
		APIServer:        ph,
		Token:            ph,
		GatewayAddresses: ph,
		GatewayPort:      strconv.Itoa(int(gw.Port)),
		GatewayIdentity:  mcGatewayIdentity(m),
		ProbePath:        mcProbePath,
		ProbePort:        strconv.Itoa(int(gw.ProbePort)),
		ProbePeriod:      strconv.Itoa(gw.ProbeSeconds),
		TrustDomain:      m.ControlPlane.Identity.TrustDomain,
		ClusterDomain:    m.Linkerd.ClusterDomain,
	}
	if gw.ServiceType == string(corev1.ServiceTypeNodePort) {
		// link-gen takes the nodePorts, which the API server allocates.
		v.GatewayPort, v.ProbePort = ph, ph
	}
	if t == nil {
		return v
	}
	set := func(dst *string, src string) {
		if src != "" {
			*dst = src
		}
	}
	set(&v.APIServer, t.APIServer)
	set(&v.Token, t.Token)
	set(&v.GatewayAddresses, t.GatewayAddresses)
	set(&v.GatewayPort, t.GatewayPort)
	set(&v.GatewayIdentity, t.GatewayIdentity)
	set(&v.ProbePath, t.ProbePath)
	set(&v.ProbePort, t.ProbePort)
	set(&v.ProbePeriod, t.ProbePeriod)
	set(&v.TrustDomain, t.TrustDomain)
	set(&v.ClusterDomain, t.ClusterDomain)
	v.CAData = t.CAData
	return v
}

// mcLink is the Link (multicluster.linkerd.io/v1alpha3) named after its
// target, with every field link-gen fills; without a gateway, the gateway
// fields and the selector stay out and probeSpec is empty.
func mcLink(m *schema.Mesh, l schema.Link, v LinkTarget) Object {
	spec := map[string]any{
		"targetClusterName":             l.To,
		"targetClusterDomain":           v.ClusterDomain,
		"targetClusterLinkerdNamespace": linkerdNamespace,
		"clusterCredentialsSecret":      credentialsName(l.To),
		"remoteDiscoverySelector":       matchLabel(labelExported, "remote-discovery"),
		"federatedServiceSelector":      matchLabel(labelFederated, "member"),
		"probeSpec":                     map[string]any{},
	}
	if l.Gateway {
		spec["gatewayAddress"] = v.GatewayAddresses
		spec["gatewayIdentity"] = v.GatewayIdentity
		spec["gatewayPort"] = v.GatewayPort
		spec["probeSpec"] = map[string]any{"path": v.ProbePath, "port": v.ProbePort, "period": probePeriod(v.ProbePeriod)}
		spec["selector"] = matchLabel(labelExported, "true")
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetAPIVersion(linkVersion)
	u.SetKind("Link")
	u.SetName(l.To)
	u.SetNamespace(mcNamespace)
	u.SetAnnotations(map[string]string{annotationCreated: createdBy(m)})
	return Object{Stage: StageMeshConfig, Object: u}
}

// probePeriod is the gateway's probe-period annotation as a duration:
// link-gen turns seconds ("3") into "3s" and keeps a duration as it is.
func probePeriod(p string) string {
	if s, err := strconv.ParseInt(p, 10, 64); err == nil {
		return (time.Duration(s) * time.Second).String()
	}
	return p
}

func matchLabel(k, v string) map[string]any {
	return map[string]any{"matchLabels": map[string]any{k: v}}
}

// kubeconfig is the Config a link's credentials hold: one cluster, one
// context named after the target's kube context, and the service-mirror
// ServiceAccount as the user (FACTS §11.5). It is written here rather than
// with client-go's clientcmd, which generators do not import.
type kubeconfig struct {
	APIVersion     string         `json:"apiVersion"`
	Kind           string         `json:"kind"`
	Clusters       []namedCluster `json:"clusters"`
	Contexts       []namedContext `json:"contexts"`
	CurrentContext string         `json:"current-context"`
	Preferences    struct{}       `json:"preferences"`
	Users          []namedUser    `json:"users"`
}

type namedCluster struct {
	Name    string `json:"name"`
	Cluster struct {
		Server                   string `json:"server"`
		CertificateAuthorityData []byte `json:"certificate-authority-data,omitempty"`
	} `json:"cluster"`
}

type namedContext struct {
	Name    string `json:"name"`
	Context struct {
		Cluster string `json:"cluster"`
		User    string `json:"user"`
	} `json:"context"`
}

type namedUser struct {
	Name string `json:"name"`
	User struct {
		Token string `json:"token"`
	} `json:"user"`
}

// mcKubeconfig writes the kubeconfig that reaches cluster to.
func mcKubeconfig(m *schema.Mesh, to string, v LinkTarget) []byte {
	ctxName := m.Clusters[to].Context
	kc := kubeconfig{APIVersion: "v1", Kind: "Config", CurrentContext: ctxName}
	var cl namedCluster
	cl.Name = to
	cl.Cluster.Server = v.APIServer
	cl.Cluster.CertificateAuthorityData = v.CAData
	var cx namedContext
	cx.Name = ctxName
	cx.Context.Cluster = to
	cx.Context.User = mcRemoteAccess
	var u namedUser
	u.Name = mcRemoteAccess
	u.User.Token = v.Token
	kc.Clusters, kc.Contexts, kc.Users = []namedCluster{cl}, []namedContext{cx}, []namedUser{u}
	b, err := yaml.Marshal(kc)
	if err != nil {
		panic(fmt.Sprintf("kubeconfig: %v", err)) // plain strings always marshal
	}
	return b
}

// mcExports labels, in a link's target cluster, the Services mesh.cue
// exports (FACTS §11.6): the label alone, on a Service someone else owns.
// See FieldOnly.
func mcExports(m *schema.Mesh, cluster string) []Object {
	if !slices.ContainsFunc(m.Links, func(l schema.Link) bool { return l.To == cluster }) {
		return nil
	}
	keys := make([]string, 0, len(m.Services))
	for k, s := range m.Services {
		if s.Export != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var objs []Object
	for _, k := range keys {
		ns, name, _ := strings.Cut(k, "/")
		key, value := labelExported, "true"
		switch m.Services[k].Export {
		case "remote-discovery":
			value = "remote-discovery"
		case "federated":
			key, value = labelFederated, "member"
		}
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetAPIVersion("v1")
		u.SetKind("Service")
		u.SetName(name)
		u.SetNamespace(ns)
		u.SetLabels(map[string]string{key: value})
		u.SetAnnotations(map[string]string{ident.AnnotationPrune: "disabled"})
		objs = append(objs, Object{Stage: StageMeshConfig, Object: u})
	}
	return objs
}

// FieldOnly reports whether o is a partial object: the fields meshctl sets
// on a Service someone else owns (an export's label), marked
// meshctl.io/prune: disabled as the namespaces meshctl only annotates are,
// and with no spec. Apply must server-side apply it into the live Service
// and fail when that Service is missing, never create it; prune must
// release its fields, never delete the Service.
func FieldOnly(o Object) bool {
	_, spec := o.Object.Object["spec"]
	return o.Object.GetKind() == "Service" && !spec && o.Object.GetAnnotations()[ident.AnnotationPrune] == "disabled"
}

// Placeholders are the IDs of the objects that hold a Placeholder (in a
// field, or in a Secret's data): a render made without the link targets'
// answers. apply must refuse them.
func Placeholders(objs []Object) []string {
	var out []string
	for _, o := range objs {
		if holdsPlaceholder(o.Object.Object) {
			out = append(out, o.ID())
		}
	}
	return out
}

func holdsPlaceholder(v any) bool {
	switch x := v.(type) {
	case string:
		if strings.Contains(x, Placeholder) {
			return true
		}
		// Secret data is base64.
		b, err := base64.StdEncoding.DecodeString(x)
		return err == nil && strings.Contains(string(b), Placeholder)
	case map[string]any:
		for _, e := range x {
			if holdsPlaceholder(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if holdsPlaceholder(e) {
				return true
			}
		}
	}
	return false
}

// LastLinkTarget reads back, from the Link and its credentials Secret (in
// linkerd) as they are in the source cluster, the LinkTarget they were
// rendered from: a render with it leaves them as they are. A source whose
// target cannot be read keeps its link as last applied this way, never
// pruned for an answer it did not get.
func LastLinkTarget(link *unstructured.Unstructured, creds *corev1.Secret) (*LinkTarget, error) {
	spec, _, _ := unstructured.NestedMap(link.Object, "spec")
	str := func(path ...string) string {
		s, _, _ := unstructured.NestedString(spec, path...)
		return s
	}
	// The kubeconfig as mcKubeconfig writes it: one cluster, one user.
	var kc kubeconfig
	if err := yaml.Unmarshal(creds.Data["kubeconfig"], &kc); err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", creds.Namespace, creds.Name, err)
	}
	if len(kc.Clusters) != 1 || len(kc.Users) != 1 {
		return nil, fmt.Errorf("secret %s/%s holds no kubeconfig meshctl wrote", creds.Namespace, creds.Name)
	}
	return &LinkTarget{
		APIServer:        kc.Clusters[0].Cluster.Server,
		CAData:           kc.Clusters[0].Cluster.CertificateAuthorityData,
		Token:            kc.Users[0].User.Token,
		GatewayAddresses: str("gatewayAddress"),
		GatewayPort:      str("gatewayPort"),
		GatewayIdentity:  str("gatewayIdentity"),
		ProbePath:        str("probeSpec", "path"),
		ProbePort:        str("probeSpec", "port"),
		ProbePeriod:      str("probeSpec", "period"),
		TrustDomain:      creds.Annotations[annotationLinkTrustDomain],
		ClusterDomain:    str("targetClusterDomain"),
	}, nil
}

// LinkGVK is the kind of the Links meshctl renders.
var LinkGVK = k8sschema.FromAPIVersionAndKind(linkVersion, "Link")

// CredentialsSecret is the name of a link's credentials Secrets, in
// linkerd-multicluster and in linkerd.
func CredentialsSecret(to string) string { return credentialsName(to) }
