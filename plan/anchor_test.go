package plan_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

// anchorEnv is a cluster, meshctl's client of it, and a namespace for pods
// that stand in for meshed workloads (no scheduler: they stay Pending).
type anchorEnv struct {
	t       *testing.T
	ctx     context.Context
	cluster *testcluster.Cluster
	c       *apply.Client
}

// stored reads meshctl's certificates and the Secret's resourceVersion.
func (e *anchorEnv) stored() (*certs.Bundle, string) {
	e.t.Helper()
	s, rv := storedVersion(e.t, e.ctx, e.cluster)
	b, err := certs.FromData(s.Data)
	if err != nil {
		e.t.Fatal(err)
	}
	return b, rv
}

// step is one run of `meshctl rotate trust-anchor`: first a dry run, whose
// diff must carry meaning and write nothing, then the step, applied. It
// returns the refusal of either.
func (e *anchorEnv) step(m *schema.Mesh, force bool, meaning string) (plan.AnchorResult, error) {
	t := e.t
	t.Helper()
	before, rv := e.stored()
	dry := &plan.AnchorRotation{Force: force}
	set, notes, err := plan.ForCluster(e.ctx, m, plan.Cluster{Client: e.c, DryRun: true, Anchor: dry}, "test")
	if _, after := e.stored(); after != rv {
		t.Fatal("a dry run updated the certificates")
	}
	if err != nil {
		return dry.Result, err
	}
	d, err := e.c.Diff(e.ctx, set, apply.DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	meanings := plan.Meanings(nil, m, d)
	if len(meanings) == 0 || !strings.HasPrefix(meanings[0], meaning) {
		t.Errorf("the dry run of step %s reads %q, want first %q", dry.Result.Step, meanings, meaning)
	}
	for _, mm := range meanings {
		if strings.HasPrefix(mm, "trust anchor changes: ") {
			t.Errorf("step %s reads as a replacement: %q", dry.Result.Step, mm)
		}
	}
	var text bytes.Buffer
	d.WriteText(&text)
	noKeys(t, "the diff", text.String()+strings.Join(meanings, "\n")+strings.Join(notes, "\n")+dry.Result.Note, before)
	noAnchorKeys(t, text.String(), before)

	r := &plan.AnchorRotation{Force: force}
	set, notes, err = plan.ForCluster(e.ctx, m, plan.Cluster{Client: e.c, Anchor: r}, "test")
	if err != nil {
		if _, after := e.stored(); after != rv {
			t.Error("a refused step updated the certificates")
		}
		return r.Result, err
	}
	noKeys(t, "the notes", strings.Join(notes, "\n"), before)
	if r.Result.Step != dry.Result.Step {
		t.Errorf("the dry run took step %s, the run %s", dry.Result.Step, r.Result.Step)
	}
	if _, err := e.c.Apply(e.ctx, set, apply.Options{}); err != nil {
		t.Fatal(err)
	}
	return r.Result, nil
}

// noAnchorKeys fails when s holds one of b's anchor keys.
func noAnchorKeys(t *testing.T, s string, b *certs.Bundle) {
	t.Helper()
	for _, kp := range []*certs.KeyPair{b.Anchor, next(b)} {
		if kp != nil && strings.Contains(s, strings.TrimSpace(kp.KeyPEM)) {
			t.Error("the output holds a trust anchor's key")
		}
	}
}

func next(b *certs.Bundle) *certs.KeyPair {
	if b.Rotation == nil {
		return nil
	}
	return b.Rotation.Next
}

// checkTrust checks on the server that the trust roots hold exactly roots,
// in order, that the control plane's pods are to carry their hash, and
// that the issuer is signed by signer (and valid now, unless expired is
// allowed).
func (e *anchorEnv) checkTrust(what string, roots []*x509.Certificate, signer *x509.Certificate, valid bool) {
	t := e.t
	t.Helper()
	cm, err := e.cluster.Client.CoreV1().ConfigMaps("linkerd").Get(e.ctx, "linkerd-identity-trust-roots", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pemRoots := cm.Data["ca-bundle.crt"]
	var got []*x509.Certificate
	for rest := []byte(pemRoots); ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		got = append(got, firstCert(t, pem.EncodeToMemory(block)))
	}
	if len(got) != len(roots) {
		t.Fatalf("%s: the trust roots hold %d anchors, want %d", what, len(got), len(roots))
	}
	for i := range roots {
		if !got[i].Equal(roots[i]) {
			t.Errorf("%s: trust root %d is not the expected anchor", what, i)
		}
	}
	dep, err := e.cluster.Client.AppsV1().Deployments("linkerd").Get(e.ctx, "linkerd-destination", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := dep.Spec.Template.Annotations[generators.AnnotationTrustRoot]; h != generators.TrustRootHash(pemRoots) {
		t.Errorf("%s: linkerd-destination's pods are to carry %s %q, not the trust roots' hash", what, generators.AnnotationTrustRoot, h)
	}
	s, err := e.cluster.Client.CoreV1().Secrets("linkerd").Get(e.ctx, "linkerd-identity-issuer", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	issuer := firstCert(t, s.Data["crt.pem"])
	if err := issuer.CheckSignatureFrom(signer); err != nil {
		t.Errorf("%s: the issuer is not signed by the expected anchor: %v", what, err)
	}
	if valid {
		pool := x509.NewCertPool()
		pool.AddCert(signer)
		if _, err := issuer.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s: the issuer does not verify against the expected anchor: %v", what, err)
		}
	}
}

// meshedPod creates or updates a Pod in ns that carries hash as its trust
// roots' hash.
func (e *anchorEnv) meshedPod(ns, name, hash string) {
	t := e.t
	t.Helper()
	pods := e.cluster.Client.CoreV1().Pods(ns)
	p, err := pods.Get(e.ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := e.cluster.Client.CoreV1().Namespaces().Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		if _, err := e.cluster.Client.CoreV1().ServiceAccounts(ns).Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		if _, err := pods.Create(e.ctx, pod(name, map[string]string{generators.AnnotationTrustRoot: hash}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	p.Annotations[generators.AnnotationTrustRoot] = hash
	if _, err := pods.Update(e.ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func wantStep(t *testing.T, r plan.AnchorResult, err error, step string) {
	t.Helper()
	if err != nil {
		t.Fatalf("step %s: %v", step, err)
	}
	if r.Step != step {
		t.Fatalf("took step %q, want %q", r.Step, step)
	}
}

func wantRefused(t *testing.T, err error, text string) {
	t.Helper()
	if !errors.Is(err, plan.ErrAnchorRefused) || !strings.Contains(err.Error(), text) {
		t.Fatalf("got %v, want a refusal saying %q", err, text)
	}
}

// TestAnchorRotation takes a generated anchor through the four steps of
// `meshctl rotate trust-anchor`, each applied, with a meshed pod that
// holds the re-sign step back until it carries the bundle's hash, and the
// drop step until the issuance lifetime has passed.
func TestAnchorRotation(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, err := apply.New(cluster.Config, "")
	if err != nil {
		t.Fatal(err)
	}
	e := &anchorEnv{t: t, ctx: ctx, cluster: cluster, c: c}
	m := mustLoadSource(t, "mesh.cue", `controlPlane: identity: issuanceLifetime: "1s"`)
	day := mustLoadSource(t, "mesh.cue", "{}") // issuanceLifetime 24h
	set, _, err := plan.ForCluster(ctx, m, plan.Cluster{Client: c}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, set, apply.Options{Prune: true}); err != nil {
		t.Fatal(err)
	}
	b0, _ := e.stored()
	old := firstCert(t, []byte(b0.Anchor.CertPEM))
	e.checkTrust("before", []*x509.Certificate{old}, old, true)
	e.meshedPod("anchor-pods", "app", generators.TrustRootHash(b0.TrustAnchorsPEM))

	// 1. bundle
	r, err := e.step(m, false, "trust anchor added: the trust roots now hold the old and the new anchor; pods trust both as they restart")
	wantStep(t, r, err, plan.StepBundle)
	b1, _ := e.stored()
	if b1.RotationStep() != certs.AnchorBundled || b1.Rotation.Next == nil {
		t.Fatalf("stored step %q", b1.RotationStep())
	}
	nu := firstCert(t, []byte(b1.Rotation.Next.CertPEM))
	e.checkTrust("bundle", []*x509.Certificate{old, nu}, old, true)

	// 2. wait: the pod still trusts only the old anchor.
	_, err = e.step(m, false, "")
	wantRefused(t, err, "1 of 1 meshed pods still trust only the old anchor: restart them (kubectl rollout restart deployment,statefulset,daemonset -n anchor-pods)")
	st, err := plan.ReadStatus(ctx, c, time.Now())
	if err != nil || st.AnchorRotation == nil || st.AnchorRotation.Behind != 1 || st.AnchorRotation.Meshed != 1 {
		t.Errorf("status reads the rotation as %+v (%v)", st.AnchorRotation, err)
	}

	// 3. re-sign, once the pod carries the bundle's hash.
	e.meshedPod("anchor-pods", "app", generators.TrustRootHash(b1.TrustAnchorsPEM))
	r, err = e.step(m, false, "issuer re-signed by the new trust anchor")
	wantStep(t, r, err, plan.StepResign)
	if r.Pods.Meshed != 1 || r.Pods.Behind != 0 {
		t.Errorf("re-sign counted %+v", r.Pods)
	}
	b3, _ := e.stored()
	if b3.RotationStep() != certs.AnchorResigned || time.Since(b3.Rotation.ResignedAt) > time.Minute || !firstCert(t, []byte(b3.Anchor.CertPEM)).Equal(nu) {
		t.Fatalf("stored step %q at %s", b3.RotationStep(), b3.Rotation.ResignedAt)
	}
	e.checkTrust("re-sign", []*x509.Certificate{old, nu}, nu, true)
	if st, _ := plan.ReadStatus(ctx, c, time.Now()); st == nil || st.AnchorRotation != nil {
		t.Error("status still reads a rotation waiting for pods")
	}

	// 4. drop: not within the issuance lifetime, nor while a pod trusts
	// only the old anchor.
	_, err = e.step(day, false, "")
	wantRefused(t, err, "the issuance lifetime (24h0m0s) has not passed since the issuer was re-signed at "+b3.Rotation.ResignedAt.Format(time.RFC3339))
	e.meshedPod("anchor-pods", "app", generators.TrustRootHash(b0.TrustAnchorsPEM))
	time.Sleep(time.Second)
	_, err = e.step(m, false, "")
	wantRefused(t, err, "1 of 1 meshed pods trust neither the two-anchor bundle nor the new anchor")
	if strings.Contains(err.Error(), "issuance lifetime") {
		t.Errorf("the 1s issuance lifetime has passed, yet: %v", err)
	}
	e.meshedPod("anchor-pods", "app", generators.TrustRootHash(b3.Anchor.CertPEM))
	r, err = e.step(m, false, "old trust anchor dropped")
	wantStep(t, r, err, plan.StepDrop)
	b4, _ := e.stored()
	if b4.RotationStep() != "" {
		t.Fatalf("stored step %q after the drop", b4.RotationStep())
	}
	e.checkTrust("drop", []*x509.Certificate{nu}, nu, true)
}

// TestAnchorRotationExpired: an anchor that has expired (and its issuer
// with it) is bundled, replaced and dropped all the same, which upstream's
// procedure cannot do; --force lifts the issuance-lifetime guard, and says
// so.
func TestAnchorRotationExpired(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	m := mustLoadSource(t, "mesh.cue", "{}")
	opts := generators.CertOptions(m, time.Now().Add(-2*time.Hour))
	opts.AnchorLifetime = time.Hour
	b0, err := certs.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	old := firstCert(t, []byte(b0.Anchor.CertPEM))
	if time.Now().Before(old.NotAfter) {
		t.Fatalf("the anchor is valid until %s", old.NotAfter)
	}
	storeCertificates(t, ctx, cluster, b0)
	c, err := apply.New(cluster.Config, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, render(t, m, b0), apply.Options{Prune: true}); err != nil {
		t.Fatal(err)
	}
	e := &anchorEnv{t: t, ctx: ctx, cluster: cluster, c: c}

	r, err := e.step(m, false, "trust anchor added: ")
	wantStep(t, r, err, plan.StepBundle)
	b1, _ := e.stored()
	nu := firstCert(t, []byte(b1.Rotation.Next.CertPEM))
	e.checkTrust("bundle", []*x509.Certificate{old, nu}, old, false)

	r, err = e.step(m, false, "issuer re-signed by the new trust anchor")
	wantStep(t, r, err, plan.StepResign)
	e.checkTrust("re-sign", []*x509.Certificate{old, nu}, nu, true)

	_, err = e.step(m, false, "")
	wantRefused(t, err, "the issuance lifetime (24h0m0s) has not passed")
	r, err = e.step(m, true, "old trust anchor dropped")
	wantStep(t, r, err, plan.StepDrop)
	if len(r.Forced) != 1 || !strings.Contains(r.Forced[0], "the issuance lifetime (24h0m0s) has not passed") {
		t.Errorf("--force says %q", r.Forced)
	}
	e.checkTrust("drop", []*x509.Certificate{nu}, nu, true)
}

// TestAnchorRotationNeedsKey: an adopted anchor, whose key meshctl does
// not hold, is not rotated, and the refusal says what to do.
func TestAnchorRotationNeedsKey(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := mustLoadSource(t, "mesh.cue", "{}")
	b, err := certs.Generate(generators.CertOptions(m, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	b.Anchor = nil
	storeCertificates(t, ctx, cluster, b)
	c, err := apply.New(cluster.Config, "")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = plan.ForCluster(ctx, m, plan.Cluster{Client: c, DryRun: true, Anchor: &plan.AnchorRotation{}}, "test")
	if !errors.Is(err, certs.ErrNoAnchorKey) || errors.Is(err, plan.ErrAnchorRefused) || !strings.Contains(err.Error(), "rotate this one with the tool that made it") {
		t.Errorf("got %v", err)
	}
}

// TestAnchorStepMeanings: each step of a rotation reads as itself in a
// diff, first; a replacement of the anchor still reads as one.
func TestAnchorStepMeanings(t *testing.T) {
	m := mustLoadSource(t, "mesh.cue", "{}")
	opts := generators.CertOptions(m, time.Now())
	b0, err := certs.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	b1 := *b0
	if err := b1.BundleAnchor(opts); err != nil {
		t.Fatal(err)
	}
	b3 := b1
	if err := b3.ResignIssuer(opts); err != nil {
		t.Fatal(err)
	}
	b4 := b3
	if err := b4.DropOldAnchor(); err != nil {
		t.Fatal(err)
	}
	other, err := certs.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		before, after *certs.Bundle
		want          string
	}{
		{"bundle", b0, &b1, "trust anchor added: the trust roots now hold the old and the new anchor; pods trust both as they restart"},
		{"re-sign", &b1, &b3, "issuer re-signed by the new trust anchor (expires "},
		{"drop", &b3, &b4, "old trust anchor dropped: "},
		{"replacement", b0, other, "trust anchor changes: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := plan.Meanings(nil, m, apply.CompareSets(render(t, m, tc.before), render(t, m, tc.after)))
			if len(got) == 0 || !strings.HasPrefix(got[0], tc.want) {
				t.Errorf("reads %q, want first %q", got, tc.want)
			}
			for _, line := range got[1:] {
				if strings.HasPrefix(line, "trust anchor") || strings.HasPrefix(line, "old trust anchor") || strings.HasPrefix(line, "scheduled issuer rotation") {
					t.Errorf("also reads %q", line)
				}
			}
		})
	}
}
