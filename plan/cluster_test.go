package plan_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/internal/meshtest"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

// shared is the package's cluster, started by the first test that needs it.
var shared testcluster.Shared

func TestMain(m *testing.M) { testcluster.Main(m, &shared) }

// connect connects to the package's cluster, keeping the inventory in
// namespace (the default when empty), with a context that ends with the test.
func connect(t *testing.T, namespace string) (context.Context, *apply.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	c, err := apply.New(shared.Get(t).Config, namespace)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, c
}

func load(t *testing.T, path string) *schema.Mesh {
	t.Helper()
	m, err := schema.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func applyMesh(t *testing.T, ctx context.Context, c *apply.Client, m *schema.Mesh, o apply.Options) (*apply.Result, error) {
	t.Helper()
	set, _, err := plan.ForCluster(ctx, m, plan.Cluster{Client: c, DryRun: o.DryRun}, "test")
	if err != nil {
		t.Fatal(err)
	}
	o.Prune = true
	return c.Apply(ctx, set, o)
}

// TestDefaultMeshRollsOut applies the root mesh.cue with --wait: every
// generated object is accepted, the stages are written in order, each after
// the previous one is ready, a second apply writes nothing, and the
// certificates are neither rotated, nor rewritten, nor pruned.
func TestDefaultMeshRollsOut(t *testing.T) {
	cluster := shared.Get(t)
	ctx, c := connect(t, "")
	m := load(t, "../mesh.cue")
	var progress bytes.Buffer
	res, err := applyMesh(t, ctx, c, m, apply.Options{Wait: true, Timeout: 2 * time.Minute, Progress: &progress})
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, progress.String())
	}
	if res.Summary[apply.Created] < 50 {
		t.Errorf("created %d objects: %v", res.Summary[apply.Created], res.Entries)
	}
	set := mustSet(t, ctx, c, m)
	if got := stageNames(set); !slices.Equal(got, []string{"crds", "control-plane", "mesh-config"}) {
		t.Fatalf("stages %v", got)
	}
	checkStageOrder(t, ctx, c.Kube(), cluster.Client, set, res, true)

	certsBefore := certificatesSecret(t, ctx, c)
	before := versions(t, ctx, c.Kube(), set)
	again, err := applyMesh(t, ctx, c, m, apply.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(before, versions(t, ctx, c.Kube(), set)); d != "" {
		t.Errorf("a no-op apply wrote objects (-before +after):\n%s", d)
	}
	if again.Writes != 0 {
		t.Errorf("second apply says it wrote: %v", again.Entries)
	}
	if _, note, err := plan.Certificates(ctx, m, plan.Cluster{Client: c}); err != nil || note != "" {
		t.Errorf("certificates created again (%q, %v)", note, err)
	}
	if d, err := c.Diff(ctx, set, apply.DiffOptions{}); err != nil || d.Changed() {
		t.Errorf("diff after apply: changed=%v err=%v", d != nil && d.Changed(), err)
	}

	// A run that prunes (a namespace added, then removed) leaves the
	// certificates alone: they are not in the inventory.
	bigger := mustLoadSource(t, "mesh.cue", mustRead(t, "../mesh.cue")+"\nnamespaces: \"cert-prune\": {inject: \"enabled\", create: true}\n")
	if _, err := applyMesh(t, ctx, c, bigger, apply.Options{}); err != nil {
		t.Fatal(err)
	}
	pruned, err := applyMesh(t, ctx, c, m, apply.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if pruned.Summary[apply.Deleted] != 1 {
		t.Errorf("the namespace was not pruned: %v", pruned.Entries)
	}
	inv, err := c.ReadInventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range inv.Objects {
		if r.Name == plan.CertificatesSecret {
			t.Errorf("the inventory lists %s, so prune could delete it", r.ID())
		}
	}
	certsAfter := certificatesSecret(t, ctx, c)
	if certsAfter.ResourceVersion != certsBefore.ResourceVersion || certsAfter.UID != certsBefore.UID || certsAfter.DeletionTimestamp != nil {
		t.Errorf("secret %s was rewritten or deleted: resourceVersion %s → %s, uid %s → %s",
			plan.CertificatesSecret, certsBefore.ResourceVersion, certsAfter.ResourceVersion, certsBefore.UID, certsAfter.UID)
	}
	issuer := &corev1.Secret{}
	if err := c.Kube().Get(ctx, types.NamespacedName{Namespace: "linkerd", Name: "linkerd-identity-issuer"}, issuer); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(issuer.Data["crt.pem"], certsBefore.Data["issuer.crt"]) {
		t.Error("the issuer in the cluster is not the one meshctl-certificates keeps")
	}
}

func certificatesSecret(t *testing.T, ctx context.Context, c *apply.Client) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	if err := c.Kube().Get(ctx, types.NamespacedName{Namespace: c.Namespace(), Name: plan.CertificatesSecret}, s); err != nil {
		t.Fatal(err)
	}
	return s
}

