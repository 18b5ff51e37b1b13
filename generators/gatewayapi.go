package generators

import (
	"embed"
	"fmt"
	"maps"
	"sync"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshctl/meshctl/internal/ident"
)

// The Gateway API route CRDs are generated from the sigs.k8s.io/gateway-api
// Go types, with Gateway API's own generator and controller-tools, by the
// separate module in hack/gatewayapi; the files are committed.
//go:generate go -C ../hack/gatewayapi run . ../../generators/gatewayapi

// The Gateway API bundle that Linkerd 2.19's installGatewayAPI installs
// (FACTS §4).
const (
	GatewayAPIBundleVersion = "v1.1.1"
	GatewayAPIChannel       = "experimental"
	// AnnotationGatewayAPIBundleVersion and AnnotationGatewayAPIChannel are
	// the annotations every Gateway API CRD carries.
	AnnotationGatewayAPIBundleVersion = "gateway.networking.k8s.io/bundle-version"
	AnnotationGatewayAPIChannel       = "gateway.networking.k8s.io/channel"
	// GatewayAPIGroup is the Gateway API's group.
	GatewayAPIGroup = "gateway.networking.k8s.io"
)

// GatewayAPICRDs names the route CRDs installGatewayAPI installs, in the
// order they render.
var GatewayAPICRDs = []string{
	"grpcroutes." + GatewayAPIGroup,
	"httproutes." + GatewayAPIGroup,
	"tcproutes." + GatewayAPIGroup,
	"tlsroutes." + GatewayAPIGroup,
}

//go:embed gatewayapi/*.yaml
var gatewayAPIFiles embed.FS

// gatewayCRDs parses the embedded CRDs once; every render copies them.
var gatewayCRDs = sync.OnceValues(func() ([]*apiextv1.CustomResourceDefinition, error) {
	var out []*apiextv1.CustomResourceDefinition
	for _, name := range GatewayAPICRDs {
		file := "gatewayapi/" + GatewayAPIGroup + "_" + name[:len(name)-len(GatewayAPIGroup)-1] + ".yaml"
		b, err := gatewayAPIFiles.ReadFile(file)
		if err != nil {
			return nil, err
		}
		c := &apiextv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(b, c); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if c.Name != name || c.Annotations[AnnotationGatewayAPIBundleVersion] != GatewayAPIBundleVersion ||
			c.Annotations[AnnotationGatewayAPIChannel] != GatewayAPIChannel {
			return nil, fmt.Errorf("%s: holds %s of bundle %s, channel %s; run go generate ./generators", file, c.Name,
				c.Annotations[AnnotationGatewayAPIBundleVersion], c.Annotations[AnnotationGatewayAPIChannel])
		}
		out = append(out, c)
	}
	return out, nil
})

// gatewayAPICRDs renders the Gateway API route CRDs as the bundle defines
// them (schemas, CEL rules, api-approved.kubernetes.io and the bundle
// annotations), with the labels and the resource policy Linkerd's chart
// adds. They are a cluster-wide API other controllers share, so meshctl
// never prunes them (meshctl.io/prune: disabled; issue 8).
func gatewayAPICRDs() []Object {
	parsed, err := gatewayCRDs()
	if err != nil {
		// The files are embedded and checked by the tests.
		panic(err)
	}
	var objs []Object
	for _, p := range parsed {
		c := p.DeepCopy()
		c.Status = apiextv1.CustomResourceDefinitionStatus{}
		c.Labels = merge(c.Labels, map[string]string{
			"helm.sh/chart":  "linkerd-crds-0.0.0-undefined",
			labelCPNamespace: linkerdNamespace,
		})
		ann := maps.Clone(c.Annotations)
		ann["helm.sh/resource-policy"] = "keep"
		ann[ident.AnnotationPrune] = "disabled"
		c.Annotations = ann
		objs = append(objs, toObject(StageCRDs, gvkCRD, c))
	}
	return objs
}
