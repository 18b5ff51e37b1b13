package drift_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sschema "k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/drift"
	"github.com/meshctl/meshctl/drift/install"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
)

// fleetMesh is two clusters with the default identity: east keeps the
// fleet anchor's key.
const fleetMesh = `clusters: {
	west: context: "ctx-west"
	east: context: "ctx-east"
}
controlPlane: identity: trustAnchor: keyCluster: "east"
namespaces: booksapp: inject: "enabled"
`

const westToEast = `links: [{from: "west", to: "east"}]
`

// fleetEnvs starts two clusters (with kube-controller-manager, whose token
// controller fills the ServiceAccount tokens the fleet's peers use), and an
// env on each that reads one mesh.cue.
func fleetEnvs(t *testing.T) (west, east *env) {
	t.Helper()
	cs := testcluster.StartManyForTest(t, 2, testcluster.Options{Full: true, Nodes: 1})
	path := filepath.Join(t.TempDir(), "mesh.cue")
	var envs [2]*env
	for i, c := range cs {
		sa := reconcilerInstalled(t, c, []string{"west", "east"}[i])
		ac, err := apply.New(sa, "")
		if err != nil {
			t.Fatal(err)
		}
		envs[i] = &env{t: t, ctx: t.Context(), cluster: c, client: ac, mesh: path, as: sa}
	}
	return envs[0], envs[1]
}

// reconcilerInstalled applies, as admin, what `meshctl install-reconciler
// --cluster name` prints, and returns a config that acts as its
// ServiceAccount: the loop runs with exactly what the install grants.
func reconcilerInstalled(t *testing.T, c *testcluster.Cluster, name string) *rest.Config {
	t.Helper()
	o := install.DefaultOptions("test")
	o.Cluster = name
	objs, err := install.Objects(o)
	if err != nil {
		t.Fatal(err)
	}
	admin := dynamic.NewForConfigOrDie(c.Config)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Client.Discovery()))
	for _, u := range objs {
		m, err := mapper.RESTMapping(u.GroupVersionKind().GroupKind(), u.GroupVersionKind().Version)
		if err != nil {
			t.Fatal(err)
		}
		data, err := u.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Resource(m.Resource).Namespace(u.GetNamespace()).Patch(t.Context(), u.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "kubectl"}); err != nil {
			t.Fatalf("%s/%s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	tok, err := c.Client.CoreV1().ServiceAccounts(o.Namespace).CreateToken(t.Context(), install.Name,
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sa := &rest.Config{Host: c.Config.Host, BearerToken: tok.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAData: c.Config.CAData}}
	// The bindings take effect once the authorizer's cache holds them.
	err = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := kubernetes.NewForConfigOrDie(sa).CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("the reconciler's ServiceAccount cannot list namespaces: %v", err)
	}
	return sa
}

// cliFleet is the fleet as `meshctl apply` reaches it from outside: each
// cluster through the test's admin credentials.
func cliFleet(west, east *env) *plan.Fleet {
	by := map[string]*env{"west": west, "east": east}
	return plan.NewFleet(func(name string) (*plan.Member, error) {
		e := by[name]
		admin, err := apply.New(rest.CopyConfig(e.cluster.Config), "")
		if err != nil {
			return nil, err
		}
		return &plan.Member{Client: admin, APIServer: e.cluster.Config.Host, CAData: e.cluster.Config.CAData, Source: "test"}, nil
	})
}

func (e *env) link() (*unstructured.Unstructured, error) {
	return dynamic.NewForConfigOrDie(e.cluster.Config).Resource(linkGVR).Namespace("linkerd-multicluster").Get(e.ctx, "east", metav1.GetOptions{})
}

