package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/meshctl/meshctl/apply"
)

// exitRefused: a safety guard (prune limits, or a trust-anchor rotation
// step that would break trust) stopped the run; nothing was written.
const exitRefused = 4

// clusterFlags are the flags of the commands that talk to a cluster:
// kubectl's client flags, and the namespace of meshctl's own objects.
type clusterFlags struct {
	config *genericclioptions.ConfigFlags
	// namespace holds meshctl's inventory and certificates. It is not
	// kubectl's -n/--namespace, which names the kubeconfig's namespace.
	namespace string
	// meshCluster is --cluster: one of mesh.cue's clusters (clusters.go),
	// or, for a mesh without clusters, kubectl's kubeconfig cluster.
	meshCluster string
}

// addClusterFlags registers kubectl's client flags, less --namespace
// (meshctl's objects span namespaces) and --cache-dir (meshctl keeps no
// discovery cache), and --meshctl-namespace. --help lists the client flags
// apart from the command's own.
func addClusterFlags(cmd *cobra.Command, f *clusterFlags) {
	f.config = genericclioptions.NewConfigFlags(false)
	f.config.Namespace = nil
	f.config.CacheDir = nil
	// --cluster is meshctl's own (clusters.go); connect passes it on.
	f.config.ClusterName = nil
	client := pflag.NewFlagSet("client", pflag.ContinueOnError)
	f.config.AddFlags(client)
	client.Lookup("request-timeout").Value = requestTimeout{f.config.Timeout}
	cmd.Flags().StringVar(&f.namespace, "meshctl-namespace", apply.DefaultNamespace, "namespace that holds meshctl's inventory and certificates (not kubectl's -n)")
	addMeshClusterFlag(cmd, &f.meshCluster)
	cmd.Flags().AddFlagSet(client)
	for _, name := range []string{"kubeconfig", "certificate-authority", "client-certificate", "client-key"} {
		_ = cmd.MarkFlagFilename(name)
	}
	cmd.SetUsageFunc(func(c *cobra.Command) error {
		own := pflag.NewFlagSet("own", pflag.ContinueOnError)
		c.LocalFlags().VisitAll(func(fl *pflag.Flag) {
			if client.Lookup(fl.Name) == nil {
				own.AddFlag(fl)
			}
		})
		_, err := fmt.Fprintf(c.OutOrStdout(), "Usage:\n  %s\n\nExamples:\n%s\n\nFlags:\n%s\nClient flags, as kubectl's:\n%s",
			c.UseLine(), c.Example, own.FlagUsages(), client.FlagUsages())
		return err
	})
}

// connect loads the client config the way kubectl does (--kubeconfig, then
// $KUBECONFIG, then ~/.kube/config, then in-cluster) and connects. Server
// warnings go to stderr as kubectl prints them.
func (f *clusterFlags) connect(stderr io.Writer) (*apply.Client, error) {
	c, _, err := f.connectConfig(stderr)
	return c, err
}

// connectConfig is connect, and the REST config it connected with.
func (f *clusterFlags) connectConfig(stderr io.Writer) (*apply.Client, *rest.Config, error) {
	if f.meshCluster != "" {
		f.config.ClusterName = &f.meshCluster
	}
	cfg, err := f.config.ToRESTConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = rest.NewWarningWriter(stderr, rest.WarningWriterOptions{Deduplicate: true})
	c, err := apply.New(cfg, f.namespace)
	return c, cfg, err
}

var silenceOnce sync.Once

// silenceClientLogs drops client-go's klog lines and controller-runtime's
// log: meshctl reports every failure itself, in one line.
func silenceClientLogs() {
	silenceOnce.Do(func() {
		klog.SetLogger(logr.Discard())
		ctrllog.SetLogger(logr.Discard())
	})
}

// signalContext is cancelled by Ctrl-C or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
