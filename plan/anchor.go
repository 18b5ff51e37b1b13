package plan

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/schema"
)

// ErrAnchorRefused is wrapped when a guard stops a trust-anchor rotation
// step (pods that have not restarted, the issuance lifetime); nothing was
// written.
var ErrAnchorRefused = errors.New("trust-anchor rotation refused")

// The steps of a trust-anchor rotation, as `meshctl rotate trust-anchor`
// names them.
const (
	StepBundle = "bundle"
	StepResign = "re-sign"
	StepDrop   = "drop"
)

// AnchorRotation asks Certificates to take the next step of a trust-anchor
// rotation of the stored certificates before it renders them: stored,
// unless the render is a dry run. Certificates fills in Result.
type AnchorRotation struct {
	// Force lifts the guards: meshed pods not yet restarted, and the
	// issuance lifetime since the issuer was re-signed.
	Force bool
	// Now is the time of the step; zero for the current time.
	Now time.Time
	// Result says which step was taken.
	Result AnchorResult
	// others are the fleet's other clusters, when the rotated anchor is
	// the fleet's (fleetcerts.go): the guards count their meshed pods
	// too, so that no cluster re-signs before every cluster's pods trust
	// the bundle.
	others []*Member
}

// AnchorResult is the step a rotation took.
type AnchorResult struct {
	// Step is StepBundle, StepResign or StepDrop.
	Step string
	// Note says what the step means for running pods.
	Note string
	// Pods counts the meshed pods that have not restarted onto the trust
	// roots the step needs; Forced says a guard was lifted to go on anyway.
	Pods   PodTrust
	Forced []string
}

// PodTrust counts meshed pods (those with generators.AnnotationTrustRoot) and those
// among them whose trust roots are not the ones wanted.
type PodTrust struct {
	Meshed int `json:"meshed"`
	Behind int `json:"behind"`
	// Namespaces holds the pods that are behind.
	Namespaces []string `json:"namespaces,omitempty"`
}

