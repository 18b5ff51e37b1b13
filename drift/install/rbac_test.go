package install_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kschema "k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/drift"
	"github.com/meshctl/meshctl/drift/install"
	"github.com/meshctl/meshctl/drift/source"
	"github.com/meshctl/meshctl/internal/meshtest"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

func TestMain(m *testing.M) {
	// controller-runtime's client warns, with a stack trace, when no
	// logger was ever set.
	ctrllog.SetLogger(logr.Discard())
	klog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// rbacEnv is the test cluster with the install applied, and clients that
// act as its ServiceAccount.
type rbacEnv struct {
	ctx     context.Context
	cluster *testcluster.Cluster
	admin   client.Client
	sa      *rest.Config
	c       *apply.Client // apply as the ServiceAccount
}

// TestRBAC runs what meshctl apply and the loop do, as the installed
// ServiceAccount and not as admin, on a cluster with RBAC authorization:
// the default mesh, HA, the platform example with every extension, a
// server dry run of every example and golden input (so every generator's
// kinds), a prune back to the default mesh, the loop's list and watch of
// every kind, and its Lease and Events. A Forbidden anywhere fails it.
func TestRBAC(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{Full: true})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	t.Cleanup(cancel)
	admin, err := client.New(cluster.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &rbacEnv{ctx: ctx, cluster: cluster, admin: admin}
	objs, err := install.Objects(install.DefaultOptions("test"))
	if err != nil {
		t.Fatal(err)
	}
	e.applyAsAdmin(t, objs)
	e.sa = e.token(t, apply.DefaultNamespace)
	if e.c, err = apply.New(e.sa, apply.DefaultNamespace); err != nil {
		t.Fatal(err)
	}
	// The bindings take effect once the authorizer's cache holds them.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := kubernetes.NewForConfigOrDie(e.sa).CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("the ServiceAccount cannot list namespaces: %v", err)
	}

	t.Run("the token is the ServiceAccount's, not admin's", func(t *testing.T) {
		kube := kubernetes.NewForConfigOrDie(e.sa)
		review, err := kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if want := "system:serviceaccount:meshctl:" + install.Name; review.Status.UserInfo.Username != want {
			t.Fatalf("acting as %q, want %q", review.Status.UserInfo.Username, want)
		}
		// Outside the table: a node is listed, never read or written.
		_, err = kube.CoreV1().Nodes().Get(ctx, "node-0", metav1.GetOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("get node as the ServiceAccount: %v, want Forbidden", err)
		}
	})
	// Real applies first, HA last: with failurePolicy Fail, the proxy
	// injector's webhook, which never has endpoints here, then rejects
	// what it guards.
	t.Run("default mesh", func(t *testing.T) {
		e.meshApply(t, load(t, "../../mesh.cue"), apply.Options{Prune: true})
		if res := e.meshApply(t, load(t, "../../mesh.cue"), apply.Options{Prune: true}); res.Writes != 0 {
			t.Errorf("second apply wrote %d objects: %v", res.Writes, res.Entries)
		}
	})
	t.Run("CNI, viz, tracing, SMI, traffic", func(t *testing.T) {
		e.meshApply(t, loadAll(t, "cni.cue", "tracing.cue", "smi.cue", "grafana.cue"), apply.Options{Prune: true, ForcePrune: true})
	})
	t.Run("every input, server dry run", func(t *testing.T) {
		paths, _ := filepath.Glob("../../examples/*.cue")
		goldens, _ := filepath.Glob("../../testdata/golden/*.cue")
		multi, _ := filepath.Glob("../../testdata/golden/multicluster/*.cue")
		for _, p := range append(append(paths, goldens...), multi...) {
			t.Run(strings.TrimPrefix(p, "../../"), func(t *testing.T) {
				m := load(t, p)
				e.prepare(t, m)
				clusters := []string{""}
				if len(m.Clusters) > 0 {
					clusters = slices.Sorted(maps.Keys(m.Clusters))
				}
				for _, c := range clusters {
					_, err := e.meshApplyCluster(t, m, c, apply.Options{DryRun: true, Prune: true, ForcePrune: true})
					switch {
					case err != nil && forbidden(err.Error()):
						t.Errorf("cluster %q: %v", c, err)
					case err != nil && c != "":
						// Without its links' targets a cluster renders
						// placeholders the server may reject as invalid.
						t.Logf("cluster %q, rendered without its links' targets: %v", c, err)
					case err != nil:
						t.Error(err)
					}
				}
			})
		}
	})
	t.Run("prune back to the default mesh", func(t *testing.T) {
		before, err := e.c.ReadInventory(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res := e.meshApply(t, load(t, "../../mesh.cue"), apply.Options{Prune: true, ForcePrune: true})
		after, err := e.c.ReadInventory(ctx)
		if err != nil {
			t.Fatal(err)
		}
		kept := map[string]bool{}
		for _, r := range after.Objects {
			kept[r.ID()] = true
		}
		var gone []apply.Ref
		kinds := map[string]bool{}
		for _, r := range before.Objects {
			if !kept[r.ID()] {
				gone = append(gone, r)
				kinds[r.Kind] = true
			}
		}
		for _, k := range []string{"Namespace", "DaemonSet", "APIService", "TrafficSplit", "ClusterRole", "Deployment"} {
			if !kinds[k] {
				t.Errorf("no %s left the inventory: %v", k, gone)
			}
		}
		pruned := map[string]apply.Action{}
		for _, en := range res.Entries {
			if en.Action == apply.Skipped {
				t.Errorf("%s", en)
			}
			if en.Stage == "prune" {
				pruned[en.ID] = en.Action
			}
		}
		for _, r := range gone {
			// Configured: a Namespace meshctl did not create, released.
			if pruned[r.ID()] == apply.Deleted {
				e.waitGone(t, r)
			}
		}
	})
	t.Run("the loop corrects a deletion", func(t *testing.T) {
		e.loop(t)
	})
	t.Run("HA", func(t *testing.T) {
		e.meshApply(t, load(t, "../../examples/ha.cue"), apply.Options{Prune: true, ForcePrune: true})
	})
	t.Run("list and watch every kind", func(t *testing.T) {
		e.listAndWatch(t)
	})
	t.Run("Lease and Events in the meshctl namespace only", func(t *testing.T) {
		e.leaseAndEvents(t)
	})
	t.Run("Flux source", func(t *testing.T) {
		e.fluxSource(t)
	})
}

// loadAll loads golden inputs as one mesh.
func loadAll(t *testing.T, names ...string) *schema.Mesh {
	t.Helper()
	var srcs []schema.Source
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("../../testdata/golden", n))
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, schema.Source{Name: n, Data: b})
	}
	m, err := schema.LoadSources(srcs...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func load(t *testing.T, path string) *schema.Mesh {
	t.Helper()
	m, err := schema.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// applyAsAdmin server-side applies objs in order, as admin would with
// kubectl apply.
func (e *rbacEnv) applyAsAdmin(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range objs {
		if err := e.admin.Patch(e.ctx, u.DeepCopy(), client.Apply, client.FieldOwner("kubectl"), client.ForceOwnership); err != nil {
			t.Fatalf("%s/%s: %v", u.GetKind(), u.GetName(), err)
		}
	}
}

// token is a rest.Config that authenticates as the reconciler's
// ServiceAccount in ns with a token from the TokenRequest API: the
// cluster's CA, and no client certificate.
func (e *rbacEnv) token(t *testing.T, ns string) *rest.Config {
	t.Helper()
	tok, err := e.cluster.Client.CoreV1().ServiceAccounts(ns).CreateToken(e.ctx, install.Name,
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ca := e.cluster.Config.CAData
	if len(ca) == 0 {
		if ca, err = os.ReadFile(e.cluster.Config.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	return &rest.Config{Host: e.cluster.Config.Host, BearerToken: tok.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAData: ca}}
}

// prepare creates, as admin, what a mesh takes from outside meshctl: a
// trust anchor in a Secret, and the kinds of cert-manager and the
// Prometheus Operator.
func (e *rbacEnv) prepare(t *testing.T, m *schema.Mesh) {
	t.Helper()
	meshtest.Prepare(t, e.cluster, m)
}

func (e *rbacEnv) meshApply(t *testing.T, m *schema.Mesh, o apply.Options) *apply.Result {
	t.Helper()
	res, err := e.meshApplyCluster(t, m, "", o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// meshApplyCluster runs what meshctl apply runs (the apply verb), as the
// ServiceAccount, and fails the test on any note, warning or skipped
// object that says a request was forbidden. cluster, when set, is the one
// member of m's clusters to apply, reached (as every member) through the
// test's one cluster.
func (e *rbacEnv) meshApplyCluster(t *testing.T, m *schema.Mesh, cluster string, o apply.Options) (*apply.Result, error) {
	t.Helper()
	fleet := plan.Single(&plan.Member{Client: e.c})
	if cluster != "" {
		fleet = plan.NewFleet(func(string) (*plan.Member, error) {
			return &plan.Member{Client: e.c, APIServer: e.sa.Host, CAData: e.sa.CAData}, nil
		})
	}
	var notes []string
	rep, err := plan.Apply(e.ctx, m, fleet, plan.ApplyOptions{Apply: o, Version: "test", Cluster: cluster,
		Prepared: func(r *plan.ClusterReport, _ apply.Set) error {
			notes = append(append(notes, r.Notes...), r.Warnings...)
			return nil
		}})
	if err != nil {
		return nil, err
	}
	res := rep.Clusters[0].Result
	notes = append(notes, rep.Clusters[0].SafeToEvict)
	for _, en := range res.Entries {
		notes = append(notes, en.String())
	}
	for _, n := range notes {
		if forbidden(n) {
			t.Errorf("forbidden: %s", n)
		}
	}
	return res, nil
}

// forbidden reports a message about a request RBAC refused.
func forbidden(msg string) bool {
	return strings.Contains(strings.ToLower(msg), "forbidden")
}

// waitGone waits until r is gone from the server, or, for a Namespace, is
// being deleted.
func (e *rbacEnv) waitGone(t *testing.T, r apply.Ref) {
	t.Helper()
	err := wait.PollUntilContextTimeout(e.ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(r.APIVersion)
		u.SetKind(r.Kind)
		err := e.admin.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: r.Name}, u)
		// NoMatch: its CRD went too.
		return apierrors.IsNotFound(err) || meta.IsNoMatchError(err) || (err == nil && u.GetDeletionTimestamp() != nil), nil
	})
	if err != nil {
		t.Errorf("%s was pruned from the inventory but is still on the server", r.ID())
	}
}

// listAndWatch lists, as the ServiceAccount, every resource of the table
// that the server serves, in every namespace, and watches those the table
// lets it watch, as the loop's informers do.
func (e *rbacEnv) listAndWatch(t *testing.T) {
	dyn := dynamic.NewForConfigOrDie(e.sa)
	disco := discovery.NewDiscoveryClientForConfigOrDie(e.sa)
	served := map[string]kschema.GroupVersionResource{}
	lists, err := disco.ServerPreferredResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		t.Fatal(err)
	}
	inTable := map[string]bool{}
	for _, r := range install.Rules {
		if slices.Contains(r.Verbs, "list") {
			inTable[r.Group+"/"+r.Resource] = true
		}
	}
	for _, l := range lists {
		gv, _ := kschema.ParseGroupVersion(l.GroupVersion)
		for _, r := range l.APIResources {
			served[gv.Group+"/"+r.Name] = gv.WithResource(r.Name)
			// The Namespace prune guard lists every kind a namespace holds
			// (Events and Endpoints aside, apply/prune.go's ignoredKind).
			if r.Namespaced && slices.Contains(r.Verbs, "list") && r.Kind != "Event" && r.Kind != "Endpoints" && !inTable[gv.Group+"/"+r.Name] {
				t.Errorf("the server serves %s in %s, which the Namespace prune guard cannot list: add a list row", r.Name, gv)
			}
		}
	}
	n := 0
	for _, r := range install.Rules {
		gvr, ok := served[r.Group+"/"+r.Resource]
		if !ok {
			continue // a CRD that is not installed (cert-manager's, say)
		}
		n++
		if _, err := dyn.Resource(gvr).List(e.ctx, metav1.ListOptions{Limit: 1}); err != nil {
			t.Errorf("list %s: %v", gvr, err)
		}
		if !slices.Contains(r.Verbs, "watch") {
			continue
		}
		w, err := dyn.Resource(gvr).Watch(e.ctx, metav1.ListOptions{LabelSelector: apply.LabelManagedBy + "=" + apply.ManagedByMeshctl})
		if err != nil {
			t.Errorf("watch %s: %v", gvr, err)
			continue
		}
		w.Stop()
	}
	if n < len(install.Rules)*2/3 {
		t.Errorf("only %d of %d resources in the table are served", n, len(install.Rules))
	}
}

// loop runs meshctl reconcile's loop on the default mesh as the
// ServiceAccount, with leader election: it takes the Lease, records its
// status, and re-creates a managed object deleted out of band.
func (e *rbacEnv) loop(t *testing.T) {
	src, err := source.Parse("", "../../mesh.cue", "", t.TempDir(), e.sa)
	if err != nil {
		t.Fatal(err)
	}
	l, err := drift.New(drift.Options{Config: e.sa, Client: e.c, Source: src, Version: "test",
		LeaderElect: true, Identity: "rbac-test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("loop: %v", err)
		}
	}()
	var st *drift.Status
	inSync := func(ctx context.Context) (bool, error) {
		st, err = drift.ReadStatus(ctx, e.admin, apply.DefaultNamespace)
		return err == nil && st != nil && st.State == drift.StateInSync && st.Leader == "rbac-test", nil
	}
	if err := wait.PollUntilContextTimeout(e.ctx, 200*time.Millisecond, 2*time.Minute, true, inSync); err != nil {
		t.Fatalf("the loop never reported in sync: %+v", st)
	}
	// A ClusterRole: re-creating it takes escalate.
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "linkerd-linkerd-destination"}}
	if err := e.admin.Delete(e.ctx, role); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(e.ctx, 100*time.Millisecond, time.Minute, false, func(ctx context.Context) (bool, error) {
		return e.admin.Get(ctx, client.ObjectKeyFromObject(role), &rbacv1.ClusterRole{}) == nil, nil
	})
	if err != nil {
		t.Errorf("the loop did not re-create ClusterRole %s: %v", role.Name, err)
	}
	if st.LastError != "" {
		t.Errorf("the loop's last error: %s", st.LastError)
	}
}

