package promtest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/meshctl/meshctl/internal/testbin"
)

// waitTimeout is long: these tests must pass with every CPU busy.
const waitTimeout = 2 * time.Minute

// requirePrometheus fails, as Start would, but before the test starts an
// exporter, with the message that says how to build the binary.
func requirePrometheus(t *testing.T) {
	t.Helper()
	if _, err := testbin.Find(); err != nil {
		t.Fatalf("promtest: %v", err)
	}
}

// Prometheus scraping the exporter sees the traffic that was set: its
// volume, its success share and its latency, per deployment.
func TestTrafficQueries(t *testing.T) {
	requirePrometheus(t)
	t.Parallel()
	e := NewExporter(t)
	e.Set("emojivoto", "web", Traffic{RPS: 50, SuccessRate: 0.9, LatencyMs: 41})
	e.Set("booksapp", "books", Traffic{RPS: 10, SuccessRate: 1, LatencyMs: 3})
	s := Start(t, e.Addr())

	// Wait until every series is older than the 10 s window (13 scrapes in
	// 15 s), so that increase() need not extrapolate to before its first
	// sample, which would make it smaller.
	s.WaitFor(t, `min(count_over_time(response_total{direction="inbound"}[15s])) >= 13`, waitTimeout)

	got, err := s.Query(t.Context(), `sum by (deployment, classification) (increase(response_total{direction="inbound"}[10s]))`)
	if err != nil {
		t.Fatal(err)
	}
	byDeploy := map[string]map[string]float64{}
	for _, smp := range got {
		d := smp.Metric["deployment"]
		if byDeploy[d] == nil {
			byDeploy[d] = map[string]float64{}
		}
		byDeploy[d][smp.Metric["classification"]] = smp.Value
	}
	for _, tc := range []struct {
		deployment string
		total      float64 // RPS × 10 s
		failure    float64 // share
	}{
		{"web", 500, 0.1},
		{"books", 100, 0},
	} {
		c := byDeploy[tc.deployment]
		total := c["success"] + c["failure"]
		t.Logf("%s: increase over 10s %v", tc.deployment, c)
		if len(c) != 2 || total < 0.9*tc.total || total > 1.1*tc.total {
			t.Errorf("%s: increase over 10s = %v, want about %v in all, both classifications", tc.deployment, c, tc.total)
			continue
		}
		if share := c["failure"] / total; share < tc.failure-0.02 || share > tc.failure+0.02 {
			t.Errorf("%s: failure share %.3f (%v), want about %.2f", tc.deployment, share, c, tc.failure)
		}
	}

	q := `histogram_quantile(0.99, sum by (deployment, le) (rate(response_latency_ms_bucket[10s])))`
	got = s.WaitFor(t, q, waitTimeout)
	p99 := map[string]float64{}
	for _, smp := range got {
		p99[smp.Metric["deployment"]] = smp.Value
	}
	t.Logf("p99 %v", p99)
	for d, bucket := range map[string][2]float64{"web": {40, 50}, "books": {2, 3}} {
		if v, ok := p99[d]; !ok || v <= bucket[0] || v > bucket[1] {
			t.Errorf("%s: p99 = %v (%v), want in (%v, %v]", d, v, got, bucket[0], bucket[1])
		}
	}
}

// A test can take Prometheus down and bring it back on the same address
// and data.
func TestStopRestart(t *testing.T) {
	requirePrometheus(t)
	t.Parallel()
	e := NewExporter(t)
	e.Set("emojivoto", "web", Traffic{RPS: 5, SuccessRate: 1, LatencyMs: 41})
	s := Start(t, e.Addr())
	url := s.URL()
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Errorf("URL() = %q, want http://127.0.0.1:PORT", url)
	}
	const up = `up{job="promtest"} == 1`
	s.WaitFor(t, up, waitTimeout)
	before := s.WaitFor(t, `count_over_time(up{job="promtest"}[1h]) >= 3`, waitTimeout)

	s.Stop()
	if _, err := s.Query(t.Context(), up); err == nil {
		t.Fatal("a query succeeded while Prometheus was stopped")
	}
	s.Stop() // a second Stop does nothing

	s.Restart(t)
	if s.URL() != url {
		t.Errorf("URL() after Restart = %q, want %q", s.URL(), url)
	}
	// The samples from before the stop are still there.
	after := s.WaitFor(t, `count_over_time(up{job="promtest"}[1h])`, waitTimeout)
	if after[0].Value < before[0].Value {
		t.Errorf("after Restart %v samples of up, before Stop %v: the data was lost", after[0].Value, before[0].Value)
	}
	s.WaitFor(t, up, waitTimeout)
}

func TestDecodeVector(t *testing.T) {
	tests := []struct {
		name, body string
		want       []Sample
		err        string
	}{
		{"vector", `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"a"},"value":[1.5,"2.25"]}]}}`,
			[]Sample{{Metric: map[string]string{"job": "a"}, Value: 2.25}}, ""},
		{"empty", `{"status":"success","data":{"resultType":"vector","result":[]}}`, []Sample{}, ""},
		{"error", `{"status":"error","errorType":"bad_data","error":"parse error"}`, nil,
			`query "q": 400 Bad Request: bad_data: parse error`},
		{"scalar", `{"status":"success","data":{"resultType":"scalar","result":[1,"1"]}}`, nil,
			`query "q": result is a scalar, not a vector`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeVector("q", "400 Bad Request", []byte(tc.body))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("samples (-want +got):\n%s", diff)
			}
		})
	}
}

// fatalTB records the message of a Fatalf and ends the goroutine, as
// testing does.
type fatalTB struct {
	testing.TB
	fatal string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// Without the binary, Start fails the test with Find's message, which
// says how to build it.
func TestStartWithoutBinary(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(testbin.EnvDir, dir)
	p := testbin.In(dir)
	for _, f := range []string{p.Etcd, p.APIServer, p.ControllerManager, p.Scheduler, p.Kubectl, p.Kwok, p.KwokStages} {
		if err := os.WriteFile(f, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ft := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(ft)
		t.Error("Start returned without the binary")
	}()
	<-done
	want := "promtest: test binaries missing: " + p.Prometheus + " not found; run `make testbin`"
	if !strings.HasPrefix(ft.fatal, want) {
		t.Errorf("Start failed with %q, want it to start %q", ft.fatal, want)
	}
}
