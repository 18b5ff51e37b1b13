package source

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
)

// fluxGroup is the API group of Flux's source-controller.
const fluxGroup = "source.toolkit.fluxcd.io"

// fluxKind is a Flux source kind meshctl reads, with its API versions in
// order of preference and its noun in the flux CLI.
type fluxKind struct {
	kind, plural, cli string
	versions          []string
}

var fluxKinds = []fluxKind{
	{kind: "GitRepository", plural: "gitrepositories", cli: "git", versions: []string{"v1", "v1beta2"}},
	{kind: "OCIRepository", plural: "ocirepositories", cli: "oci", versions: []string{"v1", "v1beta2"}},
}

// fluxKindOf finds a Flux source kind by name, in any case.
func fluxKindOf(name string) (fluxKind, bool) {
	for _, k := range fluxKinds {
		if strings.EqualFold(name, k.kind) {
			return k, true
		}
	}
	return fluxKind{}, false
}

// downloadTimeout bounds one artifact download.
const downloadTimeout = 2 * time.Minute

func newHTTPClient() *http.Client {
	return &http.Client{Timeout: downloadTimeout, Transport: http.DefaultTransport.(*http.Transport).Clone()}
}

// fluxSource reads the artifact a Flux source publishes in status.artifact.
type fluxSource struct {
	kind                             fluxKind
	namespace, name, inside, workDir string
	dyn                              dynamic.Interface
	disc                             discovery.DiscoveryInterface
	http                             *http.Client
	limits                           limits

	mu     sync.Mutex
	gvr    schema.GroupVersionResource
	digest string // of the last good artifact
	dir    string // its directory's name in workDir
	last   Snapshot
}

func (s *fluxSource) String() string { return "flux " + s.id() }

func (s *fluxSource) id() string { return s.kind.kind + " " + s.namespace + "/" + s.name }

// artifact is what status.artifact says of the latest artifact.
type artifact struct {
	url, digest, revision string
}

// Fetch reads the source object; it downloads, checks and unpacks the
// artifact only when its digest changed.
func (s *fluxSource) Fetch(ctx context.Context) (Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	obj, err := s.get(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	art, err := s.artifactOf(obj)
	if err != nil {
		return Snapshot{}, err
	}
	if art.digest == s.digest && exists(s.last.Path) {
		// A commit that changes no file keeps the digest; status still
		// shows the commit that is live.
		s.last.Revision = art.revision
		clean(s.workDir, s.dir)
		return s.last, nil
	}
	algo, want, err := s.parseDigest(art.digest)
	if err != nil {
		return Snapshot{}, err
	}
	// An artifact that is unpacked but unusable stays beside the last good
	// one until the source moves on, so that polling it again costs no
	// download.
	clean(s.workDir, want, s.dir)
	dir := filepath.Join(s.workDir, want)
	if !exists(dir) {
		if err := s.download(ctx, art, algo, want, dir); err != nil {
			return Snapshot{}, err
		}
	}
	p := filepath.Join(dir, filepath.FromSlash(s.inside))
	if !exists(p) {
		return Snapshot{}, fmt.Errorf("the artifact of %s (revision %s) has no %s: fix --source-path", s.id(), art.revision, s.inside)
	}
	if !resolvesWithin(dir, p) {
		return Snapshot{}, fmt.Errorf("the artifact of %s (revision %s) links %s outside itself: fix --source-path", s.id(), art.revision, s.inside)
	}
	s.last, s.digest, s.dir = Snapshot{Path: p, Revision: art.revision, Root: dir, Origin: fmt.Sprintf("%s (%s)", s.id(), art.revision)}, art.digest, want
	clean(s.workDir, want)
	return s.last, nil
}

// get reads the source object, finding the API version the cluster serves
// on first use.
func (s *fluxSource) get(ctx context.Context) (*unstructured.Unstructured, error) {
	if s.gvr.Version == "" {
		gvr, err := s.resource()
		if err != nil {
			return nil, err
		}
		s.gvr = gvr
	}
	obj, err := s.dyn.Resource(s.gvr).Namespace(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	switch {
	case err == nil:
		return obj, nil
	case apierrors.IsNotFound(err):
		// Flux may have been upgraded to serve another version.
		s.gvr = schema.GroupVersionResource{}
		return nil, fmt.Errorf("%s not found: create it, or fix --source", s.id())
	case apierrors.IsForbidden(err):
		return nil, fmt.Errorf("%s cannot be read (forbidden): grant the reconciler's ServiceAccount get on %s.%s in namespace %s", s.id(), s.kind.plural, fluxGroup, s.namespace)
	}
	return nil, fmt.Errorf("reading %s: %w", s.id(), err)
}

// resource returns the kind's resource in the first version served.
func (s *fluxSource) resource() (schema.GroupVersionResource, error) {
	for _, v := range s.kind.versions {
		list, err := s.disc.ServerResourcesForGroupVersion(fluxGroup + "/" + v)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return schema.GroupVersionResource{}, fmt.Errorf("reading %s: discovering %s/%s: %w", s.id(), fluxGroup, v, err)
		}
		for _, r := range list.APIResources {
			if r.Name == s.kind.plural {
				return schema.GroupVersionResource{Group: fluxGroup, Version: v, Resource: r.Name}, nil
			}
		}
	}
	return schema.GroupVersionResource{}, fmt.Errorf("%s cannot be read: the cluster serves no %s.%s (%s): install Flux's source-controller, or give mesh.cue as a path",
		s.id(), s.kind.plural, fluxGroup, strings.Join(s.kind.versions, ", "))
}

// artifactOf reads status.artifact, refusing a source that is not ready.
func (s *fluxSource) artifactOf(obj *unstructured.Unstructured) (artifact, error) {
	status, ready := readyOf(obj)
	hint := fmt.Sprintf("check Flux's source-controller (flux get sources %s %s -n %s)", s.kind.cli, s.name, s.namespace)
	// status.artifact also holds a size and metadata: read strings only.
	a := map[string]string{}
	m, _, _ := unstructured.NestedMap(obj.Object, "status", "artifact")
	for k, v := range m {
		if str, ok := v.(string); ok {
			a[k] = str
		}
	}
	if a["url"] == "" {
		return artifact{}, fmt.Errorf("%s has no artifact yet (%s): %s", s.id(), ready, hint)
	}
	if status == "False" {
		return artifact{}, fmt.Errorf("%s is not ready (%s): %s", s.id(), ready, hint)
	}
	art := artifact{url: a["url"], digest: a["digest"], revision: a["revision"]}
	if art.digest == "" && a["checksum"] != "" {
		// Flux before v2.0 published a bare sha256 as checksum.
		art.digest = "sha256:" + a["checksum"]
	}
	if art.digest == "" {
		return artifact{}, fmt.Errorf("the artifact of %s has no digest to check it by: upgrade Flux", s.id())
	}
	return art, nil
}

// readyOf returns the status of the object's Ready condition and a
// description: "Ready=False: message".
func readyOf(obj *unstructured.Unstructured) (status, desc string) {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != "Ready" {
			continue
		}
		status, _ = m["status"].(string)
		desc = "Ready=" + status
		if msg, _ := m["message"].(string); msg != "" {
			desc += ": " + strings.Join(strings.Fields(msg), " ")
		}
		return status, desc
	}
	return "", "no Ready condition yet"
}