func stageNames(set apply.Set) []string {
	var out []string
	for _, st := range set.Stages {
		out = append(out, st.Name)
	}
	return out
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustLoadSource(t testing.TB, name, src string) *schema.Mesh {
	t.Helper()
	m, err := schema.LoadSources(schema.Source{Name: name, Data: []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustSet(t *testing.T, ctx context.Context, c *apply.Client, m *schema.Mesh) apply.Set {
	set, _, err := plan.ForCluster(ctx, m, plan.Cluster{Client: c, DryRun: true}, "test")
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// TestCNIRollsOut switches the applied mesh to the CNI plugin: the
// linkerd-cni DaemonSet rolls out on every node before the control plane,
// whose pods then pass PSA "restricted".
func TestCNIRollsOut(t *testing.T) {
	cluster := shared.Get(t)
	ctx, c := connect(t, "")
	m, err := schema.LoadSources(schema.Source{Name: "cni.cue", Data: []byte("cni: enabled: true\nnamespaces: booksapp: {inject: \"enabled\", create: true}\n")})
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	res, err := applyMesh(t, ctx, c, m, apply.Options{Wait: true, Timeout: 2 * time.Minute, Progress: &progress, ForcePrune: true})
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, progress.String())
	}
	set := mustSet(t, ctx, c, m)
	if got := stageNames(set); !slices.Equal(got, []string{"crds", "cni", "control-plane"}) {
		t.Fatalf("stages %v", got)
	}
	// The DaemonSet was ready on every node before the control plane's
	// changes were written.
	checkStageOrder(t, ctx, c.Kube(), cluster.Client, set, res, true)
	ds, err := cluster.Client.AppsV1().DaemonSets("linkerd-cni").Get(ctx, "linkerd-cni", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Status.NumberReady != 3 || ds.Status.DesiredNumberScheduled != 3 {
		t.Errorf("linkerd-cni: %d/%d ready, want one per node", ds.Status.NumberReady, ds.Status.DesiredNumberScheduled)
	}
	ns, err := cluster.Client.CoreV1().Namespaces().Get(ctx, "linkerd", metav1.GetOptions{})
	if err != nil || ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace linkerd: %v %v", ns.Labels, err)
	}
	dep, err := cluster.Client.AppsV1().Deployments("linkerd").Get(ctx, "linkerd-destination", metav1.GetOptions{})
	if err != nil || dep.Status.AvailableReplicas != 1 {
		t.Errorf("linkerd-destination not available under PSA restricted: %+v %v", dep.Status, err)
	}
}

// TestEveryExampleIsAccepted server-side dry-runs every example and golden
// input on top of the applied default mesh: the API server, with the CRDs
// the render installs, accepts every object.
func TestEveryExampleIsAccepted(t *testing.T) {
	ctx, c := connect(t, "")
	paths, _ := filepath.Glob("../examples/*.cue")
	goldens, _ := filepath.Glob("../testdata/golden/*.cue")
	for _, p := range append(paths, goldens...) {
		t.Run(filepath.Base(p), func(t *testing.T) {
			m := load(t, p)
			meshtest.Prepare(t, shared.Get(t), m)
			res, err := applyMesh(t, ctx, c, m, apply.Options{DryRun: true, ForcePrune: true})
			if err != nil {
				t.Fatalf("server rejected the render: %v", err)
			}
			if len(res.Entries) == 0 {
				t.Error("nothing dry-run")
			}
		})
	}
}

// TestHAWithTwoNodesSaysWhy runs HA on a cluster of its own with two
// nodes: the required per-host anti-affinity cannot place three replicas,
// and the wait says so.
func TestHAWithTwoNodesSaysWhy(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{Full: true, Nodes: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, err := apply.New(cluster.Config, "")
	if err != nil {
		t.Fatal(err)
	}
	m := load(t, "../examples/ha.cue")
	// Before anything is applied, apply and diff warn why.
	warnings := plan.Warnings(ctx, m, c)
	if len(warnings) != 2 || !strings.HasPrefix(warnings[0], "HA: 2 nodes are schedulable (node-0, node-1). HA runs 3 replicas") ||
		!strings.HasPrefix(warnings[1], "HA: the schedulable nodes span 2 zones (zone-a, zone-b)") {
		t.Errorf("warnings on two nodes in two zones: %q", warnings)
	}
	if _, err := applyMesh(t, ctx, c, m, apply.Options{}); err != nil {
		t.Fatal(err)
	}
	// Wait for the state the wait must explain, however long a busy
	// machine takes to get there: two replicas ready, the third Pending.
	err = wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		d, err := cluster.Client.AppsV1().Deployments("linkerd").Get(ctx, "linkerd-destination", metav1.GetOptions{})
		if err != nil || d.Status.ReadyReplicas < 2 {
			return false, nil
		}
		pods, err := cluster.Client.CoreV1().Pods("linkerd").List(ctx, metav1.ListOptions{LabelSelector: "linkerd.io/control-plane-component=destination"})
		if err != nil {
			return false, nil
		}
		for _, p := range pods.Items {
			for _, cd := range p.Status.Conditions {
				if cd.Type == corev1.PodScheduled && cd.Status == corev1.ConditionFalse && strings.Contains(cd.Message, "anti-affinity") {
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("linkerd-destination never reached 2 ready replicas and an unschedulable third: %v", err)
	}
	_, err = applyMesh(t, ctx, c, m, apply.Options{Wait: true, Timeout: 5 * time.Second})
	if err == nil {
		t.Fatal("HA became ready on two nodes")
	}
	for _, want := range []string{"stage control-plane: not ready", "linkerd-destination: 2/3 replicas ready", "Pending", "anti-affinity"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestHAWarnsOnlyWhenItMust: on three schedulable nodes in three zones,
// HA warns of nothing, and neither does a mesh without HA.
func TestHAWarnsOnlyWhenItMust(t *testing.T) {
	ctx, c := connect(t, "")
	for _, path := range []string{"../examples/ha.cue", "../mesh.cue"} {
		if w := plan.Warnings(ctx, load(t, path), c); len(w) != 0 {
			t.Errorf("%s: %q", path, w)
		}
	}
}

// TestHAWebhookRejectionIsExplained: with HA, Linkerd's webhooks fail
// closed. In a cluster of this test's own (API server only: HA's webhooks
// would reject what later tests apply), their Services never get
// endpoints, so the API server rejects the ServiceProfile the sp-validator
// guards, and meshctl says what that means.
func TestHAWebhookRejectionIsExplained(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := apply.New(cluster.Config, "")
	if err != nil {
		t.Fatal(err)
	}
	m := mustLoadSource(t, "ha.cue", `controlPlane: ha: true
namespaces: shop: {inject: "enabled", create: true}
services: "shop/cart": {model: "serviceprofile", routes: [{name: "GET /cart", method: "GET", pathRegex: "/cart"}]}
`)
	_, err = applyMesh(t, ctx, c, m, apply.Options{})
	if err == nil {
		t.Fatal("the API server accepted a ServiceProfile its fail-closed webhook could not check")
	}
	for _, want := range []string{"stage mesh-config", "linkerd-sp-validator", "failurePolicy Fail", "admission webhook is unreachable"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	sps, err := cluster.Client.Discovery().ServerResourcesForGroupVersion("linkerd.io/v1alpha2")
	if err != nil || len(sps.APIResources) == 0 {
		t.Fatalf("the ServiceProfile CRD is not served: %v", err)
	}
	got := &unstructured.UnstructuredList{}
	got.SetAPIVersion("linkerd.io/v1alpha2")
	got.SetKind("ServiceProfileList")
	if err := c.Kube().List(ctx, got, client.InNamespace("shop")); err != nil || len(got.Items) != 0 {
		t.Errorf("ServiceProfiles in shop: %d (%v), want none", len(got.Items), err)
	}
}
