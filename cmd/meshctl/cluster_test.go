package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/internal/testcluster"
)

// shared is the package's cluster, started by the first test that needs it,
// so that the CLI's pure tests (exit codes, offline diff) need no cluster.
var shared testcluster.Shared

func TestMain(m *testing.M) {
	// The test binary is meshctl itself for tests that need the whole
	// process's output: client-go logs to os.Stderr, not to run's writers.
	if os.Getenv("MESHCTL_TEST_MAIN") == "1" {
		main()
	}
	// The cache of validated services is the tests' own, not the
	// user's (schema.CacheDir); the commands still go through it.
	if os.Getenv("MESHCTL_CACHE") == "" {
		os.Setenv("MESHCTL_CACHE", filepath.Join(os.TempDir(), "meshctl-cmd-test-cache"))
	}
	testcluster.Main(m, &shared)
}

func writeMesh(t *testing.T, dir, src string) string {
	t.Helper()
	p := filepath.Join(dir, "mesh.cue")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const booksMesh = `namespaces: booksapp: {inject: "enabled", create: true}
services: "booksapp/books": model: "serviceprofile"
services: "booksapp/authors": model: "serviceprofile"
services: "booksapp/books": routes: [{name: "GET /books", method: "GET", pathRegex: "/books"}]
services: "booksapp/authors": routes: [{name: "GET /authors", method: "GET", pathRegex: "/authors"}]
`

// TestApplyAndDiffCommands drives the CLI against the cluster: apply,
// no-op apply, diff exit codes and formats, drift, pruning and refusals.
func TestApplyAndDiffCommands(t *testing.T) {
	cluster := shared.Get(t)
	dir := t.TempDir()
	kc := "--kubeconfig=" + cluster.Kubeconfig
	path := writeMesh(t, dir, booksMesh)

	code, out, errOut := runCLI("apply", kc, path)
	if code != exitOK || !strings.Contains(out, "ServiceProfile/booksapp/books.booksapp.svc.cluster.local created") ||
		!strings.Contains(out, "Deployment/linkerd/linkerd-destination created") {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "PRIVATE KEY") {
		t.Fatal("apply printed a private key")
	}
	code, out, _ = runCLI("apply", kc, path)
	if code != exitOK || !strings.Contains(out, " 0 created, 0 configured,") || strings.Contains(out, " created\n") {
		t.Fatalf("second apply: exit %d\n%s", code, out)
	}
	if code, out, errOut = runCLI("diff", kc, path); code != diffSame {
		t.Fatalf("diff after apply: exit %d\n%s%s", code, out, errOut)
	}

	// Drift: diff exits 1 in every format, apply restores.
	d, err := cluster.Client.AppsV1().Deployments("linkerd").Get(context.Background(), "linkerd-destination", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].ImagePullPolicy = "Always"
	if _, err := cluster.Client.AppsV1().Deployments("linkerd").Update(context.Background(), d, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI("diff", kc, path)
	if code != diffChanged || !strings.Contains(out, "-        imagePullPolicy: Always") || !strings.Contains(out, "+        imagePullPolicy: IfNotPresent") {
		t.Fatalf("diff of drift: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI("diff", "-o", "markdown", kc, path)
	if code != diffChanged || !strings.Contains(out, "| ~ | `Deployment/linkerd/linkerd-destination` | configured |") || !strings.Contains(out, "```diff") {
		t.Fatalf("markdown diff: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI("diff", "-o", "json", kc, path)
	var js struct {
		Objects []struct{ ID, Action string }
	}
	if code != diffChanged || json.Unmarshal([]byte(out), &js) != nil || len(js.Objects) == 0 {
		t.Fatalf("json diff: exit %d\n%s", code, out)
	}
	if code, out, _ = runCLI("apply", "--dry-run", kc, path); code != exitOK || !strings.Contains(out, "Deployment/linkerd/linkerd-destination configured") || !strings.Contains(out, "nothing written") {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	if code, _, _ = runCLI("diff", kc, path); code != diffChanged {
		t.Fatal("--dry-run restored the drift")
	}
	code, out, errOut = runCLI("apply", "-o", "json", kc, path)
	var res struct {
		Writes  int
		Entries []struct{ ID, Action string }
	}
	if code != exitOK || json.Unmarshal([]byte(out), &res) != nil || res.Writes != 1 || !strings.Contains(errOut, "linkerd-destination configured") {
		t.Fatalf("json apply: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, _ = runCLI("diff", kc, path); code != diffSame {
		t.Fatal("apply did not restore the drift")
	}

	// Editing mesh.cue: the diff shows exactly that change, apply makes it.
	edited := writeMesh(t, dir, strings.Replace(booksMesh, `pathRegex: "/books"}`, `pathRegex: "/books", timeout: "250ms"}`, 1))
	code, out, _ = runCLI("diff", kc, edited)
	if code != diffChanged || !strings.Contains(out, "+    timeout: 250ms") || !strings.Contains(out, "0 to create, 1 to configure, 0 to delete") ||
		!strings.Contains(out, "--- live/ServiceProfile/booksapp/books.booksapp.svc.cluster.local") {
		t.Fatalf("diff of an edited route: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI("apply", kc, edited)
	if code != exitOK || !strings.Contains(out, "ServiceProfile/booksapp/books.booksapp.svc.cluster.local configured") || !strings.Contains(out, "0 created, 1 configured,") {
		t.Fatalf("apply of an edited route: exit %d\n%s", code, out)
	}
	path = edited

	// Removing a service prunes its profile, and nothing else; with
	// --max-deletions=0 it is refused first.
	smaller := writeMesh(t, dir, strings.Replace(strings.Replace(booksMesh, `pathRegex: "/books"}`, `pathRegex: "/books", timeout: "250ms"}`, 1), `services: "booksapp/authors": routes: [{name: "GET /authors", method: "GET", pathRegex: "/authors"}]`, "", 1))
	code, out, _ = runCLI("diff", kc, smaller)
	if code != diffChanged || !strings.Contains(out, "-kind: ServiceProfile") || !strings.Contains(out, "0 to create, 0 to configure, 1 to delete") {
		t.Fatalf("diff of a removed service: exit %d\n%s", code, out)
	}
	// The refused render also creates a profile and edits a route: the
	// refusal must come before any of it is written.
	refused := filepath.Join(dir, "refused.cue")
	refusedSrc := strings.Replace(readFile(t, smaller), `pathRegex: "/books", timeout: "250ms"}`, `pathRegex: "/books", timeout: "500ms"}`, 1) +
		`services: "booksapp/webapp": {model: "serviceprofile", routes: [{name: "GET /", method: "GET", pathRegex: "/"}]}` + "\n"
	if err := os.WriteFile(refused, []byte(refusedSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, _ = runCLI("diff", kc, refused); code != diffChanged || !strings.Contains(out, "1 to create, 1 to configure, 1 to delete") {
		t.Fatalf("diff of the render to refuse: exit %d\n%s", code, out)
	}
	books := profile(t, cluster, "books")
	if code, out, errOut = runCLI("apply", "--max-deletions=0", kc, refused); code != exitRefused || !strings.Contains(errOut, "prune refused") {
		t.Fatalf("apply --max-deletions=0: exit %d\n%s\n%s", code, out, errOut)
	}
	if after := profile(t, cluster, "books"); after == nil || after.GetResourceVersion() != books.GetResourceVersion() {
		t.Errorf("a refused apply wrote the changed profile: resourceVersion %s, was %s", after.GetResourceVersion(), books.GetResourceVersion())
	}
	if p := profile(t, cluster, "webapp"); p != nil {
		t.Errorf("a refused apply created %s", p.GetName())
	}
	code, out, _ = runCLI("apply", kc, smaller)
	if code != exitOK || !strings.Contains(out, "ServiceProfile/booksapp/authors.booksapp.svc.cluster.local deleted") || !strings.Contains(out, ", 1 deleted,") {
		t.Fatalf("apply of a removed service: exit %d\n%s", code, out)
	}

	// A broken file applies nothing, and diff calls it an error.
	broken := filepath.Join(dir, "broken.cue")
	os.WriteFile(broken, []byte("controlPlane: ha: \"yes\"\n"), 0o644)
	if code, out, errOut = runCLI("apply", kc, broken); code != exitInvalid || out != "" || !strings.Contains(errOut, "broken.cue:1:") {
		t.Fatalf("apply of a broken file: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, _ = runCLI("diff", kc, broken); code != diffError {
		t.Fatalf("diff of a broken file: exit %d, want %d", code, diffError)
	}
	if code, _, errOut = runCLI("apply", "--kubeconfig="+filepath.Join(dir, "none"), path); code != exitError || !strings.Contains(errOut, "kubeconfig") {
		t.Fatalf("apply without a cluster: exit %d\n%s", code, errOut)
	}
}

// TestApplyForceRecreates: a render that changes an immutable field fails
// (exit 3) and writes nothing, until --force deletes and recreates the
// object.
func TestApplyForceRecreates(t *testing.T) {
	cluster := shared.Get(t)
	ctx := context.Background()
	kc := "--kubeconfig=" + cluster.Kubeconfig
	path := writeMesh(t, t.TempDir(), booksMesh)
	if code, out, errOut := runCLI("apply", kc, path); code != exitOK {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	deployments := cluster.Client.AppsV1().Deployments("linkerd")
	rendered, err := deployments.Get(ctx, "linkerd-destination", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Recreate linkerd-destination out of band with another selector: one
	// more label. A LabelSelector is atomic to server-side apply, so the
	// render replaces it whole, and a Deployment's selector is immutable.
	if err := deployments.Delete(ctx, rendered.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rendered linkerd-destination to be deleted", func() (bool, error) {
		_, err := deployments.Get(ctx, rendered.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	oob := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: rendered.Name, Namespace: rendered.Namespace, Labels: rendered.Labels, Annotations: rendered.Annotations},
		Spec:       *rendered.Spec.DeepCopy(),
	}
	oob.Spec.Selector.MatchLabels["meshctl.test/recreated"] = "out-of-band"
	oob.Spec.Template.Labels["meshctl.test/recreated"] = "out-of-band"
	if _, err := deployments.Create(ctx, oob, metav1.CreateOptions{FieldManager: "out-of-band"}); err != nil {
		t.Fatal(err)
	}
	// Wait for the rollout, so that the controller manager has no status
	// left to write and resourceVersion changes only if someone writes.
	var live *appsv1.Deployment
	waitFor(t, "the out-of-band linkerd-destination to roll out", func() (bool, error) {
		d, err := deployments.Get(ctx, rendered.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		live = d
		return rolledOut(d), nil
	})

	code, out, errOut := runCLI("apply", kc, path)
	if code != exitError || !strings.Contains(errOut, "spec.selector") || !strings.Contains(errOut, "--force") {
		t.Fatalf("apply over an immutable change: exit %d (want %d), stderr should name spec.selector and suggest --force\n%s\n%s", code, exitError, out, errOut)
	}
	after, err := deployments.Get(ctx, rendered.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Its controller may still write the status, so the generation (spec
	// writes only) and the uid say whether the failed apply touched it.
	if after.UID != live.UID || after.Generation != live.Generation {
		t.Errorf("a failed apply changed linkerd-destination: uid %s→%s, generation %d→%d", live.UID, after.UID, live.Generation, after.Generation)
	}

	if code, out, errOut := runCLI("apply", "--force", kc, path); code != exitOK {
		t.Fatalf("apply --force: exit %d\n%s\n%s", code, out, errOut)
	}
	after, err = deployments.Get(ctx, rendered.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.UID == live.UID {
		t.Error("apply --force did not recreate linkerd-destination")
	}
	if diff := cmp.Diff(rendered.Spec.Selector, after.Spec.Selector); diff != "" {
		t.Errorf("selector after apply --force (-rendered +live):\n%s", diff)
	}
	if _, ok := after.Spec.Template.Labels["meshctl.test/recreated"]; ok {
		t.Error("apply --force kept the out-of-band template label")
	}
	if code, out, errOut := runCLI("diff", kc, path); code != diffSame {
		t.Fatalf("diff after apply --force: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestHAWarnsAboutNodes: on a cluster with no schedulable node (an API
// server alone), apply and diff of an HA mesh say why its replicas will
// stay Pending; vet, which knows no cluster, says nothing.
func TestHAWarnsAboutNodes(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{})
	kc := "--kubeconfig=" + cluster.Kubeconfig
	want := "HA: 0 nodes are schedulable (none). HA runs 3 replicas each of linkerd-destination, linkerd-identity and linkerd-proxy-injector with required per-node anti-affinity, so 3 replicas of each will stay Pending until 3 nodes are schedulable"
	code, out, errOut := runCLI("diff", kc, "../../examples/ha.cue")
	if code != diffChanged || !strings.Contains(out, "# warning: "+want+"\n") {
		t.Errorf("diff: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runCLI("diff", "-o", "markdown", kc, "../../examples/ha.cue")
	if code != diffChanged || !strings.Contains(out, "> **Warning:** "+want) {
		t.Errorf("diff -o markdown: exit %d\n%s", code, out)
	}
	code, out, errOut = runCLI("apply", "--dry-run", kc, "../../examples/ha.cue")
	if code != exitOK || !strings.Contains(errOut, "warning: "+want+"\n") {
		t.Errorf("apply --dry-run: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut = runCLI("vet", "../../examples/ha.cue"); code != exitOK || strings.Contains(out+errOut, "warning") {
		t.Errorf("vet: exit %d\n%s%s", code, out, errOut)
	}
}

func rolledOut(d *appsv1.Deployment) bool {
	if d.Status.ObservedGeneration < d.Generation || d.Spec.Replicas == nil ||
		d.Status.UpdatedReplicas != *d.Spec.Replicas || d.Status.AvailableReplicas != *d.Spec.Replicas || d.Status.Replicas != *d.Spec.Replicas {
		return false
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing {
			return c.Reason == "NewReplicaSetAvailable"
		}
	}
	return false
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) { return cond() })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

var serviceProfiles = schema.GroupVersionResource{Group: "linkerd.io", Version: "v1alpha2", Resource: "serviceprofiles"}

// profile returns booksapp's ServiceProfile of service, or nil when there is
// none.
func profile(t *testing.T, cluster *testcluster.Cluster, service string) *unstructured.Unstructured {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dyn.Resource(serviceProfiles).Namespace("booksapp").Get(context.Background(), service+".booksapp.svc.cluster.local", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOfflineDiff compares two revisions without a cluster, from files and
// from git, and reads the biggest changes.
func TestOfflineDiff(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.cue")
	os.WriteFile(base, []byte("controlPlane: ha: true\nservices: \"shop/cart\": {port: 80, split: {cart: 90, \"cart-v2\": 10}}\n"), 0o644)
	path := writeMesh(t, dir, "services: \"shop/cart\": {port: 80, split: {cart: 50, \"cart-v2\": 50}}\n")
	code, out, errOut := runCLI("diff", "--offline", "--base", base, path)
	if code != diffChanged {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"# HA off: linkerd-destination replicas 3→1",
		"PDBs removed",
		"# shop/cart canary cart-v2 10% → 50%",
		"--- base/Deployment/linkerd/linkerd-identity",
		"-  replicas: 3",
		"+  replicas: 1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("offline diff lacks %q:\n%s", want, out)
		}
	}
	if code, _, _ := runCLI("diff", "--offline", "--base", path, path); code != diffSame {
		t.Errorf("a file against itself: exit %d", code)
	}
	if code, _, errOut := runCLI("diff", "--offline", path); code != exitUsage || !strings.Contains(errOut, "--base") {
		t.Errorf("--offline alone: exit %d %s", code, errOut)
	}

	// --base-rev reads the older revision from git.
	git := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	os.WriteFile(path, []byte("controlPlane: ha: true\n"), 0o644)
	git("add", "mesh.cue")
	git("commit", "-qm", "ha")
	os.WriteFile(path, []byte("{}\n"), 0o644)
	code, out, errOut = runCLI("diff", "--base-rev", "HEAD", "-o", "markdown", path)
	if code != diffChanged || !strings.Contains(out, "**HA off: linkerd-destination replicas 3→1") {
		t.Errorf("--base-rev: exit %d\n%s%s", code, out, errOut)
	}
}
