// Command testbin builds the test cluster's binaries (kube-apiserver,
// kube-controller-manager, kube-scheduler, etcd and kwok), a kubectl of
// the same Kubernetes version and a Prometheus server from the Go module
// proxy into a cache outside the checkout, and prints their directory.
//
//	go run ./hack/testbin          build what is missing
//	go run ./hack/testbin -path    print the directory only
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/meshctl/meshctl/internal/testbin"
)

func main() {
	pathOnly := flag.Bool("path", false, "print the cache directory and exit")
	flag.Parse()
	if *pathOnly {
		fmt.Println(testbin.Dir())
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := testbin.Build(ctx, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "testbin: %v\n", err)
		os.Exit(1)
	}
}
