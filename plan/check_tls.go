package plan

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kschema "k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/generators"
)

func identityChecks() []checkDef {
	id := func(anchor, name string, run func(ctx context.Context, e *checkEnv) verdict) checkDef {
		return checkDef{category: "linkerd-identity", id: anchor, name: name, upstream: true, run: run}
	}
	return []checkDef{
		id("l5d-identity-cert-config-valid", "certificate config is valid", func(ctx context.Context, e *checkEnv) verdict {
			b, err := e.liveBundle(ctx)
			switch {
			case err != nil:
				return fail(err.Error(), "meshctl apply writes the certificates mesh.cue asks for")
			case b == nil || b.TrustAnchorsPEM == "" || b.Issuer == nil:
				return fail("the trust roots or the issuer are missing", "meshctl apply writes the certificates mesh.cue asks for")
			}
			return pass("")
		}),
		id("l5d-identity-trustAnchors-use-supported-crypto", "trust anchors are using supported crypto algorithm", anchorsCheck(func(c *x509.Certificate, _ *checkEnv) (CheckStatus, string) {
			return algorithmProblem(c)
		})),
		id("l5d-identity-trustAnchors-are-time-valid", "trust anchors are within their validity period", anchorsCheck(timeValid)),
		id("l5d-identity-trustAnchors-not-expiring-soon", "trust anchors are valid for at least 60 days", checkAnchorsExpiry),
		id("l5d-identity-issuer-cert-uses-supported-crypto", "issuer cert is using supported crypto algorithm", issuerCheck(func(c *x509.Certificate, _ []*x509.Certificate, _ *checkEnv) (CheckStatus, string) {
			return algorithmProblem(c)
		})),
		id("l5d-identity-issuer-cert-is-time-valid", "issuer cert is within its validity period", issuerCheck(func(c *x509.Certificate, _ []*x509.Certificate, e *checkEnv) (CheckStatus, string) {
			return timeValid(c, e)
		})),
		id("l5d-identity-issuer-cert-not-expiring-soon", "issuer cert is valid for at least 60 days", checkIssuerExpiry),
		id("l5d-identity-issuer-cert-issued-by-trust-anchor", "issuer cert is issued by the trust anchor", issuerCheck(func(c *x509.Certificate, roots []*x509.Certificate, e *checkEnv) (CheckStatus, string) {
			pool := x509.NewCertPool()
			for _, r := range roots {
				pool.AddCert(r)
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: e.now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				return CheckError, fmt.Sprintf("the issuer %s does not chain to the trust roots: %v", c.Subject.CommonName, err)
			}
			return CheckOK, ""
		})),
	}
}

// algorithmProblem says why c's key or signature is not one Linkerd's
// identity accepts: ECDSA P-256, or RSA of 2048 or 4096 bits, signed with
// SHA-256.
func algorithmProblem(c *x509.Certificate) (CheckStatus, string) {
	switch k := c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return CheckError, fmt.Sprintf("%s has an ECDSA key on %s; Linkerd needs P-256", c.Subject.CommonName, k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n != 2048 && n != 4096 {
			return CheckError, fmt.Sprintf("%s has a %d-bit RSA key; Linkerd needs 2048 or 4096 bits", c.Subject.CommonName, n)
		}
	default:
		return CheckError, fmt.Sprintf("%s has a %s key; Linkerd needs ECDSA P-256 or RSA", c.Subject.CommonName, c.PublicKeyAlgorithm)
	}
	if a := c.SignatureAlgorithm; a != x509.ECDSAWithSHA256 && a != x509.SHA256WithRSA {
		return CheckError, fmt.Sprintf("%s is signed with %s; Linkerd needs ECDSA or RSA with SHA-256", c.Subject.CommonName, a)
	}
	return CheckOK, ""
}

func timeValid(c *x509.Certificate, e *checkEnv) (CheckStatus, string) {
	switch {
	case e.now.Before(c.NotBefore):
		return CheckError, fmt.Sprintf("%s is not valid before %s", c.Subject.CommonName, stamp(c.NotBefore))
	case e.now.After(c.NotAfter):
		return CheckError, fmt.Sprintf("%s expired %s", c.Subject.CommonName, stamp(c.NotAfter))
	}
	return CheckOK, ""
}

