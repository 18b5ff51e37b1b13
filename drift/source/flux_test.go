package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/meshctl/meshctl/internal/testcluster"
)

// artifactServer stands in for source-controller's artifact server.
type artifactServer struct {
	*httptest.Server
	mu       sync.Mutex
	files    map[string][]byte
	requests atomic.Int64
}

func newArtifactServer(t *testing.T) *artifactServer {
	s := &artifactServer{files: map[string][]byte{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		data, ok := s.files[r.URL.Path]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(data)
	}))
	t.Cleanup(s.Close)
	return s
}

// publish serves a tarball and returns the status.artifact Flux would
// write for it.
func (s *artifactServer) publish(name, revision string, data []byte) map[string]any {
	sum := sha256.Sum256(data)
	p := "/gitrepository/flux-system/mesh/" + name + ".tar.gz"
	s.mu.Lock()
	s.files[p] = data
	s.mu.Unlock()
	return map[string]any{
		"url": s.URL + p, "revision": revision, "digest": "sha256:" + hex.EncodeToString(sum[:]),
		"path": p, "size": int64(len(data)), "lastUpdateTime": time.Now().UTC().Format(time.RFC3339),
	}
}

func withRevision(art map[string]any, rev string) map[string]any {
	out := map[string]any{}
	for k, v := range art {
		out[k] = v
	}
	out["revision"] = rev
	return out
}

func ready(status, message string, art map[string]any) map[string]any {
	st := map[string]any{"conditions": []any{map[string]any{
		"type": "Ready", "status": status, "reason": "Test", "message": message,
		"lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
	}}}
	if art != nil {
		st["artifact"] = art
	}
	return st
}

