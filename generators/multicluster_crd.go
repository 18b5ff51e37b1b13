package generators

import (
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/utils/ptr"

	"github.com/meshctl/meshctl/schema"
)

// The Link CRD ships with the multicluster extension, not with Linkerd's
// CRDs (FACTS §4, §11.1). Its schemas follow upstream's multicluster chart:
// crd-schemas-2.19.tsv has no rows for it, so they are not checked node by
// node as Linkerd's own are; TestLinkCRD pins their shape instead.
const (
	linkGroup   = "multicluster.linkerd.io"
	linkVersion = linkGroup + "/v1alpha3"
)

// linkCRD renders links.multicluster.linkerd.io: v1alpha1 (no status),
// v1alpha2 and v1alpha3 (the storage version), both with a status
// subresource (FACTS §11.5).
func linkCRD(m *schema.Mesh) Object {
	c := &apiextv1.CustomResourceDefinition{
		ObjectMeta: objectMeta("links."+linkGroup, "", mcLabels(nil), map[string]string{annotationCreated: createdBy(m)}),
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: linkGroup,
			Names: apiextv1.CustomResourceDefinitionNames{
				Kind: "Link", ListKind: "LinkList", Plural: "links", Singular: "link",
			},
			Scope: apiextv1.NamespaceScoped,
		},
	}
	status := &apiextv1.CustomResourceSubresources{Status: &apiextv1.CustomResourceSubresourceStatus{}}
	for _, v := range []struct {
		name string
		sub  *apiextv1.CustomResourceSubresources
	}{{"v1alpha1", nil}, {"v1alpha2", status}, {"v1alpha3", status}} {
		c.Spec.Versions = append(c.Spec.Versions, apiextv1.CustomResourceDefinitionVersion{
			Name: v.name, Served: true, Storage: v.name == "v1alpha3",
			Subresources: v.sub,
			Schema:       &apiextv1.CustomResourceValidation{OpenAPIV3Schema: linkSchema(v.name)},
		})
	}
	return toObject(StageCRDs, gvkCRD, c)
}

// linkSchema is one version's schema. v1alpha2 adds the federated-service
// selector, a duration format on the probe period and the status;
// v1alpha3 adds the excluded labels and annotations.
func linkSchema(version string) *schemaNode {
	period := str("How often the gateway is probed.")
	if version != "v1alpha1" {
		period = str("How often the gateway is probed.", format("duration"))
	}
	spec := props{
		"clusterCredentialsSecret": str("The Secret holding the kubeconfig that reaches the target cluster."),
		"gatewayAddress":           str("The target gateway's addresses, comma-separated."),
		"gatewayIdentity":          str("The target gateway's TLS identity."),
		"gatewayPort":              str("The target gateway's port."),
		"probeSpec": object("How the target gateway's health is probed.", props{
			"failureThreshold": str("Consecutive failures after which the gateway counts as down.", def("3")),
			"path":             str("The gateway's health path."),
			"period":           period,
			"port":             str("The gateway's health port."),
			"timeout":          str("How long one probe may take.", def("30s"), format("duration")),
		}),
		"selector":                      linkSelector("Services mirrored through the gateway."),
		"remoteDiscoverySelector":       linkSelector("Services mirrored with remote discovery (no gateway)."),
		"targetClusterName":             str("The target cluster's name."),
		"targetClusterDomain":           str("The target cluster's domain."),
		"targetClusterLinkerdNamespace": str("The target cluster's control-plane namespace."),
	}
	p := props{"spec": object("", spec)}
	if version == "v1alpha1" {
		return root(p)
	}
	spec["federatedServiceSelector"] = linkSelector("Services that join a federated service.")
	if version == "v1alpha3" {
		spec["excludedAnnotations"] = array("Annotations left off the mirrors.", str(""))
		spec["excludedLabels"] = array("Labels left off the mirrors.", str(""))
	}
	p["status"] = object("The services this Link mirrors.", props{
		"mirrorServices":    array("The mirrored services.", linkServiceStatus()),
		"federatedServices": array("The federated services.", linkServiceStatus()),
	})
	return root(p)
}

// linkSelector is the label selector of upstream's Link CRD; its
// matchLabels are left unchecked.
func linkSelector(desc string) schemaNode {
	return object(desc, props{
		"matchLabels": {Type: "object", XPreserveUnknownFields: ptr.To(true)},
		"matchExpressions": array("Selector requirements.", object("", props{
			"key":      str("The label key."),
			"operator": str("How the key relates to the values.", enum("In", "NotIn", "Exists", "DoesNotExist")),
			"values":   array("", str("")),
		}, required("key", "operator"))),
	})
}

// linkServiceStatus is the status of one mirrored or federated service.
func linkServiceStatus() schemaNode {
	return object("", props{
		"conditions": array("", object("", props{
			"lastTransitionTime": str("When the condition last changed.", format("date-time")),
			"message":            str("What happened."),
			"reason":             str("Why, in CamelCase.", pattern(patReason), minLen(1), maxLen(1024)),
			"status":             str("", enum("True", "False", "Unknown")),
			"type":               str("", pattern(patCondType), maxLen(316)),
			"localRef":           linkObjectRef("The local Service this Link manages."),
		}, required("lastTransitionTime", "message", "reason", "status", "type"))),
		"controllerName": str("The controller that wrote this status.", pattern(patController), minLen(1), maxLen(253)),
		"remoteRef":      linkObjectRef("The target cluster's Service this Link mirrors."),
	}, required("controllerName", "remoteRef"))
}

// linkObjectRef points at a Service by group, kind, namespace and name.
func linkObjectRef(desc string) schemaNode {
	return object(desc, props{
		"group":     groupField("", def("core")),
		"kind":      kindField("", def("Service")),
		"name":      nameField(""),
		"namespace": namespaceLabel(""),
	}, required("name", "namespace"))
}