const certNext = "meshctl status lists the certificates; meshctl diff shows what apply would write"

// anchorsCheck runs one as a check of every trust anchor.
func anchorsCheck(one func(c *x509.Certificate, e *checkEnv) (CheckStatus, string)) func(ctx context.Context, e *checkEnv) verdict {
	return func(ctx context.Context, e *checkEnv) verdict {
		b, err := e.liveBundle(ctx)
		if err != nil {
			return unread(err)
		}
		if b == nil || b.TrustAnchorsPEM == "" {
			return fail("no trust roots: linkerd/linkerd-identity-trust-roots is missing or empty", "meshctl apply")
		}
		v := verdict{status: CheckOK}
		var msgs []string
		for _, c := range pemCerts(b.TrustAnchorsPEM) {
			if st, msg := one(c, e); st != CheckOK {
				v.status = worse(v.status, st)
				msgs = append(msgs, msg)
			}
		}
		if v.status != CheckOK {
			v.msg, v.next = strings.Join(msgs, "; "), "rotate the trust anchor (meshctl rotate trust-anchor, when meshctl made it)"
		}
		return v
	}
}

// issuerCheck runs one as a check of the issuer, with the trust roots.
func issuerCheck(one func(c *x509.Certificate, roots []*x509.Certificate, e *checkEnv) (CheckStatus, string)) func(ctx context.Context, e *checkEnv) verdict {
	return func(ctx context.Context, e *checkEnv) verdict {
		b, err := e.liveBundle(ctx)
		if err != nil {
			return unread(err)
		}
		if b == nil || b.Issuer == nil {
			return fail("no issuer: linkerd/linkerd-identity-issuer is missing", "meshctl apply")
		}
		c := pemCerts(b.Issuer.CertPEM)
		if len(c) == 0 {
			return fail("linkerd/linkerd-identity-issuer holds no certificate", "meshctl apply")
		}
		if st, msg := one(c[0], pemCerts(b.TrustAnchorsPEM), e); st != CheckOK {
			return verdict{status: st, msg: msg, next: certNext}
		}
		return pass("")
	}
}

func worse(a, b CheckStatus) CheckStatus {
	if a == CheckError || b == CheckError {
		return CheckError
	}
	if a == CheckWarning || b == CheckWarning {
		return CheckWarning
	}
	return CheckOK
}

// certNotice is what meshctl knows of one certificate's expiry, in place
// of upstream's 60-day warning: that the rotation policy has it due (the
// next apply replaces it), when the policy will replace it, or, for what
// meshctl cannot rotate and that expires within 60 days, who must.
func (e *checkEnv) certNotice(ctx context.Context, kind certs.Kind, name string) verdict {
	p, err := e.prepared(ctx)
	if err != nil {
		return unread(err)
	}
	for _, r := range p.report.Rotated {
		if r.Kind == kind && (kind != certs.KindWebhook || r.Name == name) && (r.Cluster == "" || r.Cluster == e.name) {
			return warn(fmt.Sprintf("%s expires %s: the rotation policy has it due, and the next meshctl apply (or the reconcile loop) replaces it", CertificateID(kind, name, ""), stamp(r.Expiring)),
				"meshctl apply (meshctl diff shows the new certificate's expiry)")
		}
	}
	var msgs []string
	status := CheckOK
	for _, s := range p.report.Certificates {
		if s.Kind != kind || (name != "" && s.Name != name) || s.Err != "" {
			continue
		}
		// Within 60 days is upstream's warning; meshctl's is only for what
		// its policy will not replace.
		at := e.rotatesAt(ctx, s)
		if s.Expiring && at.IsZero() {
			status = CheckWarning
			continue
		}
		msg := fmt.Sprintf("%s expires %s", CertificateID(kind, s.Name, s.Subject), stamp(s.NotAfter))
		switch {
		case !at.IsZero():
			msg += "; the rotation policy replaces it from " + stamp(at)
		case s.Kind == certs.KindTrustAnchor && s.KeyCluster != "":
			msg += "; its key is in cluster " + s.KeyCluster + " (meshctl rotate trust-anchor rotates it in every cluster)"
		case s.Kind == certs.KindTrustAnchor && s.CanRotate:
			msg += "; meshctl replaces it only when asked (meshctl rotate trust-anchor)"
		default:
			msg += "; meshctl cannot replace it: the tool that made it must"
		}
		msgs = append(msgs, msg)
	}
	if status == CheckWarning {
		ws := certificateWarnings(e.m, e.mem.Client, filterKind(p.report.Certificates, kind, name), nil)
		if len(ws) == 0 {
			ws = []string{fmt.Sprintf("%s expires within %s", CertificateID(kind, name, ""), certs.FormatLeft(ExpiryWarning))}
		}
		return warn(strings.Join(ws, "; "), "rotate it before it expires")
	}
	return pass(strings.Join(msgs, "; "))
}

