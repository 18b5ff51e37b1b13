package apply_test

import (
	"testing"

	"k8s.io/client-go/rest"

	"github.com/meshctl/meshctl/internal/testcluster"
)

// cluster is shared by every test in the package: etcd, kube-apiserver,
// the controller manager, the scheduler and kwok with 3 fake nodes.
var cluster *testcluster.Cluster

func TestMain(m *testing.M) { testcluster.Main(m, &cluster) }

func config() *rest.Config { return rest.CopyConfig(cluster.Config) }
