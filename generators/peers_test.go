package generators

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestPeerAccess: each cluster of a fleet gives every other one a
// ServiceAccount that may read only what a link to it needs; the NodePort
// gateway's nodes, a secret anchor and the signer's store are granted only
// where they apply, the store only to the cluster that keeps the key.
func TestPeerAccess(t *testing.T) {
	fleet := `clusters: {west: context: "w", east: {context: "e", gateway: serviceType: "NodePort"}, north: context: "n"}
`
	reader := []string{
		"Role/linkerd/meshctl-peers", "RoleBinding/linkerd/meshctl-peers",
		"Role/linkerd-multicluster/meshctl-peers", "RoleBinding/linkerd-multicluster/meshctl-peers",
	}
	accounts := func(peers ...string) []string {
		var out []string
		for _, p := range peers {
			out = append(out, "ServiceAccount/linkerd-multicluster/meshctl-peer-"+p, "Secret/linkerd-multicluster/meshctl-peer-"+p+"-token")
		}
		return out
	}
	signer := []string{"Role/meshctl/meshctl-fleet-signer", "RoleBinding/meshctl/meshctl-fleet-signer"}
	nodes := []string{"ClusterRole/meshctl-peers-nodes", "ClusterRoleBinding/meshctl-peers-nodes"}
	generated := `controlPlane: identity: trustAnchor: keyCluster: "west"
`
	secret := `controlPlane: identity: {trustAnchor: {source: "secret", secretRef: {namespace: "pki", name: "anchor"}}, issuer: source: "secret"}
`
	tests := []struct {
		name, src, cluster string
		want               []string
	}{
		{"no clusters", "", "", nil},
		{"one cluster has no peers", `clusters: west: context: "w"
controlPlane: identity: trustAnchor: keyCluster: "west"
`, "west", nil},
		{"the key's holder is signed for by nobody", fleet + generated, "west", cat(accounts("east", "north"), reader)},
		{"a member lets the holder update its store", fleet + generated, "north", cat(accounts("east", "west"), reader, signer)},
		{"a NodePort gateway's nodes", fleet + generated, "east", cat(accounts("north", "west"), reader, nodes, signer)},
		{"a secret anchor, and no signer", fleet + secret, "north", cat(accounts("east", "west"), reader, []string{"Role/pki/meshctl-peers-anchor", "RoleBinding/pki/meshctl-peers-anchor"})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := peers(load(t, tc.src), Inputs{Cluster: tc.cluster})
			if d := cmp.Diff(sorted(tc.want), sorted(objectIDs(got))); d != "" {
				t.Errorf("objects (-want +got):\n%s", d)
			}
			for _, o := range got {
				if o.Object.GetKind() != "Role" && o.Object.GetKind() != "ClusterRole" {
					continue
				}
				var r rbacv1.ClusterRole
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object.Object, &r); err != nil {
					t.Fatal(err)
				}
				for _, rule := range r.Rules {
					for _, v := range rule.Verbs {
						// Only list nodes goes without names; nothing is written but the store.
						if len(rule.ResourceNames) == 0 && !(v == "list" && rule.Resources[0] == "nodes") {
							t.Errorf("%s grants %s on every %v", o.ID(), v, rule.Resources)
						}
						if v == "update" && rule.ResourceNames[0] != "meshctl-certificates" {
							t.Errorf("%s grants update on %v", o.ID(), rule.ResourceNames)
						}
					}
				}
			}
		})
	}
	// The signer's Role lives where meshctl keeps its store.
	got := peers(load(t, fleet+generated), Inputs{Cluster: "north", MeshctlNamespace: "mesh-ops"})
	if ids := objectIDs(got); !slices.Contains(ids, "Role/mesh-ops/meshctl-fleet-signer") {
		t.Errorf("no signer Role in mesh-ops: %v", ids)
	}
}
