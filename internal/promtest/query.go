package promtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Sample is one element of an instant vector.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// queryTimeout bounds one HTTP API request.
const queryTimeout = 10 * time.Second

// Query runs an instant query at the current time through the HTTP API
// (/api/v1/query). A result that is not a vector is an error.
func (s *Server) Query(ctx context.Context, query string) ([]Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	u := s.URL() + "/api/v1/query?" + url.Values{"query": {query}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", query, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", query, err)
	}
	return decodeVector(query, resp.Status, body)
}

// apiResponse is the envelope of the HTTP API's answers.
type apiResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// vectorElem is one element of an instant vector's result.
type vectorElem struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"` // [unix seconds, "value"]
}

func decodeVector(query, status string, body []byte) ([]Sample, error) {
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("query %q: %s: %w", query, status, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s: %s: %s", query, status, r.ErrorType, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: result is a %s, not a vector", query, r.Data.ResultType)
	}
	var result []vectorElem
	if err := json.Unmarshal(r.Data.Result, &result); err != nil {
		return nil, fmt.Errorf("query %q: %w", query, err)
	}
	out := make([]Sample, 0, len(result))
	for _, e := range result {
		str, ok := e.Value[1].(string)
		if !ok {
			return nil, fmt.Errorf("query %q: value %v is not a string", query, e.Value[1])
		}
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("query %q: %w", query, err)
		}
		out = append(out, Sample{Metric: e.Metric, Value: v})
	}
	return out, nil
}

// WaitFor polls the instant query until it returns a non-empty vector, and
// returns that vector. It fails the test after timeout.
func (s *Server) WaitFor(t testing.TB, query string, timeout time.Duration) []Sample {
	t.Helper()
	var got []Sample
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		got, last = s.Query(ctx, query)
		return last == nil && len(got) > 0, nil
	})
	if err != nil {
		if last == nil {
			last = fmt.Errorf("the vector stayed empty")
		}
		t.Fatalf("promtest: waiting %s for %q: %v (last: %v)", timeout, query, err, last)
	}
	return got
}
