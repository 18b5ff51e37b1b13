package plan

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/schema"
)

// One trust anchor for a fleet.
//
// With clusters and the default identity (trust anchor and issuer
// generated), meshctl makes one anchor for the whole fleet, once, in the
// certificate store of the cluster mesh.cue names in trustAnchor.keyCluster
// (the holder), and signs each other cluster's issuer with it. Those
// members' stores hold the public anchors, their own issuer and their own
// webhook pairs, never the anchor's key.
//
// The signer is whoever reaches the holder's store: the CLI, which reaches
// every cluster it applies, and the reconcile loop that runs in the holder,
// which reaches the other members' stores with a credential that may only
// read and update that one Secret (generators/peers.go). A member's own loop never
// signs: its webhook pairs rotate there, and its issuer is re-signed by the
// holder's loop when the policy says it is due.

// keyCluster is the cluster that keeps the fleet anchor's key: "" when the
// mesh has no fleet anchor (no clusters, or an identity meshctl does not
// generate).
func keyCluster(m *schema.Mesh) string {
	if len(m.Clusters) == 0 || !meshctlSignsIssuer(m) {
		return ""
	}
	return m.ControlPlane.Identity.TrustAnchor.KeyCluster
}

// fleetMember reports a cluster whose issuer the fleet anchor's holder
// signs: a cluster of a fleet with an anchor, other than the holder.
func fleetMember(m *schema.Mesh, name string) bool {
	h := keyCluster(m)
	return h != "" && name != "" && name != h
}

// fleetSigning is what the signing step did, for the verb's reports.
type fleetSigning struct {
	// issued holds, in a dry run, the store each member would hold after
	// the step, in memory only.
	issued map[string]*certs.Bundle
	// notes and warnings say what was signed, and what could not be
	// checked, per cluster the verb reports on.
	notes, warnings map[string][]string
	// rotated are the members' issuers re-signed because they fell due,
	// and nextDue when the next one does (zero: none), reported by the
	// cluster the verb reports them on.
	rotated map[string][]certs.Rotation
	nextDue map[string]time.Time
}

// trustStep is what every verb does about trust before it renders the
// clusters of a fleet, before anything is written anywhere: with a fleet
// anchor, the signing step (which takes a trust-anchor rotation's step
// itself, so the clusters render without one: anchor is then nil); with
// anchors from elsewhere, the check that linked clusters share one. A
// refusal wraps ErrTrustRefused or ErrAnchorRefused.
func (f *Fleet) trustStep(ctx context.Context, m *schema.Mesh, order []string, dryRun bool, rotation *AnchorRotation) (sig *fleetSigning, anchor *AnchorRotation, err error) {
	if f.single {
		return nil, rotation, nil
	}
	if keyCluster(m) != "" {
		sig, err := f.signIssuers(ctx, m, order, dryRun, rotation)
		return sig, nil, err
	}
	return nil, rotation, f.CheckTrust(ctx, m, order)
}

// reportTo is the cluster a member's lines go to: the cluster this process
// runs in (the holder's loop reports what it did to other members), or the
// member itself (the CLI reports each cluster's own).
func (f *Fleet) reportTo(member string) string {
	if f.local != "" {
		return f.local
	}
	return member
}

