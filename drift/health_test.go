package drift

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A replica standing by has no loop to beat and stays healthy; a leader
// whose loop went silent does not.
func TestHealthzFailsOnlyASilentLeader(t *testing.T) {
	for _, tc := range []struct {
		name    string
		leading bool
		silent  time.Duration
		want    int
	}{
		{"standby, long silent", false, time.Hour, http.StatusOK},
		{"leader, beating", true, 0, http.StatusOK},
		{"leader, silent", true, time.Hour, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &health{stale: time.Minute}
			h.beat.Store(time.Now().Add(-tc.silent).UnixNano())
			h.leading.Store(tc.leading)
			rec := httptest.NewRecorder()
			h.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			if rec.Code != tc.want {
				t.Errorf("/healthz = %d, want %d", rec.Code, tc.want)
			}
		})
	}
}
