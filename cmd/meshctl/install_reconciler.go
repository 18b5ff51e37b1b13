package main

import (
	"bytes"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/drift/install"
)

func newInstallReconcilerCmd(stdout, stderr io.Writer) *cobra.Command {
	o := install.DefaultOptions(version)
	cmd := &cobra.Command{
		Use:   "install-reconciler",
		Short: "Print the YAML that runs 'meshctl reconcile' in the cluster",
		Long: `Print, as a multi-document YAML stream in apply order, what it takes to run
'meshctl reconcile' in the cluster, for kubectl apply -f - (or to commit
for Flux or Argo CD to apply):

  - the Namespace (--meshctl-namespace, which also holds meshctl's
    inventory and certificates) and the ServiceAccount meshctl-reconciler;
  - least-privilege RBAC: a ClusterRole with exactly the verbs apply, prune
    and the watch need on the kinds meshctl renders, plus what the apply
    path reads, and a Role for the leader-election Lease and Events in the
    namespace;
  - the Deployment meshctl-reconciler: 2 replicas with leader election,
    /healthz and /readyz probes, metrics on :8080, resource requests and
    a memory limit, non-root with a read-only root filesystem.

mesh.cue comes from the ConfigMap --configmap (key mesh.cue, mounted at
/etc/mesh), or from a Flux source with --source flux:GitRepository/NS/NAME
(or OCIRepository): the reconciler may then read that one object, and
renders --source-path inside its artifact.

The ClusterRole holds bind and escalate on Roles and ClusterRoles: Linkerd's
RBAC grants permissions the reconciler does not hold, and the API server
refuses to let anyone write such roles, or bind them, without these verbs.
They let the reconciler grant anything: managing Linkerd's RBAC is
admin-equivalent by nature, so install the reconciler only where that is
accepted.

With --meshed the reconciler gets a Linkerd proxy, for rollouts judged by
viz's Prometheus: Prometheus admits only the meshed clients its policies
name, and with a rollout in mesh.cue viz renders a policy that names
ServiceAccount meshctl-reconciler in namespace meshctl. The API server
(ports 443 and 6443) and the reconciler's own ports stay outside the proxy,
so a broken mesh never cuts the loop off from the cluster it repairs.

For a mesh that declares clusters, install one reconciler in each cluster
with --cluster NAME. Each keeps its own cluster's part of the mesh and
reaches the others as they allow it: every cluster renders, for every other
one, a ServiceAccount meshctl-peer-<name> in linkerd-multicluster that may
only get linkerd/linkerd-config and linkerd/linkerd-identity-trust-roots,
the gateway Service and the remote-access token Secret (what link-gen
reads), list nodes when its gateway is a NodePort, and, for the cluster
that keeps the fleet anchor's key only, get and update its certificate
store (to re-sign its issuer). 'meshctl apply' on the fleet stores each
token, with the peer's API server, in Secret meshctl-cluster-<name> in
--meshctl-namespace: apply the fleet once before the reconcilers start.

Nothing is sent to the cluster; exit code 2 on bad flags.`,
		Example: `  # Run the reconciler on the ConfigMap "mesh"
  kubectl create namespace meshctl
  kubectl -n meshctl create configmap mesh --from-file=mesh.cue
  meshctl install-reconciler | kubectl apply -f -

  # Check the install against the cluster without changing it
  meshctl install-reconciler | kubectl apply --dry-run=server -f -

  # One reconciler per cluster of a multicluster mesh, after one apply
  meshctl apply examples/multicluster.cue
  meshctl install-reconciler --cluster west | kubectl --context kind-west apply -f -
  meshctl install-reconciler --cluster east | kubectl --context kind-east apply -f -

  # A reconciler that runs rollouts against viz's Prometheus
  meshctl install-reconciler --meshed | kubectl apply -f -

  # Follow a Flux GitRepository, resync every 5 minutes
  meshctl install-reconciler --source flux:GitRepository/flux-system/mesh \
    --source-path clusters/prod/mesh.cue --interval 5m > reconciler.yaml`,
		Args: cobra.NoArgs,
	}
	fs := cmd.Flags()
	fs.StringVar(&o.Namespace, "meshctl-namespace", apply.DefaultNamespace, "namespace of the reconciler and of meshctl's inventory and certificates")
	fs.StringVar(&o.Image, "image", o.Image, "the meshctl image to run")
	fs.DurationVar(&o.Interval, "interval", o.Interval, "reconcile's full resync: re-apply what differs and prune")
	fs.StringVar(&o.Source, "source", "", "a Flux source to read mesh.cue from: flux:GitRepository/NS/NAME or flux:OCIRepository/NS/NAME")
	fs.StringVar(&o.SourcePath, "source-path", "", "with --source, the mesh.cue file or directory inside the artifact (reconcile's default: mesh.cue)")
	fs.StringVar(&o.ConfigMap, "configmap", o.ConfigMap, "without --source, the ConfigMap in --meshctl-namespace whose key mesh.cue is the mesh")
	fs.StringVar(&o.Cluster, "cluster", "", "for a mesh that declares clusters: the cluster this reconciler runs in and keeps (reconcile's --cluster)")
	fs.BoolVar(&o.Meshed, "meshed", false, "give the reconciler a Linkerd proxy, so that viz's Prometheus answers its rollout queries")
	cmd.MarkFlagsMutuallyExclusive("source", "configmap")
	cmd.RunE = func(*cobra.Command, []string) error {
		return runInstallReconciler(o, stdout, stderr)
	}
	return cmd
}

func runInstallReconciler(o install.Options, stdout, stderr io.Writer) error {
	objs, err := install.Objects(o)
	if err != nil {
		fmt.Fprintf(stderr, "meshctl install-reconciler: %v\n", err)
		return exitCode(exitUsage)
	}
	var b bytes.Buffer
	for _, u := range objs {
		y, err := yaml.Marshal(u.Object)
		if err != nil {
			fmt.Fprintf(stderr, "meshctl install-reconciler: %s/%s: %v\n", u.GetKind(), u.GetName(), err)
			return exitCode(exitError)
		}
		fmt.Fprintf(&b, "---\n%s", y)
	}
	if _, err := stdout.Write(b.Bytes()); err != nil {
		fmt.Fprintf(stderr, "meshctl install-reconciler: %v\n", err)
		return exitCode(exitError)
	}
	return nil
}
