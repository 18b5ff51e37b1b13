package plan_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/certs"
	"github.com/meshctl/meshctl/internal/ident"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
)

// observability is the mesh of TestObservabilityOnAndOff with viz,
// Grafana and the trace backend each on or off.
func observability(t *testing.T, viz, grafana, tracing bool) string {
	src := mustRead(t, "../mesh.cue")
	if viz {
		src += "\nviz: enabled: true\n"
		if grafana {
			src += "viz: grafana: enabled: true\n"
		}
	}
	if tracing {
		src += "\ntracing: {enabled: true, collector: deploy: true, sampling: 0.5}\n"
	}
	return src
}

// TestObservabilityOnAndOff brings viz, its Grafana dashboards and the
// trace backend up with --wait on a full cluster of its own, checks the
// objects where they live (tap's serving pair is the one stored, and its
// APIService trusts it), re-applies without a write, then turns each
// feature off: each time exactly its objects are pruned, and every object
// both renders share and render alike is left as it was.
func TestObservabilityOnAndOff(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{Full: true})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	t.Cleanup(cancel)
	c, err := apply.New(cluster.Config, "")
	if err != nil {
		t.Fatal(err)
	}
	all := mustLoadSource(t, "all.cue", observability(t, true, true, true))
	var progress bytes.Buffer
	if _, err := applyMesh(t, ctx, c, all, apply.Options{Wait: true, Timeout: 4 * time.Minute, Progress: &progress}); err != nil {
		t.Fatalf("apply: %v\n%s", err, progress.String())
	}
	set := mustSet(t, ctx, c, all)
	ids := setIDs(set)
	for _, want := range []string{
		"Deployment/linkerd-viz/metrics-api", "Deployment/linkerd-viz/prometheus", "Deployment/linkerd-viz/tap",
		"Deployment/linkerd-viz/tap-injector", "Deployment/linkerd-viz/web",
		"APIService/v1alpha1.tap.linkerd.io", "Secret/linkerd-viz/tap-k8s-tls",
		"Deployment/linkerd-tracing/collector", "Deployment/linkerd-tracing/jaeger",
	} {
		if !ids[want] {
			t.Errorf("%s is not rendered", want)
		}
	}
	if n := countPrefix(ids, "ConfigMap/grafana/"); n < 8 {
		t.Errorf("%d Grafana ConfigMaps rendered, want the 7 default dashboards and the datasource", n)
	}

	// tap's serving certificate is the pair kept in meshctl's Secret, and
	// the APIService trusts exactly it.
	b, err := certs.FromData(certificatesSecret(t, ctx, c).Data)
	if err != nil {
		t.Fatal(err)
	}
	kept, ok := b.Webhooks["tap.linkerd-viz"]
	if !ok {
		t.Fatalf("no tap pair kept; have %v", slices.Sorted(maps.Keys(b.Webhooks)))
	}
	tls := get(t, ctx, c.Kube(), "v1", "Secret", "linkerd-viz", "tap-k8s-tls")
	crt, _, _ := unstructured.NestedString(tls.Object, "data", "tls.crt")
	if want := b64(kept.CertPEM); crt != want {
		t.Error("tap-k8s-tls does not hold the kept certificate")
	}
	api := get(t, ctx, c.Kube(), "apiregistration.k8s.io/v1", "APIService", "", "v1alpha1.tap.linkerd.io")
	ca, _, _ := unstructured.NestedString(api.Object, "spec", "caBundle")
	if ca != b64(kept.CertPEM) {
		t.Error("the tap APIService does not trust tap's certificate")
	}
	block, _ := pem.Decode([]byte(kept.CertPEM))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.VerifyHostname("tap.linkerd-viz.svc"); err != nil {
		t.Error(err)
	}

	before := versions(t, ctx, c.Kube(), set)
	again, err := applyMesh(t, ctx, c, all, apply.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Writes != 0 {
		t.Errorf("a second apply wrote: %v", writes(again))
	}
	if d := cmp.Diff(before, versions(t, ctx, c.Kube(), set)); d != "" {
		t.Errorf("a no-op apply changed objects (-before +after):\n%s", d)
	}

	// Each feature off in turn: exactly its objects go.
	steps := []struct {
		name string
		src  string
		gone func(id string) bool
	}{
		{"grafana off", observability(t, true, false, true), func(id string) bool {
			return strings.HasPrefix(id, "ConfigMap/grafana/")
		}},
		// viz before tracing: while tap's APIService is unavailable (its
		// pods never run here), no namespace can finish deleting.
		{"viz off", observability(t, false, false, true), func(id string) bool {
			return strings.Contains(id, "viz") || strings.Contains(id, "tap") || id == "Role/linkerd/web" || id == "RoleBinding/linkerd/web"
		}},
		{"tracing off", observability(t, false, false, false), func(id string) bool {
			return strings.Contains(id, "/linkerd-tracing/") || id == "Namespace/linkerd-tracing"
		}},
	}
	prev := set
	for _, s := range steps {
		m := mustLoadSource(t, "step.cue", s.src)
		next := mustSet(t, ctx, c, m)
		prevIDs, nextIDs := setIDs(prev), setIDs(next)
		var wantGone, wantKept []string
		for id := range prevIDs {
			if !nextIDs[id] {
				// Objects meshctl only annotated, or created but never
				// deletes (the Grafana namespace), are released, not deleted.
				if byID(prev, id).GetAnnotations()[ident.AnnotationPrune] == "disabled" {
					wantKept = append(wantKept, id)
					continue
				}
				wantGone = append(wantGone, id)
				if !s.gone(id) {
					t.Errorf("%s: %s would be pruned, but it is not the feature's", s.name, id)
				}
			}
		}
		for id := range nextIDs {
			if !prevIDs[id] {
				t.Errorf("%s: %s is new", s.name, id)
			}
		}
		// Objects that render alike before and after must not be written.
		same := unchangedObjects(prev, next)
		beforeSame := versionsOf(t, ctx, c.Kube(), same)
		res, err := applyMesh(t, ctx, c, m, apply.Options{})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		var gone []string
		for _, e := range res.Entries {
			if e.Action == apply.Deleted {
				gone = append(gone, e.ID)
			}
		}
		slices.Sort(gone)
		slices.Sort(wantGone)
		if d := cmp.Diff(wantGone, gone); d != "" {
			t.Errorf("%s: pruned (-want +got):\n%s", s.name, d)
		}
		for _, id := range wantGone {
			waitGone(t, ctx, c.Kube(), byID(prev, id))
		}
		for _, id := range wantKept {
			u := byID(prev, id)
			get(t, ctx, c.Kube(), u.GetAPIVersion(), u.GetKind(), u.GetNamespace(), u.GetName())
		}
		if d := cmp.Diff(beforeSame, versionsOf(t, ctx, c.Kube(), same)); d != "" {
			t.Errorf("%s: objects that render alike were written (-before +after):\n%s", s.name, d)
		}
		prev = next
	}
	// The Grafana namespace meshctl created is never deleted: dashboards
	// of others may live there.
	if _, err := cluster.Client.CoreV1().Namespaces().Get(ctx, "grafana", metav1.GetOptions{}); err != nil {
		t.Errorf("namespace grafana: %v", err)
	}
	if _, note, err := plan.Certificates(ctx, all, plan.Cluster{Client: c, DryRun: true}); err != nil || note != "" {
		t.Errorf("turning viz on again would make certificates anew (%q, %v)", note, err)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func setIDs(s apply.Set) map[string]bool {
	out := map[string]bool{}
	for _, st := range s.Stages {
		for _, u := range st.Objects {
			out[apply.ID(u)] = true
		}
	}
	return out
}

func countPrefix(ids map[string]bool, prefix string) int {
	n := 0
	for id := range ids {
		if strings.HasPrefix(id, prefix) {
			n++
		}
	}
	return n
}

func byID(s apply.Set, id string) *unstructured.Unstructured {
	for _, st := range s.Stages {
		for _, u := range st.Objects {
			if apply.ID(u) == id {
				return u
			}
		}
	}
	return nil
}

// unchangedObjects are the objects of next that prev renders identically.
func unchangedObjects(prev, next apply.Set) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, st := range next.Stages {
		for _, u := range st.Objects {
			if p := byID(prev, apply.ID(u)); p != nil && cmp.Equal(p.Object, u.Object) {
				out = append(out, u)
			}
		}
	}
	return out
}

func versionsOf(t *testing.T, ctx context.Context, kube client.Client, objs []*unstructured.Unstructured) map[string]string {
	t.Helper()
	return versions(t, ctx, kube, apply.Set{Stages: []apply.Stage{{Name: "all", Objects: objs}}})
}

func writes(r *apply.Result) []string {
	var out []string
	for _, e := range r.Entries {
		if e.Action != apply.Unchanged {
			out = append(out, string(e.Action)+" "+e.ID)
		}
	}
	return out
}

func get(t *testing.T, ctx context.Context, kube client.Client, apiVersion, kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	if err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatalf("%s %s/%s: %v", kind, ns, name, err)
	}
	return u
}

// waitGone waits until the object is deleted (a namespace's contents go
// first, so that can take the namespace controller a moment).
func waitGone(t *testing.T, ctx context.Context, kube client.Client, u *unstructured.Unstructured) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		l := &unstructured.Unstructured{}
		l.SetGroupVersionKind(u.GroupVersionKind())
		err := kube.Get(ctx, client.ObjectKeyFromObject(u), l)
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Errorf("%s was not deleted: %v", apply.ID(u), err)
	}
}
