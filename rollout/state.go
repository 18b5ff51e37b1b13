package rollout

import (
	"fmt"
	"math"
	"time"
)

// Phase is where a rollout stands.
type Phase string

const (
	// Progressing: the candidate takes the current step's weight, and
	// analyses decide whether it moves on.
	Progressing Phase = "Progressing"
	// Promoted: the candidate takes all traffic. mesh.cue may now drop
	// the primary.
	Promoted Phase = "Promoted"
	// RolledBack: the primary takes all traffic again.
	RolledBack Phase = "RolledBack"
)

// Verdict is what one analysis found.
type Verdict string

const (
	Pass Verdict = "pass"
	Fail Verdict = "fail"
	// Hold: not enough evidence either way (too little traffic, a close
	// call, or no metrics); the step waits, and the deadline runs.
	Hold Verdict = "hold"
)

// Sample is one side's traffic in a window, as Prometheus counted it.
type Sample struct {
	Requests  float64 `json:"requests"`
	Successes float64 `json:"successes"`
	// P99 is the p99 latency in milliseconds; NaN (stored as -1) when the
	// window held no requests.
	P99 float64 `json:"p99Ms"`
}

func (s Sample) counts() Counts { return Counts{Requests: s.Requests, Successes: s.Successes} }

// SuccessRate is the share of successful requests, NaN without requests.
func (s Sample) SuccessRate() float64 {
	if s.Requests <= 0 {
		return math.NaN()
	}
	return min(s.Successes/s.Requests, 1)
}

// Window is what the metrics said about one rollout's two sides over one
// interval that ended at End, or why they said nothing.
type Window struct {
	End                time.Time
	Primary, Candidate Sample
	// Err is why the numbers could not be read (Prometheus down); the
	// analysis holds.
	Err error
}

// Analysis is one judgement, kept in the state so that people see why a
// rollout moved.
type Analysis struct {
	At        time.Time `json:"at"`
	Verdict   Verdict   `json:"verdict"`
	Reason    string    `json:"reason"`
	Primary   Sample    `json:"primary"`
	Candidate Sample    `json:"candidate"`
	// ProbNotWorse is how sure the comparison is that the candidate's
	// success rate is within maxDrop of the primary's, on the evidence of
	// the whole step so far.
	ProbNotWorse float64 `json:"probNotWorse"`
}

// Evidence is the traffic both sides answered since the step began (or
// since the last failed analysis): the success rates are compared on all
// of it, so that a close call gathers evidence instead of being thrown
// away with each window.
type Evidence struct {
	Primary   Counts `json:"primary"`
	Candidate Counts `json:"candidate"`
}

// State is one rollout as it stands in the cluster. A restarted loop
// resumes from it.
type State struct {
	Service string `json:"service"`
	From    string `json:"from"`
	To      string `json:"to"`
	// Candidate identifies what is being rolled out: the candidate
	// backend and its pod template. A new one starts over.
	Candidate string `json:"candidate"`
	Phase     Phase  `json:"phase"`
	// Step indexes the policy's steps; Weight is the candidate's share of
	// the traffic, in percent.
	Step   int `json:"step"`
	Steps  int `json:"steps"`
	Weight int `json:"weight"`
	// StepStarted is when the current weight began; Since is when the
	// last verdict (pass or fail) fell, or the step began: the progress
	// deadline counts from it.
	StepStarted time.Time `json:"stepStarted"`
	Since       time.Time `json:"since"`
	// Next is when the next analysis is due: the end of the next window
	// that starts after StepStarted, windows aligned to the interval.
	Next     time.Time  `json:"next,omitzero"`
	Failures int        `json:"failures"`
	Evidence Evidence   `json:"evidence"`
	History  []Analysis `json:"history,omitempty"`
	Message  string     `json:"message"`
}

// keepHistory bounds the analyses a state keeps.
const keepHistory = 10

// Event says what an analysis or a change did, for Kubernetes Events.
type Event struct {
	// Reason is RolloutProgressing, RolloutPromoted, RolloutRolledBack or
	// RolloutHeld.
	Reason  string
	Message string
	// Warning marks a rollback and a failed analysis.
	Warning bool
}

