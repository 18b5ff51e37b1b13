package plan

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/schema"
)

// rotateBefore reads controlPlane.identity.issuer.rotateBefore: 0 for the
// default. A value as long as a new issuer's lifetime would rotate it on
// every run, so it is refused.
func rotateBefore(m *schema.Mesh, o certs.Options) (time.Duration, error) {
	s := m.ControlPlane.Identity.Issuer.RotateBefore
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("controlPlane.identity.issuer.rotateBefore: %w", err)
	}
	life := certs.IssuerLifetime
	if o.IssuerLifetime > 0 {
		life = o.IssuerLifetime
	}
	if d >= life {
		return 0, fmt.Errorf("controlPlane.identity.issuer.rotateBefore %s is not shorter than the issuer's lifetime (%s): every apply would rotate it", s, life)
	}
	return d, nil
}

// meshctlSignsIssuer: mesh.cue has meshctl make the anchor and the issuer,
// so meshctl re-signs the issuer when it holds the anchor's key.
func meshctlSignsIssuer(m *schema.Mesh) bool {
	id := m.ControlPlane.Identity
	return id.TrustAnchor.Source == schema.SourceGenerated && id.Issuer.Source == schema.SourceGenerated
}

// rotate replaces the certificates of b that the rotation policy says are
// due: the issuer, re-signed by the same anchor when meshctl holds its
// key, and the webhook serving pairs. Outside a dry run it stores them in
// stored, at the version it was read at; in a dry run they live in memory
// only, so that diff shows what apply would do. note says what rotated.
func rotate(ctx context.Context, m *schema.Mesh, c Cluster, stored *apply.StoredSecret, b *certs.Bundle, o certs.Options) (note string, rotated []certs.Rotation, err error) {
	before, err := rotateBefore(m, o)
	if err != nil {
		return "", nil, err
	}
	rs, err := b.Rotate(o, before, meshctlSignsIssuer(m))
	if err != nil || len(rs) == 0 {
		return "", nil, err
	}
	if !c.DryRun {
		if err := c.Client.UpdateSecret(ctx, stored, b.Data()); err != nil {
			return "", nil, err
		}
	}
	lines := make([]string, 0, len(rs))
	for _, r := range rs {
		switch r.Kind {
		case certs.KindIssuer:
			lines = append(lines, fmt.Sprintf("rotated the issuer %s, expiring %s (in %s); signed by the same anchor, so workloads keep trusting it; the new one expires %s",
				r.Name, stamp(r.Expiring), certs.FormatLeft(r.Expiring.Sub(o.Now)), stamp(r.NotAfter)))
		default:
			lines = append(lines, fmt.Sprintf("rotated the serving certificate of webhook %s, expiring %s (in %s); its caBundle follows; the new one expires %s",
				r.Name, stamp(r.Expiring), certs.FormatLeft(r.Expiring.Sub(o.Now)), stamp(r.NotAfter)))
		}
	}
	where := fmt.Sprintf("; stored in secret %s/%s", c.Client.Namespace(), CertificatesSecret)
	if c.DryRun {
		where = "; in memory only (dry run)"
	}
	return strings.Join(lines, "\n") + where, rs, nil
}

// stamp is how a certificate's expiry is printed.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// CertificateWarnings says which certificates meshctl cannot rotate are
// within certs.WarnBefore of expiry: the issuer, when meshctl holds no key
// for the anchor that signs it (an adopted install, or an anchor from
// elsewhere), and the trust anchors whose key it does not hold. Each says
// what to do. A cluster it cannot read is a warning too.
func CertificateWarnings(ctx context.Context, m *schema.Mesh, c *apply.Client) []string {
	b, err := liveBundle(ctx, c)
	return certificateWarnings(m, c, liveStatus(b, time.Now()), err)
}

// liveStatus is b's certificates at now; none when b is nil.
func liveStatus(b *certs.Bundle, now time.Time) []certs.Status {
	if b == nil {
		return nil
	}
	return b.Status(now)
}

