package generators

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/meshctl/meshctl/internal/ident"
	"github.com/meshctl/meshctl/schema"
)

// Peer access: meshctl's own objects, not Linkerd's. In a fleet each
// cluster's reconcile loop (meshctl reconcile --cluster NAME) reads, in the
// other clusters, what a link to them needs, the way `meshctl apply` reads
// it, and the loop of the cluster that keeps the fleet anchor's key signs
// the other clusters' issuers. Each cluster gives every other one a
// ServiceAccount of its own here, with a long-lived token, allowed exactly
// that:
//
//   - get linkerd/linkerd-config (the trust and cluster domains) and
//     linkerd/linkerd-identity-trust-roots (the anchors a link checks);
//   - get the gateway Service linkerd-multicluster/linkerd-gateway, and the
//     token Secret of Linkerd's remote-access ServiceAccount, which a Link's
//     credentials carry (link-gen reads the same);
//   - list nodes, when this cluster's gateway is a NodePort (its address is
//     its nodes');
//   - get the Secret a trustAnchor.source "secret" names (the anchors a
//     link compares);
//   - for the cluster that keeps the fleet anchor's key only: get and update
//     this cluster's certificate store, to re-sign its issuer.
//
// The clusters reach each other with these tokens through Secrets
// meshctl-cluster-<peer> in the meshctl namespace, which `meshctl apply`
// writes (plan.PeerCredentials).

// PeerServiceAccount is the ServiceAccount, in linkerd-multicluster, that
// cluster peer's reconcile loop acts as in another cluster of the fleet;
// PeerTokenSecret holds its token.
func PeerServiceAccount(peer string) string { return "meshctl-peer-" + peer }

// PeerTokenSecret is the token Secret of PeerServiceAccount(peer).
func PeerTokenSecret(peer string) string { return PeerServiceAccount(peer) + "-token" }

// PeerKubeconfigSecret is the Secret, in the meshctl namespace, that holds
// the kubeconfig through which a cluster's reconcile loop reaches peer.
func PeerKubeconfigSecret(peer string) string { return "meshctl-cluster-" + peer }

// Names of the peer-access roles and bindings.
const (
	peerRole   = "meshctl-peers"
	signerRole = "meshctl-fleet-signer"
	// CertificatesSecret is the certificate store the signer may update
	// (plan.CertificatesSecret).
	certificatesSecret = "meshctl-certificates"
)

// peers renders peer access in cluster in.Cluster of a fleet.
func peers(m *schema.Mesh, in Inputs) []Object {
	self, ok := m.Clusters[in.Cluster]
	if !ok || in.Cluster == "" || len(m.Clusters) < 2 {
		return nil
	}
	names := slices.Sorted(maps.Keys(m.Clusters))
	labels := map[string]string{"app.kubernetes.io/part-of": "meshctl", "app.kubernetes.io/component": "fleet-peer-access"}
	var objs []Object
	var subjects []rbacv1.Subject
	for _, p := range names {
		if p == in.Cluster {
			continue
		}
		sa := PeerServiceAccount(p)
		subjects = append(subjects, rbacv1.Subject{Kind: "ServiceAccount", Name: sa, Namespace: mcNamespace})
		objs = append(objs,
			toObject(StageExtensions, gvkSA, &corev1.ServiceAccount{ObjectMeta: objectMeta(sa, mcNamespace, labels, nil)}),
			toObject(StageExtensions, gvkSecret, &corev1.Secret{
				ObjectMeta: objectMeta(PeerTokenSecret(p), mcNamespace, labels, map[string]string{corev1.ServiceAccountNameKey: sa}),
				Type:       corev1.SecretTypeServiceAccountToken,
			}),
		)
	}
	bind := func(kind, name, ns string, rules []rbacv1.PolicyRule, subjects []rbacv1.Subject) {
		if kind == "ClusterRole" {
			objs = append(objs,
				toObject(StageExtensions, gvkClusterRole, &rbacv1.ClusterRole{ObjectMeta: objectMeta(name, "", labels, nil), Rules: rules}),
				toObject(StageExtensions, gvkCRB, &rbacv1.ClusterRoleBinding{ObjectMeta: objectMeta(name, "", labels, nil),
					RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: name}, Subjects: subjects}))
			return
		}
		objs = append(objs,
			toObject(StageExtensions, gvkRole, &rbacv1.Role{ObjectMeta: objectMeta(name, ns, labels, nil), Rules: rules}),
			toObject(StageExtensions, gvkRoleBinding, &rbacv1.RoleBinding{ObjectMeta: objectMeta(name, ns, labels, nil),
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: name}, Subjects: subjects}))
	}
	getOnly := func(resource string, names ...string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{APIGroups: core, Resources: []string{resource}, ResourceNames: names, Verbs: []string{"get"}}
	}
	bind("Role", peerRole, linkerdNamespace, []rbacv1.PolicyRule{getOnly("configmaps", "linkerd-config", "linkerd-identity-trust-roots")}, subjects)
	bind("Role", peerRole, mcNamespace, []rbacv1.PolicyRule{
		getOnly("secrets", mcRemoteAccess+"-token"),
		getOnly("services", mcGatewayName),
	}, subjects)
	if self.Gateway.Enabled && self.Gateway.ServiceType == "NodePort" {
		bind("ClusterRole", peerRole+"-nodes", "", []rbacv1.PolicyRule{{APIGroups: core, Resources: []string{"nodes"}, Verbs: []string{"list"}}}, subjects)
	}
	if ta := m.ControlPlane.Identity.TrustAnchor; ta.Source == schema.SourceSecret && ta.SecretRef != nil {
		bind("Role", peerRole+"-anchor", ta.SecretRef.Namespace, []rbacv1.PolicyRule{getOnly("secrets", ta.SecretRef.Name)}, subjects)
	}
	id := m.ControlPlane.Identity
	holder := id.TrustAnchor.KeyCluster
	if id.TrustAnchor.Source == schema.SourceGenerated && id.Issuer.Source == schema.SourceGenerated && holder != "" && holder != in.Cluster {
		ns := in.MeshctlNamespace
		if ns == "" {
			ns = ident.Namespace
		}
		bind("Role", signerRole, ns, []rbacv1.PolicyRule{{APIGroups: core, Resources: []string{"secrets"}, ResourceNames: []string{certificatesSecret}, Verbs: []string{"get", "update"}}},
			[]rbacv1.Subject{{Kind: "ServiceAccount", Name: PeerServiceAccount(holder), Namespace: mcNamespace}})
	}
	return objs
}
