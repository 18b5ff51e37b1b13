package generators

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/internal/ident"
	"github.com/meshctl/meshctl/schema"
)

// Inputs are what a render needs beyond mesh.cue: certificate material that
// lives in the cluster or in a --certs-dir. With empty Inputs, objects that
// would hold certificates are left out, and so are the fields derived from
// them (webhook caBundles, trust-root digests); see README.md.
type Inputs struct {
	Certs *certs.Bundle
	// NoAdmissionPolicy: the cluster does not serve MutatingAdmissionPolicy
	// (admissionregistration.k8s.io/v1), so safeToEvict is not rendered as
	// one; plan sets the annotation on pod templates instead. The zero
	// value renders the policy, as Kubernetes 1.37 serves it.
	NoAdmissionPolicy bool
	// Cluster is the mesh cluster this render is for (a name under
	// clusters); "" for a mesh that declares no clusters. Multicluster
	// objects (the extension, links, exports) differ per cluster.
	Cluster string
	// Links holds, by target cluster name, what only that cluster can say
	// about a link to it; plan reads it at apply time. A link whose target
	// is missing renders with clearly marked placeholders (offline build).
	Links map[string]*LinkTarget
	// MeshctlNamespace holds meshctl's certificate store; a fleet's
	// signer may update it there (peers.go). Default "meshctl".
	MeshctlNamespace string
}

// LinkTarget is what the target cluster of a link says about itself, as
// `linkerd multicluster link-gen` reads it there (FACTS §11.5). It holds a
// credential: it goes into the credentials Secrets and nowhere else.
type LinkTarget struct {
	// APIServer and CAData reach the target's API server; Token is the
	// service-mirror ServiceAccount's token there.
	APIServer string
	CAData    []byte
	Token     string
	// GatewayAddresses are the gateway Service's load-balancer addresses,
	// comma-joined; GatewayPort its mc-gateway port (the nodePort for a
	// NodePort Service); GatewayIdentity its gateway-identity annotation.
	GatewayAddresses string
	GatewayPort      string
	GatewayIdentity  string
	// ProbePath, ProbePort and ProbePeriod are the gateway's probe settings.
	ProbePath   string
	ProbePort   string
	ProbePeriod string
	// TrustDomain and ClusterDomain come from the target's linkerd-config.
	TrustDomain   string
	ClusterDomain string
}

// trustAnchors returns the anchors PEM the render knows, if any.
func (in Inputs) trustAnchors(m *schema.Mesh) string {
	id := m.ControlPlane.Identity
	if id.TrustAnchor.Source == schema.SourcePEM {
		return id.TrustAnchor.PEM
	}
	if in.Certs != nil {
		return in.Certs.TrustAnchorsPEM
	}
	return ""
}

func (in Inputs) webhook(svc string) (certs.KeyPair, bool) {
	if in.Certs == nil {
		return certs.KeyPair{}, false
	}
	kp, ok := in.Certs.Webhooks[svc]
	return kp, ok && kp.CertPEM != ""
}

// component renders one part of the mesh.
type component func(m *schema.Mesh, in Inputs) []Object

// WebhookServices are the control-plane Services whose webhooks need a
// serving certificate.
var WebhookServices = []string{"linkerd-proxy-injector", "linkerd-sp-validator", "linkerd-policy-validator"}

// components lists every generator; Render runs them all.
var components = []component{
	crds,
	namespaces,
	safeToEvictPolicy,
	cniPlugin,
	controlPlane,
	viz,
	vizPrometheus,
	grafana,
	traceBackend,
	multicluster,
	peers,
	profiles,
	traffic,
	smi,
}

// Render expands the mesh into its objects, in the stable order of Sort.
func Render(m *schema.Mesh, in Inputs) ([]Object, error) {
	if m == nil {
		return nil, fmt.Errorf("render: no mesh")
	}
	var objs []Object
	for _, c := range components {
		objs = append(objs, c(m, in)...)
	}
	objs, err := applyPatches(m, objs)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, o := range objs {
		if ownedOutright(o) {
			labels := o.Object.GetLabels()
			if labels == nil {
				labels = map[string]string{}
			}
			labels[ident.LabelManagedBy] = ident.ManagedByMeshctl
			o.Object.SetLabels(labels)
		}
		id := o.Object.GetAPIVersion() + "/" + o.ID()
		if seen[id] {
			return nil, fmt.Errorf("render: %s is rendered twice", o.ID())
		}
		seen[id] = true
	}
	Sort(objs)
	return objs, nil
}

// ownedOutright is false for namespaces meshctl only annotates and for
// the fields it sets on others' Services (FieldOnly).
func ownedOutright(o Object) bool {
	if FieldOnly(o) {
		return false
	}
	return o.Object.GetKind() != "Namespace" || o.Object.GetAnnotations()[ident.AnnotationPrune] != "disabled"
}

// Sort orders objects as build prints them: CRDs, then Namespaces, then
// other cluster-scoped objects, then namespaced ones; each group by kind,
// namespace and name.
func Sort(objs []Object) {
	rank := func(o Object) int {
		switch {
		case o.Object.GetKind() == "CustomResourceDefinition":
			return 0
		case o.Object.GetKind() == "Namespace":
			return 1
		case o.Object.GetNamespace() == "":
			return 2
		}
		return 3
	}
	sort.SliceStable(objs, func(i, j int) bool {
		a, b := objs[i], objs[j]
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		ak, bk := a.Object.GetKind(), b.Object.GetKind()
		if ak != bk {
			return ak < bk
		}
		if an, bn := a.Object.GetNamespace(), b.Object.GetNamespace(); an != bn {
			return an < bn
		}
		return a.Object.GetName() < b.Object.GetName()
	})
}

// CertOptions are the options of the mesh's certificates: the control
// plane's namespace, the mesh's trust domain and the webhook Services this
// render serves (viz's too when it is on). now is when they would be issued.
func CertOptions(m *schema.Mesh, now time.Time) certs.Options {
	svcs := slices.Clone(WebhookServices)
	if m.Viz.Enabled {
		svcs = append(svcs, VizWebhookServices...)
	}
	return certs.Options{
		ControlPlaneNamespace: linkerdNamespace,
		TrustDomain:           m.ControlPlane.Identity.TrustDomain,
		WebhookServices:       svcs,
		Now:                   now,
	}
}
