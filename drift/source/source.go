// Package source reads mesh.cue where the cluster's delivery tools put it: a
// path (a ConfigMap volume, a git-sync worktree) or a Flux source's
// artifact. Each Fetch copies one revision into a directory of its own, so
// a render never reads a volume half-way through an update.
package source

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/meshctl/meshctl/schema"
)

// Snapshot is one revision of the mesh source on local disk.
type Snapshot struct {
	// Path is the mesh.cue file or directory to load (schema.Load takes a
	// file or a directory of .cue files).
	Path string
	// Revision names it for people: a Flux artifact's revision
	// ("main@sha1:0123abcd…"), git-sync's commit ("git:<commit>") when the
	// path is a git-sync worktree, else "sha256:<hex of the content>".
	Revision string
	// Root is the snapshot's directory, and Origin what it stands for in
	// messages (the volume's directory, or the Flux object and revision):
	// an error's positions read Origin's, not a temporary copy's.
	Root, Origin string
}

// Source yields the current snapshot. Fetch is cheap when nothing changed
// (it returns the same Revision without re-downloading).
type Source interface {
	Fetch(ctx context.Context) (Snapshot, error)
	String() string // "path /etc/mesh/mesh.cue", "flux GitRepository flux-system/mesh"
}

// Parse reads --source. "" or "path" means the PATH argument;
// "flux:GitRepository/NS/NAME" or "flux:OCIRepository/NS/NAME" reads Flux's
// artifact, with inside the mesh.cue path within the artifact (default
// "mesh.cue"). workDir is where snapshots are kept: a directory of the
// caller's own (the reconciler runs with a read-only root filesystem and an
// emptyDir at /tmp), in which Fetch removes older snapshots.
func Parse(spec, path, inside, workDir string, cfg *rest.Config) (Source, error) {
	if workDir == "" {
		return nil, fmt.Errorf("no work directory for snapshots")
	}
	switch {
	case spec == "" || spec == "path":
		if path == "" {
			path = schema.DefaultPath
		}
		return &pathSource{path: path, workDir: workDir}, nil
	case strings.HasPrefix(spec, "flux:"):
		return parseFlux(spec, inside, workDir, cfg)
	}
	return nil, fmt.Errorf("--source %q: want path, flux:GitRepository/NAMESPACE/NAME or flux:OCIRepository/NAMESPACE/NAME", spec)
}

// FluxRef names the Flux source object --source points at.
type FluxRef struct {
	// Kind is GitRepository or OCIRepository; Resource its plural, as RBAC
	// names it.
	Kind, Resource, Namespace, Name string
}

// ParseFluxRef reads "flux:KIND/NAMESPACE/NAME". install-reconciler uses it
// too, so that the RBAC it grants names exactly what reconcile reads.
func ParseFluxRef(spec string) (FluxRef, error) {
	want := fmt.Errorf("--source %q: want flux:GitRepository/NAMESPACE/NAME or flux:OCIRepository/NAMESPACE/NAME", spec)
	rest, ok := strings.CutPrefix(spec, "flux:")
	if !ok {
		return FluxRef{}, want
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return FluxRef{}, want
	}
	k, ok := fluxKindOf(parts[0])
	if !ok {
		return FluxRef{}, want
	}
	for _, p := range parts[1:] {
		if errs := validation.IsDNS1123Subdomain(p); len(errs) > 0 {
			return FluxRef{}, fmt.Errorf("--source %q: %q is not a valid name: %s", spec, p, errs[0])
		}
	}
	return FluxRef{Kind: k.kind, Resource: k.plural, Namespace: parts[1], Name: parts[2]}, nil
}

func parseFlux(spec, inside, workDir string, cfg *rest.Config) (Source, error) {
	ref, err := ParseFluxRef(spec)
	if err != nil {
		return nil, err
	}
	kind, _ := fluxKindOf(ref.Kind)
	if inside == "" {
		inside = schema.DefaultPath
	}
	clean := path.Clean(strings.TrimPrefix(filepath.ToSlash(inside), "./"))
	if path.IsAbs(clean) || !filepath.IsLocal(filepath.FromSlash(clean)) {
		return nil, fmt.Errorf("--source-path %q: want a path inside the artifact, such as clusters/prod/mesh.cue", inside)
	}
	if cfg == nil {
		return nil, fmt.Errorf("%q needs a cluster connection", spec)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &fluxSource{
		kind: kind, namespace: ref.Namespace, name: ref.Name, inside: clean, workDir: workDir,
		dyn: dyn, disc: disc, http: newHTTPClient(), limits: defaultLimits,
	}, nil
}