// signIssuers is the fleet's signing step, before any cluster is applied:
// for each member among clusters that the fleet signs for (the CLI: those
// it applies; the holder's loop: every member), it creates the member's
// store when it has none (the fleet anchors, an issuer signed by the
// anchor, webhook pairs), keeps its trust anchors those of the holder, and
// re-signs its issuer when the rotation policy says it is due or when it
// is not signed by the holder's current anchor. A member whose store
// trusts none of the fleet's anchors is refused (ErrTrustRefused) before
// anything is written. In a dry run nothing is written, and issued holds
// what would be.
//
// With anchor set (meshctl rotate trust-anchor), the step of the rotation
// is taken here, on the holder's store, before the members follow it in
// the same run: the bundle step gives every cluster's roots both anchors,
// the re-sign step re-signs every cluster's issuer with the new anchor
// (once every cluster's meshed pods trust both), and the drop step leaves
// every cluster's roots the new anchor alone. The guards count the meshed
// pods of every cluster.
func (f *Fleet) signIssuers(ctx context.Context, m *schema.Mesh, clusters []string, dryRun bool, anchor *AnchorRotation) (*fleetSigning, error) {
	out := &fleetSigning{issued: map[string]*certs.Bundle{}, notes: map[string][]string{}, warnings: map[string][]string{}, rotated: map[string][]certs.Rotation{}, nextDue: map[string]time.Time{}}
	holder := keyCluster(m)
	if holder == "" || f.single {
		return out, nil
	}
	var members []string
	switch {
	case f.local == "" && anchor != nil:
		if len(clusters) != len(m.Clusters) {
			// A --cluster that cannot be used here: a usage error.
			return nil, noSuchCluster(fmt.Sprintf("the fleet's trust anchor (kept in cluster %s) is rotated in every cluster at once, in lockstep: run without --cluster", holder))
		}
		fallthrough
	case f.local == holder:
		members = slices.DeleteFunc(slices.Sorted(maps.Keys(m.Clusters)), func(n string) bool { return n == holder })
	case f.local == "":
		members = slices.DeleteFunc(slices.Clone(clusters), func(n string) bool { return n == holder })
	}
	if len(members) == 0 && anchor == nil {
		return out, nil
	}
	hm, err := f.Member(ctx, holder)
	if err != nil {
		return nil, fmt.Errorf("signing the issuers of %s needs the fleet anchor's key, which cluster %s keeps (trustAnchor.keyCluster): %w", strings.Join(members, ", "), holder, err)
	}
	opts := generators.CertOptions(m, time.Now())
	before, err := rotateBefore(m, opts)
	if err != nil {
		return nil, err
	}
	if anchor != nil {
		anchor.others = nil
		for _, name := range members {
			mem, err := f.Member(ctx, name)
			if err != nil {
				return nil, err
			}
			anchor.others = append(anchor.others, mem)
		}
	}
	// The holder's store, read, or made in memory when the holder has none
	// yet (or, rotating, with the rotation's next step taken in memory); it
	// is written (as the holder's own apply would) only once every member
	// has been checked against it.
	co, err := certificates(ctx, m, Cluster{Client: hm.Client, DryRun: true, Name: holder, Anchor: anchor})
	if err != nil {
		return nil, inCluster(holder, err)
	}
	hb := co.bundle
	if hb.Anchor == nil {
		return nil, inCluster(holder, fmt.Errorf("cluster %s (trustAnchor.keyCluster) keeps no key for its trust anchor, so it cannot sign the other clusters' issuers: either its anchor was adopted from an install meshctl did not make (then give mesh.cue an anchor made elsewhere: trustAnchor.source \"pem\" or \"secret\", issuer.source \"secret\"), or keyCluster was moved to it from the cluster that keeps the key, which meshctl does not do (set keyCluster back)", holder))
	}
	signer, err := leafCert(hb.Anchor.CertPEM)
	if err != nil {
		return nil, inCluster(holder, fmt.Errorf("the fleet's trust anchor: %w", err))
	}

	// A member that cannot be signed for stops the CLI; the holder's loop
	// goes on with the others, and its next resync tries again.
	skip := func(name string, err error) error {
		if f.local == "" {
			return inCluster(name, err)
		}
		to := f.reportTo(name)
		out.warnings[to] = append(out.warnings[to], fmt.Sprintf("cluster %s: %v; its issuer is checked again at the next resync", name, err))
		return nil
	}

	// Read every member first: a refusal writes nothing anywhere.
	type work struct {
		name   string
		mem    *Member
		stored apply.StoredSecret
		b      *certs.Bundle // nil: the member has no store yet
	}
	var todo []work
	var problems []string
	for _, name := range members {
		mem, err := f.Member(ctx, name)
		if err != nil {
			if err := skip(name, err); err != nil {
				return nil, err
			}
			continue
		}
		w := work{name: name, mem: mem}
		stored, err := mem.Client.EnsureSecret(ctx, CertificatesSecret, true, func() (map[string][]byte, error) { return nil, nil })
		if err != nil {
			if err := skip(name, err); err != nil {
				return nil, err
			}
			continue
		}
		if stored.Created && f.local != "" {
			// The holder's loop may update a member's store, never create
			// one (generators/peers.go).
			_ = skip(name, fmt.Errorf("it has no certificate store yet (secret %s/%s): run meshctl apply on the fleet once, which signs its issuer", mem.Client.Namespace(), CertificatesSecret))
			continue
		}
		if !stored.Created {
			b, err := certs.FromData(stored.Data)
			if err != nil {
				return nil, inCluster(name, fmt.Errorf("secret %s/%s: %w", mem.Client.Namespace(), CertificatesSecret, err))
			}
			if !sharesAnchor(b.TrustAnchorsPEM, hb.TrustAnchorsPEM) {
				problems = append(problems, fmt.Sprintf("cluster %s trusts %s (secret %s/%s), not the fleet's %s, kept in cluster %s",
					name, describeAnchors(pemCerts(b.TrustAnchorsPEM)), mem.Client.Namespace(), CertificatesSecret, describeAnchors(pemCerts(hb.TrustAnchorsPEM)), holder))
			}
			w.stored, w.b = stored, b
		}
		todo = append(todo, w)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w (nothing written): %s; a cluster that made its own anchor before it joined the fleet keeps it: to move it to the fleet's anchor, delete that secret and apply again (meshctl signs a new issuer), then restart its meshed pods, which trust only the old anchor until they do", ErrTrustRefused, strings.Join(problems, "; "))
	}
	// Something of the holder's store to write: made, rotated, given a
	// webhook pair, or a rotation's step. Otherwise it was read once.
	write := co.created || co.note != "" || len(co.rotated) > 0 || anchor != nil
	switch {
	case dryRun && write:
		out.issued[holder] = hb
	case write:
		if co, err = certificates(ctx, m, Cluster{Client: hm.Client, Name: holder, Issued: hb, Anchor: anchor}); err != nil {
			return nil, inCluster(holder, err)
		}
		to := f.reportTo(holder)
		if co.note != "" {
			out.notes[to] = append(out.notes[to], co.note)
		}
		out.rotated[to] = append(out.rotated[to], co.rotated...)
		hb = co.bundle
		if signer, err = leafCert(hb.Anchor.CertPEM); err != nil {
			return nil, inCluster(holder, fmt.Errorf("the fleet's trust anchor: %w", err))
		}
	}

	for _, w := range todo {
		to := f.reportTo(w.name)
		ns := w.mem.Client.Namespace()
		if w.b == nil {
			kp, err := certs.Reissue(*hb.Anchor, opts)
			if err != nil {
				return nil, err
			}
			b := &certs.Bundle{TrustAnchorsPEM: hb.TrustAnchorsPEM, Issuer: &kp, Webhooks: map[string]certs.KeyPair{}}
			if _, err := b.GenerateWebhooks(opts); err != nil {
				return nil, err
			}
			if dryRun {
				out.issued[w.name] = b
				continue
			}
			stored, err := w.mem.Client.EnsureSecret(ctx, CertificatesSecret, false, func() (map[string][]byte, error) { return b.Data(), nil })
			if err != nil {
				if err := skip(w.name, err); err != nil {
					return nil, err
				}
				continue
			}
			if stored.Created {
				out.notes[to] = append(out.notes[to], fmt.Sprintf("signed an issuer for cluster %s with the fleet's trust anchor (kept in cluster %s), and stored it with the public anchor in secret %s/%s of %s",
					w.name, holder, ns, CertificatesSecret, w.name))
			}
			continue
		}
		b := w.b
		var changes []string
		if b.TrustAnchorsPEM != hb.TrustAnchorsPEM {
			b.TrustAnchorsPEM = hb.TrustAnchorsPEM
			changes = append(changes, "took the fleet's trust anchors")
		}
		issuer, err := leafCert(b.Issuer.CertPEM)
		if err != nil {
			if err := skip(w.name, fmt.Errorf("secret %s/%s: the issuer: %w", ns, CertificatesSecret, err)); err != nil {
				return nil, err
			}
			continue
		}
		due := certs.Due(issuer, opts.Now, before)
		var rotated []certs.Rotation
		if due || issuer.CheckSignatureFrom(signer) != nil {
			kp, err := certs.Reissue(*hb.Anchor, opts)
			if err != nil {
				return nil, err
			}
			b.Issuer = &kp
			if due {
				r := certs.Rotation{Kind: certs.KindIssuer, Cluster: w.name, Name: issuer.Subject.CommonName, Expiring: issuer.NotAfter, NotAfter: notAfterOf(kp)}
				rotated = append(rotated, r)
				changes = append(changes, fmt.Sprintf("re-signed its issuer, expiring %s (in %s), with the fleet's anchor (the new one expires %s)", stamp(r.Expiring), certs.FormatLeft(r.Expiring.Sub(opts.Now)), stamp(r.NotAfter)))
			} else {
				changes = append(changes, fmt.Sprintf("re-signed its issuer with the fleet's current anchor %s", signer.Subject.CommonName))
			}
		}
		if len(changes) > 0 {
			if dryRun {
				out.issued[w.name] = b
			} else if err := w.mem.Client.UpdateSecret(ctx, &w.stored, b.Data()); err != nil {
				if err := skip(w.name, err); err != nil {
					return nil, err
				}
				continue
			}
			out.rotated[to] = append(out.rotated[to], rotated...)
			where := fmt.Sprintf("secret %s/%s of %s", ns, CertificatesSecret, w.name)
			if dryRun {
				where = "in memory only (dry run)"
			}
			out.notes[to] = append(out.notes[to], fmt.Sprintf("cluster %s: %s; %s", w.name, strings.Join(changes, "; "), where))
		}
		if c, err := leafCert(b.Issuer.CertPEM); err == nil {
			at := c.NotAfter.Add(-certs.RotateThreshold(certs.Lifetime(c), before))
			if cur := out.nextDue[to]; cur.IsZero() || at.Before(cur) {
				out.nextDue[to] = at
			}
		}
	}
	return out, nil
}