// setGateway gives east's gateway Service load-balancer addresses, as the
// cloud does; none takes them away.
func (e *env) setGateway(ips ...string) {
	e.t.Helper()
	svcs := e.cluster.Client.CoreV1().Services("linkerd-multicluster")
	gw, err := svcs.Get(e.ctx, "linkerd-gateway", metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	gw.Status.LoadBalancer.Ingress = nil
	for _, ip := range ips {
		gw.Status.LoadBalancer.Ingress = append(gw.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	if _, err := svcs.UpdateStatus(e.ctx, gw, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func gatewayAddress(u *unstructured.Unstructured) string {
	s, _, _ := unstructured.NestedString(u.Object, "spec", "gatewayAddress")
	return s
}

// TestLoopsKeepAFleet: after one apply of the fleet from outside, a loop in
// each of two real clusters keeps its part of a multicluster mesh, reaching
// the other cluster only with the credentials the fleet gives it. A link
// added to mesh.cue appears in the source through the loop alone; an
// out-of-band edit of the Link is corrected; the target's gateway address
// changing is followed; a target that cannot say its address keeps the
// Link as last applied, with a warning; removing the link prunes exactly
// its objects. The loop of the cluster that keeps the fleet anchor's key
// re-signs the other cluster's issuer when it falls due.
func TestLoopsKeepAFleet(t *testing.T) {
	west, east := fleetEnvs(t)
	ctx := t.Context()

	// Bootstrap: one apply of the fleet, as `meshctl apply` does it.
	west.write(fleetMesh)
	m, err := (&plan.Loader{}).Load(west.mesh)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := plan.Apply(ctx, m, cliFleet(west, east), plan.ApplyOptions{Apply: apply.Options{Prune: true}, Version: "test", LinkWait: time.Minute})
	if err != nil {
		t.Fatalf("bootstrap apply: %v", err)
	}
	for _, ca := range rep.Clusters {
		if len(ca.PeerWarnings) > 0 {
			t.Fatalf("bootstrap: %s: %v", ca.Cluster, ca.PeerWarnings)
		}
	}
	for _, p := range []struct {
		e    *env
		peer string
	}{{west, "east"}, {east, "west"}} {
		if _, err := p.e.cluster.Client.CoreV1().Secrets("meshctl").Get(ctx, generators.PeerKubeconfigSecret(p.peer), metav1.GetOptions{}); err != nil {
			t.Fatalf("no way to %s stored: %v", p.peer, err)
		}
	}
	east.setGateway("203.0.113.7")

	// The loops. West resyncs often, so that what only east knows (its
	// gateway's address) is read again soon; east, to re-sign west's
	// issuer, wakes when it falls due.
	east.start(drift.Options{Cluster: "east", Interval: time.Hour})
	wr := west.start(drift.Options{Cluster: "west", Interval: 2 * time.Second})
	west.inSync(time.Minute)
	east.inSync(time.Minute)
	before := west.inventoryVersions()

	t.Run("a link added to mesh.cue appears through the loop alone", func(t *testing.T) {
		w := west.in(t)
		w.write(fleetMesh + westToEast)
		w.until("the Link east in west", time.Minute, func() (bool, error) {
			l, err := w.link()
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return err == nil && gatewayAddress(l) == "203.0.113.7", err
		})
		w.inSync(time.Minute)
		creds, err := w.cluster.Client.CoreV1().Secrets("linkerd-multicluster").Get(ctx, "cluster-credentials-east", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		token, err := east.cluster.Client.CoreV1().Secrets("linkerd-multicluster").Get(ctx, "linkerd-service-mirror-remote-access-default-token", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(creds.Data["kubeconfig"]), string(token.Data["token"])) {
			t.Error("the Link's credentials do not carry east's remote-access token")
		}
		if strings.Contains(wr.logs.String(), string(token.Data["token"])) {
			t.Error("the loop logged the token")
		}
	})

	t.Run("an out-of-band edit of the Link is corrected", func(t *testing.T) {
		w := west.in(t)
		patch := `{"spec":{"gatewayAddress":"198.51.100.1"}}`
		if _, err := dynamic.NewForConfigOrDie(w.cluster.Config).Resource(linkGVR).Namespace("linkerd-multicluster").
			Patch(ctx, "east", types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
			t.Fatal(err)
		}
		w.until("the Link's address corrected", time.Minute, func() (bool, error) {
			l, err := w.link()
			return err == nil && gatewayAddress(l) == "203.0.113.7", err
		})
	})

	t.Run("the target's gateway address changing is followed", func(t *testing.T) {
		w := west.in(t)
		east.setGateway("203.0.113.9")
		w.until("the Link to follow east's gateway", time.Minute, func() (bool, error) {
			l, err := w.link()
			return err == nil && gatewayAddress(l) == "203.0.113.9", err
		})
	})

	t.Run("a target that cannot answer keeps the Link as last applied", func(t *testing.T) {
		w := west.in(t)
		east.setGateway()
		w.until("the status to say why", time.Minute, func() (bool, error) {
			st := w.status()
			return st != nil && slices.ContainsFunc(st.Warnings, func(s string) bool {
				return strings.Contains(s, "has no address yet") && strings.Contains(s, "stays as it was last applied")
			}), nil
		})
		l, err := w.link()
		if err != nil || gatewayAddress(l) != "203.0.113.9" {
			t.Fatalf("the Link after east lost its address: %v, %v", err, l)
		}
		if st := w.status(); st.State != drift.StateInSync {
			t.Errorf("west's loop is %s, want in sync with the Link kept: %s", st.State, st.LastError)
		}
		east.setGateway("203.0.113.9")
		w.until("the warning to go", time.Minute, func() (bool, error) {
			st := w.status()
			return st != nil && !slices.ContainsFunc(st.Warnings, func(s string) bool { return strings.Contains(s, "stays as it was last applied") }), nil
		})
	})

	t.Run("the way to a peer is read afresh: a revoked one keeps the Link, a restored one is used at once", func(t *testing.T) {
		w := west.in(t)
		ways := west.cluster.Client.CoreV1().Secrets("meshctl")
		way, err := ways.Get(ctx, generators.PeerKubeconfigSecret("east"), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		good := way.Data["kubeconfig"]
		cfg, err := clientcmd.Load(good)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range cfg.AuthInfos {
			u.Token = "revoked"
		}
		bad, err := clientcmd.Write(*cfg)
		if err != nil {
			t.Fatal(err)
		}
		way.Data["kubeconfig"] = bad
		if way, err = ways.Update(ctx, way, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		w.until("west's loop to say it cannot read east", time.Minute, func() (bool, error) {
			st := w.status()
			return st != nil && slices.ContainsFunc(st.Warnings, func(s string) bool {
				return strings.Contains(s, "cannot read cluster east") && strings.Contains(s, "stays as it was last applied")
			}), nil
		})
		if l, err := w.link(); err != nil || gatewayAddress(l) != "203.0.113.9" {
			t.Fatalf("the Link after west lost its way to east: %v", err)
		}
		way.Data["kubeconfig"] = good
		if _, err := ways.Update(ctx, way, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		w.until("the warning to go", time.Minute, func() (bool, error) {
			st := w.status()
			return st != nil && !slices.ContainsFunc(st.Warnings, func(s string) bool { return strings.Contains(s, "cannot read cluster east") }), nil
		})
	})

	t.Run("the re-signer: a member's issuer that falls due is re-signed while the loops run", func(t *testing.T) {
		e := east.in(t)
		// west's issuer, signed with the fleet anchor to last 12 minutes,
		// made 7m30s ago: it falls due 30 s from now.
		stores := map[string]*corev1.Secret{}
		for name, x := range map[string]*env{"west": west, "east": east} {
			s, err := x.cluster.Client.CoreV1().Secrets("meshctl").Get(ctx, plan.CertificatesSecret, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			stores[name] = s
		}
		anchor, err := certs.FromData(stores["east"].Data)
		if err != nil || anchor.Anchor == nil {
			t.Fatalf("east's store: %v", err)
		}
		o := generators.CertOptions(m, time.Now().Add(-7*time.Minute-30*time.Second))
		o.IssuerLifetime = 12 * time.Minute
		short, err := certs.Reissue(*anchor.Anchor, o)
		if err != nil {
			t.Fatal(err)
		}
		wb, err := certs.FromData(stores["west"].Data)
		if err != nil {
			t.Fatal(err)
		}
		wb.Issuer = &short
		stores["west"].Data = wb.Data()
		if _, err := west.cluster.Client.CoreV1().Secrets("meshctl").Update(ctx, stores["west"], metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		// east's loop learns when west's issuer falls due at its next
		// reconcile: a change of mesh.cue is one.
		e.write(fleetMesh + westToEast + "\n// touched\n")
		e.until("east's loop to re-sign west's issuer", 2*time.Minute, func() (bool, error) {
			s, err := west.cluster.Client.CoreV1().Secrets("meshctl").Get(ctx, plan.CertificatesSecret, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			b, err := certs.FromData(s.Data)
			if err != nil {
				return false, err
			}
			c := issuerOf(t, b.Issuer.CertPEM)
			return time.Until(c.NotAfter) > 300*24*time.Hour, nil
		})
		// west's loop renders it into linkerd's issuer Secret, signed by
		// the anchor both clusters trust.
		west.in(t).until("west's issuer Secret to carry the new issuer", time.Minute, func() (bool, error) {
			s, err := west.cluster.Client.CoreV1().Secrets("linkerd").Get(ctx, "linkerd-identity-issuer", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			c := issuerOf(t, string(s.Data["crt.pem"]))
			return time.Until(c.NotAfter) > 300*24*time.Hour && c.CheckSignatureFrom(issuerOf(t, anchor.Anchor.CertPEM)) == nil, nil
		})
		e.event("Rotated", "west/issuer")
		if _, ok := stores["west"].Data["trust-anchor.key"]; ok {
			t.Error("west holds the anchor's key")
		}
	})

	t.Run("a member without its store: each loop says why, and neither makes one", func(t *testing.T) {
		w, e := west.in(t), east.in(t)
		stores := west.cluster.Client.CoreV1().Secrets("meshctl")
		saved, err := stores.Get(ctx, plan.CertificatesSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := stores.Delete(ctx, plan.CertificatesSecret, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		// west's loop cannot sign its own issuer: it names who can.
		w.until("west's loop to name the key's cluster", time.Minute, func() (bool, error) {
			st := w.status()
			return st != nil && st.State == drift.StateFailing && strings.Contains(st.LastError, "cluster west has no certificates yet") &&
				strings.Contains(st.LastError, "let the reconciler in east sign it"), nil
		})
		// east's loop, whose credentials may not create it, warns.
		e.write(fleetMesh + westToEast + "\n// touched again\n")
		e.until("east's loop to warn", time.Minute, func() (bool, error) {
			st := e.status()
			return st != nil && st.State == drift.StateInSync && st.Revision == e.revision() && slices.ContainsFunc(st.Warnings, func(s string) bool {
				return strings.Contains(s, "cluster west: it has no certificate store yet") && strings.Contains(s, "run meshctl apply on the fleet once")
			}), nil
		})
		if _, err := stores.Get(ctx, plan.CertificatesSecret, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("a loop made west's store (%v)", err)
		}
		saved.ResourceVersion = ""
		if _, err := stores.Create(ctx, saved, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		w.inSync(time.Minute)
	})

	t.Run("the peers' credentials allow no more than the link and the signer need", func(t *testing.T) {
		// peer is how from's loop reaches to.
		peer := func(from *env, to string) *kubernetes.Clientset {
			s, err := from.cluster.Client.CoreV1().Secrets("meshctl").Get(ctx, generators.PeerKubeconfigSecret(to), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data["kubeconfig"])
			if err != nil {
				t.Fatal(err)
			}
			return kubernetes.NewForConfigOrDie(cfg)
		}
		toEast, toWest := peer(west, "east"), peer(east, "west")
		for _, c := range []struct {
			what string
			err  error
			ok   bool
		}{
			{"west reads east's linkerd-config", getOne(toEast.CoreV1().ConfigMaps("linkerd"), "linkerd-config"), true},
			{"west reads east's gateway", getOne(toEast.CoreV1().Services("linkerd-multicluster"), "linkerd-gateway"), true},
			{"west reads east's remote-access token", getOne(toEast.CoreV1().Secrets("linkerd-multicluster"), "linkerd-service-mirror-remote-access-default-token"), true},
			{"west reads east's certificate store", getOne(toEast.CoreV1().Secrets("meshctl"), plan.CertificatesSecret), false},
			{"west reads east's issuer", getOne(toEast.CoreV1().Secrets("linkerd"), "linkerd-identity-issuer"), false},
			{"west reads another Service of east", getOne(toEast.CoreV1().Services("default"), "kubernetes"), false},
			{"east (the key's holder) reads west's certificate store", getOne(toWest.CoreV1().Secrets("meshctl"), plan.CertificatesSecret), true},
			{"east reads west's issuer", getOne(toWest.CoreV1().Secrets("linkerd"), "linkerd-identity-issuer"), false},
			{"east reads west's ways to other clusters", getOne(toWest.CoreV1().Secrets("meshctl"), generators.PeerKubeconfigSecret("east")), false},
		} {
			switch {
			case c.ok && c.err != nil:
				t.Errorf("%s: %v", c.what, c.err)
			case !c.ok && !apierrors.IsForbidden(c.err):
				t.Errorf("%s: %v, want Forbidden", c.what, c.err)
			}
		}
		if _, err := toEast.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("west lists east's nodes (a LoadBalancer gateway): %v, want Forbidden", err)
		}
	})

	t.Run("removing the link prunes exactly its objects", func(t *testing.T) {
		w := west.in(t)
		with := w.inventoryVersions()
		w.write(fleetMesh)
		w.inSync(time.Minute)
		after := w.inventoryVersions()
		var gone []string
		for id := range with {
			if _, ok := after[id]; !ok {
				gone = append(gone, id)
			}
		}
		var added []string
		for id := range after {
			if _, ok := with[id]; !ok {
				added = append(added, id)
			}
		}
		slices.Sort(gone)
		var want []string
		for id := range with {
			if _, ok := before[id]; !ok {
				want = append(want, id)
			}
		}
		slices.Sort(want)
		if len(want) < 3 || !slices.Equal(gone, want) || len(added) > 0 {
			t.Errorf("pruned %v, want the link's %v (added %v)", gone, want, added)
		}
		if _, err := w.link(); !apierrors.IsNotFound(err) {
			t.Errorf("the Link is still there (%v)", err)
		}
	})
}

var linkGVR = k8sschema.GroupVersionResource{Group: "multicluster.linkerd.io", Version: "v1alpha3", Resource: "links"}

// TestLoopRefusesAMeshItDoesNotKeep: a loop and its mesh must agree on
// the cluster it keeps; when they do not, the revision is refused with
// what to run instead, and nothing is written.
func TestLoopRefusesAMeshItDoesNotKeep(t *testing.T) {
	// A fresh cluster: the loop makes the namespace its status goes in.
	e := newEnv(t)
	for _, tc := range []struct{ name, mesh, cluster, want string }{
		{"a fleet, and no --cluster", fleetMesh, "", "declares clusters (east, west): run one reconciler in each, with --cluster naming the cluster it runs in"},
		{"a cluster the mesh does not declare", fleetMesh, "north", "--cluster north, but " + e.mesh + " declares no such cluster; its clusters are east, west"},
		{"--cluster, and no clusters", defaultMesh(t), "west", "--cluster west, but " + e.mesh + " declares no clusters: run the reconciler without --cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := e.in(t)
			x.write(tc.mesh)
			r := x.start(drift.Options{Cluster: tc.cluster, Interval: time.Hour})
			x.until("the revision to be refused", time.Minute, func() (bool, error) {
				st := x.status()
				return st != nil && st.State == drift.StateFailing && strings.Contains(st.LastError, tc.want), nil
			})
			r.stop()
			if inv, err := x.client.ReadInventory(x.ctx); err != nil || inv != nil {
				t.Errorf("the refused revision was applied: inventory %v, %v", inv, err)
			}
		})
	}
}

// getOne reads one object, for what it says of access.
func getOne[T any](c interface {
	Get(context.Context, string, metav1.GetOptions) (T, error)
}, name string) error {
	_, err := c.Get(context.Background(), name, metav1.GetOptions{})
	return err
}
