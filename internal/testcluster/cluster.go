// Package testcluster starts a throwaway Kubernetes cluster on loopback from
// the binaries that `make testbin` builds: etcd and kube-apiserver, and
// optionally kube-controller-manager, kube-scheduler and kwok with fake
// nodes spread over zones. Tests and `make demo` use it.
//
// The cluster never dials out. kube-apiserver runs with
// --enable-aggregator-routing, so webhook and aggregated-API calls go to
// endpoints rather than to <svc>.<ns>.svc names, and kwok hands out pod IPs
// from a loopback CIDR, which never become endpoints. Calls to Linkerd's
// webhooks therefore fail at once with "no endpoints available".
package testcluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/meshctl/meshctl/internal/testbin"
)

// PodCIDR is the loopback range kwok gives pods.
const PodCIDR = "127.128.0.0/16"

// Options say what to start.
type Options struct {
	// Full adds kube-controller-manager, kube-scheduler and kwok, so that
	// Deployments roll out, pods schedule and namespaces delete.
	Full bool
	// Nodes is how many fake nodes kwok manages (Full only; default 3).
	Nodes int
	// Zones spreads the nodes round-robin (default zone-a, zone-b, zone-c).
	Zones []string
	// Dir holds data and logs; a temporary directory when empty. It is
	// removed by Stop only when Start created it.
	Dir string
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// APIServerFlags are added to kube-apiserver's, to turn an API off
	// with --runtime-config, say.
	APIServerFlags []string
}

// Cluster is a running test cluster.
type Cluster struct {
	Dir        string
	Kubeconfig string
	Config     *rest.Config
	Client     kubernetes.Interface

	ownDir bool
	procs  []*proc
	log    io.Writer
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan error
	logf string
}

// Start starts a cluster, or returns an error that says what is missing.
func Start(ctx context.Context, o Options) (_ *Cluster, err error) {
	bins, err := testbin.Find()
	if err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if len(o.Zones) == 0 {
		o.Zones = []string{"zone-a", "zone-b", "zone-c"}
	}
	c := &Cluster{Dir: o.Dir, log: o.Log}
	if c.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", "meshctl-cluster-"); err != nil {
			return nil, err
		}
		c.ownDir = true
	}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	pk, err := writePKI(c.Dir)
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	apiPort := ports[2]

	fmt.Fprintf(c.log, "cluster: starting etcd %s on %s\n", testbin.EtcdVersion, etcdURL)
	if err := c.start(bins.Etcd, "etcd",
		"--name=default", "--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--unsafe-no-fsync=true", "--log-level=warn",
	); err != nil {
		return nil, err
	}

	fmt.Fprintf(c.log, "cluster: starting kube-apiserver %s on https://127.0.0.1:%d\n", testbin.KubernetesVersion, apiPort)
	if err := c.start(bins.APIServer, "kube-apiserver", append([]string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", apiPort),
		"--cert-dir=" + filepath.Join(c.Dir, "apiserver-certs"),
		"--tls-cert-file=" + pk.servingCert, "--tls-private-key-file=" + pk.key,
		"--client-ca-file=" + pk.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pk.saPub, "--service-account-signing-key-file=" + pk.saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		// Never dial out: webhooks and aggregated APIs are reached through
		// endpoints, and loopback pod IPs never become endpoints.
		"--enable-aggregator-routing=true",
		// The advertise address is loopback, which may not be an endpoint.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--v=0",
	}, o.APIServerFlags...)...); err != nil {
		return nil, err
	}

	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, fmt.Sprintf("https://127.0.0.1:%d", apiPort), pk); err != nil {
		return nil, err
	}
	if c.Config, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig); err != nil {
		return nil, err
	}
	c.Config.QPS, c.Config.Burst = 200, 400
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx, 90*time.Second); err != nil {
		return nil, err
	}
	if !o.Full {
		return c, nil
	}

	fmt.Fprintf(c.log, "cluster: starting kube-controller-manager and kube-scheduler\n")
	if err := c.start(bins.ControllerManager, "kube-controller-manager",
		"--kubeconfig="+c.Kubeconfig,
		"--authentication-kubeconfig="+c.Kubeconfig, "--authorization-kubeconfig="+c.Kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--service-account-private-key-file="+pk.saKey, "--root-ca-file="+pk.caCert,
		"--cluster-signing-cert-file="+pk.caCert, "--cluster-signing-key-file="+pk.caKey,
		"--use-service-account-credentials=false",
		"--leader-elect=false",
		"--controllers=*,-nodeipam",
		"--concurrent-gc-syncs=20", "--concurrent-namespace-syncs=10",
	); err != nil {
		return nil, err
	}
	if err := c.start(bins.Scheduler, "kube-scheduler",
		"--kubeconfig="+c.Kubeconfig,
		"--authentication-kubeconfig="+c.Kubeconfig, "--authorization-kubeconfig="+c.Kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--leader-elect=false",
	); err != nil {
		return nil, err
	}
	kwokPort, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c.log, "cluster: starting kwok %s with %d fake nodes in zones %s (pod CIDR %s)\n",
		testbin.KwokVersion, o.Nodes, strings.Join(o.Zones, ", "), PodCIDR)
	if err := c.start(bins.Kwok, "kwok",
		"--kubeconfig="+c.Kubeconfig,
		"--config="+bins.KwokStages,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--cidr="+PodCIDR, "--node-ip=127.0.0.1",
		fmt.Sprintf("--server-address=127.0.0.1:%d", kwokPort[0]),
		"--node-lease-duration-seconds=40",
	); err != nil {
		return nil, err
	}
	for i := 0; i < o.Nodes; i++ {
		if err := c.AddNode(ctx, fmt.Sprintf("node-%d", i), o.Zones[i%len(o.Zones)]); err != nil {
			return nil, err
		}
	}
	if err := c.waitNodesReady(ctx, o.Nodes, 60*time.Second); err != nil {
		return nil, err
	}
	fmt.Fprintf(c.log, "cluster: ready; kubeconfig %s\n", c.Kubeconfig)
	return c, nil
}