// Event reasons.
const (
	ReasonProgressing = "RolloutProgressing"
	ReasonPromoted    = "RolloutPromoted"
	ReasonRolledBack  = "RolloutRolledBack"
	ReasonHeld        = "RolloutHeld"
)

// Weights are the split's weights the state asks for: the primary takes
// what the candidate does not.
func (s State) Weights() map[string]int {
	return map[string]int{s.From: 100 - s.Weight, s.To: s.Weight}
}

// Done says the rollout has ended, either way.
func (s State) Done() bool { return s.Phase == Promoted || s.Phase == RolledBack }

// windowAfter is the end of the first interval-aligned window that starts
// at or after t.
func windowAfter(t time.Time, iv time.Duration) time.Time {
	start := t.Truncate(iv)
	if start.Before(t) {
		start = start.Add(iv)
	}
	return start.Add(iv)
}

// Begin starts a rollout of candidate at the first step.
func Begin(p Policy, candidate string, now time.Time) (State, Event) {
	s := State{Service: p.Service, From: p.From, To: p.To, Candidate: candidate}
	s = s.enter(p, 0, now)
	ev := Event{Reason: ReasonProgressing, Message: fmt.Sprintf("%s: rollout of %s started: %s at %d%%", p.Service, p.To, p.To, s.Weight)}
	if s.Phase == Promoted {
		ev = Event{Reason: ReasonPromoted, Message: fmt.Sprintf("%s: %s takes all traffic (its one step is 100)", p.Service, p.To)}
	}
	return s, ev
}

// enter moves to step i.
func (s State) enter(p Policy, i int, now time.Time) State {
	s.Step, s.Steps, s.Weight = i, len(p.Steps), p.Steps[i]
	s.StepStarted, s.Since = now, now
	s.Evidence, s.Failures = Evidence{}, 0
	s.Phase, s.Next = Progressing, windowAfter(now, p.Interval)
	s.Message = fmt.Sprintf("step %d/%d: %s at %d%%", i+1, len(p.Steps), p.To, s.Weight)
	if s.Weight == 100 {
		s.Phase, s.Next = Promoted, time.Time{}
		s.Message = fmt.Sprintf("promoted: %s takes all traffic; drop %s from mesh.cue's split and rollout when ready", p.To, p.From)
	}
	return s
}

// Sync brings a stored state in line with the policy: none, or one for
// another candidate or backends, starts over; a step that no longer
// exists is clamped. changed says whether anything moved.
func Sync(p Policy, stored *State, candidate string, now time.Time) (s State, ev *Event) {
	if stored == nil || stored.Candidate != candidate || stored.From != p.From || stored.To != p.To {
		s, e := Begin(p, candidate, now)
		if stored != nil && stored.Candidate != candidate && stored.From == p.From && stored.To == p.To {
			e.Message += " (a new candidate: the analysis starts over)"
		}
		return s, &e
	}
	s = *stored
	if s.Phase == Progressing && (s.Step >= len(p.Steps) || p.Steps[s.Step] != s.Weight) {
		// The steps changed under the rollout: stay at the first step at
		// or above the current weight.
		i := 0
		for i < len(p.Steps)-1 && p.Steps[i] < s.Weight {
			i++
		}
		s = s.enter(p, i, now)
		return s, &Event{Reason: ReasonProgressing, Message: fmt.Sprintf("%s: the steps changed; %s", p.Service, s.Message)}
	}
	return s, nil
}

// Due says whether an analysis is due at now.
func (s State) Due(now time.Time) bool {
	return s.Phase == Progressing && !s.Next.IsZero() && !now.Before(s.Next)
}

