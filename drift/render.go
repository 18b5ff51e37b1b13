package drift

import (
	"context"
	"fmt"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
)

// MeshRenderer renders mesh.cue for the cluster c talks to, as `meshctl
// apply` does: the same checks, and the certificates kept in the cluster.
// A file that does not load or check is an error with its positions, and
// nothing of it is applied.
func MeshRenderer(c *apply.Client, version string) Renderer {
	// Only the services whose text changed since the last render are
	// evaluated again.
	var loader schema.Loader
	return func(ctx context.Context, path string) (apply.Set, []string, error) {
		m, err := loader.Load(path)
		if err == nil {
			err = plan.Check(m)
		}
		if err != nil {
			return apply.Set{}, nil, err
		}
		if len(m.Clusters) > 0 {
			return apply.Set{}, nil, fmt.Errorf("%s declares clusters: the reconciler keeps one cluster, and multicluster meshes are applied with 'meshctl apply' for now", path)
		}
		return plan.ForCluster(ctx, m, plan.Cluster{Client: c}, version)
	}
}
