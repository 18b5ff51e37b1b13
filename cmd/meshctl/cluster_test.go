package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshctl/meshctl/internal/testcluster"
)

// shared is the package's cluster, started by the first test that needs it,
// so that the CLI's pure tests (exit codes, offline diff) need no cluster.
var shared testcluster.Shared

func TestMain(m *testing.M) { testcluster.Main(m, &shared) }

func writeMesh(t *testing.T, dir, src string) string {
	t.Helper()
	p := filepath.Join(dir, "mesh.cue")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const booksMesh = `namespaces: booksapp: {inject: "enabled", create: true}
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
	if code, _, errOut = runCLI("apply", "--max-deletions=0", kc, smaller); code != exitRefused || !strings.Contains(errOut, "prune refused") {
		t.Fatalf("apply --max-deletions=0: exit %d\n%s", code, errOut)
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

// TestOfflineDiff compares two revisions without a cluster, from files and
// from git, and reads the biggest changes.
func TestOfflineDiff(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.cue")
	os.WriteFile(base, []byte("controlPlane: ha: true\nservices: \"shop/cart\": split: {cart: 90, \"cart-v2\": 10}\n"), 0o644)
	path := writeMesh(t, dir, "services: \"shop/cart\": split: {cart: 50, \"cart-v2\": 50}\n")
	code, out, errOut := runCLI("diff", "--offline", "--base", base, path)
	if code != diffChanged {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"# HA off: linkerd-destination replicas 3→1",
		"PDBs removed",
		"shop/cart canary weight cart 90→50, cart-v2 10→50",
		"--- live/Deployment/linkerd/linkerd-identity",
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