// Advance judges the window that just ended and moves the rollout: the
// next step on a pass; a rollback after failureLimit failures with no pass
// between them (a hold resets nothing), or when no verdict fell within the
// progress deadline; otherwise a hold.
func Advance(p Policy, s State, w Window, now time.Time) (State, Event) {
	if s.Phase != Progressing {
		return s, Event{}
	}
	a := judge(p, &s, w)
	s.History = append(s.History, a)
	if len(s.History) > keepHistory {
		s.History = s.History[len(s.History)-keepHistory:]
	}
	s.Next = w.End.Add(p.Interval)
	switch a.Verdict {
	case Pass:
		next := s.enter(p, s.Step+1, now)
		next.History = s.History
		if next.Phase == Promoted {
			return next, Event{Reason: ReasonPromoted, Message: fmt.Sprintf("%s: %s promoted to 100%%: %s", p.Service, p.To, a.Reason)}
		}
		return next, Event{Reason: ReasonProgressing, Message: fmt.Sprintf("%s: %s at %d%% (step %d/%d): %s", p.Service, p.To, next.Weight, next.Step+1, len(p.Steps), a.Reason)}
	case Fail:
		s.Failures++
		s.Since, s.Evidence = now, Evidence{}
		if s.Failures >= p.FailureLimit {
			return s.rollBack(p, fmt.Sprintf("%d failed analyses without a pass: %s", s.Failures, a.Reason)), Event{Reason: ReasonRolledBack, Warning: true,
				Message: fmt.Sprintf("%s: %s rolled back after %d failed analyses without a pass: %s", p.Service, p.To, s.Failures, a.Reason)}
		}
		s.Message = fmt.Sprintf("step %d/%d: %s at %d%%; analysis failed (%d of %d before rollback): %s", s.Step+1, len(p.Steps), p.To, s.Weight, s.Failures, p.FailureLimit, a.Reason)
		return s, Event{Reason: ReasonProgressing, Warning: true, Message: fmt.Sprintf("%s: %s", p.Service, s.Message)}
	default:
		if now.Sub(s.Since) >= p.ProgressDeadline {
			why := fmt.Sprintf("no verdict within the progress deadline (%s): %s", p.ProgressDeadline, a.Reason)
			return s.rollBack(p, why), Event{Reason: ReasonRolledBack, Warning: true, Message: fmt.Sprintf("%s: %s rolled back: %s", p.Service, p.To, why)}
		}
		s.Message = fmt.Sprintf("step %d/%d: %s at %d%%; holding: %s", s.Step+1, len(p.Steps), p.To, s.Weight, a.Reason)
		return s, Event{Reason: ReasonHeld, Message: fmt.Sprintf("%s: %s", p.Service, s.Message)}
	}
}

func (s State) rollBack(p Policy, why string) State {
	s.Phase, s.Weight, s.Next = RolledBack, 0, time.Time{}
	s.Message = fmt.Sprintf("rolled back: %s; %s takes all traffic. A new candidate (a change to %s's pod template, or another rollout.to) starts over", why, p.From, p.ToDeployment)
	return s
}

// Promote ends the analysis by hand: to the next step, or with full to
// 100%.
func Promote(p Policy, s State, full bool, now time.Time) (State, Event) {
	if s.Phase != Progressing {
		return s, Event{}
	}
	i := s.Step + 1
	if full || i >= len(p.Steps) {
		i = len(p.Steps) - 1
	}
	hist := s.History
	s = s.enter(p, i, now)
	s.History = hist
	if s.Phase == Promoted {
		return s, Event{Reason: ReasonPromoted, Message: fmt.Sprintf("%s: %s promoted to 100%% by hand", p.Service, p.To)}
	}
	return s, Event{Reason: ReasonProgressing, Message: fmt.Sprintf("%s: %s moved by hand to %d%% (step %d/%d)", p.Service, p.To, s.Weight, s.Step+1, len(p.Steps))}
}

// Abort rolls back by hand.
func Abort(p Policy, s State) (State, Event) {
	if s.Phase != Progressing {
		return s, Event{}
	}
	return s.rollBack(p, "aborted by hand"), Event{Reason: ReasonRolledBack, Warning: true, Message: fmt.Sprintf("%s: %s rolled back by hand", p.Service, p.To)}
}