// AddNode creates a fake node that kwok manages, in zone.
func (c *Cluster) AddNode(ctx context.Context, name, zone string) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"kubernetes.io/hostname":      name,
				"kubernetes.io/os":            "linux",
				"kubernetes.io/arch":          "amd64",
				"topology.kubernetes.io/zone": zone,
				"type":                        "kwok",
			},
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
		},
	}
	_, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	return err
}

// pollEvery is how often the waits below look again.
const pollEvery = 200 * time.Millisecond

func (c *Cluster) waitReady(ctx context.Context, timeout time.Duration) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, pollEvery, timeout, true, func(ctx context.Context) (bool, error) {
		if err := c.exited(); err != nil {
			return false, err
		}
		body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil || string(body) != "ok" {
			last = err
			return false, nil
		}
		// RBAC bootstrap roles land just after readyz; wait for one.
		_, last = c.Client.RbacV1().ClusterRoles().Get(ctx, "cluster-admin", metav1.GetOptions{})
		return last == nil, nil
	})
	if err != nil && ctx.Err() == nil && wait.Interrupted(err) {
		return fmt.Errorf("kube-apiserver not ready after %s: %v (logs in %s)", timeout, last, c.Dir)
	}
	return err
}

func (c *Cluster) waitNodesReady(ctx context.Context, n int, timeout time.Duration) error {
	err := wait.PollUntilContextTimeout(ctx, pollEvery, timeout, true, func(ctx context.Context) (bool, error) {
		if err := c.exited(); err != nil {
			return false, err
		}
		nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		ready := 0
		for _, node := range nodes.Items {
			// Ready, and the node lifecycle controller has lifted the
			// not-ready taint, so pods can schedule.
			for _, cond := range node.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue && len(node.Spec.Taints) == 0 {
					ready++
				}
			}
		}
		return ready >= n, nil
	})
	if err != nil && ctx.Err() == nil && wait.Interrupted(err) {
		return fmt.Errorf("fake nodes not Ready after %s (kwok log: %s)", timeout, filepath.Join(c.Dir, "kwok.log"))
	}
	return err
}

