package main

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshctl/meshctl/internal/meshtest"
	"github.com/meshctl/meshctl/internal/testcluster"
)

const rolloutCLIMesh = `namespaces: booksapp: {inject: "enabled", create: true}
services: "booksapp/books": {
	port: 7002
	split: {books: 100, "books-v2": 0}
	rollout: {from: "books", to: "books-v2", steps: [10, 50, 100], interval: "10s", prometheusURL: "http://127.0.0.1:1"}
}
`

// TestRolloutCommands drives meshctl rollout against a real API server,
// without the loop: status before any rollout, a promote that starts and
// moves it (and reaches the route), status, diff and status saying where
// it stands rather than reporting drift, promote --full, and a refused
// decision on the ended rollout.
func TestRolloutCommands(t *testing.T) {
	cluster := testcluster.StartForTest(t, testcluster.Options{})
	kc := "--kubeconfig=" + cluster.Kubeconfig
	path := writeMesh(t, t.TempDir(), rolloutCLIMesh)
	if code, out, errOut := runCLI("apply", kc, path); code != exitOK {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, name := range []string{"books", "books-v2"} {
		d := meshtest.Deployment("booksapp", name, "example/"+name)
		if _, err := cluster.Client.AppsV1().Deployments("booksapp").Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		args       []string
		code       int
		out, noOut string
	}{
		{[]string{"rollout", "status", kc}, exitOK, "no rollouts", ""},
		{[]string{"rollout", "status", "booksapp/books", kc}, exitUsage, "", ""},
		{[]string{"rollout", "promote", "booksapp/books", kc, path}, exitOK, "books-v2 moved by hand to 50% (step 2/3)", ""},
		{[]string{"rollout", "status", kc}, exitOK, "booksapp/books: step 2/3, books-v2 at 50%", ""},
		{[]string{"status", kc}, exitOK, "rollout booksapp/books: step 2/3, books-v2 at 50%", ""},
		// The route carries the rollout's weights: no drift.
		{[]string{"diff", kc, path}, exitOK, "rollout booksapp/books: step 2/3", "HTTPRoute"},
		{[]string{"rollout", "promote", "booksapp/books", "--full", kc, path}, exitOK, "books-v2 promoted to 100% by hand", ""},
		{[]string{"rollout", "status", "booksapp/books", "-o", "json", kc}, exitOK, `"phase": "Promoted"`, ""},
		{[]string{"rollout", "abort", "booksapp/books", kc, path}, exitUsage, "", ""},
	}
	for _, s := range steps {
		code, out, errOut := runCLI(s.args...)
		if code != s.code || !strings.Contains(out, s.out) || s.noOut != "" && strings.Contains(out, s.noOut) {
			t.Fatalf("meshctl %s: exit %d (want %d), stdout %q (want %q, not %q), stderr %q", strings.Join(s.args, " "), code, s.code, out, s.out, s.noOut, errOut)
		}
		if code != exitOK && (strings.Count(strings.TrimSpace(errOut), "\n") > 0 || errOut == "") {
			t.Errorf("meshctl %s: want one line on stderr, got %q", strings.Join(s.args, " "), errOut)
		}
	}
	route, err := cluster.Client.Discovery().RESTClient().Get().
		AbsPath("/apis/policy.linkerd.io/v1beta3/namespaces/booksapp/httproutes/books").DoRaw(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(route), `"name":"books-v2","port":7002,"weight":100`) {
		t.Errorf("the route after promote --full: %s", route)
	}
}
