package plan_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

// trafficEnv is the cluster of TestTraffic: its subtests apply whole
// meshes, one after the other, under one inventory.
type trafficEnv struct {
	ctx     context.Context
	c       *apply.Client
	cluster *testcluster.Cluster
}

// TestTraffic applies routes, splits and faults in each model to a full
// cluster of its own: each mesh replaces the previous one under the
// default inventory, which the shared cluster's tests must keep for theirs.
func TestTraffic(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{Full: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	c, err := apply.New(cluster.Config, "")
	if err != nil {
		t.Fatal(err)
	}
	e := &trafficEnv{ctx: ctx, c: c, cluster: cluster}
	t.Run("examples", e.examples)
	t.Run("removal prunes exactly its objects", e.prune)
	t.Run("fault with a split", e.faultWithSplit)
	t.Run("smi adaptor owns dstOverrides", e.smiAdaptor)
	t.Run("headless", e.headless)
}

// examples: each traffic example is accepted by the API server with the
// CRDs the render installs, keeps every field meshctl sets, sends each
// service's traffic as mesh.cue says, and is in sync after its apply.
func (e *trafficEnv) examples(t *testing.T) {
	for _, name := range []string{"canary", "faults", "smi"} {
		t.Run(name, func(t *testing.T) {
			m := load(t, "../examples/"+name+".cue")
			e.switchTo(t, m, apply.Options{Wait: true, Timeout: 3 * time.Minute})
			set := mustSet(t, e.ctx, e.c, m)
			n := 0
			for _, u := range trafficObjects(set) {
				n++
				live := get(t, e.ctx, e.c.Kube(), u.GetAPIVersion(), u.GetKind(), u.GetNamespace(), u.GetName())
				if path := missingField(asJSON(t, u.Object["spec"]), asJSON(t, live.Object["spec"])); path != "" {
					t.Errorf("%s: the server dropped spec%s", apply.ID(u), path)
				}
			}
			if n == 0 {
				t.Fatal("the example renders no HTTPRoute, ServiceProfile or TrafficSplit")
			}
			for _, key := range sortedServiceKeys(m) {
				if svc := m.Services[key]; len(svc.Split) > 0 || svc.Fault != nil {
					e.checkShares(t, set, key, svc, expectedShares(key, svc), false)
				}
			}
			noDiff(t, e.ctx, e.c, set)
			again, err := applyMesh(t, e.ctx, e.c, m, apply.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if again.Writes != 0 {
				t.Errorf("a second apply wrote: %v", writes(again))
			}
		})
	}
}

// switchTo applies m in place of whatever mesh the cluster has, and
// applies it again until nothing is left to prune, so that the next step
// starts clean: a namespace that still holds the pods of a Deployment
// pruned with it is kept until they are gone, and nothing can be created
// in a namespace while it terminates.
func (e *trafficEnv) switchTo(t *testing.T, m *schema.Mesh, o apply.Options) {
	t.Helper()
	o.ForcePrune = true
	err := wait.PollUntilContextTimeout(e.ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		res, err := applyMesh(t, ctx, e.c, m, o)
		if err != nil {
			return false, err
		}
		o.Wait = false
		done := true
		for _, en := range res.Entries {
			if en.Stage != "prune" {
				continue
			}
			done = false
			if en.Action == apply.Deleted {
				u := &unstructured.Unstructured{}
				u.SetAPIVersion(en.APIVersion)
				u.SetKind(en.Kind)
				u.SetNamespace(en.Namespace)
				u.SetName(en.Name)
				waitGone(t, ctx, e.c.Kube(), u)
			}
		}
		return done, nil
	})
	if err != nil {
		t.Fatalf("switching meshes: %v", err)
	}
}

// trafficMesh is a mesh with one service, shop/books, with the fields
// service lists.
func trafficMesh(t *testing.T, service string) *schema.Mesh {
	t.Helper()
	return mustLoadSource(t, "traffic.cue", "namespaces: shop: {inject: \"enabled\", create: true}\n"+`services: "shop/books": {`+service+"}\n")
}

const booksRoute = `routes: [{name: "GET /books", method: "GET", pathRegex: "/books(/.*)?", isRetryable: true, timeout: "300ms"}]`

// prune: in each model, removing the fault, then the split, then the
// routes prunes exactly the objects that the render no longer holds, and
// those are the feature's; what renders alike is not written; what stays
// sends the traffic as the mesh now says (the split's weights are back
// once the fault goes).
func (e *trafficEnv) prune(t *testing.T) {
	traffic := []string{"HTTPRoute", "ServiceProfile", "TrafficSplit"}
	for _, model := range []string{"httproute", "serviceprofile", "smi"} {
		t.Run(model, func(t *testing.T) {
			base := fmt.Sprintf("model: %q, port: 7002", model)
			steps := []struct {
				name, service     string
				required, allowed []string
			}{
				{"fault removed", base + ", " + booksRoute + `, split: {books: 90, "books-v2": 10}`,
					[]string{"ConfigMap", "Deployment", "Service"}, []string{"ConfigMap", "Deployment", "Service", "ServiceAccount"}},
				{"split removed", base + ", " + booksRoute,
					map[string][]string{"smi": {"TrafficSplit"}}[model], traffic},
				{"routes removed", base,
					map[string][]string{"httproute": {"HTTPRoute"}, "serviceprofile": {"ServiceProfile"}, "smi": {"ServiceProfile"}}[model], traffic},
			}
			full := trafficMesh(t, base+", "+booksRoute+`, split: {books: 90, "books-v2": 10}, fault: {percent: 10, status: 500}`)
			e.switchTo(t, full, apply.Options{})
			prev := mustSet(t, e.ctx, e.c, full)
			e.checkShares(t, prev, "shop/books", full.Services["shop/books"], map[string]int64{"books": 810, "books-v2": 90, faultBackend: 100}, true)
			for _, s := range steps {
				m := trafficMesh(t, s.service)
				next := mustSet(t, e.ctx, e.c, m)
				wantGone := goneBetween(prev, next)
				checkGone(t, s.name, wantGone, prev, s.required, s.allowed)
				same := unchangedObjects(prev, next)
				beforeSame := versionsOf(t, e.ctx, e.c.Kube(), same)
				res, err := applyMesh(t, e.ctx, e.c, m, apply.Options{})
				if err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				if d := cmp.Diff(wantGone, deleted(res)); d != "" {
					t.Errorf("%s: pruned (-want +got):\n%s", s.name, d)
				}
				for _, id := range wantGone {
					waitGone(t, e.ctx, e.c.Kube(), byID(prev, id))
				}
				if d := cmp.Diff(beforeSame, versionsOf(t, e.ctx, e.c.Kube(), same)); d != "" {
					t.Errorf("%s: objects that render alike were written (-before +after):\n%s", s.name, d)
				}
				if s.name == "fault removed" {
					e.checkShares(t, next, "shop/books", m.Services["shop/books"], map[string]int64{"books": 90, "books-v2": 10}, true)
				} else {
					e.checkNoShares(t, next, "shop/books", m.Services["shop/books"])
				}
				noDiff(t, e.ctx, e.c, next)
				prev = next
			}
		})
	}
}

// faultWithSplit: a fault takes its share first, and each backend of the
// split keeps its share of the rest, to the exact weight on the server.
func (e *trafficEnv) faultWithSplit(t *testing.T) {
	cases := []struct {
		name, service string
		want          map[string]int64
	}{
		{"canary", `split: {books: 90, "books-v2": 10}, fault: {percent: 10, status: 500}`,
			map[string]int64{"books": 810, "books-v2": 90, faultBackend: 100}},
		{"blue/green", `split: {"books-blue": 100, "books-green": 0}, fault: {percent: 20, status: 503}`,
			map[string]int64{"books-blue": 800, "books-green": 0, faultBackend: 200}},
		{"three backends", `split: {books: 50, "books-v2": 30, "books-v3": 20}, fault: {percent: 20, status: 500}`,
			map[string]int64{"books": 400, "books-v2": 240, "books-v3": 160, faultBackend: 200}},
		{"fault alone", `fault: {percent: 10, status: 500}`,
			map[string]int64{"books": 900, faultBackend: 100}},
	}
	for _, model := range []string{"httproute", "serviceprofile", "smi"} {
		for _, tc := range cases {
			t.Run(model+"/"+tc.name, func(t *testing.T) {
				m := trafficMesh(t, fmt.Sprintf("model: %q, port: 7002, %s", model, tc.service))
				e.switchTo(t, m, apply.Options{})
				e.checkShares(t, mustSet(t, e.ctx, e.c, m), "shop/books", m.Services["shop/books"], tc.want, true)
			})
		}
	}
}

// smiAdaptor: with an SMI split applied, the adaptor's part is played by
// an Update of the ServiceProfile's dstOverrides under its own field
// manager (creating the profile when meshctl renders none, as the adaptor
// does). meshctl then neither writes nor reports drift.
func (e *trafficEnv) smiAdaptor(t *testing.T) {
	for _, tc := range []struct{ name, service string }{
		{"profile from routes", `model: "smi", port: 7002, ` + booksRoute + `, split: {books: 90, "books-v2": 10}`},
		{"no profile", `model: "smi", port: 7002, split: {books: 90, "books-v2": 10}`},
		{"with a fault", `model: "smi", port: 7002, ` + booksRoute + `, split: {books: 90, "books-v2": 10}, fault: {percent: 10, status: 500}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := trafficMesh(t, tc.service)
			e.switchTo(t, m, apply.Options{})
			set := mustSet(t, e.ctx, e.c, m)
			if len(kindIn(set, "TrafficSplit", "shop")) == 0 {
				t.Fatal("no TrafficSplit rendered in shop")
			}
			overrides := []any{
				map[string]any{"authority": "books.shop.svc.cluster.local:7002", "weight": "900m"},
				map[string]any{"authority": "books-v2.shop.svc.cluster.local:7002", "weight": "100m"},
			}
			sp := e.playAdaptor(t, set, overrides)

			res, err := applyMesh(t, e.ctx, e.c, m, apply.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Writes != 0 {
				t.Errorf("apply after the adaptor's update wrote: %v", writes(res))
			}
			after := get(t, e.ctx, e.c.Kube(), "linkerd.io/v1alpha2", "ServiceProfile", "shop", sp.GetName())
			if after.GetResourceVersion() != sp.GetResourceVersion() {
				t.Errorf("ServiceProfile %s was written: resourceVersion %s → %s", sp.GetName(), sp.GetResourceVersion(), after.GetResourceVersion())
			}
			got, _, _ := unstructured.NestedSlice(after.Object, "spec", "dstOverrides")
			if d := cmp.Diff(overrides, got); d != "" {
				t.Errorf("dstOverrides after apply (-adaptor's +got):\n%s", d)
			}
			d, err := e.c.Diff(e.ctx, set, apply.DiffOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if d.Changed() {
				t.Errorf("diff reports the adaptor's field as drift:\n%s", changedText(d))
			}
		})
	}
}

// playAdaptor does what the linkerd-smi adaptor does: a plain Update of the
// apex's ServiceProfile with dstOverrides, or a Create of one without
// routes when there is none. It returns the profile as stored.
func (e *trafficEnv) playAdaptor(t *testing.T, set apply.Set, overrides []any) *unstructured.Unstructured {
	t.Helper()
	name := "books.shop.svc.cluster.local"
	if sps := kindIn(set, "ServiceProfile", "shop"); len(sps) > 0 {
		if len(sps) != 1 || sps[0].GetName() != name {
			t.Fatalf("rendered ServiceProfiles %v, want only %s", ids(sps), name)
		}
		if _, ok, _ := unstructured.NestedFieldNoCopy(sps[0].Object, "spec", "dstOverrides"); ok {
			t.Fatal("meshctl renders dstOverrides in the smi model: that field is the adaptor's")
		}
	}
	sp := &unstructured.Unstructured{}
	sp.SetAPIVersion("linkerd.io/v1alpha2")
	sp.SetKind("ServiceProfile")
	err := e.c.Kube().Get(e.ctx, client.ObjectKey{Namespace: "shop", Name: name}, sp)
	switch {
	case apierrors.IsNotFound(err):
		sp = &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"dstOverrides": overrides}}}
		sp.SetAPIVersion("linkerd.io/v1alpha2")
		sp.SetKind("ServiceProfile")
		sp.SetNamespace("shop")
		sp.SetName(name)
		err = e.c.Kube().Create(e.ctx, sp, client.FieldOwner("smi-adaptor"))
	case err == nil:
		if err := unstructured.SetNestedSlice(sp.Object, overrides, "spec", "dstOverrides"); err != nil {
			t.Fatal(err)
		}
		err = e.c.Kube().Update(e.ctx, sp, client.FieldOwner("smi-adaptor"))
	}
	if err != nil {
		t.Fatalf("the adaptor's write of ServiceProfile %s: %v", name, err)
	}
	return get(t, e.ctx, e.c.Kube(), "linkerd.io/v1alpha2", "ServiceProfile", "shop", name)
}

// headless: a Service that mesh.cue routes but that is headless is warned
// of, by name, as apply and diff print it; so is a split backend that does
// not exist; a Service not deployed yet is not.
func (e *trafficEnv) headless(t *testing.T) {
	kube := e.cluster.Client.CoreV1()
	if _, err := kube.Namespaces().Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, s := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "books"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 7002}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "authors"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 7001}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "authors-v1"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 7001}}}},
	} {
		if _, err := kube.Services("shop").Create(e.ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = kube.Services("shop").Delete(context.Background(), s.Name, metav1.DeleteOptions{}) })
	}
	m := mustLoadSource(t, "headless.cue", `namespaces: shop: {inject: "enabled", create: true}
services: {
	"shop/books": {port: 7002, split: {books: 90, "books-v2": 10}, fault: {percent: 10, status: 500}}
	"shop/authors": {port: 7001, split: {"authors-v1": 80, "authors-v2": 20, "authors-v3": 0}}
	"shop/reviews": {port: 7003, split: {reviews: 90, "reviews-v2": 10}}
}
`)
	want := []string{
		"Service shop/authors: split backend Service shop/authors-v2 does not exist, so its 20% of the requests will fail; deploy it, or give it weight 0",
		"Service shop/books is headless (clusterIP: None): Linkerd cannot route a headless Service, so what mesh.cue gives it (split and fault) does nothing; " +
			"give the Service a cluster IP, or add a Service with a cluster IP for the same pods and key the settings by it",
	}
	// The same warnings whether the Services come from a LIST of each
	// namespace (no live objects) or from the one LIST of every namespace
	// that apply shares (WideKinds).
	set, err := plan.Offline(m, "test")
	if err != nil {
		t.Fatal(err)
	}
	live, err := e.c.ListLive(e.ctx, set, plan.WideKinds(m)...)
	if err != nil {
		t.Fatal(err)
	}
	for name, live := range map[string]apply.LiveObjects{"listed per namespace": nil, "shared with apply": live} {
		if d := cmp.Diff(want, plan.HeadlessWarnings(e.ctx, m, e.c, live)); d != "" {
			t.Errorf("%s: warnings (-want +got):\n%s", name, d)
		}
	}
	// The render is still applied: the warning does not stop it.
	e.switchTo(t, m, apply.Options{})
}

// faultBackend stands, in a weight map, for the backend that answers the
// fault's status: its name is the render's to choose.
const faultBackend = "<fault>"

// expectedShares are the shares of the traffic to service key, in
// millionths: the fault's first, and the split's of the rest.
func expectedShares(key string, svc schema.Service) map[string]int64 {
	_, name, _ := strings.Cut(key, "/")
	split := svc.Split
	if len(split) == 0 {
		split = map[string]int{name: 100}
	}
	rest := int64(1_000_000)
	out := map[string]int64{}
	if svc.Fault != nil {
		f := int64(math.Round(svc.Fault.Percent * 10_000))
		out[faultBackend] = f
		rest -= f
	}
	for b, w := range split {
		out[b] = rest * int64(w) / 100
	}
	return out
}

// checkShares reads, from the server, every object that carries the
// service's weights (its HTTPRoutes' rules, its ServiceProfile's
// dstOverrides or its TrafficSplit, as its model says) and checks that each
// sends to want's backends in want's proportions: exactly, or to within one
// unit of weight when exact is false. A backend outside the split must be
// the fault Service the render holds.
func (e *trafficEnv) checkShares(t *testing.T, set apply.Set, key string, svc schema.Service, want map[string]int64, exact bool) {
	t.Helper()
	carriers := e.weightCarriers(t, set, key, svc)
	if len(carriers) == 0 {
		t.Fatalf("%s: nothing on the server carries its weights", key)
	}
	ns, _, _ := strings.Cut(key, "/")
	for where, weights := range carriers {
		got := map[string]int64{}
		var sum int64
		for b, w := range weights {
			if _, ok := want[b]; !ok && svc.Fault != nil {
				if byID(set, "Service/"+ns+"/"+b) == nil {
					t.Errorf("%s: backend %s is neither in the split nor a Service meshctl renders", where, b)
				}
				b = faultBackend
			}
			got[b] += w
			sum += w
		}
		if !sameKeys(got, want) {
			t.Errorf("%s: backends %v, want %v", where, got, want)
			continue
		}
		var wantSum int64
		for _, w := range want {
			wantSum += w
		}
		for b, w := range want {
			// got[b]/sum against w/wantSum, as exact fractions.
			diff := new(big.Rat).Sub(big.NewRat(got[b], max(sum, 1)), big.NewRat(w, wantSum))
			tolerance := big.NewRat(0, 1)
			if !exact {
				tolerance = big.NewRat(1, max(sum, 1))
			}
			if diff.Abs(diff).Cmp(tolerance) > 0 {
				t.Errorf("%s: weights %v (sum %d), want the proportions of %v", where, got, sum, want)
				break
			}
		}
	}
}

// checkNoShares checks that nothing on the server splits the service's
// traffic: no HTTPRoute rule has backendRefs, no ServiceProfile has
// dstOverrides, and no TrafficSplit is left.
func (e *trafficEnv) checkNoShares(t *testing.T, set apply.Set, key string, svc schema.Service) {
	t.Helper()
	for where, weights := range e.weightCarriers(t, set, key, svc) {
		if len(weights) > 0 {
			t.Errorf("%s still sends to %v", where, weights)
		}
	}
}

func sameKeys(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

// weightCarriers reads the weights of service key from the server, by
// where they are: "HTTPRoute/ns/name rule 0", "ServiceProfile/ns/name",
// "TrafficSplit/ns/name". Which objects are the service's is read from the
// render: the HTTPRoutes whose parentRef is the Service, the ServiceProfile
// named after its FQDN, the TrafficSplit whose apex it is.
func (e *trafficEnv) weightCarriers(t *testing.T, set apply.Set, key string, svc schema.Service) map[string]map[string]int64 {
	t.Helper()
	ns, name, _ := strings.Cut(key, "/")
	out := map[string]map[string]int64{}
	live := func(u *unstructured.Unstructured) *unstructured.Unstructured {
		return get(t, e.ctx, e.c.Kube(), u.GetAPIVersion(), u.GetKind(), ns, u.GetName())
	}
	for _, u := range kindIn(set, "HTTPRoute", ns) {
		if !attachedTo(u, name) {
			continue
		}
		rules, _, _ := unstructured.NestedSlice(live(u).Object, "spec", "rules")
		for i, r := range rules {
			refs, _, _ := unstructured.NestedSlice(r.(map[string]any), "backendRefs")
			w := map[string]int64{}
			for _, ref := range refs {
				rm := ref.(map[string]any)
				w[rm["name"].(string)] += weightOf(t, rm["weight"], 1)
			}
			out[fmt.Sprintf("%s rule %d", apply.ID(u), i)] = w
		}
	}
	for _, u := range kindIn(set, "ServiceProfile", ns) {
		if !strings.HasPrefix(u.GetName(), name+"."+ns+".svc.") {
			continue
		}
		overrides, _, _ := unstructured.NestedSlice(live(u).Object, "spec", "dstOverrides")
		w := map[string]int64{}
		for _, o := range overrides {
			om := o.(map[string]any)
			authority, _ := om["authority"].(string)
			// name.ns.svc.cluster.local[:port]
			b, _, _ := strings.Cut(authority, ".")
			w[b] += weightOf(t, om["weight"], 0)
		}
		// In the smi model, dstOverrides are the adaptor's to write.
		if svc.Model != "smi" {
			out[apply.ID(u)] = w
		}
	}
	for _, u := range kindIn(set, "TrafficSplit", ns) {
		if apex, _, _ := unstructured.NestedString(u.Object, "spec", "service"); apex != name {
			continue
		}
		backends, _, _ := unstructured.NestedSlice(live(u).Object, "spec", "backends")
		w := map[string]int64{}
		for _, b := range backends {
			bm := b.(map[string]any)
			w[bm["service"].(string)] += weightOf(t, bm["weight"], 0)
		}
		out[apply.ID(u)] = w
	}
	return out
}

// weightOf reads a weight as the server stores it: an integer, or a
// quantity string ("500m") for dstOverrides and TrafficSplits; missing is
// def. Quantities are compared in thousandths.
func weightOf(t *testing.T, v any, def int64) int64 {
	t.Helper()
	switch w := v.(type) {
	case nil:
		return def * 1000
	case int64:
		return w * 1000
	case float64:
		return int64(w * 1000)
	case string:
		q, err := resource.ParseQuantity(w)
		if err != nil {
			t.Fatalf("weight %q: %v", w, err)
		}
		return q.MilliValue()
	}
	t.Fatalf("weight %v (%T)", v, v)
	return 0
}

func attachedTo(route *unstructured.Unstructured, service string) bool {
	parents, _, _ := unstructured.NestedSlice(route.Object, "spec", "parentRefs")
	for _, p := range parents {
		pm := p.(map[string]any)
		if pm["kind"] == "Service" && pm["name"] == service {
			return true
		}
	}
	return false
}

// trafficObjects are the set's HTTPRoutes, ServiceProfiles and
// TrafficSplits.
func trafficObjects(set apply.Set) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, st := range set.Stages {
		for _, u := range st.Objects {
			if slices.Contains([]string{"HTTPRoute", "ServiceProfile", "TrafficSplit"}, u.GetKind()) {
				out = append(out, u)
			}
		}
	}
	return out
}

func kindIn(set apply.Set, kind, ns string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, st := range set.Stages {
		for _, u := range st.Objects {
			if u.GetKind() == kind && u.GetNamespace() == ns {
				out = append(out, u)
			}
		}
	}
	return out
}

func ids(objs []*unstructured.Unstructured) []string {
	out := make([]string, 0, len(objs))
	for _, u := range objs {
		out = append(out, apply.ID(u))
	}
	return out
}

func sortedServiceKeys(m *schema.Mesh) []string {
	out := make([]string, 0, len(m.Services))
	for k := range m.Services {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// goneBetween are the IDs of prev that next lacks, sorted.
func goneBetween(prev, next apply.Set) []string {
	nextIDs := setIDs(next)
	var out []string
	for id := range setIDs(prev) {
		if !nextIDs[id] {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// checkGone checks that what a step removes is the feature's: objects in
// shop of the allowed kinds, among them each required kind.
func checkGone(t *testing.T, step string, gone []string, prev apply.Set, required, allowed []string) {
	t.Helper()
	kinds := map[string]bool{}
	for _, id := range gone {
		u := byID(prev, id)
		kinds[u.GetKind()] = true
		if u.GetNamespace() != "shop" || !slices.Contains(allowed, u.GetKind()) {
			t.Errorf("%s: %s would be pruned, but it is not the feature's", step, id)
		}
	}
	for _, k := range required {
		if !kinds[k] {
			t.Errorf("%s: no %s would be pruned (pruned: %v)", step, k, gone)
		}
	}
}

func deleted(r *apply.Result) []string {
	var out []string
	for _, e := range r.Entries {
		if e.Action == apply.Deleted {
			out = append(out, e.ID)
		}
	}
	slices.Sort(out)
	return out
}

// noDiff checks that a diff of set against the cluster shows nothing.
func noDiff(t *testing.T, ctx context.Context, c *apply.Client, set apply.Set) {
	t.Helper()
	d, err := c.Diff(ctx, set, apply.DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Changed() {
		t.Errorf("diff after apply:\n%s", changedText(d))
	}
}

func changedText(d *apply.DiffResult) string {
	var b strings.Builder
	for _, o := range d.Objects {
		if o.Action != apply.Unchanged {
			fmt.Fprintf(&b, "%s %s\n%s", o.ID, o.Action, o.Diff)
		}
	}
	return b.String()
}

// asJSON is v as encoding/json reads it back, so that numbers compare
// alike on both sides.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// missingField is the path of the first field of want that got lacks or
// holds otherwise ("" when got has all of want): a structural schema drops
// unknown fields without an error.
func missingField(want, got any) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return " (not an object)"
		}
		for _, k := range sortedKeysOf(w) {
			if p := missingField(w[k], g[k]); p != "" {
				return "." + k + p
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf(" (%d items, got %v)", len(w), got)
		}
		for i := range w {
			if p := missingField(w[i], g[i]); p != "" {
				return fmt.Sprintf("[%d]%s", i, p)
			}
		}
		return ""
	}
	if !cmp.Equal(want, got) {
		return fmt.Sprintf(" (%v, got %v)", want, got)
	}
	return ""
}

func sortedKeysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
