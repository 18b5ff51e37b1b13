package generators

import "github.com/meshctl/meshctl/schema"

// crds renders Linkerd's CustomResourceDefinitions (stub, being written).
func crds(m *schema.Mesh, in Inputs) []Object { return nil }
