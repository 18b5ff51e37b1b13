package plan_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

const safeToEvict = "cluster-autoscaler.kubernetes.io/safe-to-evict"

// evictMesh asks for safe-to-evict in shop, and not in plain.
const evictMesh = `namespaces: {
	shop: {create: true, safeToEvict: true}
	plain: create: true
}
`

// TestSafeToEvictReachesPods: the test cluster serves
// MutatingAdmissionPolicy, so the policy meshctl applies puts the
// annotation on new pods in shop, and only there, and keeps a pod's own
// "false". The workloads' templates are left alone: nothing restarts.
func TestSafeToEvictReachesPods(t *testing.T) {
	cluster := shared.Get(t)
	ctx, c := connect(t, "")
	served, err := plan.ServesAdmissionPolicy(c)
	if err != nil || !served {
		t.Fatalf("the test cluster does not serve MutatingAdmissionPolicy (%v)", err)
	}
	notes := applyWithNotes(t, ctx, c, mustLoadSource(t, "mesh.cue", evictMesh))
	if !containsLine(notes, "safeToEvict: MutatingAdmissionPolicy meshctl-safe-to-evict puts "+safeToEvict+" on new pods in shop") {
		t.Errorf("apply does not say it uses the policy: %q", notes)
	}
	// The API server loads policies through an informer: wait until a pod
	// dry-run in shop comes back annotated.
	waitServiceAccount(t, ctx, cluster.Client, "shop")
	waitServiceAccount(t, ctx, cluster.Client, "plain")
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		p, err := cluster.Client.CoreV1().Pods("shop").Create(ctx, pod("probe", nil), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err == nil && p.Annotations[safeToEvict] == "true", nil
	})
	if err != nil {
		t.Fatalf("the policy never took effect in shop: %v", err)
	}

	for _, d := range []*appsv1.Deployment{
		deployment("shop", "web", nil),
		deployment("shop", "keeps-false", map[string]string{safeToEvict: "false"}),
		deployment("plain", "web", nil),
	} {
		if _, err := cluster.Client.AppsV1().Deployments(d.Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ ns, app, want string }{
		{"shop", "web", "true"},
		{"shop", "keeps-false", "false"},
		{"plain", "web", ""},
	} {
		p := waitPod(t, ctx, cluster.Client, tc.ns, tc.app)
		if got := p.Annotations[safeToEvict]; got != tc.want {
			t.Errorf("pod %s/%s: %s=%q, want %q", tc.ns, p.Name, safeToEvict, got, tc.want)
		}
	}
	// A bare pod is mutated the same way.
	bare, err := cluster.Client.CoreV1().Pods("shop").Create(ctx, pod("bare", nil), metav1.CreateOptions{})
	if err != nil || bare.Annotations[safeToEvict] != "true" {
		t.Errorf("bare pod in shop: %v %v", bare.Annotations, err)
	}
	web, err := cluster.Client.AppsV1().Deployments("shop").Get(ctx, "web", metav1.GetOptions{})
	if err != nil || web.Generation != 1 || web.Spec.Template.Annotations[safeToEvict] != "" {
		t.Errorf("with the policy, meshctl changed Deployment shop/web (generation %d, template %v, %v)", web.Generation, web.Spec.Template.Annotations, err)
	}
}