// rotatesAt is when the rotation policy replaces the issuer or a webhook
// pair (s), zero when meshctl does not (an anchor, or what it cannot sign).
func (e *checkEnv) rotatesAt(ctx context.Context, s certs.Status) time.Time {
	b, err := e.liveBundle(ctx)
	if err != nil || b == nil || !s.CanRotate {
		return time.Time{}
	}
	pemText := ""
	switch s.Kind {
	case certs.KindIssuer:
		if b.Issuer != nil && (meshctlSignsIssuer(e.m) || s.KeyCluster != "") {
			pemText = b.Issuer.CertPEM
		}
	case certs.KindWebhook:
		pemText = b.Webhooks[s.Name].CertPEM
	}
	c := pemCerts(pemText)
	before, err := rotateBefore(e.m, generators.CertOptions(e.m, e.now))
	if len(c) == 0 || err != nil {
		return time.Time{}
	}
	return c[0].NotAfter.Add(-certs.RotateThreshold(certs.Lifetime(c[0]), before))
}

func filterKind(sts []certs.Status, kind certs.Kind, name string) []certs.Status {
	var out []certs.Status
	for _, s := range sts {
		if s.Kind == kind && (name == "" || s.Name == name) {
			out = append(out, s)
		}
	}
	return out
}

func checkAnchorsExpiry(ctx context.Context, e *checkEnv) verdict {
	return e.certNotice(ctx, certs.KindTrustAnchor, "")
}

func checkIssuerExpiry(ctx context.Context, e *checkEnv) verdict {
	return e.certNotice(ctx, certs.KindIssuer, "")
}

// servingTLS is a webhook or APIService and the serving pair behind it.
type servingTLS struct {
	short  string // upstream's name for it in check names
	id     string // hint anchor prefix
	gvk    kschema.GroupVersionKind
	object string // the webhook configuration or APIService
	svc    string // the Service, whose <svc>-k8s-tls Secret holds the pair
	// valid and expiry are upstream's check names, "" for a pair upstream
	// does not check.
	valid, expiry string
}

var (
	gvkMWC        = kschema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingWebhookConfiguration"}
	gvkVWC        = kschema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingWebhookConfiguration"}
	gvkAPIService = kschema.GroupVersionKind{Group: "apiregistration.k8s.io", Version: "v1", Kind: "APIService"}
)

var servingPairs = map[string][]servingTLS{
	linkerdNamespace: {
		{"proxy-injector", "l5d-proxy-injector-webhook-cert", gvkMWC, "linkerd-proxy-injector-webhook-config", "linkerd-proxy-injector", "proxy-injector webhook has valid cert", "proxy-injector cert is valid for at least 60 days"},
		{"sp-validator", "l5d-sp-validator-webhook-cert", gvkVWC, "linkerd-sp-validator-webhook-config", "linkerd-sp-validator", "sp-validator webhook has valid cert", "sp-validator cert is valid for at least 60 days"},
		{"policy-validator", "l5d-policy-validator-webhook-cert", gvkVWC, "linkerd-policy-validator-webhook-config", "linkerd-policy-validator", "policy-validator webhook has valid cert", "policy-validator cert is valid for at least 60 days"},
	},
	vizNamespace: {
		{"tap", "l5d-tap-cert", gvkAPIService, "v1alpha1.tap.linkerd.io", "tap", "tap API server has valid cert", "tap API server cert is valid for at least 60 days"},
		{"tap-injector", "meshctl-tap-injector-webhook-cert", gvkMWC, "linkerd-tap-injector-webhook-config", "tap-injector", "", ""},
	},
}