// leaseAndEvents takes the Lease and records Events, as leader election
// and the loop's recorder do, in the meshctl namespace, and is refused both
// elsewhere.
func (e *rbacEnv) leaseAndEvents(t *testing.T) {
	kube := kubernetes.NewForConfigOrDie(e.sa)
	ns := apply.DefaultNamespace
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: install.Name, Namespace: ns},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("replica-a")}}
	// The loop's test took it already; a fresh cluster's first replica
	// creates it.
	held, err := kube.CoordinationV1().Leases(ns).Get(e.ctx, install.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		held, err = kube.CoordinationV1().Leases(ns).Create(e.ctx, lease, metav1.CreateOptions{})
	}
	if err != nil {
		t.Fatalf("get or create Lease: %v", err)
	}
	held.Spec.HolderIdentity = ptr.To("replica-b")
	if _, err := kube.CoordinationV1().Leases(ns).Update(e.ctx, held, metav1.UpdateOptions{}); err != nil {
		t.Errorf("update Lease: %v", err)
	}
	if _, err := kube.CoordinationV1().Leases(ns).Get(e.ctx, "another", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("get another Lease: %v, want Forbidden", err)
	}
	other := lease.DeepCopy()
	other.Namespace = "kube-system"
	if _, err := kube.CoordinationV1().Leases("kube-system").Create(e.ctx, other, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("create a Lease in kube-system: %v, want Forbidden", err)
	}
	ref := corev1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Namespace: ns, Name: apply.InventoryName}
	now := metav1.Now()
	for _, evNS := range []string{ns, "default"} {
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%d", apply.InventoryName, now.UnixNano()), Namespace: evNS},
			InvolvedObject: ref, Reason: "Corrected", Message: "test", Type: corev1.EventTypeNormal,
			Source: corev1.EventSource{Component: install.Name}, FirstTimestamp: now, LastTimestamp: now, Count: 1}
		ev.InvolvedObject.Namespace = evNS
		_, err := kube.CoreV1().Events(evNS).Create(e.ctx, ev, metav1.CreateOptions{})
		if evNS == ns && err != nil {
			t.Errorf("create Event in %s: %v", evNS, err)
		}
		if evNS != ns && !apierrors.IsForbidden(err) {
			t.Errorf("create Event in %s: %v, want Forbidden", evNS, err)
		}
	}
	ev := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.v1.%d", apply.InventoryName, now.UnixNano()), Namespace: ns},
		EventTime: metav1.NowMicro(), ReportingController: "meshctl.io/reconciler", ReportingInstance: "replica-a",
		Action: "Correct", Reason: "Corrected", Type: corev1.EventTypeNormal, Regarding: ref}
	if _, err := kube.EventsV1().Events(ns).Create(e.ctx, ev, metav1.CreateOptions{}); err != nil {
		t.Errorf("create events.k8s.io Event: %v", err)
	}
}

