package apply

import (
	"errors"
	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	"testing"

	"github.com/fluxcd/pkg/ssa/utils"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	replicasFields = `{"f:spec":{"f:replicas":{}}}`
	// What meshctl owns after an autoscaler took replicas from it.
	templateFields = `{"f:metadata":{"f:labels":{"f:app.kubernetes.io/managed-by":{}}},"f:spec":{"f:selector":{},"f:template":{"f:spec":{"f:containers":{}}}}}`
	statusFields   = `{"f:status":{"f:replicas":{},"f:readyReplicas":{}}}`
)

func managed(manager string, op metav1.ManagedFieldsOperationType, subresource, fields string) metav1.ManagedFieldsEntry {
	e := metav1.ManagedFieldsEntry{Manager: manager, Operation: op, Subresource: subresource, APIVersion: "apps/v1", FieldsType: "FieldsV1"}
	if fields != "" {
		e.FieldsV1 = &metav1.FieldsV1{Raw: []byte(fields)}
	}
	return e
}

func TestReplicasOwner(t *testing.T) {
	const (
		apply  = metav1.ManagedFieldsOperationApply
		update = metav1.ManagedFieldsOperationUpdate
	)
	for _, tc := range []struct {
		name    string
		entries []metav1.ManagedFieldsEntry
		want    string
	}{
		{name: "no managed fields"},
		{
			name: "meshctl owns them",
			entries: []metav1.ManagedFieldsEntry{
				managed("meshctl", apply, "", `{"f:spec":{"f:replicas":{},"f:template":{}}}`),
				managed("kube-controller-manager", update, "status", statusFields),
			},
		},
		{
			name: "an autoscaler through /scale",
			entries: []metav1.ManagedFieldsEntry{
				managed("meshctl", apply, "", templateFields),
				managed("kube-controller-manager", update, "scale", replicasFields),
			},
			want: "kube-controller-manager",
		},
		{
			name: "an autoscaler, and meshctl still sharing them",
			entries: []metav1.ManagedFieldsEntry{
				managed("kube-controller-manager", update, "scale", replicasFields),
				managed("meshctl", apply, "", `{"f:spec":{"f:replicas":{}}}`),
			},
		},
		{
			name: "a controller applying replicas",
			entries: []metav1.ManagedFieldsEntry{
				managed("meshctl", apply, "", templateFields),
				managed("keda-operator", apply, "", replicasFields),
			},
			want: "keda-operator",
		},
		{
			name: "kubectl scale",
			entries: []metav1.ManagedFieldsEntry{
				managed("meshctl", apply, "", templateFields),
				managed("kubectl", update, "scale", replicasFields),
			},
		},
		{
			name:    "kubectl edit",
			entries: []metav1.ManagedFieldsEntry{managed("kubectl-edit", update, "", replicasFields)},
		},
		{
			name:    "kubectl server-side apply",
			entries: []metav1.ManagedFieldsEntry{managed("kubectl", apply, "", replicasFields)},
		},
		{
			name:    "Helm, which apply takes over",
			entries: []metav1.ManagedFieldsEntry{managed("helm", update, "", `{"f:metadata":{"f:labels":{}},"f:spec":{"f:replicas":{},"f:template":{}}}`)},
		},
		{
			name:    "kubectl client-side apply, which apply takes over",
			entries: []metav1.ManagedFieldsEntry{managed("kubectl-client-side-apply", update, "", replicasFields)},
		},
		{
			name:    "Helm scaling through /scale is not taken over",
			entries: []metav1.ManagedFieldsEntry{managed("helm", update, "scale", replicasFields)},
			want:    "helm",
		},
		{
			name:    "status replicas are not spec replicas",
			entries: []metav1.ManagedFieldsEntry{managed("kube-controller-manager", update, "status", statusFields)},
		},
		{
			name:    "replicas elsewhere in spec",
			entries: []metav1.ManagedFieldsEntry{managed("other", update, "", `{"f:spec":{"f:template":{"f:spec":{"f:replicas":{}}}}}`)},
		},
		{
			name:    "no fields",
			entries: []metav1.ManagedFieldsEntry{managed("other", update, "", "")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("apps/v1")
			u.SetKind("Deployment")
			u.SetManagedFields(tc.entries)
			if got := replicasOwner(u); got != tc.want {
				t.Errorf("replicasOwner = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestOwnsSpecReplicas(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields *metav1.FieldsV1
		want   bool
	}{
		{name: "spec.replicas", fields: &metav1.FieldsV1{Raw: []byte(replicasFields)}, want: true},
		{name: "beside other fields", fields: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{".":{}}},"f:spec":{".":{},"f:replicas":{},"f:template":{}}}`)}, want: true},
		{name: "status.replicas", fields: &metav1.FieldsV1{Raw: []byte(statusFields)}},
		{name: "nil", fields: nil},
		{name: "empty", fields: &metav1.FieldsV1{Raw: []byte(`{}`)}},
		{name: "does not parse", fields: &metav1.FieldsV1{Raw: []byte(`{"f:spec":`)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ownsSpecReplicas(tc.fields); got != tc.want {
				t.Errorf("ownsSpecReplicas = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	noMatch := &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "cert-manager.io", Kind: "Certificate"}, SearchedVersions: []string{"v1"}}
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "web",
		field.ErrorList{field.Invalid(field.NewPath("spec", "selector"), "x", "field is immutable")})
	crdImmutable := apierrors.NewInvalid(schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}, "widgets.example.com",
		field.ErrorList{field.Invalid(field.NewPath("spec", "scope"), "Cluster", "field is immutable")})
	crdObject := &unstructured.Unstructured{}
	crdObject.SetAPIVersion("apiextensions.k8s.io/v1")
	crdObject.SetKind("CustomResourceDefinition")
	crdObject.SetName("widgets.example.com")
	approval := apierrors.NewInvalid(schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}, "httproutes.gateway.networking.k8s.io",
		field.ErrorList{field.Required(field.NewPath("metadata", "annotations").Key("api-approved.kubernetes.io"), `protected groups must have approval annotation "api-approved.kubernetes.io"`)})
	webhook := errors.New(`Internal error occurred: failed calling webhook "linkerd-proxy-injector.linkerd.io": failed to call webhook: no endpoints available for service "linkerd-proxy-injector"`)
	for _, tc := range []struct {
		name  string
		err   error
		force bool
		want  string
	}{
		{
			name: "kind not served",
			err:  noMatch,
			want: `stage mesh-config: no matches for kind "Certificate" in version "cert-manager.io/v1"` +
				"\n  the cluster does not serve this kind and mesh.cue does not install it: install its CRDs first (cert-manager's, for a Certificate)",
		},
		{
			name: "kind not served, as text",
			err:  errors.New(`ServiceProfile/shop/web dry-run failed: no matches for kind "ServiceProfile" in version "linkerd.io/v1alpha2"`),
			want: `stage mesh-config: ServiceProfile/shop/web dry-run failed: no matches for kind "ServiceProfile" in version "linkerd.io/v1alpha2"` +
				"\n  the cluster does not serve this kind and mesh.cue does not install it: install its CRDs first (cert-manager's, for a Certificate)",
		},
		{
			name: "immutable field",
			err:  invalid,
			want: `stage mesh-config: Deployment.apps "web" is invalid: spec.selector: Invalid value: "x": field is immutable` +
				"\n  spec.selector is immutable; rerun with --force, or annotate the object meshctl.io/force=enabled in mesh.cue, to delete and recreate it",
		},
		{
			name:  "immutable field, already forced",
			err:   invalid,
			force: true,
			want:  `stage mesh-config: Deployment.apps "web" is invalid: spec.selector: Invalid value: "x": field is immutable`,
		},
		{
			name: "immutable field of a CRD: never recreated",
			err:  ssaerrors.NewDryRunErr(crdImmutable, crdObject),
			want: `stage mesh-config: CustomResourceDefinition/widgets.example.com dry-run failed (Invalid): CustomResourceDefinition.apiextensions.k8s.io "widgets.example.com" is invalid: spec.scope: Invalid value: "Cluster": field is immutable` +
				"\n  spec.scope cannot change in place, and meshctl never deletes and recreates a CustomResourceDefinition, even with --force: deleting a CustomResourceDefinition deletes every custom resource of its kind in the cluster. Change mesh.cue back, or migrate by hand",
		},
		{
			name:  "invalid for another reason: force does not help",
			err:   approval,
			force: true,
			want: `stage mesh-config: CustomResourceDefinition.apiextensions.k8s.io "httproutes.gateway.networking.k8s.io" is invalid: metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation "api-approved.kubernetes.io"` +
				"\n  the API server rejected the object as invalid (metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation \"api-approved.kubernetes.io\"): fix it in mesh.cue; --force does not help",
		},
		{
			name: "immutable in text only: no advice without the server's status",
			err:  errors.New("Job/shop/migrate dry-run failed: spec.template: field is immutable"),
			want: "stage mesh-config: Job/shop/migrate dry-run failed: spec.template: field is immutable",
		},
		{
			name: "webhook unreachable",
			err:  webhook,
			want: "stage mesh-config: " + webhook.Error() +
				"\n  the admission webhook is unreachable (its Service has no ready endpoints). With failurePolicy Fail (HA) the API server rejects what the webhook guards until the control plane runs; check the control plane's pods",
		},
		{
			name: "anything else",
			err:  errors.New("connection refused"),
			want: "stage mesh-config: connection refused",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := explain("mesh-config", tc.err, tc.force)
			if got.Error() != tc.want {
				t.Errorf("explain =\n%s\nwant\n%s", got, tc.want)
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("explain does not wrap %v", tc.err)
			}
		})
	}
}

// The IDs meshctl prints are the text ssa gives its change sets.
func TestIDMatchesSSA(t *testing.T) {
	for _, tc := range []struct {
		name, apiVersion, kind, namespace, object string
	}{
		{name: "namespaced", apiVersion: "apps/v1", kind: "Deployment", namespace: "linkerd", object: "linkerd-destination"},
		{name: "cluster-scoped", apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", object: "linkerd-heartbeat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion(tc.apiVersion)
			u.SetKind(tc.kind)
			u.SetNamespace(tc.namespace)
			u.SetName(tc.object)
			want := utils.FmtUnstructured(u)
			if got := ID(u); got != want {
				t.Errorf("ID = %q, want ssa's %q", got, want)
			}
			if got := refOf(u).ID(); got != want {
				t.Errorf("Ref.ID = %q, want ssa's %q", got, want)
			}
		})
	}
}
