package generators

import (
	"strings"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/meshctl/meshctl/schema"
)

var gvkCRD = apiextv1.SchemeGroupVersion.WithKind("CustomResourceDefinition")

// crdVersion is one served version of a CRD.
type crdVersion struct {
	name       string
	storage    bool
	status     bool
	deprecated bool
	// schema is the version's structural schema (upstream's, FACTS §4).
	schema  *apiextv1.JSONSchemaProps
	columns []apiextv1.CustomResourceColumnDefinition
}

// crdSpec is what tells one Linkerd CRD from another (FACTS §4).
type crdSpec struct {
	group, kind, plural string
	shortNames          []string
	versions            []crdVersion
}

// Printer columns, as kubectl get shows them.
var (
	colAge       = apiextv1.CustomResourceColumnDefinition{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"}
	colHostnames = apiextv1.CustomResourceColumnDefinition{Name: "Hostnames", Type: "string", JSONPath: ".spec.hostnames"}
	colPort      = apiextv1.CustomResourceColumnDefinition{Name: "Port", Type: "string", JSONPath: ".spec.port"}
	colProtocol  = apiextv1.CustomResourceColumnDefinition{Name: "Protocol", Type: "string", JSONPath: ".spec.proxyProtocol"}
)

func column(name, typ, path string) apiextv1.CustomResourceColumnDefinition {
	return apiextv1.CustomResourceColumnDefinition{Name: name, Type: typ, JSONPath: path}
}

func cols(c ...apiextv1.CustomResourceColumnDefinition) []apiextv1.CustomResourceColumnDefinition {
	return c
}

// linkerdCRDs are Linkerd's CRDs, each version with upstream 2.19's schema.
var linkerdCRDs = []crdSpec{
	{"policy.linkerd.io", "AuthorizationPolicy", "authorizationpolicies", []string{"authzpolicy"}, []crdVersion{
		{name: "v1alpha1", storage: true, schema: authorizationPolicySchema()}}},
	{"policy.linkerd.io", "EgressNetwork", "egressnetworks", nil, []crdVersion{
		{name: "v1alpha1", storage: true, status: true, schema: egressNetworkSchema()}}},
	{"policy.linkerd.io", "HTTPLocalRateLimitPolicy", "httplocalratelimitpolicies", nil, []crdVersion{
		{name: "v1alpha1", storage: true, status: true, schema: httpLocalRateLimitPolicySchema(), columns: cols(
			column("Target_kind", "string", ".spec.targetRef.kind"), column("Target_name", "string", ".spec.targetRef.name"),
			column("Total_RPS", "integer", ".spec.total.requestsPerSecond"), column("Identity_RPS", "integer", ".spec.identity.requestsPerSecond"))}}},
	{"policy.linkerd.io", "HTTPRoute", "httproutes", nil, []crdVersion{
		{name: "v1alpha1", status: true, schema: httpRouteSchema("v1alpha1"), columns: cols(colHostnames, colAge)},
		{name: "v1beta1", status: true, schema: httpRouteSchema("v1beta1"), columns: cols(colHostnames, colAge)},
		{name: "v1beta2", status: true, schema: httpRouteSchema("v1beta2"), columns: cols(colHostnames, colAge)},
		{name: "v1beta3", storage: true, status: true, schema: httpRouteSchema("v1beta3"), columns: cols(colHostnames, colAge)}}},
	{"policy.linkerd.io", "MeshTLSAuthentication", "meshtlsauthentications", []string{"meshtlsauthn"}, []crdVersion{
		{name: "v1alpha1", storage: true, schema: meshTLSAuthenticationSchema()}}},
	{"policy.linkerd.io", "NetworkAuthentication", "networkauthentications", []string{"netauthn", "networkauthn"}, []crdVersion{
		{name: "v1alpha1", storage: true, schema: networkAuthenticationSchema()}}},
	{"policy.linkerd.io", "ServerAuthorization", "serverauthorizations", []string{"saz", "serverauthz", "srvauthz"}, []crdVersion{
		{name: "v1alpha1", deprecated: true, schema: serverAuthorizationSchema()},
		{name: "v1beta1", storage: true, schema: serverAuthorizationSchema(), columns: cols(column("Server", "string", ".spec.server.name"))}}},
	{"policy.linkerd.io", "Server", "servers", []string{"srv"}, []crdVersion{
		{name: "v1alpha1", deprecated: true, schema: serverSchema("v1alpha1")},
		{name: "v1beta1", deprecated: true, schema: serverSchema("v1beta1"), columns: cols(colPort, colProtocol)},
		{name: "v1beta2", schema: serverSchema("v1beta2"), columns: cols(colPort, colProtocol)},
		{name: "v1beta3", storage: true, schema: serverSchema("v1beta3"), columns: cols(colPort, colProtocol,
			column("Access Policy", "string", ".spec.accessPolicy"))}}},
	{"linkerd.io", "ServiceProfile", "serviceprofiles", []string{"sp"}, []crdVersion{
		{name: "v1alpha1", schema: serviceProfileSchema("v1alpha1")},
		{name: "v1alpha2", storage: true, schema: serviceProfileSchema("v1alpha2")}}},
	{"workload.linkerd.io", "ExternalWorkload", "externalworkloads", nil, []crdVersion{
		{name: "v1alpha1", schema: externalWorkloadSchema("v1alpha1"), columns: cols(column("Identity", "string", ".spec.meshTls.identity"), colAge)},
		{name: "v1beta1", storage: true, status: true, schema: externalWorkloadSchema("v1beta1"), columns: cols(column("Identity", "string", ".spec.meshTLS.identity"), colAge)}}},
}

// crds renders Linkerd's CRDs, and the Gateway API route CRDs when asked.
func crds(m *schema.Mesh, _ Inputs) []Object {
	var objs []Object
	for _, s := range linkerdCRDs {
		objs = append(objs, crd(s))
	}
	if m.Linkerd.InstallGatewayAPI {
		objs = append(objs, gatewayAPICRDs()...)
	}
	return objs
}

// crd builds one namespaced Linkerd CRD. It carries upstream's structural
// schemas, so the API server rejects what Linkerd's own CRDs would.
func crd(s crdSpec) Object {
	c := &apiextv1.CustomResourceDefinition{
		ObjectMeta: objectMeta(s.plural+"."+s.group, "", map[string]string{
			"helm.sh/chart":  "linkerd-crds-0.0.0-undefined",
			labelCPNamespace: linkerdNamespace,
		}, nil),
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: s.group,
			Names: apiextv1.CustomResourceDefinitionNames{
				Kind: s.kind, ListKind: s.kind + "List", Plural: s.plural,
				Singular: strings.ToLower(s.kind), ShortNames: s.shortNames,
			},
			Scope: apiextv1.NamespaceScoped,
		},
	}
	for _, v := range s.versions {
		var sub *apiextv1.CustomResourceSubresources
		if v.status {
			sub = &apiextv1.CustomResourceSubresources{Status: &apiextv1.CustomResourceSubresourceStatus{}}
		}
		c.Spec.Versions = append(c.Spec.Versions, apiextv1.CustomResourceDefinitionVersion{
			Name: v.name, Served: true, Storage: v.storage, Deprecated: v.deprecated,
			Subresources:             sub,
			Schema:                   &apiextv1.CustomResourceValidation{OpenAPIV3Schema: v.schema},
			AdditionalPrinterColumns: v.columns,
		})
	}
	return toObject(StageCRDs, gvkCRD, c)
}