// fluxSource installs with a Flux GitRepository: the reconciler reads
// that one object, and no other.
func (e *rbacEnv) fluxSource(t *testing.T) {
	e.cluster.StandInCRD(t, "source.toolkit.fluxcd.io", "v1", "GitRepository", "gitrepositories")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flux-system"}}
	if err := e.admin.Create(e.ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, name := range []string{"mesh", "other"} {
		repo := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"url": "https://example.com/mesh"}}}
		repo.SetAPIVersion("source.toolkit.fluxcd.io/v1")
		repo.SetKind("GitRepository")
		repo.SetNamespace("flux-system")
		repo.SetName(name)
		if err := e.admin.Create(e.ctx, repo); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	o := install.DefaultOptions("test")
	o.Source = "flux:GitRepository/flux-system/mesh"
	objs, err := install.Objects(o)
	if err != nil {
		t.Fatal(err)
	}
	e.applyAsAdmin(t, objs)
	dyn := dynamic.NewForConfigOrDie(e.sa).Resource(kschema.GroupVersionResource{Group: "source.toolkit.fluxcd.io", Version: "v1", Resource: "gitrepositories"}).Namespace("flux-system")
	// The RoleBinding takes effect when the authorizer's cache has it.
	err = wait.PollUntilContextTimeout(e.ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := dyn.Get(ctx, "mesh", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("get GitRepository flux-system/mesh as the ServiceAccount: %v", err)
	}
	w, err := dyn.Watch(e.ctx, metav1.ListOptions{FieldSelector: "metadata.name=mesh"})
	if err != nil {
		t.Errorf("watch GitRepository flux-system/mesh: %v", err)
	} else {
		w.Stop()
	}
	if _, err := dyn.Get(e.ctx, "other", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("get GitRepository flux-system/other: %v, want Forbidden", err)
	}
}
