package generators

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/meshctl/meshctl/schema"
)

// The linkerd-smi extension (v0.2.7, chart 1.0.4), FACTS §17.
const (
	smiNamespace      = "linkerd-smi"
	smiAdaptor        = "smi-adaptor"
	smiAdaptorVersion = "v0.2.7"
	smiAdaptorUID     = 65534
	smiAdminPort      = 9995
	// trafficSplitAPIVersion is the version meshctl writes; the CRD stores
	// v1alpha1, with the same schema and no conversion.
	trafficSplitAPIVersion = "split.smi-spec.io/v1alpha2"
)

// smiLabels are the labels of the extension's objects.
func smiLabels() map[string]string {
	return map[string]string{labelExtension: "smi", labelComponent: smiAdaptor}
}

// smi renders the linkerd-smi extension, once, when any service uses the
// smi model, and each smi service's TrafficSplit when it has a split or a
// fault. The profiles of smi services are in profiles.go.
func smi(m *schema.Mesh, _ Inputs) []Object {
	var splits []Object
	used := false
	for _, key := range serviceKeys(m) {
		svc := m.Services[key]
		if svc.Model != modelSMI {
			continue
		}
		used = true
		ns, name, _ := strings.Cut(key, "/")
		if b := serviceBackends(name, svc); len(b) > 0 {
			splits = append(splits, trafficSplit(ns, name, b))
		}
	}
	if !used {
		return nil
	}
	return append(smiExtension(m), splits...)
}

// trafficSplit sends the apex Service's traffic to the backends by weight;
// the adaptor turns it into the apex's ServiceProfile dstOverrides.
func trafficSplit(ns, name string, backends []backend) Object {
	list := make([]any, 0, len(backends))
	for _, b := range backends {
		list = append(list, map[string]any{"service": b.name, "weight": b.weight})
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
		"service":  name,
		"backends": list,
	}}}
	u.SetAPIVersion(trafficSplitAPIVersion)
	u.SetKind("TrafficSplit")
	u.SetName(name)
	u.SetNamespace(ns)
	return Object{Stage: StageMeshConfig, Object: u}
}

// smiExtension is what `linkerd smi install` applies, object for object:
// the namespace, the TrafficSplit CRD, and the adaptor with its RBAC. The
// chart's Helm hook Job only labels the namespace, which meshctl does
// itself.
func smiExtension(m *schema.Mesh) []Object {
	labels := smiLabels()
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: smiAdaptor, Namespace: smiNamespace}}
	var objs []Object
	if !renderedElsewhere(m, smiNamespace) {
		objs = append(objs, nsObject(smiNamespace, map[string]string{labelExtension: "smi"}, nil))
	}
	return append(objs,
		trafficSplitCRD(),
		toObject(StageExtensions, gvkSA, &corev1.ServiceAccount{ObjectMeta: objectMeta(smiAdaptor, smiNamespace, labels, nil)}),
		toObject(StageExtensions, gvkClusterRole, &rbacv1.ClusterRole{
			ObjectMeta: objectMeta(smiAdaptor, "", labels, nil),
			Rules: []rbacv1.PolicyRule{
				rule([]string{""}, []string{"events"}, []string{"create", "patch"}),
				rule([]string{"linkerd.io"}, []string{"serviceprofiles"}, []string{"list", "get", "create", "update"}),
				rule([]string{"split.smi-spec.io"}, []string{"trafficsplits"}, []string{"list", "get", "watch"}),
			},
		}),
		toObject(StageExtensions, gvkCRB, &rbacv1.ClusterRoleBinding{
			ObjectMeta: objectMeta(smiAdaptor, "", labels, nil),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: smiAdaptor},
			Subjects:   subject,
		}),
		smiAdaptorDeployment(m),
	)
}

// smiAdaptorDeployment is the adaptor: one meshed replica.
func smiAdaptorDeployment(m *schema.Mesh) Object {
	labels := smiLabels()
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("20Mi")}
	container := corev1.Container{
		Name:            smiAdaptor,
		Image:           image(m, smiAdaptor, smiAdaptorVersion),
		Args:            []string{"-cluster-domain=" + m.Linkerd.ClusterDomain},
		Ports:           []corev1.ContainerPort{{Name: "admin-http", ContainerPort: smiAdminPort}},
		Resources:       corev1.ResourceRequirements{Requests: res, Limits: res.DeepCopy()},
		SecurityContext: restrictedContext(smiAdaptorUID, nil),
	}
	return toObject(StageExtensions, gvkDeployment, &appsv1.Deployment{
		ObjectMeta: objectMeta(smiAdaptor, smiNamespace, labels, nil),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: objectMeta("", "", labels, map[string]string{"linkerd.io/inject": "enabled"}),
				Spec: corev1.PodSpec{
					ServiceAccountName: smiAdaptor,
					SecurityContext: &corev1.PodSecurityContext{
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{container},
				},
			},
		},
	})
}

// trafficSplitCRD is trafficsplits.split.smi-spec.io: v1alpha1 stored,
// v1alpha2 served, the same schema in both and no conversion.
func trafficSplitCRD() Object {
	version := func(name string, storage bool) apiextv1.CustomResourceDefinitionVersion {
		return apiextv1.CustomResourceDefinitionVersion{
			Name: name, Served: true, Storage: storage,
			Schema: &apiextv1.CustomResourceValidation{OpenAPIV3Schema: trafficSplitSchema()},
			AdditionalPrinterColumns: []apiextv1.CustomResourceColumnDefinition{
				{Name: "Service", Type: "string", Description: "The apex Service of the split.", JSONPath: ".spec.service"},
			},
		}
	}
	return toObject(StageCRDs, gvkCRD, &apiextv1.CustomResourceDefinition{
		ObjectMeta: objectMeta("trafficsplits.split.smi-spec.io", "", map[string]string{labelExtension: "smi"}, nil),
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: "split.smi-spec.io",
			Names: apiextv1.CustomResourceDefinitionNames{
				Kind: "TrafficSplit", ListKind: "TrafficSplitList", Plural: "trafficsplits",
				Singular: "trafficsplit", ShortNames: []string{"ts"},
			},
			Scope:      apiextv1.NamespaceScoped,
			Conversion: &apiextv1.CustomResourceConversion{Strategy: apiextv1.NoneConverter},
			Versions:   []apiextv1.CustomResourceDefinitionVersion{version("v1alpha1", true), version("v1alpha2", false)},
		},
	})
}

// trafficSplitSchema is a TrafficSplit's schema (FACTS §17).
func trafficSplitSchema() *schemaNode {
	return root(props{
		"spec": object("", props{
			"service": str("The apex Service of the split: the one clients address."),
			"backends": array("The Services that receive the apex's traffic.", object("", props{
				"service": str("Name of a backend Service."),
				"weight":  intOrString("The backend's share of the traffic, relative to the others."),
			}, required("service", "weight"))),
		}, required("service", "backends")),
	})
}
