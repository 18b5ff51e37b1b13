package generators

import (
	"strings"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/utils/ptr"

	"github.com/meshctl/meshctl/schema"
)

var gvkCRD = apiextv1.SchemeGroupVersion.WithKind("CustomResourceDefinition")

// crdVersion is one served version of a CRD.
type crdVersion struct {
	name       string
	storage    bool
	status     bool
	deprecated bool
}

// crdSpec is what tells one Linkerd CRD from another (FACTS §4).
type crdSpec struct {
	group, kind, plural string
	shortNames          []string
	versions            []crdVersion
}

var linkerdCRDs = []crdSpec{
	{"policy.linkerd.io", "AuthorizationPolicy", "authorizationpolicies", []string{"authzpolicy"}, []crdVersion{{name: "v1alpha1", storage: true}}},
	{"policy.linkerd.io", "EgressNetwork", "egressnetworks", nil, []crdVersion{{name: "v1alpha1", storage: true, status: true}}},
	{"policy.linkerd.io", "HTTPLocalRateLimitPolicy", "httplocalratelimitpolicies", nil, []crdVersion{{name: "v1alpha1", storage: true, status: true}}},
	{"policy.linkerd.io", "HTTPRoute", "httproutes", nil, []crdVersion{
		{name: "v1alpha1", status: true}, {name: "v1beta1", status: true}, {name: "v1beta2", status: true}, {name: "v1beta3", storage: true, status: true}}},
	{"policy.linkerd.io", "MeshTLSAuthentication", "meshtlsauthentications", []string{"meshtlsauthn"}, []crdVersion{{name: "v1alpha1", storage: true}}},
	{"policy.linkerd.io", "NetworkAuthentication", "networkauthentications", []string{"netauthn", "networkauthn"}, []crdVersion{{name: "v1alpha1", storage: true}}},
	{"policy.linkerd.io", "ServerAuthorization", "serverauthorizations", []string{"saz", "serverauthz", "srvauthz"}, []crdVersion{
		{name: "v1alpha1", deprecated: true}, {name: "v1beta1", storage: true}}},
	{"policy.linkerd.io", "Server", "servers", []string{"srv"}, []crdVersion{
		{name: "v1alpha1", deprecated: true}, {name: "v1beta1", deprecated: true}, {name: "v1beta2"}, {name: "v1beta3", storage: true}}},
	{"linkerd.io", "ServiceProfile", "serviceprofiles", []string{"sp"}, []crdVersion{{name: "v1alpha1"}, {name: "v1alpha2", storage: true}}},
	{"workload.linkerd.io", "ExternalWorkload", "externalworkloads", nil, []crdVersion{{name: "v1alpha1"}, {name: "v1beta1", storage: true, status: true}}},
}

// crds renders Linkerd's CRDs, and the Gateway API route CRDs when asked.
func crds(m *schema.Mesh, _ Inputs) []Object {
	var objs []Object
	for _, s := range linkerdCRDs {
		objs = append(objs, crd(s, nil))
	}
	if m.Linkerd.InstallGatewayAPI {
		objs = append(objs, gatewayAPICRDs()...)
	}
	return objs
}

// crd builds one namespaced CRD. Its schemas keep spec and status open
// (x-kubernetes-preserve-unknown-fields): the API server accepts every object
// the generators render, and Linkerd's admission webhooks do the field checks.
func crd(s crdSpec, annotations map[string]string) Object {
	open := apiextv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: ptr.To(true)}
	c := &apiextv1.CustomResourceDefinition{
		ObjectMeta: objectMeta(s.plural+"."+s.group, "", map[string]string{
			"helm.sh/chart":  "linkerd-crds-0.0.0-undefined",
			labelCPNamespace: linkerdNamespace,
		}, annotations),
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
		props := map[string]apiextv1.JSONSchemaProps{"spec": open}
		var sub *apiextv1.CustomResourceSubresources
		if v.status {
			props["status"] = open
			sub = &apiextv1.CustomResourceSubresources{Status: &apiextv1.CustomResourceSubresourceStatus{}}
		}
		c.Spec.Versions = append(c.Spec.Versions, apiextv1.CustomResourceDefinitionVersion{
			Name: v.name, Served: true, Storage: v.storage, Deprecated: v.deprecated,
			Subresources: sub,
			Schema:       &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{Type: "object", Properties: props}},
		})
	}
	return toObject(StageCRDs, gvkCRD, c)
}
