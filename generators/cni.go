package generators

import "github.com/meshctl/meshctl/schema"

// cniPlugin renders the linkerd-cni DaemonSet and its objects. Not written
// yet: cni.enabled already switches the control plane to the network
// validator, and the plugin itself must be installed separately until then.
func cniPlugin(m *schema.Mesh, in Inputs) []Object { return nil }
