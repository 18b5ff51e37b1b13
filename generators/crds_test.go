package generators

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

type crdFacts struct {
	Versions, Status []string
	Storage          string
	ShortNames       []string
}

func crdFactsOf(t *testing.T, objs []Object) map[string]crdFacts {
	t.Helper()
	out := map[string]crdFacts{}
	for _, o := range objs {
		if o.Object.GetKind() != "CustomResourceDefinition" {
			continue
		}
		var c apiextv1.CustomResourceDefinition
		find(t, objs, o.ID(), &c)
		f := crdFacts{ShortNames: c.Spec.Names.ShortNames}
		for _, v := range c.Spec.Versions {
			f.Versions = append(f.Versions, v.Name)
			if v.Storage {
				f.Storage = v.Name
			}
			if v.Subresources != nil && v.Subresources.Status != nil {
				f.Status = append(f.Status, v.Name)
			}
		}
		if c.Labels["linkerd.io/control-plane-ns"] != "linkerd" || c.Spec.Scope != apiextv1.NamespaceScoped || o.Stage != StageCRDs {
			t.Errorf("%s: labels %v scope %s stage %s", c.Name, c.Labels, c.Spec.Scope, o.Stage)
		}
		out[c.Name] = f
	}
	return out
}

// TestCRDsMatchUpstream checks FACTS §4: versions, storage, status and
// short names of every Linkerd CRD.
func TestCRDsMatchUpstream(t *testing.T) {
	v := func(s ...string) []string { return s }
	want := map[string]crdFacts{
		"authorizationpolicies.policy.linkerd.io":      {v("v1alpha1"), nil, "v1alpha1", v("authzpolicy")},
		"egressnetworks.policy.linkerd.io":             {v("v1alpha1"), v("v1alpha1"), "v1alpha1", nil},
		"httplocalratelimitpolicies.policy.linkerd.io": {v("v1alpha1"), v("v1alpha1"), "v1alpha1", nil},
		"httproutes.policy.linkerd.io":                 {v("v1alpha1", "v1beta1", "v1beta2", "v1beta3"), v("v1alpha1", "v1beta1", "v1beta2", "v1beta3"), "v1beta3", nil},
		"meshtlsauthentications.policy.linkerd.io":     {v("v1alpha1"), nil, "v1alpha1", v("meshtlsauthn")},
		"networkauthentications.policy.linkerd.io":     {v("v1alpha1"), nil, "v1alpha1", v("netauthn", "networkauthn")},
		"serverauthorizations.policy.linkerd.io":       {v("v1alpha1", "v1beta1"), nil, "v1beta1", v("saz", "serverauthz", "srvauthz")},
		"servers.policy.linkerd.io":                    {v("v1alpha1", "v1beta1", "v1beta2", "v1beta3"), nil, "v1beta3", v("srv")},
		"serviceprofiles.linkerd.io":                   {v("v1alpha1", "v1alpha2"), nil, "v1alpha2", v("sp")},
		"externalworkloads.workload.linkerd.io":        {v("v1alpha1", "v1beta1"), v("v1beta1"), "v1beta1", nil},
	}
	if d := cmp.Diff(want, crdFactsOf(t, render(t, "", Inputs{}))); d != "" {
		t.Errorf("CRDs (-want +got):\n%s", d)
	}
	withGateway := crdFactsOf(t, render(t, "linkerd: installGatewayAPI: true", Inputs{}))
	if len(withGateway) != len(want)+4 || withGateway["grpcroutes.gateway.networking.k8s.io"].Storage != "v1" {
		t.Errorf("installGatewayAPI: %d CRDs, grpcroutes %+v", len(withGateway), withGateway["grpcroutes.gateway.networking.k8s.io"])
	}
}
