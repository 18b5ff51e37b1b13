package plan

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/internal/testbin"
	"github.com/meshctl/meshctl/internal/testcluster"
)

// median is the middle of runs' durations.
func median(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2]
}

// BenchmarkFleet measures what a fleet's steps cost on a no-op apply of a
// two-cluster mesh (the repository's mesh.cue, one fleet anchor, a link
// from west to east) on two real API servers: the trust step (the holder's
// store read, west's store read and checked), the step that stores the
// reconciler's ways to the peers, and the whole no-op apply of both
// clusters, each from a fresh fleet, as a CLI run connects afresh. The
// anchor is `kubectl apply --server-side` of both clusters' renders, one
// after the other. Runs interleave; each figure is the median of five.
func BenchmarkFleet(b *testing.B) {
	bins, err := testbin.Find()
	if err != nil {
		b.Fatalf("the comparison needs the pinned kubectl: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cs := testcluster.StartManyForTest(b, 2, testcluster.Options{Full: true, Nodes: 1})
	byName := map[string]*testcluster.Cluster{"west": cs[0], "east": cs[1]}
	base, err := os.ReadFile("../mesh.cue")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "mesh.cue")
	src := string(base) + `clusters: {west: context: "west", east: context: "east"}
controlPlane: identity: trustAnchor: keyCluster: "east"
links: [{from: "west", to: "east"}]
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	m, err := (&Loader{}).Load(path)
	if err != nil {
		b.Fatal(err)
	}
	fleet := func() *Fleet {
		return NewFleet(func(name string) (*Member, error) {
			c := byName[name]
			ac, err := apply.New(rest.CopyConfig(c.Config), "")
			if err != nil {
				return nil, err
			}
			return &Member{Client: ac, APIServer: c.Config.Host, CAData: c.Config.CAData}, nil
		})
	}
	if _, err := Apply(ctx, m, fleet(), ApplyOptions{Cluster: "east", LinkWait: time.Minute}); err != nil {
		b.Fatal(err)
	}
	east := cs[1].Client.CoreV1().Services(mcNamespace)
	gw, err := east.Get(ctx, mcGateway, metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	gw.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.7"}}
	if _, err := east.UpdateStatus(ctx, gw, metav1.UpdateOptions{}); err != nil {
		b.Fatal(err)
	}
	rep, err := Apply(ctx, m, fleet(), ApplyOptions{LinkWait: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	// Each cluster's render, as kubectl applies it.
	files := map[string]string{}
	for _, ca := range rep.Clusters {
		var buf bytes.Buffer
		for _, st := range ca.Set.Stages {
			for _, u := range st.Objects {
				y, err := yaml.Marshal(u.Object)
				if err != nil {
					b.Fatal(err)
				}
				fmt.Fprintf(&buf, "---\n%s", y)
			}
		}
		files[ca.Cluster] = filepath.Join(b.TempDir(), ca.Cluster+".yaml")
		if err := os.WriteFile(files[ca.Cluster], buf.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	kubectl := func() {
		for _, name := range []string{"east", "west"} {
			cmd := exec.Command(bins.Kubectl, "--kubeconfig="+byName[name].Kubeconfig, "apply", "--server-side", "--force-conflicts", "--field-manager=kubectl-bench", "-f", files[name])
			cmd.Env = append(os.Environ(), "KUBERC=off", "KUBECACHEDIR="+filepath.Join(os.TempDir(), "meshctl-bench-kubectl-"+name))
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("kubectl apply: %v\n%s", err, out)
			}
		}
	}
	kubectl() // the first takes fields; the timed ones change nothing
	order, err := ClusterOrder(m, "")
	if err != nil {
		b.Fatal(err)
	}
	s := map[string][]time.Duration{}
	timed := func(what string, f func()) {
		began := time.Now()
		f()
		s[what] = append(s[what], time.Since(began))
	}
	b.ResetTimer()
	for range b.N * 5 {
		timed("trust step", func() {
			if _, _, err := fleet().trustStep(ctx, m, order, false, nil); err != nil {
				b.Fatal(err)
			}
		})
		timed("peer step", func() {
			if _, w := fleet().peerCredentials(ctx, m, order, 0); len(w) > 0 {
				b.Fatalf("the peer step warned: %v", w)
			}
		})
		timed("no-op apply", func() {
			rep, err := Apply(ctx, m, fleet(), ApplyOptions{})
			if err != nil {
				b.Fatal(err)
			}
			for _, ca := range rep.Clusters {
				if ca.Result.Writes > 0 || len(ca.PeerNotes) > 0 {
					b.Fatalf("a no-op apply wrote in %s: %v %v", ca.Cluster, ca.Result.Entries, ca.PeerNotes)
				}
			}
		})
		timed("kubectl", kubectl)
	}
	b.StopTimer()
	k := median(s["kubectl"])
	b.ReportMetric(0, "ns/op")
	for _, what := range []string{"trust step", "peer step", "no-op apply", "kubectl"} {
		med := median(s[what])
		fmt.Printf("BenchmarkFleet: %-12s median %6.0f ms, %.2f × kubectl's no-op apply of both clusters\n", what, float64(med.Microseconds())/1000, med.Seconds()/k.Seconds())
	}
	fmt.Printf("BenchmarkFleet: %d objects in west, %d in east\n", rep.Clusters[1].Set.Count(), rep.Clusters[0].Set.Count())
}
