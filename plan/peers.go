package plan

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/schema"
)

// How a fleet's reconcile loops reach each other (generators/peers.go):
// each cluster gives every other one a ServiceAccount that may read what a
// link needs (and, for the cluster that keeps the fleet anchor's key,
// update its certificate store). `meshctl apply`, which reaches every
// cluster, writes in each cluster one Secret per peer, in the meshctl
// namespace, holding a kubeconfig with the peer's API server and that
// token. The loop connects with it (PeerConnector); it never sees any
// other credential of the peer.

// peerKubeconfigKey is the key of the kubeconfig in a peer's Secret.
const peerKubeconfigKey = "kubeconfig"

// PeerConnector returns how a reconcile loop that runs in cluster local,
// whose client is c, reaches the other clusters of its fleet: the local
// cluster through c, every other through the kubeconfig in Secret
// meshctl-cluster-<name> in c's namespace.
func PeerConnector(local string, c *apply.Client, localMember *Member) func(name string) (*Member, error) {
	return func(name string) (*Member, error) {
		if name == local {
			return localMember, nil
		}
		secret := generators.PeerKubeconfigSecret(name)
		where := fmt.Sprintf("secret %s/%s", c.Namespace(), secret)
		s := &corev1.Secret{}
		if err := c.Kube().Get(context.Background(), client.ObjectKey{Namespace: c.Namespace(), Name: secret}, s); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("no %s, the reconciler's way to cluster %s: run meshctl apply on the fleet once, which writes it", where, name)
			}
			return nil, fmt.Errorf("reading %s: %w", where, err)
		}
		cfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data[peerKubeconfigKey])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		pc, err := apply.New(cfg, c.Namespace())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		return &Member{Name: name, Client: pc, APIServer: cfg.Host, CAData: cfg.CAData, Source: where}, nil
	}
}

// peerCredentials is the last step of a fleet's apply from outside the
// clusters (the CLI): in each cluster of clusters, for every other cluster
// of the mesh, it stores the kubeconfig that reaches that peer with the
// token the peer gave this cluster, and deletes those of clusters the
// mesh no longer declares. A peer that cannot be reached, or whose token
// is not filled within wait, is a warning: the next apply writes it.
func (f *Fleet) peerCredentials(ctx context.Context, m *schema.Mesh, clusters []string, wait time.Duration) (notes, warnings map[string][]string) {
	notes, warnings = map[string][]string{}, map[string][]string{}
	if f.single || f.local != "" || len(m.Clusters) < 2 {
		return notes, warnings
	}
	names := slices.Sorted(maps.Keys(m.Clusters))
	for _, x := range clusters {
		xm, err := f.Member(ctx, x)
		if err != nil {
			warnings[x] = append(warnings[x], err.Error())
			continue
		}
		for _, p := range names {
			if p == x {
				continue
			}
			note, err := f.storePeer(ctx, xm, p, wait)
			switch {
			case err != nil:
				warnings[x] = append(warnings[x], fmt.Sprintf("the reconciler's way to cluster %s (secret %s/%s) is not stored: %v; the next meshctl apply stores it", p, xm.Client.Namespace(), generators.PeerKubeconfigSecret(p), err))
			case note != "":
				notes[x] = append(notes[x], note)
			}
		}
		// Peers the mesh no longer declares: their access is pruned with
		// their render; the way to them goes too.
		list := &corev1.SecretList{}
		if err := xm.Client.Kube().List(ctx, list, client.InNamespace(xm.Client.Namespace()), client.MatchingLabels{apply.LabelManagedBy: apply.ManagedByMeshctl}); err != nil {
			warnings[x] = append(warnings[x], fmt.Sprintf("listing the reconciler's ways to other clusters: %v", err))
			continue
		}
		for i := range list.Items {
			s := &list.Items[i]
			peer, ok := strings.CutPrefix(s.Name, generators.PeerKubeconfigSecret(""))
			if !ok || slices.Contains(names, peer) {
				continue
			}
			if err := xm.Client.Kube().Delete(ctx, s); err != nil && !apierrors.IsNotFound(err) {
				warnings[x] = append(warnings[x], fmt.Sprintf("deleting secret %s/%s: %v", s.Namespace, s.Name, err))
				continue
			}
			notes[x] = append(notes[x], fmt.Sprintf("deleted secret %s/%s: cluster %s left the fleet", s.Namespace, s.Name, peer))
		}
	}
	return notes, warnings
}

// storePeer stores, in cluster x, the kubeconfig that reaches peer with
// the token peer gave x. note says what changed, "" when nothing.
func (f *Fleet) storePeer(ctx context.Context, x *Member, peer string, wait time.Duration) (string, error) {
	pm, err := f.Member(ctx, peer)
	if err != nil {
		return "", err
	}
	sec := &corev1.Secret{}
	key := client.ObjectKey{Namespace: mcNamespace, Name: generators.PeerTokenSecret(x.Name)}
	// A peer not applied yet has no token Secret: nothing to wait for.
	// One just applied gets its token from the token controller.
	err = poll(ctx, wait, func(ctx context.Context) (bool, error) {
		if err := pm.Client.Kube().Get(ctx, key, sec); err != nil {
			return false, err
		}
		return len(sec.Data[corev1.ServiceAccountTokenKey]) > 0, nil
	})
	switch {
	case apierrors.IsNotFound(err):
		return "", fmt.Errorf("cluster %s holds no token Secret %s yet: apply %s", peer, key, peer)
	case err != nil && sec.Name != "":
		return "", fmt.Errorf("the token Secret %s in cluster %s holds no token yet: is kube-controller-manager's token controller running there?", key, peer)
	case err != nil:
		return "", fmt.Errorf("reading %s in cluster %s: %w", key, peer, err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters[peer] = &clientcmdapi.Cluster{Server: pm.APIServer, CertificateAuthorityData: pm.CAData}
	kc.AuthInfos[peer] = &clientcmdapi.AuthInfo{Token: string(sec.Data[corev1.ServiceAccountTokenKey])}
	kc.Contexts[peer] = &clientcmdapi.Context{Cluster: peer, AuthInfo: peer}
	kc.CurrentContext = peer
	data, err := clientcmd.Write(*kc)
	if err != nil {
		return "", err
	}
	want := map[string][]byte{peerKubeconfigKey: data}
	name := generators.PeerKubeconfigSecret(peer)
	stored, err := x.Client.EnsureSecret(ctx, name, false, func() (map[string][]byte, error) { return want, nil })
	if err != nil {
		return "", err
	}
	where := fmt.Sprintf("secret %s/%s", x.Client.Namespace(), name)
	if stored.Created {
		return fmt.Sprintf("stored the reconciler's way to cluster %s (its API server %s, and the token of ServiceAccount %s/%s there) in %s", peer, pm.APIServer, mcNamespace, generators.PeerServiceAccount(x.Name), where), nil
	}
	if string(stored.Data[peerKubeconfigKey]) == string(data) {
		return "", nil
	}
	if err := x.Client.UpdateSecret(ctx, &stored, want); err != nil {
		return "", err
	}
	return fmt.Sprintf("updated the reconciler's way to cluster %s in %s (its API server or its token changed)", peer, where), nil
}
