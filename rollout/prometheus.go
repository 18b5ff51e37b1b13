package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Workload is one side of a rollout in the metrics: a Deployment.
type Workload struct{ Namespace, Deployment string }

// The queries, one per metric and window for all rollouts at once,
// grouped by workload: Linkerd 2.19 proxies label their inbound metrics
// with the pod's namespace and deployment, so the candidate's own proxies
// count all the traffic it answered, whichever traffic model sent it.
// %s is the window, in seconds ("60s").
const (
	responsesQuery = `sum by (namespace, deployment, classification) (increase(response_total{direction="inbound", deployment!=""}[%s]))`
	latencyQuery   = `histogram_quantile(0.99, sum by (namespace, deployment, le) (rate(response_latency_ms_bucket{direction="inbound", deployment!=""}[%s])))`
)

// Queries are the PromQL a window of this length runs, for the parser
// check in hack/promql and for people.
func Queries(window time.Duration) []string {
	w := promDuration(window)
	return []string{fmt.Sprintf(responsesQuery, w), fmt.Sprintf(latencyQuery, w)}
}

func promDuration(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// Prometheus reads windows from a Prometheus server's HTTP API.
type Prometheus struct {
	// URL is the server's base URL, such as
	// http://prometheus.linkerd-viz.svc.cluster.local:9090.
	URL    string
	Client *http.Client
}

// Samples are every workload's traffic over the window of length window
// that ended at end: two queries, whatever the number of rollouts.
func (p *Prometheus) Samples(ctx context.Context, window time.Duration, end time.Time) (map[Workload]Sample, error) {
	w := promDuration(window)
	resp, err := p.query(ctx, fmt.Sprintf(responsesQuery, w), end)
	if err != nil {
		return nil, err
	}
	out := map[Workload]Sample{}
	for _, r := range resp {
		k := Workload{r.Metric["namespace"], r.Metric["deployment"]}
		s, ok := out[k]
		if !ok {
			s.P99 = -1
		}
		s.Requests += r.value
		if r.Metric["classification"] == "success" {
			s.Successes += r.value
		}
		out[k] = s
	}
	lat, err := p.query(ctx, fmt.Sprintf(latencyQuery, w), end)
	if err != nil {
		return nil, err
	}
	for _, r := range lat {
		k := Workload{r.Metric["namespace"], r.Metric["deployment"]}
		if s, ok := out[k]; ok && !math.IsNaN(r.value) && !math.IsInf(r.value, 0) {
			s.P99 = r.value
			out[k] = s
		}
	}
	return out, nil
}

type series struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
	value  float64
}

// query runs an instant query at t.
func (p *Prometheus) query(ctx context.Context, q string, t time.Time) ([]series, error) {
	c := p.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	form := url.Values{"query": {q}, "time": {strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(p.URL, "/")+"/api/v1/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("Prometheus at %s: %w", p.URL, unwrapURL(err))
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("Prometheus at %s: %w", p.URL, err)
	}
	var r struct {
		Status    string `json:"status"`
		Error     string `json:"error"`
		ErrorType string `json:"errorType"`
		Data      struct {
			ResultType string   `json:"resultType"`
			Result     []series `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || (r.Status != "success" && r.Status != "error") {
		return nil, fmt.Errorf("Prometheus at %s answered %s, not its API's JSON%s", p.URL, res.Status, apiServerMessage(body))
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("Prometheus at %s: %s: %s", p.URL, r.ErrorType, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("Prometheus at %s answered a %s, not a vector", p.URL, r.Data.ResultType)
	}
	for i := range r.Data.Result {
		s, _ := r.Data.Result[i].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("Prometheus at %s: value %q: %w", p.URL, s, err)
		}
		r.Data.Result[i].value = v
	}
	return r.Data.Result, nil
}

// Sum runs an instant query now and sums the vector it returns; found is
// false when the vector is empty.
func (p *Prometheus) Sum(ctx context.Context, q string) (sum float64, found bool, err error) {
	res, err := p.query(ctx, q, time.Now())
	if err != nil {
		return 0, false, err
	}
	for _, r := range res {
		sum += r.value
	}
	return sum, len(res) > 0, nil
}

// apiServerMessage is the message of a Kubernetes Status in body: what the
// API server said when its proxy could not reach Prometheus ("no endpoints
// available for service"), as ": message", or "".
func apiServerMessage(body []byte) string {
	var st struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &st) != nil || st.Kind != "Status" || st.Message == "" {
		return ""
	}
	return ": " + st.Message
}

// unwrapURL drops net/url's "Post \"…\":" prefix: the caller names the
// server already.
func unwrapURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// WindowFor picks a policy's two sides out of the samples.
func WindowFor(p Policy, samples map[Workload]Sample, end time.Time, err error) Window {
	w := Window{End: end, Err: err}
	if err != nil {
		return w
	}
	w.Primary = sampleOr(samples, Workload{p.Namespace, p.FromDeployment})
	w.Candidate = sampleOr(samples, Workload{p.Namespace, p.ToDeployment})
	return w
}

func sampleOr(m map[Workload]Sample, k Workload) Sample {
	if s, ok := m[k]; ok {
		return s
	}
	return Sample{P99: -1}
}
