package apply_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
)

// A mesh of 10,000 objects lists more than a ConfigMap holds as text while
// a run is pending; the inventory is then kept gzipped, and reads back the
// same. A small one stays text, readable with kubectl.
func TestLargeInventoryFitsInItsConfigMap(t *testing.T) {
	e := newEnv(t)
	refs := func(n int) []apply.Ref {
		var rs []apply.Ref
		for i := range n {
			rs = append(rs, apply.Ref{APIVersion: "linkerd.io/v1alpha2", Kind: "ServiceProfile",
				Namespace: fmt.Sprintf("bench-%d", i%10), Name: fmt.Sprintf("svc-%05d.bench-%d.svc.cluster.local", i, i%10)})
		}
		return rs
	}
	for _, tc := range []struct {
		name    string
		objects int
		gzipped bool
	}{
		{"10,000 objects, pending", 10000, true},
		{"50 objects", 50, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev, err := e.c.ReadInventory(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			inv := &apply.Inventory{Version: "test", Digest: "sha256:x", Objects: refs(tc.objects), Pending: refs(tc.objects)}
			if prev != nil {
				inv.SetResourceVersion(prev.ResourceVersion())
			}
			if err := e.c.WriteInventory(e.ctx, inv); err != nil {
				t.Fatal(err)
			}
			cm := &corev1.ConfigMap{}
			if err := e.kube.Get(e.ctx, client.ObjectKey{Namespace: e.c.Namespace(), Name: apply.InventoryName}, cm); err != nil {
				t.Fatal(err)
			}
			_, gz := cm.BinaryData["inventory.json.gz"]
			_, text := cm.Data["inventory.json"]
			if gz != tc.gzipped || text == tc.gzipped {
				t.Errorf("gzipped %v, text %v; want gzipped %v", gz, text, tc.gzipped)
			}
			got, err := e.c.ReadInventory(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Objects) != tc.objects || len(got.Pending) != tc.objects || got.Objects[tc.objects-1] != inv.Objects[tc.objects-1] {
				t.Errorf("read back %d objects, %d pending; want %d of each, the same", len(got.Objects), len(got.Pending), tc.objects)
			}
		})
	}
}
