package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/certs"
)

// gitRepo is a real git repository in a temporary directory, with
// mesh.cue's history as a team would make it.
type gitRepo struct {
	t   *testing.T
	dir string
}

func newGitRepo(t *testing.T) *gitRepo {
	t.Helper()
	r := &gitRepo{t: t, dir: t.TempDir()}
	r.git("init", "-q", "-b", "main")
	r.git("config", "user.email", "ci@example.invalid")
	r.git("config", "user.name", "CI")
	return r
}

func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes mesh.cue and commits it.
func (r *gitRepo) commit(msg, mesh string) {
	r.t.Helper()
	if err := os.WriteFile(filepath.Join(r.dir, "mesh.cue"), []byte(mesh), 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.git("add", "mesh.cue")
	r.git("commit", "-q", "-m", msg)
}

func (r *gitRepo) mesh() string { return filepath.Join(r.dir, "mesh.cue") }

const prBase = `namespaces: booksapp: inject: "enabled"
services: "booksapp/books": {port: 7002, split: {books: 90, "books-v2": 10}}
`

// TestDiffInPullRequests runs `meshctl diff --offline --base-rev` as CI
// runs it on a pull request: against the merge base with main, on a real
// git history in which main has moved on since the branch was made.
func TestDiffInPullRequests(t *testing.T) {
	r := newGitRepo(t)
	r.commit("a canary at 10%", prBase)
	r.git("branch", "base")
	// main moves on after the branches below start from base: their diffs
	// must not show this change, reversed, as a diff against main's tip
	// would.
	r.commit("main: another namespace", prBase+"namespaces: payments: inject: \"enabled\"\n")
	for _, tc := range []struct {
		name, mesh string
		code       int
		want       []string // in the markdown
	}{
		{"a canary step", strings.Replace(prBase, "books: 90, \"books-v2\": 10", "books: 50, \"books-v2\": 50", 1), diffChanged,
			[]string{"- **booksapp/books canary books-v2 10% → 50%**", "### meshctl diff against `main...HEAD` ("}},
		{"a fault added", strings.Replace(prBase, "split: {books: 90, \"books-v2\": 10}}", "split: {books: 90, \"books-v2\": 10}, fault: {percent: 5, status: 503}}", 1), diffChanged,
			[]string{"- **booksapp/books fault 5% 503s added**", "ConfigMap/booksapp/books-fault"}},
		{"a cluster added", prBase + "clusters: {east: context: \"kind-east\", west: context: \"kind-west\"}\ncontrolPlane: identity: trustAnchor: keyCluster: \"east\"\n", diffChanged,
			[]string{"#### cluster `east`", "#### cluster `west`"}},
		{"nothing that renders differently", prBase + "// a comment\n", diffSame,
			[]string{"No changes: both revisions render the same"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.git("checkout", "-q", "-b", strings.ReplaceAll(tc.name, " ", "-"), "base")
			r.commit(tc.name, tc.mesh)
			code, out, errOut := runCLI("diff", "--offline", "--base-rev", "main...HEAD", "-o", "markdown", "--max-bytes", "60000", r.mesh())
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("the markdown lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "payments") {
				t.Errorf("the diff shows main's later change: it compared with main's tip, not the merge base:\n%s", out)
			}
		})
	}

	t.Run("a broken commit", func(t *testing.T) {
		r.git("checkout", "-q", "-b", "broken", "base")
		r.commit("a typo", prBase+"controlPlane: replicas: \"three\"\n")
		code, out, errOut := runCLI("diff", "--offline", "--base-rev", "main...HEAD", "-o", "markdown", r.mesh())
		// 3, not 1: 1 always means differences, and CI must fail the job.
		if code != diffError || out != "" || !strings.Contains(errOut, "mesh.cue:3:") {
			t.Errorf("exit %d (want %d), stdout %q, stderr %q (want a position)", code, diffError, out, errOut)
		}
	})

	t.Run("a merge base that is not there", func(t *testing.T) {
		r.git("checkout", "-q", "main")
		code, _, errOut := runCLI("diff", "--offline", "--base-rev", "nosuchbranch...HEAD", r.mesh())
		if code != diffError || !strings.Contains(errOut, "no merge base of nosuchbranch and HEAD") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
}

// TestDiffOf1000ServicesFitsAComment: a change of 1,000 services renders
// several times GitHub's limit on a comment. Under --max-bytes the
// markdown stays within the budget, keeps every meaning line and the
// table, and says how many objects' diffs it left out and how to see
// them.
func TestDiffOf1000ServicesFitsAComment(t *testing.T) {
	services := func(canary int) string {
		var b strings.Builder
		b.WriteString("namespaces: shop: inject: \"enabled\"\n")
		for i := range 1000 {
			fmt.Fprintf(&b, "services: \"shop/svc-%d\": {port: 80, split: {\"svc-%d\": %d, \"svc-%d-v2\": %d}}\n", i, i, 100-canary, i, canary)
		}
		return b.String()
	}
	r := newGitRepo(t)
	r.commit("1,000 canaries at 10%", services(10))
	r.git("checkout", "-q", "-b", "step")
	r.commit("every canary to 50%", services(50))

	code, out, errOut := runCLI("diff", "--offline", "--base-rev", "main...HEAD", "-o", "json", r.mesh())
	if code != diffChanged {
		t.Fatalf("json: exit %d\n%s", code, errOut)
	}
	var res apply.DiffResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Meanings) != 1000 {
		t.Fatalf("%d meanings, want one per service", len(res.Meanings))
	}

	const budget = 60000
	code, out, errOut = runCLI("diff", "--offline", "--base-rev", "main...HEAD", "-o", "markdown", "--max-bytes", fmt.Sprint(budget), r.mesh())
	if code != diffChanged || errOut != "" {
		t.Fatalf("markdown: exit %d\n%s", code, errOut)
	}
	if len(out) > budget {
		t.Errorf("the markdown is %d bytes, over the budget of %d", len(out), budget)
	}
	for _, m := range res.Meanings {
		if !strings.Contains(out, "- **"+m+"**\n") {
			t.Fatalf("the markdown lacks the meaning %q", m)
		}
	}
	for _, w := range []string{"| ~ | 1000 HTTPRoute in shop: `HTTPRoute/shop/svc-0` … `HTTPRoute/shop/svc-999` | configured |",
		"are left out, to keep this comment under 60000 bytes; see them with `meshctl diff --offline --base-rev main...HEAD "} {
		if !strings.Contains(out, w) {
			t.Errorf("the markdown lacks %q", w)
		}
	}
	// Without a budget, everything.
	_, full, _ := runCLI("diff", "--offline", "--base-rev", "main...HEAD", "-o", "markdown", r.mesh())
	if len(full) <= budget || strings.Contains(full, "left out") {
		t.Errorf("without --max-bytes the markdown is %d bytes and says it left something out", len(full))
	}
}

// TestDiffShowsNoPrivateKey: with certificates in both revisions (each
// with a trust anchor of its own, a key beside it in the checkout, as a
// careless team might keep it), no private key reaches any output.
func TestDiffShowsNoPrivateKey(t *testing.T) {
	anchor := func() (string, string) {
		b, err := certs.Generate(certs.Options{ControlPlaneNamespace: "linkerd", TrustDomain: "cluster.local"})
		if err != nil {
			t.Fatal(err)
		}
		return b.TrustAnchorsPEM, b.Anchor.KeyPEM
	}
	mesh := func(pem string) string {
		return fmt.Sprintf("controlPlane: identity: {trustAnchor: {source: \"pem\", pem: %q}, issuer: {source: \"certManager\", certManager: issuerRef: {name: \"linkerd-ca\", kind: \"ClusterIssuer\"}}}\n", pem)
	}
	r := newGitRepo(t)
	oldPEM, oldKey := anchor()
	r.commit("an anchor", mesh(oldPEM))
	r.git("checkout", "-q", "-b", "rotate")
	newPEM, newKey := anchor()
	r.commit("another anchor", mesh(newPEM))
	for _, o := range []string{"text", "markdown", "json"} {
		code, out, errOut := runCLI("diff", "--offline", "--base-rev", "main...HEAD", "-o", o, r.mesh())
		if code != diffChanged {
			t.Fatalf("-o %s: exit %d\n%s", o, code, errOut)
		}
		for _, key := range []string{oldKey, newKey, "PRIVATE KEY"} {
			if strings.Contains(out+errOut, strings.TrimSpace(key)) {
				t.Errorf("-o %s prints a private key", o)
			}
		}
		if !strings.Contains(out, "trust anchor") {
			t.Errorf("-o %s does not say the trust anchor changes:\n%.2000s", o, out)
		}
	}
}
