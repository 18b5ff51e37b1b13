package plan

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/schema"
)

// The objects that hold a Linkerd install's trust (FACTS §6).
const (
	trustRootsName = "linkerd-identity-trust-roots"
	issuerName     = "linkerd-identity-issuer"
	trustRootsKey  = "ca-bundle.crt"
)

// ErrCannotAdopt is wrapped when an existing install's trust anchor or
// issuer cannot be adopted, and meshctl refuses to replace them.
var ErrCannotAdopt = fmt.Errorf("cannot adopt the existing trust anchor and issuer")

// existingTrust reads the trust anchor and issuer that an install meshctl
// did not make (the linkerd CLI, Helm) left in the cluster, and adopts
// them as they are: replacing them would leave every meshed pod trusting
// the old anchor until it restarts, and mTLS between old and new pods
// would fail. It returns nil when the cluster holds neither, and an error
// that says what to write in mesh.cue when it holds something meshctl
// cannot adopt.
func existingTrust(ctx context.Context, kube client.Client, m *schema.Mesh) (*certs.Bundle, error) {
	ns := "linkerd"
	roots := &corev1.ConfigMap{}
	rootsErr := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: trustRootsName}, roots)
	if rootsErr != nil && !apierrors.IsNotFound(rootsErr) {
		return nil, fmt.Errorf("reading %s/%s: %w", ns, trustRootsName, rootsErr)
	}
	issuer := &corev1.Secret{}
	issuerErr := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: issuerName}, issuer)
	if issuerErr != nil && !apierrors.IsNotFound(issuerErr) {
		return nil, fmt.Errorf("reading %s/%s: %w", ns, issuerName, issuerErr)
	}
	hasRoots, hasIssuer := rootsErr == nil, issuerErr == nil
	switch {
	case !hasRoots && !hasIssuer:
		return nil, nil
	case !hasIssuer:
		return nil, refuseAdoption(ns+"/"+issuerName+" does not exist, but "+ns+"/"+trustRootsName+" does", roots.Data[trustRootsKey])
	case !hasRoots:
		return nil, refuseAdoption(ns+"/"+trustRootsName+" does not exist, but "+ns+"/"+issuerName+" does", "")
	}
	anchors := roots.Data[trustRootsKey]
	crt, key := issuer.Data["crt.pem"], issuer.Data["key.pem"]
	if len(crt) == 0 || len(key) == 0 {
		if _, ok := issuer.Data["tls.crt"]; ok {
			return nil, refuseAdoption(ns+"/"+issuerName+" has the kubernetes.io/tls scheme (tls.crt, tls.key), which something like cert-manager keeps renewing; meshctl will not freeze it", anchors)
		}
		return nil, refuseAdoption(ns+"/"+issuerName+" holds no crt.pem and key.pem", anchors)
	}
	webhooks := map[string]certs.KeyPair{}
	for _, svc := range generators.WebhookServices {
		s := &corev1.Secret{}
		if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: svc + "-k8s-tls"}, s); err == nil {
			webhooks[svc] = certs.KeyPair{CertPEM: string(s.Data["tls.crt"]), KeyPEM: string(s.Data["tls.key"])}
		}
	}
	b, err := certs.Adopt(anchors, certs.KeyPair{CertPEM: string(crt), KeyPEM: string(key)}, webhooks)
	if err != nil {
		return nil, refuseAdoption(err.Error(), anchors)
	}
	return b, nil
}

// refuseAdoption says why adoption is impossible and what mesh.cue settings
// make the choice explicit.
func refuseAdoption(why, anchors string) error {
	pem := `"<the PEM bundle of linkerd/linkerd-identity-trust-roots>"`
	if anchors != "" {
		pem = "\"\"\"\n" + strings.TrimRight(anchors, "\n") + "\n\"\"\""
	}
	return fmt.Errorf(`%w: %s.
meshctl will not replace a trust anchor or issuer it did not make: meshed pods would keep trusting the old anchor until they restart, and mTLS between old and new pods would fail.
Say in mesh.cue what to keep, either
  controlPlane: identity: {trustAnchor: source: "external", issuer: source: "secret"}   // keep both as they are
or
  controlPlane: identity: {trustAnchor: {source: "pem", pem: %s}, issuer: source: "secret"}
or, with cert-manager keeping the issuer, issuer: {source: "certManager", certManager: issuerRef: name: "..."}.
To replace them on purpose, delete both first; every meshed pod must then restart`, ErrCannotAdopt, why, pem)
}
