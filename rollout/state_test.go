package rollout

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meshctl/meshctl/schema"
)

func testPolicy(t *testing.T) Policy {
	t.Helper()
	r := schema.Rollout{From: "books", To: "books-v2", FromDeployment: "books", ToDeployment: "books-v2",
		Steps: []int{5, 10, 25, 50, 100}, Interval: "1m", ProgressDeadline: "15m"}
	r.Analysis.SuccessRate.MaxDrop = 0.5
	r.Analysis.LatencyP99.MaxIncrease = "10%"
	r.Analysis.MinRequests, r.Analysis.FailureLimit, r.Analysis.Confidence = 100, 2, 0.95
	p, err := PolicyOf("booksapp/books", r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var t0 = time.Date(2026, 12, 7, 10, 0, 30, 0, time.UTC)

// side is n requests at a success rate and a p99.
func side(n, rate, p99 float64) Sample { return Sample{Requests: n, Successes: n * rate, P99: p99} }

// TestAdvance: each verdict moves the rollout where the semantics say,
// judged against the primary over the same window.
func TestAdvance(t *testing.T) {
	p := testPolicy(t)
	cases := []struct {
		name               string
		primary, candidate Sample
		err                error
		verdict            Verdict
		weight             int
		phase              Phase
		reason             string
	}{
		{"equal: next step", side(3000, 0.999, 40), side(3000, 0.999, 41), nil, Pass, 10, Progressing, "success 99.9% vs 99.9%"},
		{"both degrade together: not blamed", side(30000, 0.90, 400), side(30000, 0.90, 410), nil, Pass, 10, Progressing, "success 90.0% vs 90.0%"},
		{"2 points worse: fails", side(3000, 0.999, 40), side(3000, 0.979, 40), nil, Fail, 5, Progressing, "more than 0.5 points below"},
		{"slower p99: fails", side(3000, 0.999, 40), side(3000, 0.999, 60), nil, Fail, 5, Progressing, "p99 60 ms vs 40 ms"},
		{"too little traffic: holds", side(40, 1, 40), side(40, 0.9, 40), nil, Hold, 5, Progressing, "too little traffic"},
		{"a close call: holds", side(150, 0.99, 40), side(150, 0.98, 40), nil, Hold, 5, Progressing, "too close to call"},
		{"no metrics: holds", Sample{}, Sample{}, errors.New("connection refused"), Hold, 5, Progressing, "no metrics: connection refused"},
		{"inside a fixed bound but worse than the primary: fails", side(20000, 1, 40), side(20000, 0.992, 40), nil, Fail, 5, Progressing, "below"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := Begin(p, "books-v2@abc", t0)
			if s.Weight != 5 || s.Phase != Progressing {
				t.Fatalf("Begin: weight %d, phase %s", s.Weight, s.Phase)
			}
			end := s.Next
			got, ev := Advance(p, s, Window{End: end, Primary: c.primary, Candidate: c.candidate, Err: c.err}, end)
			a := got.History[len(got.History)-1]
			if a.Verdict != c.verdict || got.Weight != c.weight || got.Phase != c.phase {
				t.Fatalf("verdict %s, weight %d, phase %s; want %s, %d, %s (%s)", a.Verdict, got.Weight, got.Phase, c.verdict, c.weight, c.phase, a.Reason)
			}
			if !strings.Contains(a.Reason, c.reason) {
				t.Errorf("reason %q does not say %q", a.Reason, c.reason)
			}
			if ev.Reason == "" || ev.Message == "" {
				t.Errorf("no event: %+v", ev)
			}
			if !got.Next.Equal(end.Add(p.Interval)) && got.Phase == Progressing && c.verdict != Pass {
				t.Errorf("next analysis %s, want %s", got.Next, end.Add(p.Interval))
			}
		})
	}
}

// TestPromotedThroughEverySteps: a healthy candidate climbs every step
// and ends at 100, Promoted, with no analysis due.
func TestPromotedThroughEveryStep(t *testing.T) {
	p := testPolicy(t)
	s, _ := Begin(p, "c", t0)
	var weights []int
	for i := 0; s.Phase == Progressing && i < 10; i++ {
		end := s.Next
		var ev Event
		s, ev = Advance(p, s, Window{End: end, Primary: side(5000, 0.999, 40), Candidate: side(5000, 0.999, 40)}, end)
		weights = append(weights, s.Weight)
		if i == 3 && ev.Reason != ReasonPromoted {
			t.Errorf("last step's event %s, want %s", ev.Reason, ReasonPromoted)
		}
	}
	if s.Phase != Promoted || s.Weight != 100 || !s.Next.IsZero() {
		t.Fatalf("phase %s weight %d next %s; want Promoted at 100 with nothing due", s.Phase, s.Weight, s.Next)
	}
	if got := s.Weights(); got["books"] != 0 || got["books-v2"] != 100 {
		t.Errorf("weights %v", got)
	}
	want := []int{10, 25, 50, 100}
	if len(weights) != len(want) {
		t.Fatalf("weights %v, want %v", weights, want)
	}
	for i := range want {
		if weights[i] != want[i] {
			t.Fatalf("weights %v, want %v", weights, want)
		}
	}
}

// TestRollbackAfterFailureLimit: failures with no pass between them roll
// back, a hold between them included; a pass between them resets the
// count.
func TestRollbackAfterFailureLimit(t *testing.T) {
	p := testPolicy(t)
	bad := Window{Primary: side(3000, 0.999, 40), Candidate: side(3000, 0.97, 40)}
	s, _ := Begin(p, "c", t0)
	bad.End = s.Next
	s, _ = Advance(p, s, bad, bad.End)
	if s.Phase != Progressing || s.Failures != 1 {
		t.Fatalf("after one failure: %s, failures %d", s.Phase, s.Failures)
	}
	bad.End = s.Next
	s, ev := Advance(p, s, bad, bad.End)
	if s.Phase != RolledBack || s.Weight != 0 || ev.Reason != ReasonRolledBack || !ev.Warning {
		t.Fatalf("after two failures: %s at %d, event %+v", s.Phase, s.Weight, ev)
	}
	if got := s.Weights(); got["books"] != 100 || got["books-v2"] != 0 {
		t.Errorf("weights %v", got)
	}
	// A hold between two failures resets nothing; a pass does.
	hold := Window{Primary: side(10, 1, 40), Candidate: side(10, 1, 40)}
	good := Window{Primary: side(5000, 0.999, 40), Candidate: side(5000, 0.999, 40)}
	run := func(ws ...Window) State {
		s, _ := Begin(p, "c", t0)
		for _, w := range ws {
			w.End = s.Next
			s, _ = Advance(p, s, w, w.End)
		}
		return s
	}
	if s := run(bad, hold, bad); s.Phase != RolledBack {
		t.Errorf("fail, hold, fail: %s, failures %d", s.Phase, s.Failures)
	}
	if s := run(bad, good, bad); s.Phase != Progressing || s.Failures != 1 || s.Weight != 10 {
		t.Errorf("fail, pass, fail: %s at %d%%, failures %d", s.Phase, s.Weight, s.Failures)
	}
	// Ended: nothing more happens.
	if s2, ev := Advance(p, s, bad, bad.End.Add(time.Hour)); s2.Phase != RolledBack || ev.Reason != "" {
		t.Errorf("an ended rollout moved: %s, %+v", s2.Phase, ev)
	}
}

// TestHoldUntilDeadline: too little traffic holds, never fails, and rolls
// back once the progress deadline passes with no verdict.
func TestHoldUntilDeadline(t *testing.T) {
	p := testPolicy(t)
	s, _ := Begin(p, "c", t0)
	for range 20 {
		end := s.Next
		var ev Event
		s, ev = Advance(p, s, Window{End: end, Primary: side(10, 1, 40), Candidate: side(10, 1, 40)}, end)
		if s.Phase == RolledBack {
			if end.Sub(t0) < p.ProgressDeadline {
				t.Fatalf("rolled back at %s, before the deadline", end.Sub(t0))
			}
			if !strings.Contains(s.Message, "progress deadline") || ev.Reason != ReasonRolledBack {
				t.Errorf("message %q, event %s", s.Message, ev.Reason)
			}
			return
		}
		if s.Failures != 0 || ev.Reason != ReasonHeld {
			t.Fatalf("holding counted as a failure (%d) or not said (%s)", s.Failures, ev.Reason)
		}
	}
	t.Fatalf("still %s after 20 windows of no traffic", s.Phase)
}

// TestEvidenceAccumulates: a close call on one window becomes a verdict
// when the step's windows together say enough.
func TestEvidenceAccumulates(t *testing.T) {
	p := testPolicy(t)
	s, _ := Begin(p, "c", t0)
	w := Window{Primary: side(200, 0.999, 40), Candidate: side(200, 0.999, 40)}
	verdicts := ""
	for range 30 {
		w.End = s.Next
		s, _ = Advance(p, s, w, w.End)
		verdicts += string(s.History[len(s.History)-1].Verdict)[:1]
		if s.Step > 0 {
			break
		}
	}
	if s.Step != 1 || !strings.HasPrefix(verdicts, "h") || !strings.HasSuffix(verdicts, "p") {
		t.Fatalf("verdicts %q, step %d: want holds that end in a pass", verdicts, s.Step)
	}
}

// TestSync: a new candidate starts over; the same one resumes; changed
// steps clamp.
func TestSync(t *testing.T) {
	p := testPolicy(t)
	s, _ := Begin(p, "books-v2@aaa", t0)
	s, _ = Advance(p, s, Window{End: s.Next, Primary: side(5000, 1, 40), Candidate: side(5000, 1, 40)}, s.Next)
	if s.Weight != 10 {
		t.Fatalf("weight %d", s.Weight)
	}
	same, ev := Sync(p, &s, "books-v2@aaa", t0.Add(time.Hour))
	if ev != nil || same.Weight != 10 || same.Step != 1 {
		t.Errorf("the same candidate moved: %+v, %v", same, ev)
	}
	fresh, ev := Sync(p, &s, "books-v2@bbb", t0.Add(time.Hour))
	if ev == nil || fresh.Weight != 5 || fresh.Step != 0 || !strings.Contains(ev.Message, "starts over") {
		t.Errorf("a new candidate did not start over: %+v, %v", fresh, ev)
	}
	p2 := p
	p2.Steps = []int{20, 100}
	clamped, ev := Sync(p2, &s, "books-v2@aaa", t0.Add(time.Hour))
	if ev == nil || clamped.Weight != 20 || clamped.Step != 0 {
		t.Errorf("changed steps: %+v, %v", clamped, ev)
	}
}

// TestManual: promote moves a step or to the end; abort rolls back.
func TestManual(t *testing.T) {
	p := testPolicy(t)
	s, _ := Begin(p, "c", t0)
	s1, ev := Promote(p, s, false, t0)
	if s1.Weight != 10 || ev.Reason != ReasonProgressing {
		t.Errorf("promote: %d, %s", s1.Weight, ev.Reason)
	}
	s2, ev := Promote(p, s, true, t0)
	if s2.Weight != 100 || s2.Phase != Promoted || ev.Reason != ReasonPromoted {
		t.Errorf("promote --full: %d, %s, %s", s2.Weight, s2.Phase, ev.Reason)
	}
	s3, ev := Abort(p, s)
	if s3.Weight != 0 || s3.Phase != RolledBack || ev.Reason != ReasonRolledBack {
		t.Errorf("abort: %d, %s, %s", s3.Weight, s3.Phase, ev.Reason)
	}
}

// TestWindowsAligned: analyses fall at interval boundaries, after a whole
// window at the step's weight.
func TestWindowsAligned(t *testing.T) {
	p := testPolicy(t)
	s, _ := Begin(p, "c", t0) // 10:00:30
	if want := time.Date(2026, 12, 7, 10, 2, 0, 0, time.UTC); !s.Next.Equal(want) {
		t.Errorf("first analysis %s, want %s", s.Next, want)
	}
	if s.Due(s.Next.Add(-time.Millisecond)) || !s.Due(s.Next) {
		t.Error("Due is wrong around Next")
	}
}
