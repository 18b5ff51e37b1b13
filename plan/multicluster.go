package plan

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/schema"
)

// What a link reads in its target cluster (FACTS §11.1, §11.2, §11.5).
const (
	mcNamespace       = "linkerd-multicluster"
	mcGateway         = "linkerd-gateway"
	mcGatewayPort     = "mc-gateway"
	mcProbePort       = "mc-probe"
	mcRemoteAccess    = "linkerd-service-mirror-remote-access-default"
	mcRemoteToken     = mcRemoteAccess + "-token"
	annGatewayID      = "mirror.linkerd.io/gateway-identity"
	annProbePath      = "mirror.linkerd.io/probe-path"
	annProbePeriod    = "mirror.linkerd.io/probe-period"
	linkerdConfigName = "linkerd-config"
)

// ErrTrustRefused is wrapped when linked clusters do not share a trust
// anchor; nothing has been written.
var ErrTrustRefused = errors.New("linked clusters do not share a trust anchor")

// ErrLinkTargetNotReady is wrapped when a link's target cannot yet say
// what the link needs: it was not applied, or its gateway has no address.
var ErrLinkTargetNotReady = errors.New("link target not ready")

// ClusterOrder returns the clusters to act on: only, or every cluster of
// the mesh. Targets come before the clusters that link to them, so that a
// source reads a target that this run has already set up; clusters that
// link to each other keep name order.
func ClusterOrder(m *schema.Mesh, only string) ([]string, error) {
	names := make([]string, 0, len(m.Clusters))
	for n := range m.Clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	if only != "" {
		if _, ok := m.Clusters[only]; !ok {
			return nil, noSuchCluster(fmt.Sprintf("mesh.cue declares no cluster %q; its clusters are %s", only, strings.Join(names, ", ")))
		}
		return []string{only}, nil
	}
	// Kahn's algorithm over "to before from", smallest name first.
	needs := map[string]map[string]bool{}
	for _, l := range m.Links {
		if needs[l.From] == nil {
			needs[l.From] = map[string]bool{}
		}
		needs[l.From][l.To] = true
	}
	done := map[string]bool{}
	var out []string
	for len(out) < len(names) {
		next := ""
		for _, n := range names {
			if done[n] {
				continue
			}
			ready := true
			for t := range needs[n] {
				ready = ready && done[t]
			}
			if ready {
				next = n
				break
			}
		}
		if next == "" {
			// A cycle: take the first left, by name.
			for _, n := range names {
				if !done[n] {
					next = n
					break
				}
			}
		}
		done[next] = true
		out = append(out, next)
	}
	return out, nil
}

// linksFrom returns the links whose source is cluster name.
func linksFrom(m *schema.Mesh, name string) []schema.Link {
	var out []schema.Link
	for _, l := range m.Links {
		if l.From == name {
			out = append(out, l)
		}
	}
	return out
}

// LinkOptions say how long to wait for what a link reads in its target.
type LinkOptions struct {
	// Wait bounds the wait for the target's token Secret to be filled and
	// its gateway to get an address; zero reads once.
	Wait time.Duration
}

