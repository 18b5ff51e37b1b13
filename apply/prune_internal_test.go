package apply

import (
	"errors"
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
)

func configMapRefs(names ...string) []Ref {
	var rs []Ref
	for _, n := range names {
		rs = append(rs, Ref{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Name: n})
	}
	return rs
}

func TestCheckPrune(t *testing.T) {
	abcd := configMapRefs("a", "b", "c", "d")
	many := configMapRefs("a", "b", "c", "d", "e", "f", "g", "h")
	for _, tc := range []struct {
		name        string
		prev        *Inventory
		next, cands []Ref
		o           Options
		wantErr     string
	}{
		{name: "nothing to prune", prev: &Inventory{Objects: abcd}, next: abcd},
		{name: "nothing to prune, empty render", prev: nil, next: nil},
		{
			name: "empty render", prev: &Inventory{Objects: abcd[:3]}, cands: abcd[:3],
			wantErr: "prune refused: the render is empty, and pruning would delete all 3 objects in the inventory; check mesh.cue, or pass --force-prune to remove the whole mesh",
		},
		{name: "empty render, forced", prev: &Inventory{Objects: abcd}, cands: abcd, o: Options{ForcePrune: true}},
		// The budget a reviewed change raises (prune.maxDeletions) lets a
		// removal through, never an empty render.
		{
			name: "empty render, whatever the budget", prev: &Inventory{Objects: abcd}, cands: abcd, o: Options{MaxDeletions: Limit{Percent: 100}},
			wantErr: "prune refused: the render is empty, and pruning would delete all 4 objects in the inventory; check mesh.cue, or pass --force-prune to remove the whole mesh",
		},
		{name: "under the default limit", prev: &Inventory{Objects: abcd}, next: abcd[1:], cands: abcd[:1]},
		{name: "at the default limit", prev: &Inventory{Objects: abcd}, next: abcd[2:], cands: abcd[:2]},
		{
			name: "over the default limit", prev: &Inventory{Objects: abcd}, next: abcd[3:], cands: abcd[:3],
			wantErr: "prune refused: this run would delete 3 of the 4 inventoried objects (ConfigMap/shop/a, ConfigMap/shop/b, ConfigMap/shop/c), more than --max-deletions=50% allows; check mesh.cue, or pass --force-prune",
		},
		{name: "over the limit, forced", prev: &Inventory{Objects: abcd}, next: abcd[3:], cands: abcd[:3], o: Options{ForcePrune: true}},
		{
			name: "pending objects count in the total", prev: &Inventory{Objects: abcd[:2], Pending: abcd[2:]}, next: abcd[3:], cands: abcd[:3],
			wantErr: "prune refused: this run would delete 3 of the 4 inventoried objects (ConfigMap/shop/a, ConfigMap/shop/b, ConfigMap/shop/c), more than --max-deletions=50% allows; check mesh.cue, or pass --force-prune",
		},
		{
			name: "over a count", prev: &Inventory{Objects: abcd}, next: abcd[2:], cands: abcd[:2], o: Options{MaxDeletions: Limit{Count: 1, IsCount: true}},
			wantErr: "prune refused: this run would delete 2 of the 4 inventoried objects (ConfigMap/shop/a, ConfigMap/shop/b), more than --max-deletions=1 allows; check mesh.cue, or pass --force-prune",
		},
		{name: "within a percentage", prev: &Inventory{Objects: abcd}, next: abcd[3:], cands: abcd[:3], o: Options{MaxDeletions: Limit{Percent: 75}}},
		{
			name: "more than five are listed with …", prev: &Inventory{Objects: many}, next: many[7:], cands: many[:7],
			wantErr: "prune refused: this run would delete 7 of the 8 inventoried objects (ConfigMap/shop/a, ConfigMap/shop/b, ConfigMap/shop/c, ConfigMap/shop/d, ConfigMap/shop/e, …), more than --max-deletions=50% allows; check mesh.cue, or pass --force-prune",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPrune(tc.prev, tc.next, tc.cands, tc.o)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("checkPrune: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("checkPrune error = %v\nwant %s", err, tc.wantErr)
			}
			if !errors.Is(err, ErrPruneRefused) {
				t.Errorf("checkPrune error %v does not wrap ErrPruneRefused", err)
			}
		})
	}
}

