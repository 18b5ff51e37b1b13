package generators

import (
	"sort"
	"strconv"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshctl/meshctl/schema"
)

const (
	// AnnotationSafeToEvict is the pod annotation the cluster autoscaler
	// reads before it evicts a pod to scale a node down. It reads it on
	// pods only: on a Namespace it has no effect (issue 8).
	AnnotationSafeToEvict = "cluster-autoscaler.kubernetes.io/safe-to-evict"
	// SafeToEvictPolicy names the MutatingAdmissionPolicy, and its binding,
	// that put AnnotationSafeToEvict on new pods of the namespaces that set
	// safeToEvict.
	SafeToEvictPolicy = "meshctl-safe-to-evict"
	// labelNamespaceName is set by the API server on every Namespace, to
	// its name; nobody can change it, so selecting on it cannot be gamed.
	labelNamespaceName = "kubernetes.io/metadata.name"
)

var (
	gvkMAP  = admissionv1.SchemeGroupVersion.WithKind("MutatingAdmissionPolicy")
	gvkMAPB = admissionv1.SchemeGroupVersion.WithKind("MutatingAdmissionPolicyBinding")
)

// SafeToEvict returns the namespaces that set safeToEvict, sorted, with
// the annotation value each asks for ("true" or "false").
func SafeToEvict(m *schema.Mesh) (names []string, values map[string]string) {
	values = map[string]string{}
	for n, ns := range m.Namespaces {
		if ns.SafeToEvict != nil {
			names = append(names, n)
			values[n] = strconv.FormatBool(*ns.SafeToEvict)
		}
	}
	sort.Strings(names)
	return names, values
}

// safeToEvictPolicy renders the MutatingAdmissionPolicy that puts
// cluster-autoscaler.kubernetes.io/safe-to-evict on pods created in the
// namespaces that set safeToEvict, and its binding. It is applied with the
// Namespaces, so it is in force before any workload there is created.
//
// The policy is self-contained, so that a reviewer reads all it does in
// one object: it selects namespaces by name (the API server's
// kubernetes.io/metadata.name label, not a label anyone who may edit a
// Namespace could add), holds the value for each, never overrides a value
// the pod sets itself, and fails open (an autoscaler hint must never stop
// a pod from being created).
//
// When the cluster does not serve the kind (in.NoAdmissionPolicy), nothing
// is rendered: plan sets the annotation on pod templates instead.
func safeToEvictPolicy(m *schema.Mesh, in Inputs) []Object {
	names, values := SafeToEvict(m)
	if len(names) == 0 || in.NoAdmissionPolicy {
		return nil
	}
	entries := make([]string, len(names))
	for i, n := range names {
		entries[i] = strconv.Quote(n) + ": " + strconv.Quote(values[n])
	}
	key := strconv.Quote(AnnotationSafeToEvict)
	ignore := admissionv1.Ignore
	policy := &admissionv1.MutatingAdmissionPolicy{
		ObjectMeta: objectMeta(SafeToEvictPolicy, "", nil, nil),
		Spec: admissionv1.MutatingAdmissionPolicySpec{
			MatchConstraints: &admissionv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
					Key: labelNamespaceName, Operator: metav1.LabelSelectorOpIn, Values: names,
				}}},
				ResourceRules: []admissionv1.NamedRuleWithOperations{{RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create},
					Rule: admissionv1.Rule{
						APIGroups: []string{corev1.GroupName}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
					},
				}}},
			},
			MatchConditions: []admissionv1.MatchCondition{{
				Name:       "no-explicit-value",
				Expression: "!has(object.metadata.annotations) || !(" + key + " in object.metadata.annotations)",
			}},
			Variables: []admissionv1.Variable{{
				Name:       "value",
				Expression: "{" + strings.Join(entries, ", ") + "}[request.namespace]",
			}},
			Mutations: []admissionv1.Mutation{{
				PatchType: admissionv1.PatchTypeApplyConfiguration,
				ApplyConfiguration: &admissionv1.ApplyConfiguration{
					Expression: "Object{metadata: Object.metadata{annotations: {" + key + ": variables.value}}}",
				},
			}},
			FailurePolicy:      &ignore,
			ReinvocationPolicy: admissionv1.NeverReinvocationPolicy,
		},
	}
	binding := &admissionv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: objectMeta(SafeToEvictPolicy, "", nil, nil),
		Spec:       admissionv1.MutatingAdmissionPolicyBindingSpec{PolicyName: SafeToEvictPolicy},
	}
	return []Object{
		toObject(StageCRDs, gvkMAP, policy),
		toObject(StageCRDs, gvkMAPB, binding),
	}
}