// ReadLinkTarget reads, in the link's target cluster, what only it can
// say: its API server and CA (from the kube context), the service-mirror
// ServiceAccount's token, the gateway's address, port, identity and probe
// settings, and its trust and cluster domains.
//
// The token comes from the token Secret the target's render holds, which
// the token controller fills: it does not expire, so the Link keeps working
// and a re-read gives the same credentials (no drift). Deleting that Secret
// in the target revokes it; the next apply of the target recreates it, and
// the next apply of the source carries the new token.
func ReadLinkTarget(ctx context.Context, to *Member, link schema.Link, o LinkOptions) (*generators.LinkTarget, error) {
	kube := to.Client.Kube()
	t := &generators.LinkTarget{APIServer: to.APIServer, CAData: to.CAData}
	notReady := func(format string, a ...any) error {
		return fmt.Errorf("%w: link %s→%s: %s", ErrLinkTargetNotReady, link.From, link.To, fmt.Sprintf(format, a...))
	}
	applyFirst := fmt.Sprintf("apply %s first (meshctl apply --cluster %s)", link.To, link.To)

	cm := &corev1.ConfigMap{}
	if err := kube.Get(ctx, client.ObjectKey{Namespace: "linkerd", Name: linkerdConfigName}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, notReady("cluster %s has no linkerd/%s: %s", link.To, linkerdConfigName, applyFirst)
		}
		return nil, unreachable(link, err)
	}
	t.TrustDomain, t.ClusterDomain = configDomains(cm.Data["values"])

	if link.Gateway {
		svc := &corev1.Service{}
		var nodes []corev1.Node
		err := poll(ctx, o.Wait, func(ctx context.Context) (bool, error) {
			if err := kube.Get(ctx, client.ObjectKey{Namespace: mcNamespace, Name: mcGateway}, svc); err != nil {
				if apierrors.IsNotFound(err) {
					return false, nil
				}
				return false, err
			}
			if svc.Spec.Type == corev1.ServiceTypeNodePort && len(svc.Status.LoadBalancer.Ingress) == 0 {
				list := &corev1.NodeList{}
				if err := kube.List(ctx, list); err != nil {
					return false, err
				}
				nodes = list.Items
			}
			return gatewayAddresses(svc, nodes) != "", nil
		})
		switch {
		case err != nil && !wait.Interrupted(err):
			return nil, unreachable(link, err)
		case svc.Name == "":
			return nil, notReady("cluster %s has no gateway Service %s/%s: %s", link.To, mcNamespace, mcGateway, applyFirst)
		case gatewayAddresses(svc, nodes) == "":
			return nil, notReady("the gateway Service %s/%s in cluster %s has no address yet (type %s, no load-balancer ingress); wait until it has one, then apply %s again",
				mcNamespace, mcGateway, link.To, svc.Spec.Type, link.From)
		}
		fillGateway(t, svc, nodes)
	}

	sec := &corev1.Secret{}
	err := poll(ctx, o.Wait, func(ctx context.Context) (bool, error) {
		if err := kube.Get(ctx, client.ObjectKey{Namespace: mcNamespace, Name: mcRemoteToken}, sec); err != nil {
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return false, err
		}
		return len(sec.Data[corev1.ServiceAccountTokenKey]) > 0, nil
	})
	switch {
	case err != nil && !wait.Interrupted(err):
		return nil, unreachable(link, err)
	case sec.Name == "":
		return nil, notReady("cluster %s has no token Secret %s/%s: %s", link.To, mcNamespace, mcRemoteToken, applyFirst)
	case len(sec.Data[corev1.ServiceAccountTokenKey]) == 0:
		return nil, notReady("the token Secret %s/%s in cluster %s holds no token yet: is kube-controller-manager's token controller running there?", mcNamespace, mcRemoteToken, link.To)
	}
	t.Token = string(sec.Data[corev1.ServiceAccountTokenKey])
	return t, nil
}

// lastLinkTarget reads back, in the link's source cluster, what the Link
// and its credentials were last applied with; nil when the link was never
// applied there.
func lastLinkTarget(ctx context.Context, src *apply.Client, l schema.Link) (*generators.LinkTarget, error) {
	link := &unstructured.Unstructured{}
	link.SetGroupVersionKind(generators.LinkGVK)
	err := src.Kube().Get(ctx, client.ObjectKey{Namespace: mcNamespace, Name: l.To}, link)
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the Link %s/%s in cluster %s: %w", mcNamespace, l.To, l.From, err)
	}
	creds := &corev1.Secret{}
	err = src.Kube().Get(ctx, client.ObjectKey{Namespace: "linkerd", Name: generators.CredentialsSecret(l.To)}, creds)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the Link's credentials in cluster %s: %w", l.From, err)
	}
	return generators.LastLinkTarget(link, creds)
}

// unreachable says that a link's target could not be read.
func unreachable(link schema.Link, err error) error {
	return fmt.Errorf("link %s→%s: cannot read cluster %s, which the link needs (%w); check that its context reaches it", link.From, link.To, link.To, err)
}

// poll runs cond until it is done, it fails, or d has passed (once when d
// is zero). A timeout is returned as the wait's error, even when it cut a
// request of cond short (client-go then says its rate limiter's Wait
// failed, which names nothing the user can act on).
func poll(ctx context.Context, d time.Duration, cond wait.ConditionWithContextFunc) error {
	if d <= 0 {
		done, err := cond(ctx)
		if err == nil && !done {
			err = context.DeadlineExceeded
		}
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, d, true, func(ctx context.Context) (bool, error) {
		done, err := cond(ctx)
		if err != nil && timedOut(ctx) {
			return false, context.DeadlineExceeded
		}
		return done, err
	})
}

// timedOut reports a ctx that has ended, or whose deadline is too near for
// a request: client-go's rate limiter refuses to wait past it.
func timedOut(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < time.Second
}

