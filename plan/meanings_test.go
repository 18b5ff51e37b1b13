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
		// Splits and faults reach their backends on a Service port.
		src += "\nservices: [_]: port: 7000\n"
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
		canary    = `services: "shop/web": split: {web: 90, "web-v2": 10}` + "\n"
		blueGreen = `services: "shop/web": split: {"web-blue": 100, "web-green": 0}` + "\n"
		faulty    = `services: "shop/web": fault: {percent: 10, status: 503}` + "\n"
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
			name: "fault added", old: "", new: faulty,
			want: []string{"shop/web fault 10% 503s added"},
		},
		{
			name: "fault removed", old: faulty, new: `services: "shop/web": {}`,
			want: []string{"shop/web fault 10% 503s removed"},
		},
		{
			name: "fault percent", old: faulty, new: `services: "shop/web": fault: {percent: 20, status: 503}`,
			want: []string{"shop/web fault 10% → 20% (503s)"},
		},
		{
			name: "fault status", old: faulty, new: `services: "shop/web": fault: {percent: 10, status: 500}`,
			want: []string{"shop/web fault 10% (503s → 500s)"},
		},
		{
			name: "fault percent and status", old: faulty, new: `services: "shop/web": fault: {percent: 12.5, status: 500}`,
			want: []string{"shop/web fault 10% 503s → 12.5% 500s"},
		},
		{
			name: "split added", old: "", new: canary,
			want: []string{"shop/web split added: web 90%, web-v2 10%"},
		},
		{
			name: "split removed", old: canary, new: `services: "shop/web": {}`,
			want: []string{"shop/web split removed (was web 90%, web-v2 10%)"},
		},
		{
			name: "canary weight", old: canary, new: `services: "shop/web": split: {web: 50, "web-v2": 50}`,
			want: []string{"shop/web canary web-v2 10% → 50%"},
		},
		{
			name: "canary promoted", old: canary, new: `services: "shop/web": split: {web: 0, "web-v2": 100}`,
			want: []string{"shop/web canary web-v2 10% → 100%"},
		},
		{
			name: "two canaries", old: `services: "shop/web": split: {web: 80, "web-v2": 10, "web-v3": 10}`, new: `services: "shop/web": split: {web: 40, "web-v2": 50, "web-v3": 10}`,
			want: []string{"shop/web canary web-v2 10% → 50%"},
		},
		{
			name: "canary swapped", old: canary, new: `services: "shop/web": split: {web: 90, "web-v3": 10}`,
			want: []string{"shop/web canary web-v3 added at 10%, web-v2 10% removed"},
		},
		{
			name: "canary without the Service as a backend", old: `services: "shop/web": split: {"web-v1": 90, "web-v2": 10}`, new: `services: "shop/web": split: {"web-v1": 75, "web-v2": 25}`,
			want: []string{"shop/web canary web-v2 10% → 25%"},
		},
		{
			name: "blue/green flipped", old: blueGreen, new: `services: "shop/web": split: {"web-blue": 0, "web-green": 100}`,
			want: []string{"shop/web blue/green flipped to web-green"},
		},
		{
			name: "blue/green flipped back", old: `services: "shop/web": split: {"web-blue": 0, "web-green": 100}`, new: blueGreen,
			want: []string{"shop/web blue/green flipped to web-blue"},
		},
		{
			name: "blue/green part way", old: blueGreen, new: `services: "shop/web": split: {"web-blue": 80, "web-green": 20}`,
			want: []string{"shop/web canary web-green 0% → 20%"},
		},
		{
			name: "model", old: `services: "shop/web": model: "serviceprofile"`, new: `services: "shop/web": {}`,
			want: []string{"shop/web model serviceprofile → httproute"},
		},
		{
			name: "model of a new service", old: "", new: `services: "shop/web": model: "smi"`,
		},
		{
			name: "model, split and fault, a line each", old: `services: "shop/web": {model: "serviceprofile", split: {web: 90, "web-v2": 10}}`,
			new: `services: "shop/web": {split: {web: 50, "web-v2": 50}, fault: {percent: 10, status: 500}}`,
			want: []string{
				"shop/web model serviceprofile → httproute",
				"shop/web canary web-v2 10% → 50%",
				"shop/web fault 10% 500s added",
			},
		},
		{
			name: "service with a fault removed", old: faulty, new: "",
			want: []string{"shop/web fault 10% 503s removed"},
		},
		{
			name: "service with a split removed", old: canary, new: "",
			want: []string{"shop/web split removed (was web 90%, web-v2 10%)"},
		},
		{
			name: "services in order", old: `services: {"shop/b": fault: {percent: 1, status: 500}, "shop/a": {}}`, new: `services: {"shop/a": fault: {percent: 1, status: 500}}`,
			want: []string{"shop/a fault 1% 500s added", "shop/b fault 1% 500s removed"},
		},
		{
			name: "several at once, in order", old: faulty, new: "controlPlane: ha: true\ncni: enabled: true\nlinkerd: version: \"edge-25.11.1\"\n" + `namespaces: books: {}` + "\n" + canary,
			want: []string{
				"HA on: linkerd-destination replicas 1→3, linkerd-identity replicas 1→3, linkerd-proxy-injector replicas 1→3, 3 PDBs added, webhook failurePolicy Ignore→Fail (3 webhook configurations)",
				"Linkerd edge-25.10.7→edge-25.11.1: control-plane and proxy images change; meshed pods pick up the new proxy when restarted",
				"CNI plugin on: proxy-init is replaced by the network validator",
				"namespace books: inject absent→enabled (takes effect as pods restart)",
				"shop/web split added: web 90%, web-v2 10%",
				"shop/web fault 10% 503s removed",
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
