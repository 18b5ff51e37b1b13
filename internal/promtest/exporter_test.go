package promtest

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fakeClock is the exporter's clock in these tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestExporter(t testing.TB) (*Exporter, *fakeClock) {
	e := NewExporter(t)
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	e.now = clock.Now
	return e, clock
}

// scrape reads /metrics over HTTP, as Prometheus does, into series →
// value. Comment lines are dropped.
func scrape(t *testing.T, e *Exporter) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + e.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s, %v\n%s", resp.Status, err, body)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// pick is the values of the named series in got; a series that is
// missing is left out, so that cmp.Diff shows it.
func pick(got map[string]float64, names ...string) map[string]float64 {
	out := map[string]float64{}
	for _, n := range names {
		if v, ok := got[n]; ok {
			out[n] = v
		}
	}
	return out
}

const (
	webLabels   = `deployment="web",direction="inbound",namespace="emojivoto",pod="web-6d4cf56db6-xk2vq"`
	web200      = `response_total{classification="success",` + webLabels + `,status_code="200",tls="true"}`
	web500      = `response_total{classification="failure",` + webLabels + `,status_code="500",tls="true"}`
	webLatency  = `response_latency_ms_bucket{` + webLabels + `,status_code="%s",tls="true",le="%s"}`
	webSum200   = `response_latency_ms_sum{` + webLabels + `,status_code="200",tls="true"}`
	webCount200 = `response_latency_ms_count{` + webLabels + `,status_code="200",tls="true"}`
)

func bucket(status, le string) string { return fmt.Sprintf(webLatency, status, le) }

