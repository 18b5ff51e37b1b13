// Package ci holds meshctl-pr.sh, the steps that the GitHub Action and the
// GitLab template run, and its tests: the script runs as CI would run it,
// against a stub of GitHub's or GitLab's API on loopback that records
// every request.
package ci

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// meshctlBin is meshctl, built once for the package's tests.
var meshctlBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "meshctl-ci-test-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "meshctl")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/meshctl").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return dir, nil
})

// comment is a pull request's comment (GitHub) or note (GitLab), as the
// APIs list them.
type comment struct {
	ID   int    `json:"id"`
	Body string `json:"body"`
}

// stub is GitHub's or GitLab's API for one pull request's comments.
type stub struct {
	mu       sync.Mutex
	comments []comment
	requests []string // "METHOD path?query"
	token    string   // the token each request must carry
}

func (s *stub) serve(t *testing.T, platform string) *httptest.Server {
	list := "/repos/acme/mesh/issues/7/comments"
	update := "/repos/acme/mesh/issues/comments/"
	if platform == "gitlab" {
		list = "/api/v4/projects/42/merge_requests/7/notes"
		update = list + "/"
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
		auth := r.Header.Get("Authorization") == "Bearer "+s.token || r.Header.Get("PRIVATE-TOKEN") == s.token
		if !auth {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		var in comment
		if r.Body != nil {
			b, _ := io.ReadAll(r.Body)
			_ = json.Unmarshal(b, &in)
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == list:
			page := 1
			fmt.Sscan(r.URL.Query().Get("page"), &page)
			from, to := min((page-1)*100, len(s.comments)), min(page*100, len(s.comments))
			_ = json.NewEncoder(w).Encode(append([]comment{}, s.comments[from:to]...))
		case r.Method == http.MethodPost && r.URL.Path == list:
			c := comment{ID: 1000 + len(s.comments), Body: in.Body}
			s.comments = append(s.comments, c)
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(c)
		case (r.Method == http.MethodPatch || r.Method == http.MethodPut) && strings.HasPrefix(r.URL.Path, update):
			var id int
			fmt.Sscan(strings.TrimPrefix(r.URL.Path, update), &id)
			for i := range s.comments {
				if s.comments[i].ID == id {
					s.comments[i].Body = in.Body
					_ = json.NewEncoder(w).Encode(s.comments[i])
					return
				}
			}
			http.NotFound(w, r)
		default:
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusTeapot)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// repo is a git repository with a base commit on main and a pull
// request's commit on a branch.
func repo(t *testing.T, base, head string) string {
	t.Helper()
	dir := t.TempDir()
	git := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null",
			"GIT_AUTHOR_NAME=ci", "GIT_AUTHOR_EMAIL=ci@example.invalid", "GIT_COMMITTER_NAME=ci", "GIT_COMMITTER_EMAIL=ci@example.invalid")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, "mesh.cue"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("init", "-q", "-b", "main")
	write(base)
	git("add", "mesh.cue")
	git("commit", "-q", "-m", "base")
	git("checkout", "-q", "-b", "pr")
	write(head)
	git("commit", "-q", "-am", "head")
	return dir
}

// runScript runs meshctl-pr.sh in dir as CI would, with meshctl on PATH.
func runScript(t *testing.T, dir string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	bin, err := meshctlBin()
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs("meshctl-pr.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(script, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"MESHCTL_CACHE=" + filepath.Join(t.TempDir(), "cache")}, env...)...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), o.String(), e.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, o.String(), e.String()
}

const (
	canary10 = `namespaces: booksapp: inject: "enabled"
services: "booksapp/books": {port: 7002, split: {books: 90, "books-v2": 10}}
`
	canary50 = `namespaces: booksapp: inject: "enabled"
services: "booksapp/books": {port: 7002, split: {books: 50, "books-v2": 50}}
`
	marker  = "<!-- meshctl-diff: mesh.cue -->"
	meaning = "booksapp/books canary books-v2 10% → 50%"
)

func TestGitHubComment(t *testing.T) {
	dir := repo(t, canary10, canary50)
	s := &stub{token: "t0ken"}
	// Someone else's comments fill the first page; the script's own
	// comment, from an earlier push, is on the second.
	for i := range 100 {
		s.comments = append(s.comments, comment{ID: i + 1, Body: "LGTM"})
	}
	srv := s.serve(t, "github")
	env := []string{"GITHUB_API_URL=" + srv.URL, "GITHUB_REPOSITORY=acme/mesh", "PR_NUMBER=7", "GITHUB_TOKEN=t0ken"}

	// The first push: one comment is created.
	code, _, errOut := runScript(t, dir, env, "--platform", "github", "--base-rev", "main...HEAD")
	if code != 0 {
		t.Fatalf("exit %d, want 0 (differences do not fail the job)\n%s", code, errOut)
	}
	if got := s.ours(); len(got) != 1 || !strings.Contains(got[0].Body, meaning) {
		t.Fatalf("after the first push, the comments with the marker: %+v", got)
	}
	first := s.ours()[0].ID
	if got, want := s.take(), []string{"GET /repos/acme/mesh/issues/7/comments?per_page=100&page=1", "GET /repos/acme/mesh/issues/7/comments?per_page=100&page=2",
		"POST /repos/acme/mesh/issues/7/comments"}; !equal(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}

	// A second push: the same comment is updated, not repeated.
	code, _, errOut = runScript(t, dir, env, "--platform", "github", "--base-rev", "main...HEAD")
	if code != 0 {
		t.Fatalf("second push: exit %d\n%s", code, errOut)
	}
	if got := s.ours(); len(got) != 1 || got[0].ID != first {
		t.Errorf("after the second push, the comments with the marker: %+v", got)
	}
	if got, want := s.take(), []string{"GET /repos/acme/mesh/issues/7/comments?per_page=100&page=1", "GET /repos/acme/mesh/issues/7/comments?per_page=100&page=2",
		fmt.Sprintf("PATCH /repos/acme/mesh/issues/comments/%d", first)}; !equal(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}

	// An invalid mesh fails the job, and the comment says why.
	if err := os.WriteFile(filepath.Join(dir, "mesh.cue"), []byte(canary50+"controlPlane: replicas: \"three\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, _ = runScript(t, dir, env, "--platform", "github", "--base-rev", "main...HEAD")
	if got := s.ours(); code != 1 || len(got) != 1 || !strings.Contains(got[0].Body, "is invalid") || !strings.Contains(got[0].Body, "mesh.cue:3:") {
		t.Errorf("invalid mesh: exit %d, comments %+v", code, got)
	}

	// A token GitHub refuses: exit 3, and the reason.
	code, _, errOut = runScript(t, dir, append(env, "GITHUB_TOKEN=wrong"), "--platform", "github", "--base-rev", "main...HEAD")
	if code != 3 || !strings.Contains(errOut, "Bad credentials") {
		t.Errorf("a refused token: exit %d, stderr %q", code, errOut)
	}
}

func TestGitLabNote(t *testing.T) {
	dir := repo(t, canary10, canary50)
	s := &stub{token: "glpat"}
	srv := s.serve(t, "gitlab")
	env := []string{"CI_API_V4_URL=" + srv.URL + "/api/v4", "CI_PROJECT_ID=42", "CI_MERGE_REQUEST_IID=7", "GITLAB_TOKEN=glpat"}
	for push := range 2 {
		code, _, errOut := runScript(t, dir, env, "--platform", "gitlab", "--base-rev", "main")
		if code != 0 {
			t.Fatalf("push %d: exit %d\n%s", push, code, errOut)
		}
	}
	if got := s.ours(); len(got) != 1 || !strings.Contains(got[0].Body, meaning) {
		t.Fatalf("notes with the marker: %+v", got)
	}
	want := []string{"GET /api/v4/projects/42/merge_requests/7/notes?per_page=100&page=1", "POST /api/v4/projects/42/merge_requests/7/notes",
		"GET /api/v4/projects/42/merge_requests/7/notes?per_page=100&page=1", "PUT /api/v4/projects/42/merge_requests/7/notes/1000"}
	if got := s.take(); !equal(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}
}

// TestBodyOnly: --platform none prints the comment: the marker, then the
// diff against the merge base.
func TestBodyOnly(t *testing.T) {
	dir := repo(t, canary10, canary50)
	code, out, errOut := runScript(t, dir, nil, "--platform", "none", "--base-rev", "main...HEAD")
	if code != 0 || !strings.HasPrefix(out, marker+"\n### meshctl diff against `main...HEAD` (") || !strings.Contains(out, meaning) {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runScript(t, dir, nil, "--platform", "slack", "--base-rev", "main"); code != 2 || !strings.Contains(errOut, "--platform github, gitlab or none") {
		t.Errorf("a bad platform: exit %d, %q", code, errOut)
	}
}

// ours is the comments with the script's marker.
func (s *stub) ours() []comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []comment
	for _, c := range s.comments {
		if strings.HasPrefix(c.Body, marker) {
			out = append(out, c)
		}
	}
	return out
}

func (s *stub) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.requests
	s.requests = nil
	return out
}

func equal(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}
