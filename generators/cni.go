package generators

import "github.com/meshctl/meshctl/schema"

// cniPlugin renders the linkerd-cni plugin (stub, being written).
func cniPlugin(m *schema.Mesh, in Inputs) []Object { return nil }