// The series and their labels are a Linkerd proxy's; the counts are the
// traffic's integral, and every request falls in the bucket that holds
// its latency.
func TestExporterSeries(t *testing.T) {
	e, clock := newTestExporter(t)
	e.Set("emojivoto", "web", Traffic{RPS: 50, SuccessRate: 0.9, LatencyMs: 41})
	clock.Add(2 * time.Second)
	got := scrape(t, e)
	want := map[string]float64{
		web200:                 90,
		web500:                 10,
		bucket("200", "40"):    0,
		bucket("200", "50"):    90,
		bucket("200", "50000"): 90,
		bucket("200", "+Inf"):  90,
		bucket("500", "40"):    0,
		bucket("500", "50"):    10,
		bucket("500", "+Inf"):  10,
		webSum200:              90 * 41,
		webCount200:            90,
		`response_latency_ms_sum{` + webLabels + `,status_code="500",tls="true"}`:   10 * 41,
		`response_latency_ms_count{` + webLabels + `,status_code="500",tls="true"}`: 10,
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	// The sums are floats: 10 × 0.1 × 41 is not quite 410.
	if diff := cmp.Diff(want, pick(got, names...), cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
	// Two counters and two histograms of 26 buckets, sum and count.
	if len(got) != 2+2*(len(latencyBounds)+3) {
		t.Errorf("%d series, want %d:\n%v", len(got), 2+2*(len(latencyBounds)+3), got)
	}
}

// Changes of traffic, one after another: fractions carry over, RPS 0
// keeps the series, and a new latency moves only the new requests.
func TestExporterSet(t *testing.T) {
	e, clock := newTestExporter(t)
	steps := []struct {
		name  string
		set   *Traffic // nil: no change
		after time.Duration
		want  map[string]float64
	}{
		{"half a request is not served", &Traffic{RPS: 3, SuccessRate: 0.5, LatencyMs: 41}, time.Second,
			map[string]float64{web200: 1, web500: 1, bucket("200", "50"): 1}},
		{"but it is carried over", nil, time.Second,
			map[string]float64{web200: 3, web500: 3, bucket("200", "50"): 3}},
		{"RPS 0 stops the counts and keeps the series", &Traffic{}, time.Minute,
			map[string]float64{web200: 3, web500: 3, bucket("200", "50"): 3}},
		{"a new latency counts in its own bucket", &Traffic{RPS: 10, SuccessRate: 1, LatencyMs: 3}, 2 * time.Second,
			map[string]float64{web200: 23, web500: 3, bucket("200", "3"): 20, bucket("200", "50"): 23, webSum200: 3*41 + 20*3}},
		{"a latency on a bound is in that bucket", &Traffic{RPS: 1, SuccessRate: 1, LatencyMs: 2}, time.Second,
			map[string]float64{web200: 24, bucket("200", "1"): 0, bucket("200", "2"): 1, bucket("200", "3"): 21}},
	}
	for _, s := range steps {
		if s.set != nil {
			e.Set("emojivoto", "web", *s.set)
		}
		clock.Add(s.after)
		names := make([]string, 0, len(s.want))
		for n := range s.want {
			names = append(names, n)
		}
		if diff := cmp.Diff(s.want, pick(scrape(t, e), names...), cmpopts.EquateApprox(0, 1e-9)); diff != "" {
			t.Fatalf("%s (-want +got):\n%s", s.name, diff)
		}
	}
}

// Over many scrapes the counts are exactly RPS × seconds: no fraction is
// lost between scrapes.
func TestExporterExactOverTime(t *testing.T) {
	e, clock := newTestExporter(t)
	e.Set("emojivoto", "web", Traffic{RPS: 7, SuccessRate: 0.3, LatencyMs: 41})
	for range 100 {
		clock.Add(100 * time.Millisecond)
		scrape(t, e)
	}
	got := pick(scrape(t, e), web200, web500)
	if diff := cmp.Diff(map[string]float64{web200: 21, web500: 49}, got); diff != "" {
		t.Errorf("after 10 s at 7 RPS (-want +got):\n%s", diff)
	}
}

// Workloads are independent, and each has its own pod.
func TestExporterWorkloads(t *testing.T) {
	e, clock := newTestExporter(t)
	e.Set("emojivoto", "web", Traffic{RPS: 10, SuccessRate: 1, LatencyMs: 41})
	clock.Add(time.Second)
	e.Set("booksapp", "books", Traffic{RPS: 4, SuccessRate: 0.5, LatencyMs: 41})
	clock.Add(time.Second)
	books := `deployment="books",direction="inbound",namespace="booksapp",pod="books-6d4cf56db6-xk2vq"`
	got := pick(scrape(t, e), web200, web500,
		`response_total{classification="success",`+books+`,status_code="200",tls="true"}`,
		`response_total{classification="failure",`+books+`,status_code="500",tls="true"}`)
	want := map[string]float64{
		web200: 20, web500: 0,
		`response_total{classification="success",` + books + `,status_code="200",tls="true"}`: 2,
		`response_total{classification="failure",` + books + `,status_code="500",tls="true"}`: 2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// errorsTB records Errorf calls instead of failing the test.
type errorsTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *errorsTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestExporterSetInvalid(t *testing.T) {
	rec := &errorsTB{TB: t}
	e, _ := newTestExporter(rec)
	e.Set("emojivoto", "web", Traffic{RPS: 1, SuccessRate: 1.5})
	e.Set("emojivoto", "web", Traffic{RPS: -1, SuccessRate: 1})
	want := []string{
		`promtest: Set("emojivoto", "web"): traffic {RPS:1 SuccessRate:1.5 LatencyMs:0}: want RPS and LatencyMs finite and >= 0, SuccessRate in [0, 1]`,
		`promtest: Set("emojivoto", "web"): traffic {RPS:-1 SuccessRate:1 LatencyMs:0}: want RPS and LatencyMs finite and >= 0, SuccessRate in [0, 1]`,
	}
	if diff := cmp.Diff(want, rec.errs); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if got := scrape(t, e); len(got) != 0 {
		t.Errorf("an invalid Set made series: %v", got)
	}
}

// Set and scrapes from many goroutines at once (run with -race).
func TestExporterConcurrent(t *testing.T) {
	e := NewExporter(t)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 20 {
				e.Set("ns", fmt.Sprintf("d%d", i), Traffic{RPS: float64(j), SuccessRate: 0.5, LatencyMs: 10})
			}
		})
		wg.Go(func() {
			for range 5 {
				// Not scrape: t.Fatal must not run off the test's goroutine.
				resp, err := http.Get("http://" + e.Addr() + "/metrics")
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET /metrics: %s", resp.Status)
				}
			}
		})
	}
	wg.Wait()
	if got := scrape(t, e); len(got) != 4*(2+2*(len(latencyBounds)+3)) {
		t.Errorf("%d series, want %d", len(got), 4*(2+2*(len(latencyBounds)+3)))
	}
}
