package apply_test

import (
	"testing"

	"k8s.io/client-go/rest"

	"github.com/meshctl/meshctl/internal/testcluster"
)

// shared is the package's cluster, started by the first test that needs
// it: etcd, kube-apiserver, the controller manager, the scheduler and kwok
// with 3 fake nodes.
var shared testcluster.Shared

func TestMain(m *testing.M) { testcluster.Main(m, &shared) }

func config(t testing.TB) *rest.Config { return rest.CopyConfig(shared.Get(t).Config) }
