package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/meshctl/meshctl/apply"
)

// exitRefused: a safety guard (prune limits) stopped the run; nothing was
// written.
const exitRefused = 4

// addKubeFlags registers the kubectl-style connection flags.
func addKubeFlags(fs *pflag.FlagSet, f *apply.KubeFlags) {
	fs.StringVar(&f.Kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	fs.StringVar(&f.Context, "context", "", "kubeconfig context to use (default the current context)")
	fs.StringVarP(&f.Namespace, "namespace", "n", apply.DefaultNamespace, "namespace that holds meshctl's inventory and certificates")
}

// signalContext is cancelled by Ctrl-C or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
