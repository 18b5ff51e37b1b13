package plan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/schema"
)

// ErrGatewayAPIOwned is wrapped when linkerd.installGatewayAPI asks for
// Gateway API CRDs that someone else installed.
var ErrGatewayAPIOwned = errors.New("the Gateway API CRDs belong to someone else")

// gatewayCRD is one Gateway API route CRD as the cluster holds it.
type gatewayCRD struct {
	name string
	live *metav1.PartialObjectMetadata // nil when absent
}

// ours reports a CRD that meshctl (at this bundle version) or a Linkerd
// install put there: meshctl may keep it up to date. Anything else was
// installed by someone else and is never taken over (issue 8).
func (g gatewayCRD) ours() bool {
	l, a := g.live.Labels, g.live.Annotations
	if l[apply.LabelManagedBy] == apply.ManagedByMeshctl {
		return a[generators.AnnotationGatewayAPIBundleVersion] == generators.GatewayAPIBundleVersion &&
			a[generators.AnnotationGatewayAPIChannel] == generators.GatewayAPIChannel
	}
	// linkerd install --crds with installGatewayAPI, which meshctl
	// replaces as it replaces the rest of Linkerd's install.
	return l["linkerd.io/control-plane-ns"] != "" || strings.HasPrefix(l["helm.sh/chart"], "linkerd-crds-")
}

// describe says who installed a CRD that is not ours, as far as the
// cluster tells.
func (g gatewayCRD) describe() string {
	a := g.live.Annotations
	var who []string
	for _, mf := range g.live.ManagedFields {
		if mf.Subresource == "" && !slices.Contains(who, mf.Manager) {
			who = append(who, mf.Manager)
		}
	}
	short := strings.TrimSuffix(g.name, "."+generators.GatewayAPIGroup)
	return fmt.Sprintf("%s (bundle-version %q, channel %q, field managers %s)", short,
		a[generators.AnnotationGatewayAPIBundleVersion], a[generators.AnnotationGatewayAPIChannel], strings.Join(who, ", "))
}

// gatewayAPI decides whether this render installs the Gateway API route
// CRDs, and returns the mesh to render. Upstream's install refuses when they
// are absent and not requested, because Linkerd's policy controller skips
// gateway routes until it restarts; meshctl installs them instead when the
// cluster has none (FACTS §4). It manages them while they are its own (or
// Linkerd's), never takes over someone else's, and never deletes them: the
// render marks them meshctl.io/prune: disabled.
//
//	installGatewayAPI  cluster holds                        render
//	any                none, or only meshctl's/Linkerd's    the four CRDs
//	false              some that someone else installed     none (a note)
//	true               some that someone else installed     an error
func gatewayAPI(ctx context.Context, m *schema.Mesh, c Cluster) (*schema.Mesh, []string, error) {
	var crds []gatewayCRD
	var absent, foreign []gatewayCRD
	for _, name := range generators.GatewayAPICRDs {
		live := &metav1.PartialObjectMetadata{}
		live.SetGroupVersionKind(apiextv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
		err := c.Client.Kube().Get(ctx, client.ObjectKey{Name: name}, live)
		switch {
		case apierrors.IsNotFound(err):
			live = nil
		case err != nil:
			return nil, nil, fmt.Errorf("reading CustomResourceDefinition/%s: %w", name, err)
		}
		g := gatewayCRD{name: name, live: live}
		crds = append(crds, g)
		switch {
		case live == nil:
			absent = append(absent, g)
		case !g.ours():
			foreign = append(foreign, g)
		}
	}
	want := m.Linkerd.InstallGatewayAPI
	if len(foreign) > 0 {
		var who []string
		for _, g := range foreign {
			who = append(who, g.describe())
		}
		if want {
			return nil, nil, fmt.Errorf("%w: linkerd.installGatewayAPI is true, but someone else installed %s; meshctl does not take them over: "+
				"set linkerd: installGatewayAPI: false to use them as they are", ErrGatewayAPIOwned, strings.Join(who, "; "))
		}
		if err := releasable(ctx, c, foreign); err != nil {
			return nil, nil, err
		}
		note := "Gateway API: using the CRDs someone else installed (" + strings.Join(who, "; ") + "); meshctl leaves the Gateway API CRDs alone"
		if len(absent) > 0 {
			note += fmt.Sprintf(", and does not install the missing %s next to them", names(absent))
		}
		return withGatewayAPI(m, false), []string{note}, nil
	}
	// Said once, when they are installed; later runs keep them quietly.
	var notes []string
	if len(absent) == len(crds) && !want {
		notes = append(notes, fmt.Sprintf("Gateway API: the cluster has no Gateway API route CRDs, which Linkerd's policy controller needs when it starts: "+
			"meshctl installs Gateway API %s (%s channel) %s, keeps them up to date and never deletes them (linkerd install would refuse; to use another release, install it first, "+
			"e.g. Gateway API v1.4.0 standard-install.yaml, and meshctl leaves it alone)", generators.GatewayAPIBundleVersion, generators.GatewayAPIChannel, names(absent)))
	}
	return withGatewayAPI(m, true), notes, nil
}

// releasable refuses when a CRD that someone else now holds is still in
// meshctl's inventory without meshctl.io/prune: disabled (replaced with
// kubectl replace, say): the prune that drops it from the inventory would
// otherwise delete it.
func releasable(ctx context.Context, c Cluster, foreign []gatewayCRD) error {
	inv, err := c.Client.ReadInventory(ctx)
	if err != nil || inv == nil {
		return err
	}
	for _, g := range foreign {
		for _, r := range slices.Concat(inv.Objects, inv.Pending) {
			if r.Kind == "CustomResourceDefinition" && r.Name == g.name && g.live.Annotations[apply.AnnotationPrune] != "disabled" {
				return fmt.Errorf("%w: CustomResourceDefinition/%s is in meshctl's inventory, but someone else has since replaced it, "+
					"and a prune would delete it: run kubectl annotate crd %s %s=disabled, so that meshctl lets it go",
					ErrGatewayAPIOwned, g.name, g.name, apply.AnnotationPrune)
			}
		}
	}
	return nil
}

func names(gs []gatewayCRD) string {
	var out []string
	for _, g := range gs {
		out = append(out, g.name)
	}
	return strings.Join(out, ", ")
}

// withGatewayAPI returns m, or a copy of it with installGatewayAPI set.
func withGatewayAPI(m *schema.Mesh, install bool) *schema.Mesh {
	if m.Linkerd.InstallGatewayAPI == install {
		return m
	}
	cp := *m
	cp.Linkerd.InstallGatewayAPI = install
	return &cp
}