// configDomains reads the trust and cluster domains from linkerd-config's
// values.
func configDomains(values string) (trustDomain, clusterDomain string) {
	var v map[string]any
	if yaml.Unmarshal([]byte(values), &v) != nil {
		return "", ""
	}
	trustDomain, _, _ = unstructured.NestedString(v, "identityTrustDomain")
	clusterDomain, _, _ = unstructured.NestedString(v, "clusterDomain")
	return trustDomain, clusterDomain
}

// gatewayAddresses is what link-gen puts in the Link's gatewayAddress: the
// gateway Service's load-balancer IPs or hostnames, comma-joined. A
// NodePort gateway without one is reached on its nodes' addresses
// (external ones when the nodes have any).
func gatewayAddresses(svc *corev1.Service, nodes []corev1.Node) string {
	var out []string
	for _, in := range svc.Status.LoadBalancer.Ingress {
		switch {
		case in.IP != "":
			out = append(out, in.IP)
		case in.Hostname != "":
			out = append(out, in.Hostname)
		}
	}
	if len(out) > 0 || svc.Spec.Type != corev1.ServiceTypeNodePort {
		return strings.Join(out, ",")
	}
	for _, typ := range []corev1.NodeAddressType{corev1.NodeExternalIP, corev1.NodeInternalIP} {
		for _, n := range nodes {
			for _, a := range n.Status.Addresses {
				if a.Type == typ && !slices.Contains(out, a.Address) {
					out = append(out, a.Address)
				}
			}
		}
		if len(out) > 0 {
			break
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// fillGateway copies the gateway Service's address, ports and annotations
// into t; a NodePort Service's ports are its node ports.
func fillGateway(t *generators.LinkTarget, svc *corev1.Service, nodes []corev1.Node) {
	t.GatewayAddresses = gatewayAddresses(svc, nodes)
	for _, p := range svc.Spec.Ports {
		port := p.Port
		if svc.Spec.Type == corev1.ServiceTypeNodePort && p.NodePort != 0 {
			port = p.NodePort
		}
		switch p.Name {
		case mcGatewayPort:
			t.GatewayPort = strconv.Itoa(int(port))
		case mcProbePort:
			t.ProbePort = strconv.Itoa(int(port))
		}
	}
	t.GatewayIdentity = svc.Annotations[annGatewayID]
	t.ProbePath = svc.Annotations[annProbePath]
	t.ProbePeriod = svc.Annotations[annProbePeriod]
}

// labelsOnly reports an object meshctl only labels or annotates: marked
// meshctl.io/prune: disabled and not owned by meshctl. Namespaces are
// created when missing (namespaces.go); anything else (an exported Service)
// must exist, since its owner's manifests hold the rest of it.
func labelsOnly(u *unstructured.Unstructured) bool {
	return generators.FieldOnly(generators.Object{Object: u})
}

// missingLabelled says, a line each, which objects of set that meshctl only
// labels do not exist: apply must never create them.
func missingLabelled(ctx context.Context, c *apply.Client, set apply.Set) ([]string, error) {
	var out []string
	for _, st := range set.Stages {
		for _, u := range st.Objects {
			if !labelsOnly(u) {
				continue
			}
			live := &unstructured.Unstructured{}
			live.SetGroupVersionKind(u.GroupVersionKind())
			err := c.Kube().Get(ctx, client.ObjectKeyFromObject(u), live)
			switch {
			case apierrors.IsNotFound(err):
				out = append(out, fmt.Sprintf("%s does not exist: meshctl only labels it (export), and never creates it; create it first (the app's own manifests do), or remove the export from mesh.cue", apply.ID(u)))
			case err != nil:
				return nil, fmt.Errorf("reading %s: %w", apply.ID(u), err)
			}
		}
	}
	return out, nil
}

// placeholders names the objects of set that hold a generators'
// placeholder.
func placeholders(set apply.Set) []string {
	var objs []generators.Object
	for _, st := range set.Stages {
		for _, u := range st.Objects {
			objs = append(objs, generators.Object{Object: u})
		}
	}
	return generators.Placeholders(objs)
}

// without drops from set the objects named at the start of lines.
func without(set apply.Set, lines []string) apply.Set {
	if len(lines) == 0 {
		return set
	}
	out := apply.Set{Version: set.Version}
	for _, st := range set.Stages {
		ns := apply.Stage{Name: st.Name}
		for _, u := range st.Objects {
			if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, apply.ID(u)+" ") }) {
				ns.Objects = append(ns.Objects, u)
			}
		}
		out.Stages = append(out.Stages, ns)
	}
	return out
}