// webhookChecks are the serving-certificate checks of namespace's
// webhooks and APIServices: each pair valid, for the Service's name,
// signed by the caBundle the API server uses to call it; and when the
// policy replaces it.
func webhookChecks(category, namespace string) []checkDef {
	var out []checkDef
	for _, s := range servingPairs[namespace] {
		valid, expiry, upstream := s.valid, s.expiry, true
		if valid == "" {
			valid, expiry, upstream = s.short+" webhook has valid cert", s.short+" cert is valid for at least 60 days", false
		}
		out = append(out,
			checkDef{category: category, id: s.id + "-valid", name: valid, upstream: upstream, run: s.checkValid(namespace)},
			checkDef{category: category, id: s.id + "-not-expiring-soon", name: expiry, upstream: upstream, run: func(ctx context.Context, e *checkEnv) verdict {
				return e.certNotice(ctx, certs.KindWebhook, s.svc)
			}},
		)
	}
	return out
}

func (s servingTLS) checkValid(namespace string) func(ctx context.Context, e *checkEnv) verdict {
	return func(ctx context.Context, e *checkEnv) verdict {
		obj := &unstructured.Unstructured{}
		obj.SetGroupVersionKind(s.gvk)
		obj.SetName(s.object)
		live, err := e.live(ctx, obj)
		if err != nil {
			return unread(err)
		}
		if live == nil {
			return fail(fmt.Sprintf("%s/%s is missing", s.gvk.Kind, s.object), "meshctl apply")
		}
		bundles := caBundles(live)
		if len(bundles) == 0 {
			return fail(fmt.Sprintf("%s/%s has no caBundle", s.gvk.Kind, s.object), "meshctl apply writes it")
		}
		sec := &corev1.Secret{}
		name := s.svc + "-k8s-tls"
		if err := e.mem.Client.Kube().Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, sec); err != nil {
			if client.IgnoreNotFound(err) == nil {
				return fail(fmt.Sprintf("secret %s/%s is missing", namespace, name), "meshctl apply")
			}
			return unread(err)
		}
		leaf := pemCerts(string(sec.Data["tls.crt"]))
		if len(leaf) == 0 {
			return fail(fmt.Sprintf("secret %s/%s holds no certificate", namespace, name), "meshctl apply")
		}
		dns := fmt.Sprintf("%s.%s.svc", s.svc, namespace)
		for _, b := range bundles {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(b) {
				return fail(fmt.Sprintf("%s/%s: its caBundle holds no certificate", s.gvk.Kind, s.object), "meshctl apply writes it")
			}
			if _, err := leaf[0].Verify(x509.VerifyOptions{Roots: pool, DNSName: dns, CurrentTime: e.now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				return fail(fmt.Sprintf("the certificate %s/%s serves is not valid for %s under the caBundle of %s/%s: %v; the API server's calls to it fail", namespace, name, dns, s.gvk.Kind, s.object, err),
					"meshctl apply writes the caBundle and the pair that belong together (meshctl diff shows which changed)")
			}
		}
		return pass("")
	}
}

// caBundles are the caBundles of a webhook configuration's webhooks, or an
// APIService's, decoded.
func caBundles(u *unstructured.Unstructured) [][]byte {
	var raw []string
	if u.GetKind() == "APIService" {
		if s, ok, _ := unstructured.NestedString(u.Object, "spec", "caBundle"); ok && s != "" {
			raw = append(raw, s)
		}
	} else {
		hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
		for _, h := range hooks {
			hm, _ := h.(map[string]any)
			if s, ok, _ := unstructured.NestedString(hm, "clientConfig", "caBundle"); ok && s != "" {
				raw = append(raw, s)
			}
		}
	}
	var out [][]byte
	for _, s := range raw {
		if b, err := base64.StdEncoding.DecodeString(s); err == nil {
			out = append(out, b)
		}
	}
	return out
}