// sharesAnchor reports two trust bundles with an anchor in common.
func sharesAnchor(a, b string) bool {
	bs := pemCerts(b)
	return slices.ContainsFunc(pemCerts(a), func(c *x509.Certificate) bool {
		return slices.ContainsFunc(bs, func(d *x509.Certificate) bool { return bytes.Equal(c.Raw, d.Raw) })
	})
}

// leafCert parses the first certificate of a PEM text.
func leafCert(text string) (*x509.Certificate, error) {
	cs := pemCerts(text)
	if len(cs) == 0 {
		return nil, errors.New("no certificate")
	}
	return cs[0], nil
}

// notAfterOf is the expiry of a pair's certificate.
func notAfterOf(kp certs.KeyPair) time.Time {
	c, err := leafCert(kp.CertPEM)
	if err != nil {
		return time.Time{}
	}
	return c.NotAfter
}

// memberMissingStore is the error of a member whose store the signer has
// not made yet, where this process cannot sign (the member's own loop).
func memberMissingStore(m *schema.Mesh, name string, c *apply.Client) error {
	h := keyCluster(m)
	return fmt.Errorf("cluster %s has no certificates yet (secret %s/%s): its issuer is signed with the fleet's trust anchor, whose key cluster %s keeps; run meshctl apply (which reaches %s), or let the reconciler in %s sign it",
		name, c.Namespace(), CertificatesSecret, h, h, h)
}

// fleetStatus marks, in a fleet with an anchor, where the anchor's key
// lives; a member's issuer and anchors are rotated from there (the issuer
// re-signed by the holder, the anchor in lockstep by rotate trust-anchor).
func fleetStatus(m *schema.Mesh, name string, sts []certs.Status) []certs.Status {
	h := keyCluster(m)
	if h == "" {
		return sts
	}
	for i := range sts {
		switch sts[i].Kind {
		case certs.KindTrustAnchor, certs.KindIssuer:
			sts[i].KeyCluster = h
			if name != h && sts[i].Err == "" {
				sts[i].CanRotate = true
			}
		}
	}
	return sts
}
