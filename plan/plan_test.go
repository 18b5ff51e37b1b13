package plan_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshctl/meshctl/generators"
	"github.com/meshctl/meshctl/plan"
)

func TestStagesAreInOrderAndComplete(t *testing.T) {
	u := func(kind, name string) *unstructured.Unstructured {
		o := &unstructured.Unstructured{}
		o.SetKind(kind)
		o.SetName(name)
		return o
	}
	// The render is sorted by kind, so stages interleave.
	objs := []generators.Object{
		{Stage: generators.StageCRDs, Object: u("CustomResourceDefinition", "a")},
		{Stage: generators.StageControlPlane, Object: u("ClusterRole", "cp")},
		{Stage: generators.StageCNI, Object: u("ClusterRole", "cni")},
		{Stage: generators.StageCRDs, Object: u("Namespace", "linkerd")},
		{Stage: generators.StageMeshConfig, Object: u("ServiceProfile", "p")},
		{Stage: generators.StageControlPlane, Object: u("Deployment", "d")},
	}
	set := plan.Stages(objs, "v")
	var got []string
	for _, st := range set.Stages {
		for _, o := range st.Objects {
			got = append(got, st.Name+":"+o.GetName())
		}
	}
	want := []string{"crds:a", "crds:linkerd", "cni:cni", "control-plane:cp", "control-plane:d", "mesh-config:p"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if len(set.Stages) != 4 || set.Version != "v" {
		t.Errorf("%d stages, version %q", len(set.Stages), set.Version)
	}
}