// TestSafeToEvictWithoutAdmissionPolicy: on a cluster that does not serve
// MutatingAdmissionPolicy, apply sets the annotation on the pod templates
// in shop under a field manager of its own that owns that field alone,
// keeps a template's own value, says so, and removes it again when
// safeToEvict goes.
func TestSafeToEvictWithoutAdmissionPolicy(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{Full: true, Nodes: 1, APIServerFlags: []string{
		"--runtime-config=admissionregistration.k8s.io/v1/mutatingadmissionpolicies=false,admissionregistration.k8s.io/v1/mutatingadmissionpolicybindings=false",
		// The admission plugin waits for the kinds it can no longer list.
		"--disable-admission-plugins=MutatingAdmissionPolicy",
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := apply.New(cluster.Config, "")
	if err != nil {
		t.Fatal(err)
	}
	if served, err := plan.ServesAdmissionPolicy(c); err != nil || served {
		t.Fatalf("served %v, %v; want a cluster without MutatingAdmissionPolicy", served, err)
	}
	m := mustLoadSource(t, "mesh.cue", evictMesh)
	notes := applyWithNotes(t, ctx, c, m)
	if !containsLine(notes, "safeToEvict: the cluster does not serve MutatingAdmissionPolicy, so meshctl sets "+safeToEvict+" on pod templates (field manager meshctl-safe-to-evict)") {
		t.Errorf("apply does not say it uses the pod templates: %q", notes)
	}
	waitServiceAccount(t, ctx, cluster.Client, "shop")
	for _, d := range []*appsv1.Deployment{
		deployment("shop", "web", nil),
		deployment("shop", "keeps-false", map[string]string{safeToEvict: "false"}),
		deployment("plain", "web", nil),
	} {
		if _, err := cluster.Client.AppsV1().Deployments(d.Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// A dry run says what would change, and changes nothing.
	dryNote, restarts, err := plan.SafeToEvictTemplates(ctx, m, plan.Cluster{Client: c, DryRun: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if dry := []string{dryNote}; !restarts || !containsLine(dry, "; would be set on Deployment/shop/web: their pods restart; would be left off Deployment/shop/keeps-false, whose templates set their own value") {
		t.Errorf("dry-run notes: %q", dry)
	}
	if got := template(t, ctx, cluster.Client, "shop", "web"); got.Annotations[safeToEvict] != "" {
		t.Errorf("the dry run wrote: %v", got.Annotations)
	}

	notes = applyWithNotes(t, ctx, c, m)
	if !containsLine(notes, "; set on Deployment/shop/web: their pods restart; left off Deployment/shop/keeps-false, whose templates set their own value") {
		t.Errorf("notes: %q", notes)
	}
	for _, tc := range []struct{ ns, name, want string }{
		{"shop", "web", "true"},
		{"shop", "keeps-false", "false"},
		{"plain", "web", ""},
	} {
		if got := template(t, ctx, cluster.Client, tc.ns, tc.name).Annotations[safeToEvict]; got != tc.want {
			t.Errorf("Deployment %s/%s template: %s=%q, want %q", tc.ns, tc.name, safeToEvict, got, tc.want)
		}
	}
	if got := ownedBy(t, ctx, cluster.Client, "shop", "web", plan.SafeToEvictManager); got != `{"f:spec":{"f:template":{"f:metadata":{"f:annotations":{"f:`+safeToEvict+`":{}}}}}}` {
		t.Errorf("%s owns %s, want the annotation alone", plan.SafeToEvictManager, got)
	}
	// The template changed, so the Deployment rolls out pods that carry it.
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		pods, err := cluster.Client.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, nil
		}
		for _, p := range pods.Items {
			if p.Annotations[safeToEvict] == "true" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no pod of Deployment shop/web carries %s: %v", safeToEvict, err)
	}

	// Applying again changes nothing.
	before := template(t, ctx, cluster.Client, "shop", "web")
	notes = applyWithNotes(t, ctx, c, m)
	if !containsLine(notes, "; left off Deployment/shop/keeps-false, whose templates set their own value; 1 already set") {
		t.Errorf("second apply notes: %q", notes)
	}
	// Its controller keeps writing the status, so the generation (bumped by
	// spec writes only) says whether the apply wrote it.
	if d, _ := cluster.Client.AppsV1().Deployments("shop").Get(ctx, "web", metav1.GetOptions{}); d.Generation != before.generation {
		t.Errorf("a second apply rewrote Deployment shop/web: generation %d → %d", before.generation, d.Generation)
	}

	// safeToEvict goes: the annotation meshctl set goes with it, and the
	// Deployment's own value stays.
	off := mustLoadSource(t, "mesh.cue", "namespaces: {shop: create: true, plain: create: true}\n")
	notes = applyWithNotes(t, ctx, c, off)
	if !containsLine(notes, "; removed from Deployment/shop/web: their pods restart") {
		t.Errorf("notes when safeToEvict goes: %q", notes)
	}
	if got := template(t, ctx, cluster.Client, "shop", "web").Annotations; got[safeToEvict] != "" {
		t.Errorf("Deployment shop/web template keeps %v", got)
	}
	if got := template(t, ctx, cluster.Client, "shop", "keeps-false").Annotations; got[safeToEvict] != "false" {
		t.Errorf("Deployment shop/keeps-false lost its own value: %v", got)
	}
	if got := ownedBy(t, ctx, cluster.Client, "shop", "web", plan.SafeToEvictManager); got != "" {
		t.Errorf("%s still owns %s", plan.SafeToEvictManager, got)
	}
}

// applyWithNotes renders m for the cluster, applies it, and returns the
// notes apply prints.
func applyWithNotes(t *testing.T, ctx context.Context, c *apply.Client, m *schema.Mesh) []string {
	t.Helper()
	set, notes, err := plan.ForCluster(ctx, m, plan.Cluster{Client: c}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, set, apply.Options{Prune: true, ForcePrune: true}); err != nil {
		t.Fatal(err)
	}
	// As cmd apply does: the pod-template fallback runs after the apply.
	note, _, err := plan.SafeToEvictTemplates(ctx, m, plan.Cluster{Client: c}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if note != "" {
		notes = append(notes, note)
	}
	t.Logf("notes: %q", notes)
	return notes
}

func containsLine(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func waitServiceAccount(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns string) {
	t.Helper()
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := kube.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("no default ServiceAccount in %s: %v", ns, err)
	}
}

// waitPod waits for a pod of the Deployment app in ns to be created.
func waitPod(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns, app string) corev1.Pod {
	t.Helper()
	var found corev1.Pod
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil || len(pods.Items) == 0 {
			return false, nil
		}
		found = pods.Items[0]
		return true, nil
	})
	if err != nil {
		t.Fatalf("no pod of Deployment %s/%s: %v", ns, app, err)
	}
	return found
}

func pod(name string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
	}
}

func deployment(ns, name string, annotations map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec:       pod(name, nil).Spec,
			},
		},
	}
}

type templateMeta struct {
	Annotations map[string]string
	generation  int64
}

func template(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns, name string) templateMeta {
	t.Helper()
	d, err := kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return templateMeta{Annotations: d.Spec.Template.Annotations, generation: d.Generation}
}

// ownedBy returns the fields manager owns on a Deployment, as JSON, or ""
// when it owns none.
func ownedBy(t *testing.T, ctx context.Context, kube kubernetes.Interface, ns, name, manager string) string {
	t.Helper()
	d, err := kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range d.ManagedFields {
		if f.Manager == manager && f.FieldsV1 != nil {
			var v any
			if err := json.Unmarshal(f.FieldsV1.Raw, &v); err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(v)
			return string(b)
		}
	}
	return ""
}
