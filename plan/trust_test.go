package plan

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/schema"
)

func mesh(t *testing.T, src string) *schema.Mesh {
	t.Helper()
	m, err := schema.LoadSources(schema.Source{Name: "mesh.cue", Data: []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func renderWith(t *testing.T, m *schema.Mesh, b *certs.Bundle) apply.Set {
	t.Helper()
	objs, err := generators.Render(m, generators.Inputs{Certs: b})
	if err != nil {
		t.Fatal(err)
	}
	return Stages(objs, "test")
}

func TestTrustMeanings(t *testing.T) {
	m := mesh(t, "")
	opts := generators.CertOptions(m, time.Now())
	b1, err := certs.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := certs.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	// The same anchor, another issuer: as a rotation under the anchor.
	reissued := *b1
	reissued.Issuer = b2.Issuer
	tests := []struct {
		name     string
		old, new *schema.Mesh
		d        *apply.DiffResult
		want     []string
	}{
		{name: "nothing changes", d: apply.CompareSets(renderWith(t, m, b1), renderWith(t, m, b1))},
		{name: "new anchor and issuer in the cluster", d: apply.CompareSets(renderWith(t, m, b1), renderWith(t, m, b2)),
			want: []string{anchorChangeMeaning, issuerChangeMeaning}},
		{name: "new issuer under the same anchor", d: apply.CompareSets(renderWith(t, m, b1), renderWith(t, m, &reissued)),
			want: []string{issuerChangeMeaning}},
		{name: "offline: the anchor's source changes", old: m, new: mesh(t, `controlPlane: identity: {trustAnchor: source: "external", issuer: source: "secret"}`),
			d: &apply.DiffResult{}, want: []string{anchorChangeMeaning, issuerChangeMeaning}},
		{name: "offline: the issuer moves to cert-manager", old: mesh(t, `controlPlane: identity: {trustAnchor: source: "external", issuer: source: "secret"}`),
			new: mesh(t, `controlPlane: identity: {trustAnchor: source: "external", issuer: {source: "certManager", certManager: issuerRef: name: "linkerd"}}`),
			d:   &apply.DiffResult{}, want: []string{issuerChangeMeaning}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			newMesh := tc.new
			if newMesh == nil {
				newMesh = m
			}
			if d := cmp.Diff(tc.want, trustMeanings(tc.old, newMesh, tc.d)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			// Trust comes first among all the meanings.
			if all := Meanings(tc.old, newMesh, tc.d); len(tc.want) > 0 && (len(all) < len(tc.want) || !cmp.Equal(all[:len(tc.want)], tc.want)) {
				t.Errorf("Meanings do not start with the trust lines: %q", all)
			}
		})
	}
}