// judge compares the two sides. The success rates are compared on the
// step's evidence so far, with a test that knows its sample sizes
// (ProbNotWorse): it decides once it is Confidence sure either way, and
// otherwise waits for more traffic. The p99 latencies are compared on the
// window alone, when both sides answered MinRequests in it.
func judge(p Policy, s *State, w Window) Analysis {
	a := Analysis{At: w.End, Primary: w.Primary, Candidate: w.Candidate, ProbNotWorse: -1}
	if w.Err != nil {
		a.Verdict, a.Reason = Hold, fmt.Sprintf("no metrics: %v", w.Err)
		return a
	}
	s.Evidence.Primary = add(s.Evidence.Primary, w.Primary.counts())
	s.Evidence.Candidate = add(s.Evidence.Candidate, w.Candidate.counts())
	ev := s.Evidence
	if ev.Primary.Requests < p.MinRequests || ev.Candidate.Requests < p.MinRequests {
		a.Verdict = Hold
		a.Reason = fmt.Sprintf("too little traffic: %s %.0f and %s %.0f requests since the step began, %.0f needed on each side",
			p.From, ev.Primary.Requests, p.To, ev.Candidate.Requests, p.MinRequests)
		return a
	}
	prob := ProbNotWorse(ev.Primary, ev.Candidate, p.MaxDrop)
	a.ProbNotWorse = prob
	rates := fmt.Sprintf("success %s vs %s", pct(ev.Candidate), pct(ev.Primary))
	if prob <= 1-p.Confidence {
		a.Verdict = Fail
		a.Reason = fmt.Sprintf("%s: %s's success rate is more than %s below %s's (%.1f%% sure)", rates, p.To, points(p.MaxDrop*100), p.From, (1-prob)*100)
		return a
	}
	lat, latKnown := "", false
	if w.Primary.Requests >= p.MinRequests && w.Candidate.Requests >= p.MinRequests && w.Primary.P99 >= 0 && w.Candidate.P99 >= 0 {
		latKnown = true
		lat = fmt.Sprintf("p99 %s vs %s", ms(w.Candidate.P99), ms(w.Primary.P99))
		if w.Candidate.P99 > w.Primary.P99*(1+p.MaxIncrease) {
			a.Verdict = Fail
			a.Reason = fmt.Sprintf("%s, %s: %s's p99 is more than %.3g%% above %s's", rates, lat, p.To, p.MaxIncrease*100, p.From)
			return a
		}
	}
	switch {
	case prob < p.Confidence:
		a.Verdict = Hold
		a.Reason = fmt.Sprintf("%s: too close to call on %.0f and %.0f requests (%.1f%% sure it is no worse); waiting for more traffic", rates, ev.Candidate.Requests, ev.Primary.Requests, prob*100)
	case !latKnown:
		a.Verdict = Hold
		a.Reason = fmt.Sprintf("%s, but too little traffic in the last window for a p99 (%.0f and %.0f requests, %.0f needed)", rates, w.Candidate.Requests, w.Primary.Requests, p.MinRequests)
	default:
		a.Verdict = Pass
		a.Reason = fmt.Sprintf("%s, %s", rates, lat)
	}
	return a
}

// points is a number of percentage points, as people say it.
func points(v float64) string {
	if v == 1 {
		return "1 point"
	}
	return fmt.Sprintf("%.2g points", v)
}

func add(a, b Counts) Counts {
	return Counts{Requests: a.Requests + max(b.Requests, 0), Successes: a.Successes + max(b.Successes, 0)}
}

func pct(c Counts) string {
	if c.Requests <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", min(c.Successes/c.Requests, 1)*100)
}

func ms(v float64) string {
	if v < 0 || math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.0f ms", v)
}

// Summary is the rollout in one line, as diff and status print it:
// "booksapp/books: step 3/5, books-v2 at 25%, success 99.8% vs 99.9%,
// p99 41 ms vs 39 ms, next analysis in 40s".
func (s State) Summary(now time.Time) string {
	switch s.Phase {
	case Promoted, RolledBack:
		return fmt.Sprintf("%s: %s", s.Service, s.Message)
	}
	line := fmt.Sprintf("%s: step %d/%d, %s at %d%%", s.Service, s.Step+1, s.Steps, s.To, s.Weight)
	if n := len(s.History); n > 0 {
		a := s.History[n-1]
		if a.Primary.Requests > 0 || a.Candidate.Requests > 0 {
			line += fmt.Sprintf(", success %s vs %s, p99 %s vs %s", pct(a.Candidate.counts()), pct(a.Primary.counts()), ms(a.Candidate.P99), ms(a.Primary.P99))
		}
		if a.Verdict != Pass {
			line += ", " + string(a.Verdict) + ": " + a.Reason
		}
	}
	if !s.Next.IsZero() {
		if d := s.Next.Sub(now).Round(time.Second); d > 0 {
			line += fmt.Sprintf(", next analysis in %s", d)
		} else {
			line += ", analysis due"
		}
	}
	return line
}