// certificateWarnings is CertificateWarnings on certificates read before
// (readErr, when they could not be).
func certificateWarnings(m *schema.Mesh, c *apply.Client, live []certs.Status, readErr error) []string {
	if readErr != nil {
		return []string{fmt.Sprintf("certificates: %v, so their expiry was not checked", readErr)}
	}
	id := m.ControlPlane.Identity
	var out []string
	for _, s := range live {
		if !s.Expiring || s.Err != "" {
			continue
		}
		when := fmt.Sprintf("expires %s (in %s)", stamp(s.NotAfter), certs.FormatLeft(s.TimeLeft))
		if s.TimeLeft <= 0 {
			when = fmt.Sprintf("expired %s", stamp(s.NotAfter))
		}
		switch {
		case s.Kind == certs.KindTrustAnchor && s.CanRotate:
			out = append(out, fmt.Sprintf("the trust anchor %s %s: rotate it with meshctl rotate trust-anchor (four steps, each applied and shown by diff first), or mTLS between meshed pods fails when it expires", s.Subject, when))
		case s.Kind == certs.KindTrustAnchor && !s.CanRotate:
			out = append(out, fmt.Sprintf("the trust anchor %s %s, and meshctl holds no key for it: rotate it with the tool that made it (publish a bundle of the old and new anchors first, then a new issuer), or mTLS between meshed pods fails when it expires", s.Subject, when))
		case s.Kind == certs.KindIssuer && id.Issuer.Source != schema.SourceCertManager && !(s.CanRotate && meshctlSignsIssuer(m)):
			out = append(out, fmt.Sprintf("the issuer %s %s, and meshctl cannot re-sign it: it holds no key for the anchor; %s", s.Subject, when, issuerAdvice(m, c)))
		}
	}
	return out
}

// issuerAdvice says how to rotate an issuer meshctl cannot re-sign.
func issuerAdvice(m *schema.Mesh, c *apply.Client) string {
	if m.ControlPlane.Identity.Issuer.Source == schema.SourceSecret {
		return fmt.Sprintf("rotate it with the tool that made it (linkerd, step, Helm) under the same anchor, in %s/%s", linkerdNamespace, issuerName)
	}
	return fmt.Sprintf("rotate it with the tool that made it (linkerd, step, Helm) under the same anchor and put the new pair in secret %[1]s/%[2]s (issuer.crt, issuer.key), which meshctl renders %[3]s/%[4]s from; or give meshctl the anchor (trust-anchor.crt and trust-anchor.key in %[1]s/%[2]s) and it re-signs the issuer itself",
		c.Namespace(), CertificatesSecret, linkerdNamespace, issuerName)
}

const linkerdNamespace = "linkerd"

// liveBundle is the certificate material the mesh runs on: what meshctl
// keeps in CertificatesSecret, with the trust anchors and the issuer read
// from linkerd's own objects where those exist (they differ when mesh.cue
// takes them from elsewhere). The issuer may lack its key. It is nil when
// the cluster holds neither.
func liveBundle(ctx context.Context, c *apply.Client) (*certs.Bundle, error) {
	b := &certs.Bundle{Webhooks: map[string]certs.KeyPair{}}
	data, err := c.ReadSecret(ctx, CertificatesSecret)
	if err != nil {
		return nil, err
	}
	if data != nil {
		if b, err = certs.FromData(data); err != nil {
			return nil, fmt.Errorf("secret %s/%s: %w", c.Namespace(), CertificatesSecret, err)
		}
	}
	kube := c.Kube()
	roots := &corev1.ConfigMap{}
	switch err := kube.Get(ctx, client.ObjectKey{Namespace: linkerdNamespace, Name: trustRootsName}, roots); {
	case err == nil && roots.Data[trustRootsKey] != "":
		b.TrustAnchorsPEM = roots.Data[trustRootsKey]
	case err != nil && !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading %s/%s: %w", linkerdNamespace, trustRootsName, err)
	}
	issuer := &corev1.Secret{}
	switch err := kube.Get(ctx, client.ObjectKey{Namespace: linkerdNamespace, Name: issuerName}, issuer); {
	case err == nil:
		crt := issuer.Data["crt.pem"]
		if len(crt) == 0 {
			crt = issuer.Data["tls.crt"]
		}
		if len(crt) > 0 && (b.Issuer == nil || b.Issuer.CertPEM != string(crt)) {
			b.Issuer = &certs.KeyPair{CertPEM: string(crt)}
		}
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading %s/%s: %w", linkerdNamespace, issuerName, err)
	}
	if data == nil && b.TrustAnchorsPEM == "" && b.Issuer == nil {
		return nil, nil
	}
	return b, nil
}