func TestFluxSource(t *testing.T) {
	c := testcluster.StartForTest(t, testcluster.Options{})
	ctx := t.Context()
	dyn := dynamic.NewForConfigOrDie(c.Config)
	srv := newArtifactServer(t)
	git := schema.GroupVersionResource{Group: fluxGroup, Version: "v1", Resource: "gitrepositories"}
	oci := schema.GroupVersionResource{Group: fluxGroup, Version: "v1beta2", Resource: "ocirepositories"}

	notServed := fetchErr(t, ctx, "flux:GitRepository/flux-system/mesh", c.Config)
	if want := "GitRepository flux-system/mesh cannot be read: the cluster serves no gitrepositories.source.toolkit.fluxcd.io (v1, v1beta2): install Flux's source-controller, or give mesh.cue as a path"; notServed != want {
		t.Errorf("before the CRD:\ngot  %s\nwant %s", notServed, want)
	}

	fluxCRD(t, ctx, dyn, git, "GitRepository")
	fluxCRD(t, ctx, dyn, oci, "OCIRepository")
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flux-system"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	repo := create(t, ctx, dyn, git, "GitRepository", "mesh")

	one := srv.publish("one", "main@sha1:1111111111111111111111111111111111111111",
		tarball(t, entry{name: "clusters/prod/mesh.cue", body: "one"}, entry{name: "README.md", body: "r"}))
	two := srv.publish("two", "main@sha1:2222222222222222222222222222222222222222",
		tarball(t, entry{name: "clusters/"}, entry{name: "clusters/prod/"}, entry{name: "clusters/prod/mesh.cue", body: "two"}))
	bad := srv.publish("bad", "main@sha1:3333333333333333333333333333333333333333", tarball(t, entry{name: "clusters/prod/mesh.cue", body: "three"}))
	badDigest := bad["digest"].(string)
	other := sha256.Sum256([]byte("another tarball"))
	bad["digest"] = "sha256:" + hex.EncodeToString(other[:])
	escape := srv.publish("escape", "main@sha1:4444444444444444444444444444444444444444",
		tarball(t, entry{name: "clusters/prod/mesh.cue", body: "four"}, entry{name: "../../evil.cue", body: "evil"}))
	elsewhere := srv.publish("elsewhere", "main@sha1:5555555555555555555555555555555555555555", tarball(t, entry{name: "mesh.cue", body: "five"}))
	gone := srv.publish("gone", "main@sha1:6666666666666666666666666666666666666666", nil)
	srv.mu.Lock()
	delete(srv.files, "/gitrepository/flux-system/mesh/gone.tar.gz")
	srv.mu.Unlock()

	work := t.TempDir()
	src, err := Parse("flux:GitRepository/flux-system/mesh", "ignored.cue", "clusters/prod/mesh.cue", work, c.Config)
	if err != nil {
		t.Fatal(err)
	}
	var good Snapshot // the last snapshot fetched
	goodBody := ""
	for _, tc := range []struct {
		name     string
		status   map[string]any
		requests int64
		wantRev  string
		wantBody string
		wantErr  string
		// unpacked: a failed artifact stays unpacked beside the last good
		// one (it was sound, only not usable).
		unpacked bool
	}{{
		name:    "no artifact yet",
		status:  ready("False", "failed to checkout and determine revision: unable to clone 'https://example.com/mesh': authentication required", nil),
		wantErr: "GitRepository flux-system/mesh has no artifact yet (Ready=False: failed to checkout and determine revision: unable to clone 'https://example.com/mesh': authentication required): check Flux's source-controller (flux get sources git mesh -n flux-system)",
	}, {
		name:     "first artifact is downloaded and unpacked",
		status:   ready("True", "stored artifact", one),
		requests: 1, wantRev: "main@sha1:1111111111111111111111111111111111111111", wantBody: "one",
	}, {
		name:     "same digest: no download",
		status:   ready("True", "stored artifact", one),
		requests: 0, wantRev: "main@sha1:1111111111111111111111111111111111111111", wantBody: "one",
	}, {
		name:     "new artifact is downloaded",
		status:   ready("True", "stored artifact", two),
		requests: 1, wantRev: "main@sha1:2222222222222222222222222222222222222222", wantBody: "two",
	}, {
		name:     "a commit that changes no file: no download, its revision",
		status:   ready("True", "stored artifact", withRevision(two, "main@sha1:2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b")),
		requests: 0, wantRev: "main@sha1:2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b", wantBody: "two",
	}, {
		name:     "digest mismatch",
		status:   ready("True", "stored artifact", bad),
		requests: 1,
		wantErr:  "the artifact of GitRepository flux-system/mesh (revision main@sha1:3333333333333333333333333333333333333333) does not match its digest " + bad["digest"].(string) + " (the download's is " + badDigest + "): nothing of it is used; check Flux's source-controller",
	}, {
		name:     "unsafe tarball",
		status:   ready("True", "stored artifact", escape),
		requests: 1,
		wantErr:  `the artifact of GitRepository flux-system/mesh (revision main@sha1:4444444444444444444444444444444444444444) is refused: entry "../../evil.cue" leaves the directory (..); nothing of it is used`,
	}, {
		name:     "no mesh.cue at --source-path",
		status:   ready("True", "stored artifact", elsewhere),
		requests: 1, unpacked: true,
		wantErr: "the artifact of GitRepository flux-system/mesh (revision main@sha1:5555555555555555555555555555555555555555) has no clusters/prod/mesh.cue: fix --source-path",
	}, {
		name:     "artifact not served",
		status:   ready("True", "stored artifact", gone),
		requests: 1,
		wantErr:  "downloading the artifact of GitRepository flux-system/mesh (revision main@sha1:6666666666666666666666666666666666666666) from URL/gitrepository/flux-system/mesh/gone.tar.gz: 404 Not Found: check Flux's source-controller",
	}, {
		name:    "not ready, with an older artifact",
		status:  ready("False", "failed to checkout and determine revision: reference 'main' not found", two),
		wantErr: "GitRepository flux-system/mesh is not ready (Ready=False: failed to checkout and determine revision: reference 'main' not found): check Flux's source-controller (flux get sources git mesh -n flux-system)",
	}, {
		name:     "ready again: the snapshot kept is used",
		status:   ready("True", "stored artifact", two),
		requests: 0, wantRev: "main@sha1:2222222222222222222222222222222222222222", wantBody: "two",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			repo = setStatus(t, ctx, dyn, git, repo, tc.status)
			before := srv.requests.Load()
			snap, err := src.Fetch(ctx)
			if n := srv.requests.Load() - before; n != tc.requests {
				t.Errorf("HTTP requests: got %d, want %d", n, tc.requests)
			}
			if tc.wantErr != "" {
				got := "<nil>"
				if err != nil {
					got = strings.ReplaceAll(err.Error(), srv.URL, "URL")
				}
				if got != tc.wantErr {
					t.Errorf("error:\ngot  %s\nwant %s", got, tc.wantErr)
				}
				if good.Path != "" {
					checkSnapshot(t, work, good, goodBody, 2)
				}
				art, _ := tc.status["artifact"].(map[string]any)
				if art == nil {
					return
				}
				_, sum, _ := strings.Cut(art["digest"].(string), ":")
				dir := filepath.Join(work, sum)
				if unpacked := exists(dir); unpacked != tc.unpacked && !strings.HasPrefix(good.Path, dir) {
					t.Errorf("%s unpacked: %v, want %v", dir, unpacked, tc.unpacked)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if snap.Revision != tc.wantRev {
				t.Errorf("revision: got %s, want %s", snap.Revision, tc.wantRev)
			}
			checkSnapshot(t, work, snap, tc.wantBody, 1)
			good, goodBody = snap, tc.wantBody
		})
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(work), "evil.cue")); err == nil {
		t.Error("the unsafe tarball wrote evil.cue beside the work directory")
	}

	t.Run("OCIRepository served as v1beta2", func(t *testing.T) {
		o := create(t, ctx, dyn, oci, "OCIRepository", "mesh-oci")
		art := srv.publish("oci", "latest@sha256:7777777777777777777777777777777777777777777777777777777777777777",
			tarball(t, entry{name: "mesh.cue", body: "oci"}))
		setStatus(t, ctx, dyn, oci, o, ready("True", "stored artifact", art))
		src, err := Parse("flux:OCIRepository/flux-system/mesh-oci", "", "", t.TempDir(), c.Config)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := src.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Revision != art["revision"] {
			t.Errorf("revision: got %s, want %s", snap.Revision, art["revision"])
		}
		checkSnapshot(t, filepath.Dir(filepath.Dir(snap.Path)), snap, "oci", 1)
	})

	for _, tc := range []struct {
		name, spec string
		cfg        *rest.Config
		want       string
	}{{
		name: "no such object",
		spec: "flux:GitRepository/flux-system/absent", cfg: c.Config,
		want: "GitRepository flux-system/absent not found: create it, or fix --source",
	}, {
		name: "no RBAC to read it",
		spec: "flux:GitRepository/flux-system/mesh", cfg: impersonate(c.Config, "nobody"),
		want: "GitRepository flux-system/mesh cannot be read (forbidden): grant the reconciler's ServiceAccount get on gitrepositories.source.toolkit.fluxcd.io in namespace flux-system",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fetchErr(t, ctx, tc.spec, tc.cfg); got != tc.want {
				t.Errorf("error:\ngot  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// checkSnapshot checks that snap's mesh.cue holds body, and that work
// holds it and no more than max snapshots, with nothing half-written.
func checkSnapshot(t *testing.T, work string, snap Snapshot, body string, max int) {
	t.Helper()
	data, err := os.ReadFile(snap.Path)
	if err != nil {
		t.Fatalf("snapshot of %s: %v", snap.Revision, err)
	}
	if string(data) != body {
		t.Errorf("%s: got %q, want %q", snap.Path, data, body)
	}
	entries, err := os.ReadDir(work)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	found := false
	for _, e := range entries {
		names = append(names, e.Name())
		found = found || strings.HasPrefix(snap.Path, filepath.Join(work, e.Name())+string(filepath.Separator))
	}
	if !found || len(names) > max || strings.Contains(strings.Join(names, " "), tmpPrefix) {
		t.Errorf("work directory holds %v; want the snapshot of %s and at most %d", names, snap.Path, max)
	}
}

func fetchErr(t *testing.T, ctx context.Context, spec string, cfg *rest.Config) string {
	t.Helper()
	src, err := Parse(spec, "", "", t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Fetch(ctx)
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func impersonate(cfg *rest.Config, user string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user}
	return c
}

// fluxCRD serves a Flux source kind with any content and a status
// subresource, as a stand-in for Flux's CRD, and waits until it is served.
func fluxCRD(t *testing.T, ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, kind string) {
	t.Helper()
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": gvr.Resource + "." + gvr.Group},
		"spec": map[string]any{
			"group": gvr.Group, "scope": "Namespaced",
			"names": map[string]any{"kind": kind, "plural": gvr.Resource, "singular": strings.ToLower(kind), "listKind": kind + "List"},
			"versions": []any{map[string]any{
				"name": gvr.Version, "served": true, "storage": true,
				"subresources": map[string]any{"status": map[string]any{}},
				"schema":       map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
			}},
		},
	}}
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	if _, err := dyn.Resource(crds).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := dyn.Resource(gvr).Namespace("default").List(ctx, metav1.ListOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("%s is not served: %v", gvr, err)
	}
}

func create(t *testing.T, ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, kind, name string) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": gvr.GroupVersion().String(), "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": "flux-system"},
		"spec":     map[string]any{"interval": "1m", "url": "https://example.com/mesh"},
	}}
	out, err := dyn.Resource(gvr).Namespace("flux-system").Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// setStatus writes status through the status subresource, as
// source-controller does.
func setStatus(t *testing.T, ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, obj *unstructured.Unstructured, status map[string]any) *unstructured.Unstructured {
	t.Helper()
	obj = obj.DeepCopy()
	obj.Object["status"] = status
	out, err := dyn.Resource(gvr).Namespace(obj.GetNamespace()).UpdateStatus(ctx, obj, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
