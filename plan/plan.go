// Package plan turns mesh.cue into what apply consumes: it loads the mesh,
// fetches or creates the certificates the render needs, renders, and groups
// the objects into apply stages. It is the glue between schema, generators,
// certs and apply, so that cmd stays thin.
package plan

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/rollout"
	"github.com/meshctl/meshctl/schema"
)

// CertificatesSecret holds, in the meshctl namespace, the certificates
// meshctl generated: the trust anchor and its key, the issuer, and the
// webhooks' serving pairs. It is created once, and rewritten only when
// the rotation policy replaces a certificate (rotate.go).
const CertificatesSecret = "meshctl-certificates"

// Stages groups rendered objects into apply stages, in stage order; within
// a stage, objects keep the render's order.
func Stages(objs []generators.Object, version string) apply.Set {
	byStage := map[generators.Stage][]*unstructured.Unstructured{}
	var order []generators.Stage
	for _, o := range objs {
		if _, ok := byStage[o.Stage]; !ok {
			order = append(order, o.Stage)
		}
		byStage[o.Stage] = append(byStage[o.Stage], o.Object)
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	set := apply.Set{Version: version}
	for _, st := range order {
		set.Stages = append(set.Stages, apply.Stage{Name: st.String(), Objects: byStage[st]})
	}
	return set
}

// Offline renders without a cluster and without certificates: the objects
// that would hold them are left out (see generators.Inputs).
func Offline(m *schema.Mesh, version string) (apply.Set, error) {
	objs, err := generators.Render(m, generators.Inputs{})
	if err != nil {
		return apply.Set{}, err
	}
	return Stages(objs, version), nil
}

// CheckRenders renders the mesh in memory, for each of its clusters, with
// throwaway certificates (so that patches on certificate-bearing objects
// are checked too), and returns what keeps it from rendering: a patch that
// matches nothing or does not apply, say. Commands call it before they
// write anything, so that nothing is written on the strength of a mesh that
// cannot render. The certificates are never stored or printed.
func CheckRenders(m *schema.Mesh) error {
	b, err := certs.Generate(generators.CertOptions(m, time.Now()))
	if err != nil {
		return err
	}
	clusters := []string{""}
	if len(m.Clusters) > 0 {
		clusters = slices.Sorted(maps.Keys(m.Clusters))
	}
	for _, c := range clusters {
		if _, err := generators.Render(m, generators.Inputs{Certs: b, Cluster: c}); err != nil {
			if c != "" {
				return fmt.Errorf("cluster %s: %w", c, err)
			}
			return err
		}
	}
	return nil
}

// Loader loads mesh files as every entry point reads them: validated by
// the schema, with the services that validated before remembered
// (schema.Loader), and checked to render (CheckRenders), so that nothing is
// printed or written on the strength of a mesh that cannot.
type Loader struct {
	schema.Loader
}

// Load loads and checks the mesh at path.
func (l *Loader) Load(path string) (*schema.Mesh, error) {
	m, err := l.Loader.Load(path)
	if err == nil {
		err = CheckRenders(m)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Cluster is what a render for a cluster needs to know.
type Cluster struct {
	Client *apply.Client
	// DryRun: certificates that do not exist yet are generated in memory
	// but not stored.
	DryRun bool
	// Anchor, when set, has Certificates take the next step of a
	// trust-anchor rotation (anchor.go) before the render.
	Anchor *AnchorRotation
	// Name is the mesh cluster (under clusters) this is, "" for a mesh
	// without clusters; Links is what its links' targets say about
	// themselves (multicluster.go).
	Name  string
	Links map[string]*generators.LinkTarget
	// Issued, in a dry run, is the certificate store the fleet's signing
	// step would leave this cluster (fleetcerts.go), in memory only.
	Issued *certs.Bundle
}

// ForCluster renders m with the certificates the cluster holds, creating
// them once when they are missing. notes say what was created, and how
// safeToEvict reaches pods where the cluster serves MutatingAdmissionPolicy;
// where it does not, the caller runs SafeToEvictTemplates after the apply.
func ForCluster(ctx context.Context, m *schema.Mesh, c Cluster, version string) (set apply.Set, notes []string, err error) {
	r, err := renderCluster(ctx, m, c, version)
	if err != nil {
		return apply.Set{}, nil, err
	}
	return r.set, r.notes, nil
}

// rendered is one cluster's render and what it did on the way.
type rendered struct {
	set   apply.Set
	notes []string
	certs *certOutcome
	// served: the cluster serves MutatingAdmissionPolicy, so safeToEvict
	// needs no pod-template fallback.
	served bool
	// rollouts are the stored states whose weights the render carries.
	rollouts []rollout.State
}

// renderCluster is ForCluster, with what the certificates went through.
func renderCluster(ctx context.Context, m *schema.Mesh, c Cluster, version string) (*rendered, error) {
	m, notes, err := gatewayAPI(ctx, m, c)
	if err != nil {
		return nil, err
	}
	// A rollout's split renders at the weights it has reached.
	m, states, err := rolloutWeights(ctx, m, c)
	if err != nil {
		return nil, err
	}
	co, err := certificates(ctx, m, c)
	if err != nil {
		return nil, err
	}
	if co.note != "" && !c.DryRun {
		notes = append(notes, co.note)
	}
	served, err := ServesAdmissionPolicy(c.Client)
	if err != nil {
		return nil, err
	}
	objs, err := generators.Render(m, generators.Inputs{Certs: co.bundle, NoAdmissionPolicy: !served, Cluster: c.Name, Links: c.Links, MeshctlNamespace: c.Client.Namespace()})
	if err != nil {
		return nil, err
	}
	if served {
		notes = append(notes, policyNote(m)...)
	}
	return &rendered{set: Stages(objs, version), notes: notes, certs: co, served: served, rollouts: states}, nil
}

// Certificates returns the mesh's certificate material: kept in the
// cluster once made, or taken as it is from a Secret the mesh names. The
// first time, it adopts the trust anchor and issuer of an install that
// meshctl did not make, or generates them when there are none. Later, it
// rotates what the policy says is due (rotate.go). note says what it
// created or rotated, "" when nothing.
func Certificates(ctx context.Context, m *schema.Mesh, c Cluster) (*certs.Bundle, string, error) {
	co, err := certificates(ctx, m, c)
	if err != nil {
		return nil, "", err
	}
	return co.bundle, co.note, nil
}

// certOutcome is what certificates found and did.
type certOutcome struct {
	bundle *certs.Bundle
	note   string
	// rotated are the certificates the policy replaced in this render.
	rotated []certs.Rotation
	// nextDue is when the policy replaces a certificate next; zero when
	// meshctl rotates none.
	nextDue time.Time
	// created: the store did not exist, and this call made it (in memory
	// only, in a dry run).
	created bool
}

// certificates is Certificates, with what it rotated and when it rotates
// next.
func certificates(ctx context.Context, m *schema.Mesh, c Cluster) (*certOutcome, error) {
	opts := generators.CertOptions(m, time.Now())
	id := m.ControlPlane.Identity
	adopted := false
	// A rotation step never creates the certificates it would rotate.
	stored, err := c.Client.EnsureSecret(ctx, CertificatesSecret, c.DryRun || c.Anchor != nil, func() (map[string][]byte, error) {
		switch {
		case c.Issued != nil:
			return c.Issued.Data(), nil
		case fleetMember(m, c.Name):
			// Only the holder of the fleet anchor's key signs an issuer.
			return nil, memberMissingStore(m, c.Name, c.Client)
		}
		if id.TrustAnchor.Source == schema.SourceGenerated && id.Issuer.Source == schema.SourceGenerated {
			b, err := existingTrust(ctx, c.Client.Kube(), m)
			if err != nil {
				return nil, err
			}
			if b != nil {
				adopted = true
				if _, err := b.GenerateWebhooks(opts); err != nil {
					return nil, err
				}
				return b.Data(), nil
			}
		}
		b, err := certs.Generate(opts)
		if err != nil {
			return nil, err
		}
		return b.Data(), nil
	})
	if err != nil {
		return nil, err
	}
	created := stored.Created
	if c.Issued != nil && c.DryRun {
		// What the fleet's signing step would store, in memory.
		stored.Data = c.Issued.Data()
	}
	note := ""
	switch {
	case created && adopted:
		note = fmt.Sprintf("adopted the existing trust anchor and issuer (linkerd/%s, linkerd/%s) as they are, and recorded them in secret %s/%s; meshctl holds no key for this anchor", trustRootsName, issuerName, c.Client.Namespace(), CertificatesSecret)
	case created:
		note = fmt.Sprintf("created certificates (trust anchor, issuer, webhook pairs) in secret %s/%s; later runs reuse them", c.Client.Namespace(), CertificatesSecret)
	}
	b, err := certs.FromData(stored.Data)
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", c.Client.Namespace(), CertificatesSecret, err)
	}
	// A mesh that grew a webhook (viz's tap) gets a pair for it; the pairs
	// kept are never replaced here.
	added, err := b.GenerateWebhooks(opts)
	if err != nil {
		return nil, err
	}
	if len(added) > 0 && !created {
		if !c.DryRun {
			if err := c.Client.UpdateSecret(ctx, &stored, b.Data()); err != nil {
				return nil, err
			}
		}
		note = fmt.Sprintf("created serving certificates for %s in secret %s/%s; later runs reuse them", strings.Join(added, ", "), c.Client.Namespace(), CertificatesSecret)
	}
	if c.Anchor != nil {
		if created {
			return nil, fmt.Errorf("meshctl has made no certificates in this cluster yet, so there is no trust anchor to rotate: run meshctl apply first")
		}
		if err := advanceAnchor(ctx, m, c, &stored, b, opts); err != nil {
			return nil, err
		}
	}
	out := &certOutcome{created: created}
	if !created {
		rnote, rotated, err := rotate(ctx, m, c, &stored, b, opts)
		if err != nil {
			return nil, err
		}
		note = joinNotes(note, rnote)
		out.rotated = rotated
	}
	if before, err := rotateBefore(m, opts); err == nil {
		out.nextDue = b.NextDue(before, meshctlSignsIssuer(m))
	}
	ta := m.ControlPlane.Identity.TrustAnchor
	switch ta.Source {
	case schema.SourceSecret:
		// The user's anchor, as it is: meshctl holds no key for it, so the
		// issuer must come from elsewhere (the schema insists).
		pem, err := c.Client.SecretKey(ctx, ta.SecretRef.Namespace, ta.SecretRef.Name, ta.SecretRef.Key)
		if err != nil {
			return nil, fmt.Errorf("controlPlane.identity.trustAnchor.secretRef: %w", err)
		}
		b.TrustAnchorsPEM, b.Anchor, b.Issuer = string(pem), nil, nil
	case schema.SourcePEM, schema.SourceExternal:
		b.TrustAnchorsPEM, b.Anchor, b.Issuer = "", nil, nil
	}
	out.bundle, out.note = b, note
	return out, nil
}

// joinNotes joins the notes that are not empty, one per line.
func joinNotes(notes ...string) string {
	var out []string
	for _, n := range notes {
		if n != "" {
			out = append(out, n)
		}
	}
	return strings.Join(out, "\n")
}
