// Command cluster starts the throwaway local test cluster (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and kwok with fake
// nodes) and keeps it running until interrupted.
//
//	go run ./hack/cluster -nodes 3 -kubeconfig /tmp/mesh.kubeconfig
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshctl/meshctl/internal/testcluster"
)

func main() {
	nodes := flag.Int("nodes", 3, "fake nodes, spread over zone-a, zone-b and zone-c")
	apiOnly := flag.Bool("api-only", false, "start only etcd and kube-apiserver")
	kubeconfig := flag.String("kubeconfig", "", "also copy the kubeconfig here")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := testcluster.Start(ctx, testcluster.Options{Full: !*apiOnly, Nodes: *nodes, Log: os.Stderr})
	if err != nil {
		fmt.Fprintf(os.Stderr, "cluster: %v\n", err)
		os.Exit(1)
	}
	defer c.Stop()
	if *kubeconfig != "" {
		data, err := os.ReadFile(c.Kubeconfig)
		if err == nil {
			err = os.WriteFile(*kubeconfig, data, 0o600)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "cluster: %v\n", err)
			return
		}
	}
	fmt.Printf("export KUBECONFIG=%s\n", c.Kubeconfig)
	fmt.Fprintf(os.Stderr, "cluster: running; logs in %s; interrupt to stop\n", c.Dir)
	<-ctx.Done()
}
