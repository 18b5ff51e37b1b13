package apply

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// Client applies, diffs and prunes against one cluster.
type Client struct {
	kube      client.Client
	disco     discovery.DiscoveryInterface
	rm        *ssa.ResourceManager
	namespace string
	host      string
	http      *http.Client
	// dryRuns counts the server dry-runs this client made.
	dryRuns *atomic.Int64
}

// New builds a Client for cfg, keeping the inventory in namespace.
func New(cfg *rest.Config, namespace string) (*Client, error) {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		// client-go's default, 5 QPS, makes a 1,000-object apply crawl;
		// the API server's own priority and fairness protects it.
		cfg.QPS, cfg.Burst = 1000, 2000
	}
	cfg.UserAgent = "meshctl"
	dryRuns := &atomic.Int64{}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return dryRunCounter{next: rt, n: dryRuns} })
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	kube, err := client.New(cfg, client.Options{Mapper: mapper, HTTPClient: httpClient})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", cfg.Host, err)
	}
	disco, err := discovery.NewDiscoveryClientForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	poller := polling.NewStatusPoller(kube, mapper, polling.Options{})
	rm := ssa.NewResourceManager(kube, poller, ssa.Owner{Field: FieldManager, Group: "meshctl.io"})
	rm.SetConcurrency(8)
	return &Client{kube: kube, disco: disco, rm: rm, namespace: namespace, host: cfg.Host, http: httpClient, dryRuns: dryRuns}, nil
}

// Ping asks the API server for its version, and returns an error only when
// no answer came back (the server is down, the address is wrong, TLS
// failed): a server that answers, even with a refusal, is reachable, and
// what it refuses is reported by the request that needs it.
func (c *Client) Ping(ctx context.Context) error {
	err := c.disco.RESTClient().Get().AbsPath("/version").Do(ctx).Error()
	var st apierrors.APIStatus
	if err == nil || errors.As(err, &st) {
		return nil
	}
	return err
}

// Host is the API server's address.
func (c *Client) Host() string { return c.host }

// Namespace is where the inventory lives.
func (c *Client) Namespace() string { return c.namespace }

// HTTP is the client's authenticated HTTP client, for requests the typed
// clients do not make: a Service's proxy subresource, say.
func (c *Client) HTTP() *http.Client { return c.http }

// ServerVersion is the API server's version, as /version gives it.
func (c *Client) ServerVersion() (*version.Info, error) { return c.disco.ServerVersion() }

// Kube is the underlying controller-runtime client.
func (c *Client) Kube() client.Client { return c.kube }
