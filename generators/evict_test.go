package generators

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshctl/meshctl/internal/ident"
)

// TestSafeToEvictPolicy: the namespaces that set safeToEvict, and only
// they, are matched by name; each gets its own value; a pod's own value is
// kept; the policy is in the first stage and owned by meshctl.
func TestSafeToEvictPolicy(t *testing.T) {
	objs := render(t, `namespaces: {
	shop: {create: true, safeToEvict: true}
	batch: {safeToEvict: false}
	web: inject: "enabled"
}`, Inputs{})
	var policy admissionv1.MutatingAdmissionPolicy
	var binding admissionv1.MutatingAdmissionPolicyBinding
	find(t, objs, "MutatingAdmissionPolicy/"+SafeToEvictPolicy, &policy)
	find(t, objs, "MutatingAdmissionPolicyBinding/"+SafeToEvictPolicy, &binding)
	for _, o := range objs {
		switch o.Object.GetKind() {
		case "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding":
			if o.Stage != StageCRDs {
				t.Errorf("%s is in stage %s, want %s (before any workload)", o.ID(), o.Stage, StageCRDs)
			}
			if o.Object.GetLabels()[ident.LabelManagedBy] != ident.ManagedByMeshctl {
				t.Errorf("%s labels %v", o.ID(), o.Object.GetLabels())
			}
		}
	}
	sel := policy.Spec.MatchConstraints.NamespaceSelector
	if d := cmp.Diff([]string{"batch", "shop"}, sel.MatchExpressions[0].Values); d != "" || sel.MatchExpressions[0].Key != "kubernetes.io/metadata.name" {
		t.Errorf("namespaces %s (-want +got):\n%s", sel.MatchExpressions[0].Key, d)
	}
	rule := policy.Spec.MatchConstraints.ResourceRules[0]
	if d := cmp.Diff([]admissionv1.OperationType{admissionv1.Create}, rule.Operations); d != "" || rule.Resources[0] != "pods" {
		t.Errorf("rule %+v", rule)
	}
	if got := policy.Spec.Variables[0].Expression; got != `{"batch": "false", "shop": "true"}[request.namespace]` {
		t.Errorf("value expression %s", got)
	}
	if got := policy.Spec.MatchConditions[0].Expression; got != `!has(object.metadata.annotations) || !("cluster-autoscaler.kubernetes.io/safe-to-evict" in object.metadata.annotations)` {
		t.Errorf("match condition %s", got)
	}
	if *policy.Spec.FailurePolicy != admissionv1.Ignore || policy.Spec.ReinvocationPolicy != admissionv1.NeverReinvocationPolicy {
		t.Errorf("failurePolicy %s, reinvocationPolicy %s", *policy.Spec.FailurePolicy, policy.Spec.ReinvocationPolicy)
	}
	if binding.Spec.PolicyName != SafeToEvictPolicy || binding.Spec.MatchResources != nil {
		t.Errorf("binding %+v", binding.Spec)
	}

	// The Namespace keeps the annotation, as the record of the setting.
	var shop corev1.Namespace
	find(t, objs, "Namespace/shop", &shop)
	if shop.Annotations[AnnotationSafeToEvict] != "true" {
		t.Errorf("shop annotations %v", shop.Annotations)
	}
}

// TestSafeToEvictPolicyOnlyWhenAsked: no namespace asks, or the cluster
// does not serve the kind: no policy.
func TestSafeToEvictPolicyOnlyWhenAsked(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		in        Inputs
	}{
		{name: "no namespace asks", src: `namespaces: shop: inject: "enabled"`},
		{name: "not served", src: `namespaces: shop: safeToEvict: true`, in: Inputs{NoAdmissionPolicy: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, o := range render(t, tc.src, tc.in) {
				if o.Object.GetName() == SafeToEvictPolicy {
					t.Errorf("%s rendered", o.ID())
				}
			}
		})
	}
}
