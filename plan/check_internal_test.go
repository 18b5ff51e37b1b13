package plan

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kschema "k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshctl/meshctl/schema"
)

// seen is LiveObjects that has every object, as rendered, and counts the
// lookups.
type seen struct{ n int }

func (s *seen) Live(kschema.GroupVersionKind, string, string) (*unstructured.Unstructured, bool) {
	s.n++
	return &unstructured.Unstructured{Object: map[string]any{}}, true
}

// TestChecksLookAtSomething: each check that looks at the objects of the
// render picks some, in a mesh that has them all: a check whose selection
// matches nothing (a stage or a namespace mistyped) would pass forever.
func TestChecksLookAtSomething(t *testing.T) {
	m, err := schema.LoadSources(schema.Source{Name: "mesh.cue", Data: []byte(`
cni: enabled: true
viz: enabled: true
controlPlane: {ha: true, identity: trustAnchor: keyCluster: "east"}
clusters: {west: context: "w", east: context: "e"}
links: [{from: "west", to: "east"}]
`)})
	if err != nil {
		t.Fatal(err)
	}
	set, err := OfflineMember(m, "west", "test")
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{
		"l5d-existence-crd", "l5d-existence-linkerd-config", "l5d-existence-sa-heartbeat", "l5d-api-control-ready",
		"l5d-existence-ns", "l5d-existence-cr", "l5d-existence-crb", "l5d-existence-sa", "l5d-existence-mwc", "l5d-existence-vwc",
		"cni-plugin-cm-exists", "cni-plugin-cr-exists", "cni-plugin-crb-exists", "cni-plugin-sa-exists", "cni-plugin-ds-exists",
		"l5d-version-control", "l5d-control-plane-replicas",
		"l5d-viz-ns-exists", "l5d-viz-cr-exists", "l5d-viz-crb-exists", "l5d-viz-pods-running",
		"l5d-multicluster-link-crd-exists", "l5d-multicluster-links-are-valid", "l5d-multicluster-service-mirror-running",
	}
	defs := map[string]checkDef{}
	for _, d := range checkList() {
		defs[d.id] = d
	}
	for _, id := range ids {
		d, ok := defs[id]
		if !ok {
			t.Errorf("no check %s", id)
			continue
		}
		live := &seen{}
		e := &checkEnv{m: m, name: "west", prepDone: true, p: &prepared{set: set, live: live}}
		d.run(context.Background(), e)
		if live.n == 0 {
			t.Errorf("check %s looked at no object of the render", id)
		}
	}
}

func TestProxyBehind(t *testing.T) {
	for _, tc := range []struct {
		proxy, pinned string
		want          int
	}{
		{"edge-25.10.7", "edge-25.10.7", 0},
		{"edge-25.11.1", "edge-25.10.7", 0}, // newer than pinned: not behind
		{"edge-25.9.2", "edge-25.10.7", 1},  // an edge between 2.18 and 2.19
		{"edge-25.4.4", "edge-25.10.7", 1},  // 2.18
		{"edge-25.4.3", "edge-25.10.7", 2},  // before 2.18: 2.17's line
		{"edge-24.11.8", "edge-25.10.7", 2}, // 2.17
		{"stable-2.18.2", "edge-25.10.7", 1},
		{"enterprise-2.17.1", "edge-25.10.7", 2},
		{"stable-2.11.4", "edge-25.10.7", 2},
		{"version-2.19", "edge-25.10.7", 0},
		{"dev-0a1b2c3d", "edge-25.10.7", 0}, // nothing to place it by
		{"edge-25.10.7", "stable-2.19.0", 0},
		{"edge-25.4.4", "stable-2.19.0", 1},
	} {
		if got := proxyBehind(tc.proxy, tc.pinned); got != tc.want {
			t.Errorf("proxyBehind(%q, %q) = %d, want %d", tc.proxy, tc.pinned, got, tc.want)
		}
	}
}
