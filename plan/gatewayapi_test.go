package plan_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

// ownCluster starts an API server of the test's own, without Gateway API
// CRDs, so that what the test installs does not leak into other tests.
func ownCluster(t *testing.T) (context.Context, *apply.Client) {
	t.Helper()
	cl := testcluster.StartForTest(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	c, err := apply.New(cl.Config, "")
	if err != nil {
		t.Fatal(err)
	}
	return ctx, c
}

// applyCRDs renders m for the cluster and applies its CRD stage, with
// prune, as meshctl apply would. The rest of the mesh is left out: an API
// server alone cannot run it, and the Gateway API CRDs are all in this stage.
func applyCRDs(t *testing.T, ctx context.Context, c *apply.Client, m *schema.Mesh) (*apply.Result, []string) {
	t.Helper()
	set, notes, err := plan.ForCluster(ctx, m, plan.Cluster{Client: c}, "test")
	if err != nil {
		t.Fatal(err)
	}
	only := apply.Set{Version: set.Version}
	for _, st := range set.Stages {
		if st.Name == "crds" {
			only.Stages = append(only.Stages, st)
		}
	}
	res, err := c.Apply(ctx, only, apply.Options{Prune: true, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return res, notes
}

func gatewayMesh(t *testing.T, install bool) *schema.Mesh {
	t.Helper()
	src := "linkerd: installGatewayAPI: false\n"
	if install {
		src = "linkerd: installGatewayAPI: true\n"
	}
	return mustLoadSource(t, "mesh.cue", src)
}

// clientView is what a client writes to a CRD: its spec (the generation)
// and its metadata. The API server keeps writing a CRD's status (its
// conditions) for a while after it changes, so its resourceVersion would
// not say whether meshctl wrote it.
type clientView struct {
	generation          int64
	labels, annotations map[string]string
}

func viewOf(t *testing.T, ctx context.Context, c *apply.Client, name string) clientView {
	t.Helper()
	crd := getCRD(t, ctx, c, name)
	return clientView{crd.Generation, crd.Labels, crd.Annotations}
}

func getCRD(t *testing.T, ctx context.Context, c *apply.Client, name string) *apiextv1.CustomResourceDefinition {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(apiextv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
	if err := c.Kube().Get(ctx, types.NamespacedName{Name: name}, u); err != nil {
		t.Fatal(err)
	}
	crd := &apiextv1.CustomResourceDefinition{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, crd); err != nil {
		t.Fatal(err)
	}
	return crd
}

func established(crd *apiextv1.CustomResourceDefinition) bool {
	for _, cond := range crd.Status.Conditions {
		if cond.Type == apiextv1.Established && cond.Status == apiextv1.ConditionTrue {
			return true
		}
	}
	return false
}

func entry(res *apply.Result, id string) (apply.Entry, bool) {
	for _, e := range res.Entries {
		if e.ID == id {
			return e, true
		}
	}
	return apply.Entry{}, false
}

func hasNote(notes []string, s string) bool {
	for _, n := range notes {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// TestGatewayAPIInstalledWhenAbsent: on a cluster without Gateway API,
// meshctl installs the route CRDs whatever installGatewayAPI says, and says
// so; the API server accepts them (api-approved.kubernetes.io, issue 13),
// establishes them and enforces their CEL rules. It keeps them up to date
// while they are its own, lets them go when someone else replaces them,
// and never deletes them.
func TestGatewayAPIInstalledWhenAbsent(t *testing.T) {
	ctx, c := ownCluster(t)
	res, notes := applyCRDs(t, ctx, c, gatewayMesh(t, false))
	if !hasNote(notes, "the cluster has no Gateway API route CRDs") {
		t.Errorf("notes %q do not say the Gateway API CRDs are installed", notes)
	}
	for _, name := range generators.GatewayAPICRDs {
		if e, _ := entry(res, "CustomResourceDefinition/"+name); e.Action != apply.Created {
			t.Errorf("%s: %+v", name, e)
		}
		crd := getCRD(t, ctx, c, name)
		if !established(crd) || crd.Annotations["api-approved.kubernetes.io"] == "" ||
			crd.Annotations[generators.AnnotationGatewayAPIBundleVersion] != "v1.1.1" || crd.Annotations[generators.AnnotationGatewayAPIChannel] != "experimental" {
			t.Errorf("%s: established %v, annotations %v, conditions %+v", name, established(crd), crd.Annotations, crd.Status.Conditions)
		}
	}

	// Two references to the same parent without sectionName or port break
	// one of HTTPRoute's CEL rules.
	route := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": "twice", "namespace": "default"},
		"spec": map[string]any{"parentRefs": []any{
			map[string]any{"name": "web", "kind": "Service", "group": ""},
			map[string]any{"name": "web", "kind": "Service", "group": ""},
		}},
	}}
	err := c.Kube().Create(ctx, route)
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "sectionName or port must be unique when parentRefs includes 2 or more references to the same parent") {
		t.Errorf("an HTTPRoute that breaks a CEL rule: %v", err)
	}
	route.Object["spec"] = map[string]any{"parentRefs": []any{map[string]any{"name": "web", "kind": "Service", "group": "", "port": int64(80)}}}
	if err := c.Kube().Create(ctx, route); err != nil {
		t.Errorf("a valid HTTPRoute: %v", err)
	}

	// Still meshctl's: kept up to date, with or without installGatewayAPI,
	// and quietly: the note was said when they were installed.
	again, notes := applyCRDs(t, ctx, c, gatewayMesh(t, false))
	if again.Writes != 0 || len(notes) != 0 {
		t.Errorf("second apply: writes %d, notes %q", again.Writes, notes)
	}
	if on, notes := applyCRDs(t, ctx, c, gatewayMesh(t, true)); on.Writes != 0 || len(notes) != 0 {
		t.Errorf("installGatewayAPI: true: writes %d, notes %q", on.Writes, notes)
	}

	// Someone applies another Gateway API release over them (kubectl
	// apply --server-side --force-conflicts): they are no longer meshctl's.
	// A replace that dropped meshctl.io/prune first makes meshctl refuse,
	// since the prune that lets them go would delete them.
	for _, name := range generators.GatewayAPICRDs {
		takeOver(t, ctx, c, name, map[string]any{
			generators.AnnotationGatewayAPIBundleVersion: "v1.4.0", generators.AnnotationGatewayAPIChannel: "standard",
		})
	}
	dropPrune(t, ctx, c, generators.GatewayAPICRDs[1])
	if _, _, err := plan.ForCluster(ctx, gatewayMesh(t, false), plan.Cluster{Client: c}, "test"); !errors.Is(err, plan.ErrGatewayAPIOwned) ||
		!strings.Contains(err.Error(), "kubectl annotate crd "+generators.GatewayAPICRDs[1]+" meshctl.io/prune=disabled") {
		t.Errorf("a replaced CRD still in the inventory: %v", err)
	}
	takeOver(t, ctx, c, generators.GatewayAPICRDs[1], map[string]any{"meshctl.io/prune": "disabled"})

	before := map[string]clientView{}
	for _, name := range generators.GatewayAPICRDs {
		before[name] = viewOf(t, ctx, c, name)
	}
	released, notes := applyCRDs(t, ctx, c, gatewayMesh(t, false))
	if !hasNote(notes, "someone else installed") {
		t.Errorf("notes %q", notes)
	}
	for _, name := range generators.GatewayAPICRDs {
		e, ok := entry(released, "CustomResourceDefinition/"+name)
		if !ok || e.Action != apply.Skipped {
			t.Errorf("%s after someone else took it: %+v", name, e)
		}
		if after := viewOf(t, ctx, c, name); !reflect.DeepEqual(after, before[name]) {
			t.Errorf("%s was written after someone else took it: %+v → %+v", name, before[name], after)
		}
	}
	inv, err := c.ReadInventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range inv.Objects {
		if strings.HasSuffix(r.Name, "."+generators.GatewayAPIGroup) {
			t.Errorf("the inventory still lists %s", r.ID())
		}
	}
	if _, _, err := plan.ForCluster(ctx, gatewayMesh(t, true), plan.Cluster{Client: c}, "test"); !errors.Is(err, plan.ErrGatewayAPIOwned) {
		t.Errorf("installGatewayAPI: true over someone else's CRDs: %v", err)
	}
}

// TestGatewayAPINeverTakesOver: Gateway API CRDs that someone else
// installed (the standard channel: HTTPRoute and GRPCRoute only) are left
// as they are when installGatewayAPI is false, and are an error when it is
// true. meshctl neither writes nor deletes them.
func TestGatewayAPINeverTakesOver(t *testing.T) {
	ctx, c := ownCluster(t)
	theirs := generators.GatewayAPICRDs[:2]
	for _, name := range theirs {
		installTheirs(t, ctx, c, name)
	}
	before := map[string]clientView{}
	for _, name := range theirs {
		before[name] = viewOf(t, ctx, c, name)
	}

	_, _, err := plan.ForCluster(ctx, gatewayMesh(t, true), plan.Cluster{Client: c}, "test")
	if !errors.Is(err, plan.ErrGatewayAPIOwned) || !strings.Contains(err.Error(), "set linkerd: installGatewayAPI: false") ||
		!strings.Contains(err.Error(), `httproutes (bundle-version "v1.4.0", channel "standard", field managers someone-else)`) {
		t.Errorf("installGatewayAPI: true: %v", err)
	}

	res, notes := applyCRDs(t, ctx, c, gatewayMesh(t, false))
	if !hasNote(notes, "using the CRDs someone else installed") || !hasNote(notes, "does not install the missing tcproutes") {
		t.Errorf("notes %q", notes)
	}
	for _, e := range res.Entries {
		if strings.HasSuffix(e.Name, "."+generators.GatewayAPIGroup) {
			t.Errorf("apply touched %s", e)
		}
	}
	for _, name := range generators.GatewayAPICRDs[2:] {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(apiextv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
		if err := c.Kube().Get(ctx, types.NamespacedName{Name: name}, u); !apierrors.IsNotFound(err) {
			t.Errorf("%s was installed next to someone else's CRDs: %v", name, err)
		}
	}
	for _, name := range theirs {
		crd := getCRD(t, ctx, c, name)
		if after := viewOf(t, ctx, c, name); !reflect.DeepEqual(after, before[name]) || crd.DeletionTimestamp != nil {
			t.Errorf("%s was written or deleted: %+v → %+v", name, before[name], after)
		}
		for _, mf := range crd.ManagedFields {
			if mf.Manager == apply.FieldManager {
				t.Errorf("%s: meshctl owns fields of it", name)
			}
		}
	}
}

// installTheirs installs a Gateway API CRD as another tool would: the
// bundle's schema, another release's annotations, no meshctl or Linkerd
// labels.
func installTheirs(t *testing.T, ctx context.Context, c *apply.Client, name string) {
	t.Helper()
	objs, err := generators.Render(gatewayMesh(t, true), generators.Inputs{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.Object.GetName() != name || o.Object.GetKind() != "CustomResourceDefinition" {
			continue
		}
		u := o.Object.DeepCopy()
		u.SetLabels(nil)
		u.SetAnnotations(map[string]string{
			"api-approved.kubernetes.io":                 "https://github.com/kubernetes-sigs/gateway-api/pull/3328",
			generators.AnnotationGatewayAPIBundleVersion: "v1.4.0",
			generators.AnnotationGatewayAPIChannel:       "standard",
		})
		if err := c.Kube().Patch(ctx, u, client.Apply, client.FieldOwner("someone-else")); err != nil {
			t.Fatal(err)
		}
		// Established, so that the API server writes it no more.
		if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
			return established(getCRD(t, ctx, c, name)), nil
		}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return
	}
	t.Fatalf("no %s in the render", name)
}

// takeOver server-side applies annotations to a CRD as another manager,
// forcing conflicts.
func takeOver(t *testing.T, ctx context.Context, c *apply.Client, name string, annotations map[string]any) {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": name, "annotations": annotations},
	}}
	if err := c.Kube().Patch(ctx, u, client.Apply, client.FieldOwner("someone-else"), client.ForceOwnership); err != nil {
		t.Fatal(err)
	}
}

// dropPrune removes meshctl.io/prune from a CRD, as kubectl replace would.
func dropPrune(t *testing.T, ctx context.Context, c *apply.Client, name string) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(apiextv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
	u.SetName(name)
	patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"meshctl.io/prune":null}}}`))
	if err := c.Kube().Patch(ctx, u, patch); err != nil {
		t.Fatal(err)
	}
}
