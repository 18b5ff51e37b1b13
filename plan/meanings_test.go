package plan_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

// meaningsBetween reads the offline diff between two meshes as
// `meshctl diff --offline --base` does: load both, render both without a
// cluster, compare the renders, and read the comparison.
func meaningsBetween(t *testing.T, oldSrc, newSrc string) []string {
	t.Helper()
	meshOf := func(name, src string) (*schema.Mesh, apply.Set) {
		m, err := schema.LoadSources(schema.Source{Name: name, Data: []byte(src)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		set, err := plan.Offline(m, "test")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return m, set
	}
	oldMesh, oldSet := meshOf("old.cue", oldSrc)
	newMesh, newSet := meshOf("new.cue", newSrc)
	return plan.Meanings(oldMesh, newMesh, apply.CompareSets(oldSet, newSet))
}

// evictByPolicy is what an offline diff says of a safe-to-evict change.
const evictByPolicy = "only new pods get the change, from MutatingAdmissionPolicy meshctl-safe-to-evict; running pods keep theirs until they restart" +
	" (on a cluster without MutatingAdmissionPolicy, meshctl changes the pod templates instead, and their pods restart)"

func TestMeanings(t *testing.T) {
	const (
		canary = `services: "shop/web": split: {"web-v1": 90, "web-v2": 10}` + "\n"
		faulty = `services: "shop/web": fault: {percent: 10, status: 503}` + "\n"
	)
	for _, tc := range []struct {
		name, old, new string
		want           []string
	}{
		{name: "no change", old: "", new: ""},
		{
			name: "HA on", old: "", new: "controlPlane: ha: true",
			want: []string{"HA on: linkerd-destination replicas 1→3, linkerd-identity replicas 1→3, linkerd-proxy-injector replicas 1→3, 3 PDBs added, webhook failurePolicy Ignore→Fail (3 webhook configurations)"},
		},
		{
			name: "HA off", old: "controlPlane: ha: true", new: "",
			want: []string{"HA off: linkerd-destination replicas 3→1, linkerd-identity replicas 3→1, linkerd-proxy-injector replicas 3→1, 3 PDBs removed, webhook failurePolicy Fail→Ignore (3 webhook configurations)"},
		},
		{
			name: "replicas without HA", old: "", new: "controlPlane: replicas: 2",
			want: []string{"control plane: linkerd-destination replicas 1→2, linkerd-identity replicas 1→2, linkerd-proxy-injector replicas 1→2"},
		},
		{
			name: "replicas back to the default", old: "controlPlane: replicas: 2", new: "",
			want: []string{"control plane: linkerd-destination replicas 2→1, linkerd-identity replicas 2→1, linkerd-proxy-injector replicas 2→1"},
		},
		{
			name: "HA replicas", old: "controlPlane: ha: true", new: "controlPlane: {ha: true, replicas: 5}",
			want: []string{"control plane: linkerd-destination replicas 3→5, linkerd-identity replicas 3→5, linkerd-proxy-injector replicas 3→5"},
		},
		{
			name: "HA without PDBs", old: "controlPlane: ha: true", new: "controlPlane: {ha: true, podDisruptionBudget: false}",
			want: []string{"control plane: 3 PDBs removed"},
		},
		{
			name: "PDBs without HA", old: "", new: "controlPlane: podDisruptionBudget: true",
			want: []string{"control plane: 3 PDBs added"},
		},
		{
			name: "webhook failurePolicy Fail", old: "", new: `controlPlane: webhookFailurePolicy: "Fail"`,
			want: []string{"control plane: webhook failurePolicy Ignore→Fail (3 webhook configurations)"},
		},
		{
			name: "webhook failurePolicy Ignore under HA", old: "controlPlane: ha: true", new: `controlPlane: {ha: true, webhookFailurePolicy: "Ignore"}`,
			want: []string{"control plane: webhook failurePolicy Fail→Ignore (3 webhook configurations)"},
		},
		{
			name: "CNI on", old: "", new: "cni: enabled: true",
			want: []string{"CNI plugin on: proxy-init is replaced by the network validator"},
		},
		{
			name: "CNI off", old: "cni: enabled: true", new: "",
			want: []string{"CNI plugin off: pods go back to the proxy-init container (needs NET_ADMIN)"},
		},
		{
			name: "Linkerd version", old: "", new: `linkerd: version: "edge-25.11.1"`,
			want: []string{"Linkerd edge-25.10.7→edge-25.11.1: control-plane and proxy images change; meshed pods pick up the new proxy when restarted"},
		},
		{
			name: "namespace added", old: "", new: `namespaces: books: inject: "enabled"`,
			want: []string{"namespace books: inject absent→enabled (takes effect as pods restart)"},
		},
		{
			name: "namespace inject changed", old: `namespaces: books: inject: "enabled"`, new: `namespaces: books: inject: "disabled"`,
			want: []string{"namespace books: inject enabled→disabled (takes effect as pods restart)"},
		},
		{
			name: "namespace removed", old: `namespaces: books: inject: "enabled"`, new: "",
			want: []string{"namespace books leaves mesh.cue: meshctl stops managing its mesh settings"},
		},
		{
			name: "safeToEvict on", old: `namespaces: shop: {}`, new: `namespaces: shop: safeToEvict: true`,
			want: []string{"namespace shop: safe-to-evict unset→true: " + evictByPolicy},
		},
		{
			name: "safeToEvict off", old: `namespaces: {shop: safeToEvict: true, web: safeToEvict: true}`, new: `namespaces: {shop: {}, web: safeToEvict: true}`,
			want: []string{"namespace shop: safe-to-evict true→unset: " + evictByPolicy},
		},
		{
			name: "safeToEvict off everywhere", old: `namespaces: shop: safeToEvict: true`, new: `namespaces: shop: {}`,
			want: []string{"namespace shop: safe-to-evict true→unset: " + evictByPolicy},
		},
		{
			name: "safeToEvict true→false", old: `namespaces: shop: safeToEvict: true`, new: `namespaces: shop: safeToEvict: false`,
			want: []string{"namespace shop: safe-to-evict true→false: " + evictByPolicy},
		},
		{
			name: "safeToEvict unchanged", old: `namespaces: shop: safeToEvict: true`, new: `namespaces: {shop: safeToEvict: true, web: {}}`,
			want: []string{"namespace web: inject absent→enabled (takes effect as pods restart)"},
		},
		{
			name: "namespace added with safeToEvict", old: "", new: `namespaces: shop: {create: true, safeToEvict: true}`,
			want: []string{
				"namespace shop: inject absent→enabled (takes effect as pods restart)",
				"namespace shop: safe-to-evict unset→true: " + evictByPolicy,
			},
		},
		{
			name: "fault on", old: "", new: faulty,
			want: []string{"shop/web fault injection on: 10% of requests answered 503"},
		},
		{
			name: "fault off", old: faulty, new: `services: "shop/web": {}`,
			want: []string{"shop/web fault injection off"},
		},
		{
			name: "fault changed", old: faulty, new: `services: "shop/web": fault: {percent: 50, status: 500}`,
			want: []string{"shop/web fault injection 10%→50%, status 503→500"},
		},
		{
			name: "split on", old: "", new: canary,
			want: []string{"shop/web traffic split on: web-v1 90, web-v2 10"},
		},
		{
			name: "split off", old: canary, new: `services: "shop/web": {}`,
			want: []string{"shop/web traffic split off (was web-v1 90, web-v2 10)"},
		},
		{
			name: "split changed", old: canary, new: `services: "shop/web": split: {"web-v1": 50, "web-v2": 50}`,
			want: []string{"shop/web canary weight web-v1 90→50, web-v2 10→50"},
		},
		{
			name: "split backend swapped", old: canary, new: `services: "shop/web": split: {"web-v1": 90, "web-v3": 10}`,
			want: []string{"shop/web canary weight web-v3 0→10, web-v2 10→removed"},
		},
		{
			name: "service with a fault removed", old: faulty, new: "",
			want: []string{"shop/web fault injection off"},
		},
		{
			name: "service with a split removed", old: canary, new: "",
			want: []string{"shop/web traffic split off (was web-v1 90, web-v2 10)"},
		},
		{
			name: "several at once, in order", old: faulty, new: "controlPlane: ha: true\ncni: enabled: true\nlinkerd: version: \"edge-25.11.1\"\n" + `namespaces: books: {}` + "\n" + canary,
			want: []string{
				"HA on: linkerd-destination replicas 1→3, linkerd-identity replicas 1→3, linkerd-proxy-injector replicas 1→3, 3 PDBs added, webhook failurePolicy Ignore→Fail (3 webhook configurations)",
				"Linkerd edge-25.10.7→edge-25.11.1: control-plane and proxy images change; meshed pods pick up the new proxy when restarted",
				"CNI plugin on: proxy-init is replaced by the network validator",
				"namespace books: inject absent→enabled (takes effect as pods restart)",
				"shop/web traffic split on: web-v1 90, web-v2 10",
				"shop/web fault injection off",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := meaningsBetween(t, tc.old, tc.new)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Meanings (-want +got):\n%s", diff)
			}
		})
	}
}

// Without a base (old nil), only the workload changes the diff shows are
// read: everything is created, so only the PDBs count.
func TestMeaningsWithoutBase(t *testing.T) {
	m, err := schema.LoadSources(schema.Source{Name: "mesh.cue", Data: []byte("cni: enabled: true\ncontrolPlane: ha: true\nnamespaces: books: {}")})
	if err != nil {
		t.Fatal(err)
	}
	set, err := plan.Offline(m, "test")
	if err != nil {
		t.Fatal(err)
	}
	got := plan.Meanings(nil, m, apply.CompareSets(apply.Set{}, set))
	if diff := cmp.Diff([]string{"control plane: 3 PDBs added"}, got); diff != "" {
		t.Errorf("Meanings (-want +got):\n%s", diff)
	}
}

// Against a cluster (old nil), a safe-to-evict change is read from the
// Namespace's annotation; whether the render holds the admission policy
// says whether pods restart.
func TestMeaningsSafeToEvictAgainstACluster(t *testing.T) {
	m, err := schema.LoadSources(schema.Source{Name: "mesh.cue", Data: []byte(`namespaces: {shop: safeToEvict: true, web: {}}`)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   generators.Inputs
		want string
	}{
		{name: "policy", want: "namespace shop: safe-to-evict unset→true: only new pods get the change, from MutatingAdmissionPolicy meshctl-safe-to-evict; running pods keep theirs until they restart"},
		{name: "pod templates", in: generators.Inputs{NoAdmissionPolicy: true}, want: "namespace shop: safe-to-evict unset→true: the cluster does not serve MutatingAdmissionPolicy, so meshctl changes the pod templates of its workloads, and their pods restart"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := generators.Render(m, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got := plan.Meanings(nil, m, apply.CompareSets(apply.Set{}, plan.Stages(objs, "test")))
			if diff := cmp.Diff([]string{tc.want}, got); diff != "" {
				t.Errorf("Meanings (-want +got):\n%s", diff)
			}
		})
	}
}