// CheckTrust checks, before anything is written, that every link whose
// source is among clusters joins two clusters that share a trust anchor:
// the anchors each would hold after an apply of m (read, or generated in
// memory, never stored). It returns an error wrapping ErrTrustRefused
// that says how to fix mesh.cue.
func (f *Fleet) CheckTrust(ctx context.Context, m *schema.Mesh, clusters []string) error {
	anchors := map[string][]*x509.Certificate{}
	get := func(name string) ([]*x509.Certificate, error) {
		if a, ok := anchors[name]; ok {
			return a, nil
		}
		mem, err := f.Member(ctx, name)
		if err != nil {
			return nil, err
		}
		a, err := Anchors(ctx, m, mem.Client)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", name, err)
		}
		anchors[name] = a
		return a, nil
	}
	var problems []string
	for _, l := range m.Links {
		if !slices.Contains(clusters, l.From) {
			continue
		}
		from, err := get(l.From)
		if err != nil {
			return err
		}
		to, err := get(l.To)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(from, func(c *x509.Certificate) bool { return slices.ContainsFunc(to, c.Equal) }) {
			problems = append(problems, fmt.Sprintf("link %s→%s: %s trusts %s, %s trusts %s",
				l.From, l.To, l.From, describeAnchors(from), l.To, describeAnchors(to)))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	fix := `give mesh.cue one trust anchor for every cluster: controlPlane.identity.trustAnchor.source "pem" (the public bundle, committed) or "secret" (the same anchor in each cluster), with issuer.source "secret" or "certManager"`
	if m.ControlPlane.Identity.TrustAnchor.Source == schema.SourceGenerated {
		fix += `; source "generated" makes a different anchor in each cluster`
	}
	return fmt.Errorf("%w (nothing written): %s; %s", ErrTrustRefused, strings.Join(problems, "; "), fix)
}

// Anchors returns the trust anchors cluster c holds, or would hold after an
// apply of m. Nothing is written: a generated anchor that does not exist
// yet is generated in memory, and so matches no other cluster's.
func Anchors(ctx context.Context, m *schema.Mesh, c *apply.Client) ([]*x509.Certificate, error) {
	var bundle string
	switch ta := m.ControlPlane.Identity.TrustAnchor; ta.Source {
	case schema.SourcePEM:
		bundle = ta.PEM
	case schema.SourceSecret:
		// As certificates reads it, and nothing else: a peer's reconciler
		// may read this one Secret (generators/peers.go).
		pem, err := c.SecretKey(ctx, ta.SecretRef.Namespace, ta.SecretRef.Name, ta.SecretRef.Key)
		if err != nil {
			return nil, fmt.Errorf("controlPlane.identity.trustAnchor.secretRef: %w", err)
		}
		bundle = string(pem)
	case schema.SourceExternal:
		cm := &corev1.ConfigMap{}
		if err := c.Kube().Get(ctx, client.ObjectKey{Namespace: "linkerd", Name: trustRootsName}, cm); err != nil {
			return nil, fmt.Errorf("trustAnchor.source is external, and reading linkerd/%s failed (%w); create it before linking", trustRootsName, err)
		}
		bundle = cm.Data[trustRootsKey]
	default:
		b, _, err := Certificates(ctx, m, Cluster{Client: c, DryRun: true})
		if err != nil {
			return nil, err
		}
		bundle = b.TrustAnchorsPEM
	}
	certs := pemCerts(bundle)
	if len(certs) == 0 {
		return nil, fmt.Errorf("no trust anchor certificate found (trustAnchor.source %s)", m.ControlPlane.Identity.TrustAnchor.Source)
	}
	return certs, nil
}

// describeAnchors names anchors by subject and a short fingerprint.
func describeAnchors(certs []*x509.Certificate) string {
	var out []string
	for _, c := range certs {
		sum := sha256.Sum256(c.Raw)
		out = append(out, fmt.Sprintf("%s (sha256 %s…)", c.Subject.CommonName, hex.EncodeToString(sum[:6])))
	}
	return strings.Join(out, " and ")
}

// Offline renders cluster name of a multicluster mesh without a cluster:
// links carry the generators' placeholders where only their targets can
// answer, and certificate-bearing objects are left out.
func OfflineMember(m *schema.Mesh, name, version string) (apply.Set, error) {
	objs, err := generators.Render(m, generators.Inputs{Cluster: name})
	if err != nil {
		return apply.Set{}, err
	}
	return Stages(objs, version), nil
}
