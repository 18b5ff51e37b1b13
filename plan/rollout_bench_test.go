package plan_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshctl/meshctl/apply"
	"github.com/meshctl/meshctl/internal/meshtest"
	"github.com/meshctl/meshctl/internal/promtest"
	"github.com/meshctl/meshctl/internal/testcluster"
	"github.com/meshctl/meshctl/plan"
	"github.com/meshctl/meshctl/rollout"
)

// timedTransport sums the time Prometheus took to answer, and counts the
// queries.
type timedTransport struct {
	queries atomic.Int64
	nanos   atomic.Int64
}

func (t *timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	began := time.Now()
	res, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		// The body is the answer: read it inside the timing.
		body, rerr := io.ReadAll(res.Body)
		res.Body.Close()
		res.Body = io.NopCloser(strings.NewReader(string(body)))
		err = rerr
	}
	t.nanos.Add(int64(time.Since(began)))
	t.queries.Add(1)
	return res, err
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRollouts runs the rollout verb as the loop does, at the end of
// each window, on a real API server and a real Prometheus that scrapes the
// proxies' metrics of every workload every second: one rollout (the
// decision latency: from the window's end to the weight written) and
// 1,000 at once (every analysis of an interval in one pass, two queries
// for all of them, and no interval missed). Every analysis passes, so that
// every pass moves every weight and applies it. Reported per interval:
// decision-ms (window end to the routes written), prom-ms (both queries),
// queries, cpu-ms (this process: the verb and the apply), cluster-cpu-ms
// (kube-apiserver and etcd), the apply's writes and dry-runs, and missed
// (passes that began after the next window had ended).
func BenchmarkRollouts(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("rollouts=%d", n), func(b *testing.B) { benchRollouts(b, n) })
	}
}

func benchRollouts(b *testing.B, n int) {
	cluster := testcluster.StartForTest(b, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	b.Cleanup(cancel)
	c, err := apply.New(cluster.Config, "")
	if err != nil {
		b.Fatal(err)
	}
	ex := promtest.NewExporter(b)
	steps := make([]string, 100)
	for i := range steps {
		steps[i] = fmt.Sprint(i + 1)
	}
	prom := promtest.Start(b, ex.Addr())
	var mesh strings.Builder
	mesh.WriteString(`namespaces: bench: {inject: "enabled", create: true}` + "\n")
	if _, err := cluster.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		name := fmt.Sprintf("svc-%d", i)
		for _, d := range []string{name, name + "-v2"} {
			ex.Set("bench", d, promtest.Traffic{RPS: 20, SuccessRate: 1, LatencyMs: 15})
			dep := meshtest.Deployment("bench", d, "example/app")
			if _, err := cluster.Client.AppsV1().Deployments("bench").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		fmt.Fprintf(&mesh, `services: "bench/%[1]s": {port: 8080, split: {%[1]q: 100, "%[1]s-v2": 0}, rollout: {from: %[1]q, to: "%[1]s-v2", steps: [%[2]s], interval: "10s", progressDeadline: "1h", analysis: {minRequests: 10, successRate: maxDrop: 5}, prometheusURL: %[3]q}}`+"\n",
			name, strings.Join(steps, ", "), prom.URL())
	}
	prom.WaitFor(b, `count(response_total{deployment="svc-0-v2"})`, time.Minute)
	m := mustLoadSource(b, "mesh.cue", mesh.String())
	fleet := plan.Single(&plan.Member{Client: c})
	applyOpts := &plan.ApplyOptions{Version: "bench"}
	if _, err := plan.Apply(ctx, m, fleet, *applyOpts); err != nil {
		b.Fatal(err)
	}
	tt := &timedTransport{}
	o := plan.RolloutOptions{HTTP: &http.Client{Transport: tt, Timeout: time.Minute}, Apply: applyOpts}
	rep, err := plan.Rollouts(ctx, m, fleet, o) // starts every rollout
	if err != nil {
		b.Fatal(err)
	}
	clusterCPU := func() time.Duration {
		m, err := cluster.CPUTime()
		if err != nil {
			b.Fatal(err)
		}
		var sum time.Duration
		for _, d := range m {
			sum += d
		}
		return sum
	}
	var decision, promTime, cpu, ccpu []time.Duration
	queries, missed, writes, dryRuns := int64(0), 0, 0, 0
	b.ResetTimer()
	for range b.N {
		end := rep.Next
		// The loop's timer: sleep until the window ends.
		time.Sleep(time.Until(end))
		began, cpu0, q0, t0, c0 := time.Now(), cpuTime(), tt.queries.Load(), tt.nanos.Load(), clusterCPU()
		if began.Sub(end) > 10*time.Second {
			missed++
		}
		rep, err = plan.Rollouts(ctx, m, fleet, o)
		if err != nil {
			b.Fatal(err)
		}
		decision = append(decision, time.Since(end))
		cpu = append(cpu, cpuTime()-cpu0)
		ccpu = append(ccpu, clusterCPU()-c0)
		if rep.Applied != nil {
			res := rep.Applied.Clusters[0].Result
			writes, dryRuns = writes+res.Writes, dryRuns+res.DryRuns
		}
		promTime = append(promTime, time.Duration(tt.nanos.Load()-t0))
		queries += tt.queries.Load() - q0
		if !rep.Moved {
			var held []string
			for _, s := range rep.Clusters[0].States {
				if s.Phase == rollout.Progressing && len(s.History) > 0 && s.History[len(s.History)-1].Verdict != rollout.Pass {
					held = append(held, s.Summary(time.Now()))
				}
			}
			b.Fatalf("no weight moved at %s: %d held, such as %v", end, len(held), held[:min(len(held), 3)])
		}
	}
	b.StopTimer()
	b.ReportMetric(ms(slices.Max(decision)), "decision-ms")
	b.ReportMetric(ms(slices.Max(promTime)), "prom-ms")
	b.ReportMetric(float64(queries)/float64(b.N), "queries")
	b.ReportMetric(ms(slices.Max(cpu)), "cpu-ms")
	b.ReportMetric(ms(slices.Max(ccpu)), "cluster-cpu-ms")
	b.ReportMetric(float64(writes)/float64(b.N), "writes")
	b.ReportMetric(float64(dryRuns)/float64(b.N), "dry-runs")
	b.ReportMetric(float64(missed), "missed")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