// advanceAnchor takes the next step of b's trust-anchor rotation and,
// outside a dry run, stores it in stored at the version it was read at.
func advanceAnchor(ctx context.Context, m *schema.Mesh, c Cluster, stored *apply.StoredSecret, b *certs.Bundle, o certs.Options) error {
	r := c.Anchor
	if !meshctlSignsIssuer(m) || b.Anchor == nil {
		return fmt.Errorf("%w: meshctl rotates only a trust anchor it generated and holds the key of (trustAnchor.source and issuer.source \"generated\", not adopted); rotate this one with the tool that made it: publish a bundle of the old and new anchors in linkerd/%s, restart the meshed pods, then install an issuer signed by the new anchor, and drop the old anchor once pods have restarted again", certs.ErrNoAnchorKey, trustRootsName)
	}
	if !r.Now.IsZero() {
		o.Now = r.Now
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	r.Result = AnchorResult{}
	var err error
	switch b.RotationStep() {
	case "":
		r.Result.Step, r.Result.Note = StepBundle, anchorAddedMeaning
		err = b.BundleAnchor(o)
	case certs.AnchorBundled:
		r.Result.Step = StepResign
		if err = guardBundle(ctx, c, b, r); err == nil {
			err = b.ResignIssuer(o)
			r.Result.Note = "issuer re-signed by the new trust anchor; the trust roots still hold both anchors, so workloads with certificates from the old issuer keep working until theirs renew"
		}
	case certs.AnchorResigned:
		r.Result.Step, r.Result.Note = StepDrop, anchorDroppedMeaning
		if err = guardDrop(ctx, m, c, b, r, o.Now); err == nil {
			err = b.DropOldAnchor()
		}
	}
	if err != nil || c.DryRun {
		return err
	}
	return c.Client.UpdateSecret(ctx, stored, b.Data())
}

// guardBundle refuses the re-sign step while meshed pods have not
// restarted onto the two-anchor bundle: they would not trust the new
// issuer's certificates.
func guardBundle(ctx context.Context, c Cluster, b *certs.Bundle, r *AnchorRotation) error {
	pt, err := fleetPodTrust(ctx, c, r, generators.TrustRootHash(b.TrustAnchorsPEM))
	if err != nil {
		return err
	}
	r.Result.Pods = pt
	if pt.Behind == 0 {
		return nil
	}
	msg := BehindMessage(pt)
	if r.Force {
		r.Result.Forced = append(r.Result.Forced, msg)
		return nil
	}
	return fmt.Errorf("%w: %s; the issuer is re-signed by the new anchor only once every meshed pod trusts it (--force to go on anyway: those pods then fail mTLS with workloads that get certificates from the new issuer)", ErrAnchorRefused, msg)
}

// BehindMessage says how many meshed pods still trust only the old anchor,
// and how to restart them.
func BehindMessage(pt PodTrust) string {
	restart := make([]string, 0, len(pt.Namespaces))
	for _, ns := range pt.Namespaces {
		if cluster, name, ok := strings.Cut(ns, "/"); ok {
			restart = append(restart, fmt.Sprintf("in cluster %s: kubectl rollout restart deployment,statefulset,daemonset -n %s", cluster, name))
			continue
		}
		restart = append(restart, "kubectl rollout restart deployment,statefulset,daemonset -n "+ns)
	}
	return fmt.Sprintf("%d of %d meshed pods still trust only the old anchor: restart them (%s)", pt.Behind, pt.Meshed, strings.Join(restart, "; "))
}

// guardDrop refuses to drop the old anchor while a meshed pod trusts
// neither the two-anchor bundle nor the new anchor alone, or before the
// issuance lifetime has passed since the re-sign: workload certificates
// from the old issuer stay valid that long.
func guardDrop(ctx context.Context, m *schema.Mesh, c Cluster, b *certs.Bundle, r *AnchorRotation, now time.Time) error {
	pt, err := fleetPodTrust(ctx, c, r, generators.TrustRootHash(b.TrustAnchorsPEM), generators.TrustRootHash(b.Anchor.CertPEM))
	if err != nil {
		return err
	}
	r.Result.Pods = pt
	var why []string
	if pt.Behind > 0 {
		why = append(why, fmt.Sprintf("%d of %d meshed pods trust neither the two-anchor bundle nor the new anchor: restart them (namespaces %s)", pt.Behind, pt.Meshed, strings.Join(pt.Namespaces, ", ")))
	}
	life, err := time.ParseDuration(m.ControlPlane.Identity.IssuanceLifetime)
	if err != nil {
		return fmt.Errorf("controlPlane.identity.issuanceLifetime: %w", err)
	}
	if at := b.Rotation.ResignedAt.Add(life); now.Before(at) {
		why = append(why, fmt.Sprintf("the issuance lifetime (%s) has not passed since the issuer was re-signed at %s: workload certificates from the old issuer stay valid until %s; the old anchor can be dropped from then (in %s)",
			life, stamp(b.Rotation.ResignedAt), stamp(at), at.Sub(now).Round(time.Second)))
	}
	if len(why) == 0 {
		return nil
	}
	if r.Force {
		r.Result.Forced = append(r.Result.Forced, why...)
		return nil
	}
	return fmt.Errorf("%w: %s (--force to drop it anyway)", ErrAnchorRefused, strings.Join(why, "; "))
}

// fleetPodTrust is podTrust in cluster c and in the fleet's other clusters
// of a rotation of the fleet's anchor; their namespaces read
// "cluster/namespace".
func fleetPodTrust(ctx context.Context, c Cluster, r *AnchorRotation, want ...string) (PodTrust, error) {
	pt, err := podTrust(ctx, c.Client, want...)
	if err != nil {
		return pt, err
	}
	for _, o := range r.others {
		opt, err := podTrust(ctx, o.Client, want...)
		if err != nil {
			return pt, inCluster(o.Name, err)
		}
		pt.Meshed += opt.Meshed
		pt.Behind += opt.Behind
		for _, ns := range opt.Namespaces {
			pt.Namespaces = append(pt.Namespaces, o.Name+"/"+ns)
		}
	}
	return pt, nil
}

// podTrust counts the meshed pods that are running or pending, and those
// among them whose trust-root hash is none of want.
func podTrust(ctx context.Context, c *apply.Client, want ...string) (PodTrust, error) {
	pods := &corev1.PodList{}
	if err := c.Kube().List(ctx, pods); err != nil {
		return PodTrust{}, fmt.Errorf("listing pods: %w", err)
	}
	var pt PodTrust
	behind := map[string]bool{}
	for _, p := range pods.Items {
		h, ok := p.Annotations[generators.AnnotationTrustRoot]
		if !ok || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		pt.Meshed++
		found := false
		for _, w := range want {
			found = found || h == w
		}
		if !found {
			pt.Behind++
			behind[p.Namespace] = true
		}
	}
	for ns := range behind {
		pt.Namespaces = append(pt.Namespaces, ns)
	}
	sort.Strings(pt.Namespaces)
	return pt, nil
}

// AnchorWaiting reads, for `meshctl status`, a trust-anchor rotation that
// waits for meshed pods to restart onto the two-anchor bundle: the pods
// still behind, or nil when no rotation waits.
func AnchorWaiting(ctx context.Context, c *apply.Client) (*PodTrust, error) {
	data, err := c.ReadSecret(ctx, CertificatesSecret)
	if err != nil || data == nil {
		return nil, err
	}
	b, err := certs.FromData(data)
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", c.Namespace(), CertificatesSecret, err)
	}
	if b.RotationStep() != certs.AnchorBundled {
		return nil, nil
	}
	pt, err := podTrust(ctx, c, generators.TrustRootHash(b.TrustAnchorsPEM))
	if err != nil {
		return nil, err
	}
	return &pt, nil
}