// parseDigest splits "sha256:<hex>" and checks that it can be verified.
func (s *fluxSource) parseDigest(d string) (algo, hexsum string, err error) {
	algo, hexsum, _ = strings.Cut(d, ":")
	h := newHash(algo)
	if h == nil {
		return "", "", fmt.Errorf("the artifact of %s has digest %q, which meshctl cannot check: run source-controller with --artifact-digest-algo=sha256", s.id(), d)
	}
	if len(hexsum) != 2*h.Size() || !isHex(hexsum) {
		return "", "", fmt.Errorf("the artifact of %s has a malformed digest %q: check Flux's source-controller", s.id(), d)
	}
	return algo, hexsum, nil
}

func newHash(algo string) hash.Hash {
	switch algo {
	case "sha256":
		return sha256.New()
	case "sha384":
		return sha512.New384()
	case "sha512":
		return sha512.New()
	}
	return nil
}

// download fetches the artifact, checks its digest and unpacks it into
// dir, which appears only when all of it is checked and unpacked.
func (s *fluxSource) download(ctx context.Context, art artifact, algo, want, dir string) error {
	what := fmt.Sprintf("the artifact of %s (revision %s)", s.id(), art.revision)
	if u, err := url.Parse(art.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("%s has URL %q, not http(s): check Flux's source-controller", what, art.url)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, art.url, nil)
	if err != nil {
		return fmt.Errorf("downloading %s: %w", what, err)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("downloading %s: %w: check that this pod can reach source-controller (Flux's NetworkPolicies admit only its own namespace)", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("downloading %s from %s: %s: check Flux's source-controller", what, art.url, resp.Status)
	}
	f, err := os.CreateTemp(s.workDir, tmpPrefix+"download-")
	if err != nil {
		return fmt.Errorf("downloading %s: %w", what, err)
	}
	defer func() { f.Close(); os.Remove(f.Name()) }()
	h := newHash(algo)
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, s.limits.Bytes+1))
	if err != nil {
		return fmt.Errorf("downloading %s: %w", what, err)
	}
	if n > s.limits.Bytes {
		return fmt.Errorf("%s is larger than %s: keep mesh.cue in a smaller artifact (spec.ignore)", what, size(s.limits.Bytes))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%s does not match its digest %s:%s (the download's is %s:%s): nothing of it is used; check Flux's source-controller", what, algo, want, algo, got)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(s.workDir, tmpPrefix+"unpack-")
	if err != nil {
		return fmt.Errorf("unpacking %s: %w", what, err)
	}
	if err := unpack(f, tmp, s.limits); err != nil {
		_ = os.RemoveAll(tmp)
		var unsafe *unsafeEntryError
		switch {
		case errors.As(err, &unsafe):
			return fmt.Errorf("%s is refused: %w; nothing of it is used", what, err)
		case errors.Is(err, errTooLarge):
			return fmt.Errorf("%s is refused: %w; keep mesh.cue in a smaller artifact (spec.ignore)", what, err)
		}
		return fmt.Errorf("unpacking %s: %w", what, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("unpacking %s: %w", what, err)
	}
	return nil
}