func item(kind, namespace, name string, owned bool) unstructured.Unstructured {
	u := unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	if owned {
		u.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "1"}})
	}
	return u
}

func TestForeign(t *testing.T) {
	sa := item("ServiceAccount", "shop", "default", false)
	rootCA := item("ConfigMap", "shop", "kube-root-ca.crt", false)
	mine := item("ConfigMap", "shop", "mine", false)
	pod := item("Pod", "shop", "web-1-abc", true)
	pruning := refSet([]Ref{refOf(&mine)})
	var five []unstructured.Unstructured
	for i := 5; i > 0; i-- {
		five = append(five, item("Secret", "shop", fmt.Sprintf("s%d", i), false))
	}
	for _, tc := range []struct {
		name    string
		items   []unstructured.Unstructured
		kind    string
		ownedOK bool
		want    string
	}{
		{name: "empty"},
		{name: "what Kubernetes makes in every namespace", items: []unstructured.Unstructured{sa, rootCA}, ownedOK: true},
		{name: "what this run prunes", items: []unstructured.Unstructured{mine, sa}, ownedOK: true},
		{name: "owned, in a namespace", items: []unstructured.Unstructured{pod}, ownedOK: true},
		{
			name: "owned, of a CRD", items: []unstructured.Unstructured{pod}, kind: "Pod",
			want: "still holds 1 Pod objects meshctl does not manage (Pod/shop/web-1-abc)",
		},
		{
			name: "a non-default ServiceAccount", items: []unstructured.Unstructured{item("ServiceAccount", "shop", "web", false), sa}, ownedOK: true,
			want: "still holds 1 objects meshctl does not manage (ServiceAccount/shop/web)",
		},
		{
			name: "sorted, and cut after 3", items: append(five, mine, sa, rootCA), ownedOK: true,
			want: "still holds 5 objects meshctl does not manage (Secret/shop/s1, Secret/shop/s2, Secret/shop/s3, …)",
		},
		{
			name: "exactly 3", items: five[2:], kind: "HTTPRoute",
			want: "still holds 3 HTTPRoute objects meshctl does not manage (Secret/shop/s1, Secret/shop/s2, Secret/shop/s3)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := foreign(tc.items, pruning, tc.kind, tc.ownedOK); got != tc.want {
				t.Errorf("foreign = %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestAggregatedGoing: a namespace may be pruned past a discovery failure
// only when every failing group's APIService is pruned in the same run.
func TestAggregatedGoing(t *testing.T) {
	tap := schema.GroupVersion{Group: "tap.linkerd.io", Version: "v1alpha1"}
	metrics := schema.GroupVersion{Group: "metrics.k8s.io", Version: "v1beta1"}
	apiService := Ref{APIVersion: "apiregistration.k8s.io/v1", Kind: "APIService", Name: "v1alpha1.tap.linkerd.io"}
	failed := func(gvs ...schema.GroupVersion) error {
		e := &discovery.ErrGroupDiscoveryFailed{Groups: map[schema.GroupVersion]error{}}
		for _, gv := range gvs {
			e.Groups[gv] = errors.New("the server is currently unable to handle the request")
		}
		return e
	}
	for _, tc := range []struct {
		name    string
		err     error
		pruning []Ref
		want    bool
	}{
		{"tap's APIService goes too", failed(tap), []Ref{apiService}, true},
		{"tap's APIService stays", failed(tap), nil, false},
		{"another group fails too", failed(tap, metrics), []Ref{apiService}, false},
		{"not a group failure", errors.New("connection refused"), []Ref{apiService}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := aggregatedGoing(tc.err, refSet(tc.pruning)); got != tc.want {
				t.Errorf("aggregatedGoing = %v, want %v", got, tc.want)
			}
		})
	}
}
