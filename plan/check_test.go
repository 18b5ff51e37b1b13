package plan_test

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/internal/promtest"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
)

// checkMesh has a check of every kind to run: CNI with the DaemonSet's
// tolerations narrowed (so that a taint can make it miss a node), viz, and
// a split whose backends need endpoints.
const checkMesh = `cni: enabled: true
viz: enabled: true
namespaces: booksapp: {inject: "enabled", create: true}
services: "booksapp/books": {port: 8080, split: {"books-v1": 90, "books-v2": 10}}
patches: [{
	target: {kind: "DaemonSet", name: "linkerd-cni"}
	patch: """
		[{"op": "replace", "path": "/spec/template/spec/tolerations", "value": [{"key": "CriticalAddonsOnly", "operator": "Exists"}]}]
		"""
}]
`

// checkEnv is a cluster with checkMesh applied, and what the checks read
// beside it.
type checkEnv struct {
	t       *testing.T
	ctx     context.Context
	cluster *testcluster.Cluster
	c       *apply.Client
	fleet   *plan.Fleet
	apply   func()
	opts    plan.CheckOptions
}

func (e *checkEnv) check(o plan.CheckOptions) *plan.CheckReport {
	e.t.Helper()
	rep, err := plan.Check(e.ctx, mustLoadSource(e.t, "mesh.cue", checkMesh), e.fleet, o)
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

// result is the check id of rep.
func result(t *testing.T, rep *plan.CheckReport, id string) plan.CheckResult {
	t.Helper()
	for _, r := range rep.Results {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no check %s in the report", id)
	return plan.CheckResult{}
}

// notOK lists the checks that did not pass, as "id: status: message".
func notOK(rep *plan.CheckReport) []string {
	var out []string
	for _, r := range rep.Results {
		if r.Status != plan.CheckOK {
			out = append(out, r.ID+": "+string(r.Status)+": "+r.Message)
		}
	}
	return out
}

// healthy waits until no check fails and the only warning is the tap
// APIService's (its Service's pods have loopback addresses here, which no
// endpoint may hold): the Prometheus check reads the exporter's series
// once Prometheus has scraped them.
func (e *checkEnv) healthy(what string) {
	e.t.Helper()
	var rep *plan.CheckReport
	err := wait.PollUntilContextTimeout(e.ctx, 200*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		rep = e.check(e.opts)
		bad := notOK(rep)
		return len(bad) == 1 && strings.HasPrefix(bad[0], "l5d-tap-api: warning: APIService/v1alpha1.tap.linkerd.io is not available: MissingEndpoints"), nil
	})
	if err != nil {
		e.t.Fatalf("%s: the checks that did not pass:\n%s", what, strings.Join(notOK(rep), "\n"))
	}
}

// TestCheckNamesBrokenStates: on a real API server, the healthy mesh
// passes; each broken state is found under its check's id, with the status
// upstream gives it, a message naming what is wrong and upstream's hint;
// and each is healthy again after the repair.
func TestCheckNamesBrokenStates(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{Full: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := apply.New(cluster.Config, "")
	if err != nil {
		t.Fatal(err)
	}
	e := &checkEnv{t: t, ctx: ctx, cluster: cluster, c: c, fleet: plan.Single(&plan.Member{Client: c})}
	e.apply = func() {
		t.Helper()
		m := mustLoadSource(t, "mesh.cue", checkMesh)
		if _, err := plan.Apply(ctx, m, plan.Single(&plan.Member{Client: c}), plan.ApplyOptions{Version: "test", Apply: apply.Options{Wait: true, Timeout: 2 * time.Minute, Prune: true}}); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
	e.apply()
	cs := cluster.Client
	books := cs.CoreV1().Pods("booksapp")
	// The split's Services and their endpoints (an address nothing dials).
	for _, name := range []string{"books", "books-v1", "books-v2"} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 8080}}}}
		if _, err := cs.CoreV1().Services("booksapp").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	endpoints := func(name, ip string) {
		slice := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
			Ports:       []discoveryv1.EndpointPort{{Port: ptr.To(int32(8080))}},
		}
		if _, err := cs.DiscoveryV1().EndpointSlices("booksapp").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	endpoints("books-v1", "198.51.100.1")
	endpoints("books-v2", "198.51.100.2")
	roots, err := cs.CoreV1().ConfigMaps("linkerd").Get(ctx, "linkerd-identity-trust-roots", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	current := "edge-25.10.7"
	meshedPod := func(name, version, rootsPEM string, node ...string) *corev1.Pod {
		p := pod(name, map[string]string{"linkerd.io/proxy-version": version, generators.AnnotationTrustRoot: generators.TrustRootHash(rootsPEM)})
		// On a node no one runs, kwok leaves its status to the test.
		p.Spec.NodeName = append(node, "")[0]
		created, err := books.Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return created
	}
	meshedPod("books-v1-a", current, roots.Data["ca-bundle.crt"])
	// Viz's metrics, from a real Prometheus that scrapes proxy metrics.
	exporter := promtest.NewExporter(t)
	exporter.Set("booksapp", "books-v1", promtest.Traffic{RPS: 10, SuccessRate: 1, LatencyMs: 5})
	prom := promtest.Start(t, exporter.Addr())
	e.opts = plan.CheckOptions{Version: "test", DataPlane: true, PrometheusURL: prom.URL()}
	e.healthy("the healthy mesh")

	deleted := func(u *unstructured.Unstructured) func() {
		return func() {
			if err := c.Kube().Delete(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
	}
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	crd.SetName("serviceprofiles.linkerd.io")
	cases := []struct {
		name string
		// broken breaks the cluster; the check then finds it (within a
		// minute: a node's readiness or a DaemonSet's status may lag).
		broken func()
		id     string
		status plan.CheckStatus
		says   []string
		// repaired repairs it; nil re-applies mesh.cue.
		repaired func()
		opts     *plan.CheckOptions
	}{{
		name: "a CRD deleted", broken: deleted(crd.DeepCopy()),
		id: "l5d-existence-crd", status: plan.CheckError, says: []string{"CustomResourceDefinition/serviceprofiles.linkerd.io is missing"},
	}, {
		name: "a CRD with a stale schema", broken: func() { staleSchema(t, ctx, c, "httproutes.policy.linkerd.io") },
		id: "meshctl-crd-schema", status: plan.CheckError, says: []string{"CustomResourceDefinition/httproutes.policy.linkerd.io: spec.versions"},
	}, {
		name: "an issuer within its rotation window", broken: func() { shortIssuer(t, ctx, cluster) },
		id: "l5d-identity-issuer-cert-not-expiring-soon", status: plan.CheckWarning, says: []string{"issuer expires ", "the rotation policy has it due, and the next meshctl apply"},
	}, {
		name: "a webhook's caBundle that does not sign its serving certificate", broken: func() { foreignCABundle(t, ctx, cluster) },
		id: "l5d-proxy-injector-webhook-cert-valid", status: plan.CheckError, says: []string{"not valid for linkerd-proxy-injector.linkerd.svc under the caBundle of MutatingWebhookConfiguration/linkerd-proxy-injector-webhook-config", "unknown authority"},
	}, {
		name: "the injector scaled to 0", broken: func() {
			scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "linkerd-proxy-injector", Namespace: "linkerd"}, Spec: autoscalingv1.ScaleSpec{Replicas: 0}}
			if _, err := cs.AppsV1().Deployments("linkerd").UpdateScale(ctx, "linkerd-proxy-injector", scale, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		},
		id: "l5d-api-control-ready", status: plan.CheckError, says: []string{"Deployment/linkerd/linkerd-proxy-injector: 0 of 1 replicas available (spec.replicas is 0)"},
	}, {
		name: "a node tainted so that the CNI DaemonSet misses it", broken: func() { taintedNode(t, ctx, cluster, "node-gpu") },
		id: "cni-plugin-ready", status: plan.CheckError, says: []string{"node node-gpu: the DaemonSet does not tolerate its taint dedicated=gpu:NoSchedule"},
		repaired: func() {
			if err := cs.CoreV1().Nodes().Delete(ctx, "node-gpu", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		},
	}, {
		name: "a meshed pod two releases behind, and a Completed one",
		broken: func() {
			meshedPod("books-old", "edge-24.11.8", roots.Data["ca-bundle.crt"])
			done := meshedPod("books-done", "edge-24.2.4", roots.Data["ca-bundle.crt"], "node-gone")
			done.Status.Phase = corev1.PodSucceeded
			if _, err := books.UpdateStatus(ctx, done, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		},
		id: "l5d-data-plane-version", status: plan.CheckError, says: []string{"pod booksapp/books-old runs proxy edge-24.11.8, more than one release behind edge-25.10.7"},
		repaired: func() {
			if err := books.Delete(ctx, "books-old", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}); err != nil {
				t.Fatal(err)
			}
		},
	}, {
		name: "a meshed pod one release behind",
		broken: func() {
			meshedPod("books-older", "edge-25.4.4", roots.Data["ca-bundle.crt"])
		},
		id: "l5d-data-plane-version", status: plan.CheckWarning, says: []string{"pod booksapp/books-older runs proxy edge-25.4.4, one release behind edge-25.10.7"},
		repaired: func() {
			if err := books.Delete(ctx, "books-older", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}); err != nil {
				t.Fatal(err)
			}
		},
	}, {
		name: "viz's Prometheus without endpoints, read through the API server's service proxy", broken: func() {},
		opts: &plan.CheckOptions{Version: "test"},
		id:   "l5d-viz-prometheus", status: plan.CheckWarning, says: []string{"/api/v1/namespaces/linkerd-viz/services/http:prometheus:9090/proxy", `no endpoints available for service "prometheus"`},
		repaired: func() {},
	}, {
		name: "a split backend without endpoints", broken: func() {
			if err := cs.DiscoveryV1().EndpointSlices("booksapp").Delete(ctx, "books-v2", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		},
		id: "meshctl-split-endpoints", status: plan.CheckError, says: []string{"service booksapp/books sends 10% to booksapp/books-v2, which has no ready endpoints"},
		repaired: func() { endpoints("books-v2", "198.51.100.2") },
	}, {
		name: "a reconcile loop that fails", broken: func() {
			rec := `{"source":"mesh.cue","mode":"correct","revision":"abc123","state":"failing","lastError":"applying: connection refused\nmore","objects":3}`
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: plan.LoopRecordName}, Data: map[string]string{plan.LoopRecordKey: rec}}
			if _, err := cs.CoreV1().ConfigMaps(apply.DefaultNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		},
		id: "meshctl-reconciler", status: plan.CheckError, says: []string{"the loop is failing: applying: connection refused"},
		repaired: func() {
			if err := cs.CoreV1().ConfigMaps(apply.DefaultNamespace).Delete(ctx, plan.LoopRecordName, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		},
	}, {
		name: "an out-of-band edit", broken: func() {
			patch := []byte(`{"data":{"values":"edited: by hand\n"}}`)
			if _, err := cs.CoreV1().ConfigMaps("linkerd").Patch(ctx, "linkerd-config", types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
				t.Fatal(err)
			}
		},
		id: "meshctl-in-sync", status: plan.CheckError, says: []string{"1 of ", "ConfigMap/linkerd/linkerd-config (data.values"},
	}, {
		// Last: the trust roots change for good.
		name: "pods on the old trust roots after rotate trust-anchor's first step", broken: func() {
			r := &plan.AnchorRotation{}
			m := mustLoadSource(t, "mesh.cue", checkMesh)
			if _, err := plan.Apply(ctx, m, plan.Single(&plan.Member{Client: c}), plan.ApplyOptions{Version: "test", Anchor: r, Apply: apply.Options{Wait: true, Timeout: 2 * time.Minute, Prune: true}}); err != nil {
				t.Fatal(err)
			}
			if r.Result.Step != plan.StepBundle {
				t.Fatalf("the rotation took step %q", r.Result.Step)
			}
		},
		id: "l5d-identity-data-plane-proxies-certs-match-ca", status: plan.CheckWarning, says: []string{"pod booksapp/books-v1-a runs on other trust roots"},
		repaired: func() {
			roots, err := cs.CoreV1().ConfigMaps("linkerd").Get(ctx, "linkerd-identity-trust-roots", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := books.Get(ctx, "books-v1-a", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			p.Annotations[generators.AnnotationTrustRoot] = generators.TrustRootHash(roots.Data["ca-bundle.crt"])
			if _, err := books.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			opts := e.opts
			if tc.opts != nil {
				opts = *tc.opts
			}
			tc.broken()
			var got plan.CheckResult
			err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
				got = result(t, e.check(opts), tc.id)
				return got.Status == tc.status, nil
			})
			if err != nil {
				t.Fatalf("check %s: %s %q, want %s", tc.id, got.Status, got.Message, tc.status)
			}
			for _, s := range tc.says {
				if !strings.Contains(got.Message, s) {
					t.Errorf("check %s says %q, want it to say %q", tc.id, got.Message, s)
				}
			}
			if strings.Contains(got.Message, "books-done") {
				t.Errorf("check %s names a Completed pod: %q", tc.id, got.Message)
			}
			if got.Next == "" {
				t.Errorf("check %s gives no next step", tc.id)
			}
			if !strings.HasPrefix(tc.id, "meshctl-") && !strings.HasPrefix(got.Hint, plan.HintBase+"l5d-") && !strings.HasPrefix(got.Hint, plan.HintBase+"cni-") {
				t.Errorf("check %s has hint %q", tc.id, got.Hint)
			}
			if tc.repaired == nil {
				e.apply()
			} else {
				tc.repaired()
			}
			e.healthy("after the repair")
		})
	}

	// --wait runs the failing checks again, saying which, until they pass.
	t.Run("wait", func(t *testing.T) {
		s := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "linkerd-identity", Namespace: "linkerd"}, Spec: autoscalingv1.ScaleSpec{Replicas: 0}}
		if _, err := cs.AppsV1().Deployments("linkerd").UpdateScale(ctx, "linkerd-identity", s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The first progress line has apply restore it.
		progress := &firstWrite{then: func() {
			m := mustLoadSource(t, "mesh.cue", checkMesh)
			if _, err := plan.Apply(ctx, m, e.fleet, plan.ApplyOptions{Version: "test", Apply: apply.Options{Prune: true}}); err != nil {
				t.Error(err)
			}
		}}
		o := e.opts
		o.Wait, o.Progress = 2*time.Minute, progress
		rep, err := plan.Check(ctx, mustLoadSource(t, "mesh.cue", checkMesh), e.fleet, o)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Count(plan.CheckError) != 0 {
			t.Errorf("after --wait: %q", notOK(rep))
		}
		// The scale is drift at once; the pods go a moment later.
		if !strings.HasPrefix(progress.first, "waiting for ") || !strings.Contains(progress.first, "meshctl-in-sync (") {
			t.Errorf("progress %q", progress.first)
		}
	})
}

// firstWrite calls then on its first write, and keeps what it was.
type firstWrite struct {
	first string
	then  func()
}

func (w *firstWrite) Write(b []byte) (int, error) {
	if w.first == "" {
		w.first = string(b)
		w.then()
	}
	return len(b), nil
}

// staleSchema replaces the CRD's schema with an older one, as an installer
// of an earlier release would: the first property of the served version's
// spec is gone.
func staleSchema(t *testing.T, ctx context.Context, c *apply.Client, name string) {
	t.Helper()
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	if err := c.Kube().Get(ctx, types.NamespacedName{Name: name}, crd); err != nil {
		t.Fatal(err)
	}
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	v := versions[len(versions)-1].(map[string]any)
	props, _, _ := unstructured.NestedMap(v, "schema", "openAPIV3Schema", "properties", "spec", "properties")
	keys := slices.Sorted(maps.Keys(props))
	if len(keys) == 0 {
		t.Fatalf("%s: no spec properties to take away", name)
	}
	unstructured.RemoveNestedField(v, "schema", "openAPIV3Schema", "properties", "spec", "properties", keys[0])
	if err := unstructured.SetNestedSlice(crd.Object, versions, "spec", "versions"); err != nil {
		t.Fatal(err)
	}
	if err := c.Kube().Update(ctx, crd); err != nil {
		t.Fatal(err)
	}
}

// shortIssuer re-signs the issuer, under the same anchor, as one made
// seven minutes ago to last ten: due by the default policy (a third of its
// life left), and within upstream's 60-day window.
func shortIssuer(t *testing.T, ctx context.Context, cluster *testcluster.Cluster) {
	t.Helper()
	stored, err := cluster.Client.CoreV1().Secrets(apply.DefaultNamespace).Get(ctx, plan.CertificatesSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := certs.FromData(stored.Data)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := certs.Reissue(*b.Anchor, certs.Options{Now: time.Now().Add(-7 * time.Minute), IssuerLifetime: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	b.Issuer = &issuer
	stored.Data = b.Data()
	if _, err := cluster.Client.CoreV1().Secrets(apply.DefaultNamespace).Update(ctx, stored, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	live, err := cluster.Client.CoreV1().Secrets("linkerd").Get(ctx, "linkerd-identity-issuer", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	live.Data["crt.pem"], live.Data["key.pem"] = []byte(issuer.CertPEM), []byte(issuer.KeyPEM)
	if _, err := cluster.Client.CoreV1().Secrets("linkerd").Update(ctx, live, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// foreignCABundle gives the injector's webhook the sp-validator's
// certificate as its caBundle: a CA that did not sign the injector's pair.
func foreignCABundle(t *testing.T, ctx context.Context, cluster *testcluster.Cluster) {
	t.Helper()
	other, err := cluster.Client.CoreV1().Secrets("linkerd").Get(ctx, "linkerd-sp-validator-k8s-tls", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hooks := cluster.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	mwc, err := hooks.Get(ctx, "linkerd-proxy-injector-webhook-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mwc.Webhooks[0].ClientConfig.CABundle = other.Data["tls.crt"]
	if _, err := hooks.Update(ctx, mwc, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
}

// taintedNode adds a node kwok runs, with a taint the CNI DaemonSet does
// not tolerate (checkMesh narrows its tolerations).
func taintedNode(t *testing.T, ctx context.Context, cluster *testcluster.Cluster, name string) {
	t.Helper()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"topology.kubernetes.io/zone": "zone-a", "type": "kwok"},
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
		},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}},
	}
	if _, err := cluster.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestCheckPre: before the first apply, --pre asks the server, as the
// caller, whether it may create and patch what apply writes, and whether
// the server serves every kind the render holds. An admin may; a user who
// may only read is told what it may not do, where; a kind the server does
// not serve (policy/v1 turned off, for HA's PodDisruptionBudgets) is named.
func TestCheckPre(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{APIServerFlags: []string{"--runtime-config=policy/v1=false"}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := mustLoadSource(t, "mesh.cue", "controlPlane: ha: true\n")
	check := func(cfg *rest.Config) *plan.CheckReport {
		t.Helper()
		c, err := apply.New(cfg, "")
		if err != nil {
			t.Fatal(err)
		}
		rep, err := plan.Check(ctx, m, plan.Single(&plan.Member{Client: c}), plan.CheckOptions{Version: "test", Pre: true})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	admin := check(cluster.Config)
	var categories []string
	for _, r := range admin.Results {
		if !slices.Contains(categories, r.Category) {
			categories = append(categories, r.Category)
		}
	}
	if want := []string{"kubernetes-api", "kubernetes-version", "pre-kubernetes-setup"}; !slices.Equal(categories, want) {
		t.Errorf("--pre ran %q, want %q", categories, want)
	}
	if got, want := notOK(admin), []string{"meshctl-pre-served-kinds: error: policy/v1 PodDisruptionBudget is not served"}; !slices.Equal(got, want) {
		t.Errorf("an admin: %q, want %q", got, want)
	}

	// A user who may read everything and write nothing.
	reader := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "read-all"}, Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"get", "list", "watch"}}}}
	if _, err := cluster.Client.RbacV1().ClusterRoles().Create(ctx, reader, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "alice-reads"}, RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "read-all"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "alice"}}}
	if _, err := cluster.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	alice := rest.CopyConfig(cluster.Config)
	alice.Impersonate = rest.ImpersonationConfig{UserName: "alice"}
	rep := check(alice)
	for id, says := range map[string]string{
		"pre-k8s-cluster-k8s":     "may not create customresourcedefinitions.apiextensions.k8s.io cluster-wide",
		"pre-k8s-serviceaccounts": "may not create serviceaccounts in namespace linkerd; may not patch serviceaccounts in namespace linkerd",
		"pre-k8s-cronjobs":        "may not create cronjobs.batch in namespace linkerd",
		"pre-k8s-secrets":         "may not create secrets in namespace linkerd",
		"meshctl-pre-other-kinds": "may not create roles.rbac.authorization.k8s.io in namespace linkerd",
	} {
		got := result(t, rep, id)
		if got.Status != plan.CheckError || !strings.Contains(got.Message, says) {
			t.Errorf("alice, %s: %s %q, want an error saying %q", id, got.Status, got.Message, says)
		}
	}
}

// TestCheckPassesHealthyMeshes: the default mesh and the HA mesh pass
// every check, with no warning, and so do the transitions between them (HA
// on, then off): the checks measure the cluster against the mesh.cue of
// the moment, not against what was applied before it.
func TestCheckPassesHealthyMeshes(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{Full: true})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := apply.New(cluster.Config, "")
	if err != nil {
		t.Fatal(err)
	}
	f := plan.Single(&plan.Member{Client: c})
	for _, step := range []struct{ name, src string }{
		{"default", "{}\n"},
		{"HA on", "controlPlane: ha: true\n"},
		{"HA off", "{}\n"},
	} {
		m := mustLoadSource(t, "mesh.cue", step.src)
		if _, err := plan.Apply(ctx, m, f, plan.ApplyOptions{Version: "test", Apply: apply.Options{Wait: true, Timeout: 3 * time.Minute, Prune: true}}); err != nil {
			t.Fatalf("%s: apply: %v", step.name, err)
		}
		var rep *plan.CheckReport
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
			if rep, err = plan.Check(ctx, m, f, plan.CheckOptions{Version: "test", DataPlane: true}); err != nil {
				return false, err
			}
			return len(notOK(rep)) == 0, nil
		})
		if err != nil {
			t.Fatalf("%s: the checks that did not pass (%v):\n%s", step.name, err, strings.Join(notOK(rep), "\n"))
		}
		ha := slices.ContainsFunc(rep.Results, func(r plan.CheckResult) bool { return r.Category == "linkerd-ha-checks" })
		if ha != (step.name == "HA on") {
			t.Errorf("%s: linkerd-ha-checks ran: %v", step.name, ha)
		}
	}
}
