package apply_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/meshctl/meshctl/internal/testcluster"
)

// cluster is shared by every test in the package: etcd, kube-apiserver,
// the controller manager, the scheduler and kwok with 3 fake nodes.
var cluster *testcluster.Cluster

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	c, err := testcluster.Start(ctx, testcluster.Options{Full: true, Nodes: 3})
	cancel()
	if err != nil {
		// Never skip: the real-cluster tests are the point of this package.
		fmt.Fprintf(os.Stderr, "apply tests need a real cluster: %v\n", err)
		os.Exit(1)
	}
	cluster = c
	code := m.Run()
	c.Stop()
	os.Exit(code)
}

func config() *rest.Config { return rest.CopyConfig(cluster.Config) }
