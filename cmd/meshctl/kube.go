package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
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
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/schema"
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

// connectConfig loads the client config the way kubectl does
// (--kubeconfig, then $KUBECONFIG, then ~/.kube/config, then in-cluster),
// and returns the cluster's member and the REST config it connects with.
// Server warnings go to stderr as kubectl prints them.
func (f *clusterFlags) connectConfig(stderr io.Writer) (*plan.Member, *rest.Config, error) {
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
	if err != nil {
		return nil, nil, err
	}
	return &plan.Member{Client: c, APIServer: cfg.Host, Source: f.source("")}, cfg, nil
}

// fleet connects to the clusters a verb acts on: the one kubectl's flags
// choose, for a mesh without clusters (m nil or declaring none), or each
// cluster of m through its context in the kubeconfig those flags choose.
func (f *clusterFlags) fleet(m *schema.Mesh, stderr io.Writer) (*plan.Fleet, error) {
	if m == nil || len(m.Clusters) == 0 {
		mem, _, err := f.connectConfig(stderr)
		if err != nil {
			return nil, err
		}
		return plan.Single(mem), nil
	}
	if f.config.Context != nil && *f.config.Context != "" {
		return nil, usageError{errors.New("--context has no meaning when mesh.cue declares clusters: each cluster's context is clusters.<name>.context; pick a cluster with --cluster NAME")}
	}
	if f.config.APIServer != nil && *f.config.APIServer != "" {
		return nil, usageError{errors.New("--server has no meaning when mesh.cue declares clusters: each cluster's context names its API server")}
	}
	return plan.NewFleet(func(name string) (*plan.Member, error) {
		kctx := m.Clusters[name].Context
		f.config.Context = &kctx
		cfg, err := f.config.ToRESTConfig()
		empty := ""
		f.config.Context = &empty
		if err != nil {
			return nil, fmt.Errorf("context %q: %w", kctx, err)
		}
		cfg = rest.CopyConfig(cfg)
		cfg.WarningHandler = rest.NewWarningWriter(prefixed(stderr, name), rest.WarningWriterOptions{Deduplicate: true})
		ca := cfg.CAData
		if len(ca) == 0 && cfg.CAFile != "" {
			if ca, err = os.ReadFile(cfg.CAFile); err != nil {
				return nil, fmt.Errorf("context %q: %w", kctx, err)
			}
		}
		c, err := apply.New(cfg, f.namespace)
		if err != nil {
			return nil, fmt.Errorf("context %q: %w", kctx, err)
		}
		return &plan.Member{Name: name, Context: kctx, Client: c, APIServer: cfg.Host, CAData: ca, Source: f.source(kctx)}, nil
	}), nil
}

// usageError is a flag that cannot be used as given (exit 2).
type usageError struct{ error }

// fleetError prints an error of fleet and returns its exit code: 2 for a
// flag that cannot be used, else failed.
func fleetError(stderr io.Writer, verb string, err error, failed int) int {
	fmt.Fprintf(stderr, "meshctl %s: %v\n", verb, err)
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	return failed
}

// pickedMember is --cluster as a verb takes it: one of m's clusters, or
// "" for a mesh without clusters (where --cluster named the kubeconfig's
// cluster, and connectConfig used it).
func (f *clusterFlags) pickedMember(m *schema.Mesh) string {
	if len(m.Clusters) == 0 {
		return ""
	}
	return f.meshCluster
}

// source says where the client's configuration comes from, as kubectl
// resolves it: a flag, $KUBECONFIG, the default file, the pod's in-cluster
// configuration, or nothing (client-go then tries localhost:8080); and
// the context. An unreachable cluster is reported with it.
func (f *clusterFlags) source(kctx string) string {
	var parts []string
	home, _ := os.UserHomeDir()
	defaultFile := filepath.Join(home, ".kube", "config")
	switch {
	case f.config.KubeConfig != nil && *f.config.KubeConfig != "":
		parts = append(parts, "--kubeconfig "+*f.config.KubeConfig)
	case os.Getenv("KUBECONFIG") != "":
		parts = append(parts, "KUBECONFIG="+os.Getenv("KUBECONFIG"))
	case fileExists(defaultFile):
		parts = append(parts, "the default kubeconfig "+defaultFile)
	case os.Getenv("KUBERNETES_SERVICE_HOST") != "":
		parts = append(parts, "the pod's in-cluster configuration")
	default:
		parts = append(parts, "no kubeconfig: neither --kubeconfig, $KUBECONFIG nor "+defaultFile+", and not in a pod, so client-go's default")
	}
	if f.config.APIServer != nil && *f.config.APIServer != "" {
		parts = append(parts, "--server "+*f.config.APIServer)
	}
	if kctx == "" && f.config.Context != nil {
		kctx = *f.config.Context
	}
	if kctx == "" {
		if raw, err := f.config.ToRawKubeConfigLoader().RawConfig(); err == nil {
			kctx = raw.CurrentContext
		}
	}
	if kctx != "" {
		parts = append(parts, "context "+kctx)
	}
	return strings.Join(parts, ", ")
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
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