// exited reports a component that died, with the tail of its log.
func (c *Cluster) exited() error {
	for _, p := range c.procs {
		select {
		case err := <-p.done:
			p.done <- err
			log, _ := os.ReadFile(p.logf)
			return fmt.Errorf("%s exited: %v\n%s", p.name, err, testbin.LastLines(string(log), 20))
		default:
		}
	}
	return nil
}

func (c *Cluster) start(bin, name string, args ...string) error {
	logf := filepath.Join(c.Dir, name+".log")
	f, err := os.Create(logf)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = c.Dir
	// Components die with the process that started them, even on a crash.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(), "HOME="+c.Dir)
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan error, 1), logf: logf}
	go func() {
		err := cmd.Wait()
		f.Close()
		p.done <- err
	}()
	c.procs = append(c.procs, p)
	return nil
}

// CPUTime is the processor time, user and system, that each of the
// cluster's processes has used since it started, by component name
// ("kube-apiserver", "etcd", ...). A benchmark subtracts two readings to
// learn what the cluster spent serving a client. It reads /proc (Linux).
func (c *Cluster) CPUTime() (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	for _, p := range c.procs {
		d, err := procCPUTime(p.cmd.Process.Pid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		out[p.name] = d
	}
	return out, nil
}

// procCPUTime reads utime and stime, fields 14 and 15 of /proc/PID/stat,
// in clock ticks of 1/100 s (USER_HZ, fixed at 100 in the /proc ABI).
func procCPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, s)
	}
	f := strings.Fields(s[i+2:]) // f[0] is field 3
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, s)
	}
	var ticks int64
	for _, field := range f[11:13] {
		n, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unexpected /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// RestartAPIServer stops kube-apiserver and starts it again on the same
// port and etcd, as an upgrade or a crash of the control plane would, and
// waits until it serves again. Clients see their connections drop.
func (c *Cluster) RestartAPIServer(ctx context.Context) error {
	return c.restart(ctx, "kube-apiserver")
}

// RestartEtcd stops etcd and starts it again on the same ports and data,
// and waits until the API server is ready again: requests fail meanwhile,
// and watches the API server serves from its cache end.
func (c *Cluster) RestartEtcd(ctx context.Context) error {
	return c.restart(ctx, "etcd")
}

// restart stops component name (SIGTERM, then SIGKILL after 30 s), starts
// it again with the same arguments, and waits until the API server is
// ready.
func (c *Cluster) restart(ctx context.Context, name string) error {
	for i, p := range c.procs {
		if p.name != name {
			continue
		}
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		n := len(c.procs)
		if err := c.start(p.cmd.Path, p.name, p.cmd.Args[1:]...); err != nil {
			return err
		}
		c.procs[i] = c.procs[n]
		c.procs = c.procs[:n]
		return c.waitReady(ctx, 90*time.Second)
	}
	return fmt.Errorf("no %s to restart", name)
}

// Stop stops every component, newest first, and removes the directory if
// Start made it.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	c.procs = nil
	if c.ownDir {
		_ = os.RemoveAll(c.Dir)
	}
}

// FreeAddr is a 127.0.0.1 address whose port is free now, for a server a
// test or the demo starts beside the cluster.
func FreeAddr() (string, error) {
	ports, err := freePorts(1)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0]), nil
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func writeKubeconfig(path, server string, pk *pki) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["meshctl-test"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: pk.caPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: pk.adminCertPEM, ClientKeyData: pk.adminKeyPEM}
	cfg.Contexts["meshctl-test"] = &clientcmdapi.Context{Cluster: "meshctl-test", AuthInfo: "admin"}
	cfg.CurrentContext = "meshctl-test"
	return clientcmd.WriteToFile(*cfg, path)
}
