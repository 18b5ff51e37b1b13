package plan

import (
	"testing"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/schema"
)

// TestMaxDeletions: the deletion budget is the flag when given, else
// mesh.cue's prune.maxDeletions (which travels with a reviewed revision),
// else apply's default.
func TestMaxDeletions(t *testing.T) {
	count := apply.Limit{Count: 3, IsCount: true}
	for _, tc := range []struct {
		name  string
		mesh  string
		given apply.Limit
		want  apply.Limit
	}{
		{name: "neither: apply's default", want: apply.Limit{}},
		{name: "mesh.cue's", mesh: "100%", want: apply.Limit{Percent: 100}},
		{name: "a count in mesh.cue", mesh: "10", want: apply.Limit{Count: 10, IsCount: true}},
		{name: "the flag wins", mesh: "100%", given: count, want: count},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &schema.Mesh{Prune: schema.Prune{MaxDeletions: tc.mesh}}
			got, err := maxDeletions(m, tc.given)
			if err != nil || got != tc.want {
				t.Errorf("maxDeletions = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
