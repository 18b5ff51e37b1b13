// Package promtest runs a real Prometheus server on loopback for tests,
// and an exporter that serves the inbound HTTP metrics of Linkerd proxies
// at a traffic level a test sets.
package promtest

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Traffic is the inbound HTTP traffic of one workload.
type Traffic struct {
	RPS         float64 // requests per second
	SuccessRate float64 // share of requests that succeed, 0..1
	LatencyMs   float64 // the latency of every request
}

// latencyBounds are the bucket bounds, in ms, of linkerd2-proxy's
// response_latency_ms histogram.
var latencyBounds = [...]float64{
	1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
	1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000,
}

// The metrics a Linkerd 2.19 proxy exports for inbound HTTP traffic, with
// the labels linkerd-viz's Prometheus adds to a proxy target (namespace,
// deployment, pod); the exporter serves those itself, so Start scrapes with
// honor_labels. response_latency_ms carries status_code, as the proxy's
// does (the latency is kept per status, the classes under it).
var (
	responseTotal = prometheus.NewDesc("response_total", "Total count of HTTP responses.",
		[]string{"direction", "namespace", "deployment", "pod", "classification", "status_code", "tls"}, nil)
	responseLatency = prometheus.NewDesc("response_latency_ms", "Elapsed times between a request's headers being received and its response stream completing.",
		[]string{"direction", "namespace", "deployment", "pod", "status_code", "tls"}, nil)
)

// The two outcomes of a request, as the proxy classifies them.
var outcomes = [2]struct{ classification, statusCode string }{
	{"success", "200"},
	{"failure", "500"},
}

// Exporter serves /metrics on 127.0.0.1 for any number of workloads.
// It is safe for concurrent use.
type Exporter struct {
	t   testing.TB
	srv *httptest.Server
	mux *http.ServeMux
	now func() time.Time

	mu        sync.Mutex
	workloads []*workload // in the order they were first Set
}

// NewExporter starts an exporter with no workloads on 127.0.0.1;
// t.Cleanup closes it, and a bad Set fails the test.
func NewExporter(t testing.TB) *Exporter {
	t.Helper()
	e, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("promtest: %v", err)
	}
	e.t = t
	t.Cleanup(e.Close)
	return e
}

// Listen starts an exporter with no workloads on addr, for a program
// (hack/traffic) rather than a test: a bad Set is ignored, so check
// Traffic.Err first.
func Listen(addr string) (*Exporter, error) {
	e := &Exporter{now: time.Now}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collector{e})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("exporter: %w", err)
	}
	e.mux = mux
	e.srv = &httptest.Server{Listener: l, Config: &http.Server{Handler: mux}}
	e.srv.Start()
	return e, nil
}

// Handle serves h at pattern beside /metrics (hack/traffic's /set).
func (e *Exporter) Handle(pattern string, h http.Handler) { e.mux.Handle(pattern, h) }

// Close stops serving.
func (e *Exporter) Close() { e.srv.Close() }

// Err says what is wrong with tr, or nil.
func (tr Traffic) Err() error {
	if tr.RPS < 0 || tr.SuccessRate < 0 || tr.SuccessRate > 1 || tr.LatencyMs < 0 ||
		math.IsNaN(tr.RPS+tr.SuccessRate+tr.LatencyMs) || math.IsInf(tr.RPS+tr.LatencyMs, 0) {
		return fmt.Errorf("traffic %+v: want RPS and LatencyMs finite and >= 0, SuccessRate in [0, 1]", tr)
	}
	return nil
}

// Addr is the exporter's host:port, a Prometheus scrape target.
func (e *Exporter) Addr() string {
	return e.srv.Listener.Addr().String()
}

// Set changes a workload's traffic from now on; the counts so far stay.
// A workload is one pod, named by PodName, that exists from its first Set
// on. RPS 0 stops its traffic and keeps its series.
func (e *Exporter) Set(namespace, deployment string, tr Traffic) {
	if err := tr.Err(); err != nil {
		if e.t != nil {
			e.t.Errorf("promtest: Set(%q, %q): %v", namespace, deployment, err)
		}
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	i := slices.IndexFunc(e.workloads, func(w *workload) bool { return w.namespace == namespace && w.deployment == deployment })
	if i < 0 {
		e.workloads = append(e.workloads, &workload{namespace: namespace, deployment: deployment, traffic: tr, since: now})
		return
	}
	w := e.workloads[i]
	w.totals = w.at(now)
	w.traffic, w.since = tr, now
}

// PodName is the pod label of a deployment's one pod: a fixed ReplicaSet
// hash and suffix, so that tests can name it.
func PodName(deployment string) string {
	return deployment + "-6d4cf56db6-xk2vq"
}

// workload is one deployment's traffic: the totals up to since, and the
// traffic from since on.
type workload struct {
	namespace, deployment string
	traffic               Traffic
	since                 time.Time
	totals                [2]totals // by outcome
}

// totals are the exact, fractional, counts of one outcome's requests. The
// exporter serves their integer parts, so that over time the served counts
// are exactly RPS × seconds.
type totals struct {
	count, sumMs float64
	buckets      [len(latencyBounds)]float64 // cumulative, as le is
}

// at is the totals at now: those at since, plus the requests since, all of
// the current latency.
func (w *workload) at(now time.Time) [2]totals {
	out := w.totals
	secs := max(now.Sub(w.since).Seconds(), 0)
	for o := range out {
		share := w.traffic.SuccessRate
		if o == 1 {
			share = 1 - share
		}
		n := w.traffic.RPS * share * secs
		out[o].count += n
		out[o].sumMs += n * w.traffic.LatencyMs
		for i, le := range latencyBounds {
			if w.traffic.LatencyMs <= le {
				out[o].buckets[i] += n
			}
		}
	}
	return out
}

// whole is the number of whole requests in x. The millionth added keeps a
// float's rounding (7 × 0.3 × 10 = 20.999…) from losing a request.
func whole(x float64) uint64 {
	return uint64(x + 1e-6)
}

// collector computes the metrics at each scrape.
type collector struct{ e *Exporter }

// Describe sends nothing: the collector is unchecked, its series come and
// go with the workloads.
func (collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	now := c.e.now()
	for _, w := range c.e.workloads {
		pod := PodName(w.deployment)
		for o, tot := range w.at(now) {
			out := outcomes[o]
			count := whole(tot.count)
			ch <- prometheus.MustNewConstMetric(responseTotal, prometheus.CounterValue, float64(count),
				"inbound", w.namespace, w.deployment, pod, out.classification, out.statusCode, "true")
			buckets := make(map[float64]uint64, len(latencyBounds))
			for i, le := range latencyBounds {
				buckets[le] = whole(tot.buckets[i])
			}
			ch <- prometheus.MustNewConstHistogram(responseLatency, count, tot.sumMs, buckets,
				"inbound", w.namespace, w.deployment, pod, out.statusCode, "true")
		}
	}
}
