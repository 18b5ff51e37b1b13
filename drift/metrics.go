package drift

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the loop's Prometheus metrics, on a registry of their own.
type Metrics struct {
	Registry *prometheus.Registry

	reconciles  *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	corrections *prometheus.CounterVec
	detected    *prometheus.CounterVec
	latency     prometheus.Histogram
	errors      *prometheus.CounterVec
	revision    *prometheus.GaugeVec
	managed     prometheus.Gauge
	leader      prometheus.Gauge
	lastApply   prometheus.Gauge
	rotations   *prometheus.CounterVec
	expiry      *prometheus.GaugeVec
	// Rollouts.
	rolloutWeight   *prometheus.GaugeVec
	rolloutPhase    *prometheus.GaugeVec
	rolloutAnalyses *prometheus.CounterVec
}

// NewMetrics registers the loop's metrics, and Go's and the process's.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshctl_reconciles_total",
			Help: "Full reconciles (a new revision, or a resync), by trigger and result.",
		}, []string{"trigger", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "meshctl_reconcile_duration_seconds",
			Help:    "How long a full reconcile took, by trigger.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}, []string{"trigger"}),
		corrections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshctl_drift_corrections_total",
			Help: "Objects re-applied because something other than meshctl changed or deleted them, by kind.",
		}, []string{"kind"}),
		detected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshctl_drift_detected_total",
			Help: "Drifted objects seen, corrected or not (detect mode), by kind.",
		}, []string{"kind"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "meshctl_drift_correction_latency_seconds",
			Help:    "From the watch event that showed a drift to its correction on the server.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshctl_errors_total",
			Help: "Failures, by where: source, render, apply, correct, status, and panic (a bug in meshctl, recovered).",
		}, []string{"where"}),
		revision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meshctl_applied_revision_info",
			Help: "The revision of mesh.cue applied last (value 1).",
		}, []string{"revision"}),
		managed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshctl_managed_objects",
			Help: "Objects in the applied render.",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshctl_leader",
			Help: "1 while this replica holds the lease and writes.",
		}),
		lastApply: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meshctl_last_apply_timestamp_seconds",
			Help: "When a reconcile last wrote to the cluster (Unix time).",
		}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshctl_certificate_rotations_total",
			Help: "Certificates the rotation policy replaced, by certificate (issuer, webhook/NAME).",
		}, []string{"certificate"}),
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meshctl_certificate_expiry_timestamp_seconds",
			Help: "When each certificate the mesh runs on expires (Unix time), by certificate (trust-anchor/SUBJECT DATE, issuer, webhook/NAME).",
		}, []string{"certificate"}),
	}
	m.rolloutWeight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshctl_rollout_weight_percent",
		Help: "The candidate's share of each rollout's traffic, by service (namespace/name).",
	}, []string{"service"})
	m.rolloutPhase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshctl_rollout_phase",
		Help: "1 for each rollout's phase (Progressing, Promoted, RolledBack), by service.",
	}, []string{"service", "phase"})
	m.rolloutAnalyses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshctl_rollout_analyses_total",
		Help: "Rollout analyses, by service and verdict (pass, fail, hold).",
	}, []string{"service", "verdict"})
	r.MustRegister(m.rotations, m.expiry, m.rolloutWeight, m.rolloutPhase, m.rolloutAnalyses)
	r.MustRegister(m.reconciles, m.duration, m.corrections, m.detected, m.latency, m.errors,
		m.revision, m.managed, m.leader, m.lastApply,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, w := range []string{"source", "render", "apply", "correct", "status", "rollout"} {
		m.errors.WithLabelValues(w)
	}
	return m
}

func (m *Metrics) setRevision(rev string) {
	m.revision.Reset()
	m.revision.WithLabelValues(rev).Set(1)
}

// health is what /healthz and /readyz answer.
type health struct {
	// ready is set once the loop serves its purpose: the leader has applied
	// a render and its caches are filled, or a replica is standing by.
	ready atomic.Bool
	// beat is the loop's last sign of life (Unix nanoseconds).
	beat atomic.Int64
	// stale is how long without a beat makes /healthz fail, while leading:
	// a replica standing by has no loop to beat.
	stale   time.Duration
	leading atomic.Bool
}

func (h *health) alive() { h.beat.Store(time.Now().UnixNano()) }

func (h *health) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if since := time.Since(time.Unix(0, h.beat.Load())); h.leading.Load() && since > h.stale {
			http.Error(w, "reconcile loop silent for "+since.Round(time.Second).String(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !h.ready.Load() {
			http.Error(w, "not ready: no render applied yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// serve runs an HTTP server on addr until ctx ends. An empty addr or "0"
// serves nothing. The listener is bound before serve returns, so a bad
// address is reported at start.
func serve(ctx context.Context, addr string, h http.Handler) (string, error) {
	if addr == "" || addr == "0" {
		return "", nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener closed under it; the loop's health tells
		}
	}()
	return ln.Addr().String(), nil
}

func metricsHandler(m *Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	return mux
}
