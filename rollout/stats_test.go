package rollout

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestProbNotWorse(t *testing.T) {
	tests := []struct {
		name               string
		primary, candidate Counts
		maxDrop            float64
		min, max           float64
	}{
		{"no traffic, no drop allowed", Counts{}, Counts{}, 0, 0.499, 0.501},
		// Two uniform rates: P(pc >= pp - 0.1) = 1 - 0.9²/2.
		{"no traffic, 10 points allowed", Counts{}, Counts{}, 0.1, 0.594, 0.596},
		// pc ~ Beta(2, 1) against a uniform pp: P(pc >= pp) = E[pc] = 2/3.
		{"one success against nothing", Counts{}, Counts{1, 1}, 0, 0.666, 0.668},
		{"one failure against nothing", Counts{}, Counts{1, 0}, 0, 0.332, 0.334},
		{"equal small windows", Counts{40, 38}, Counts{40, 38}, 0, 0.49, 0.51},
		{"equal large windows", Counts{1e6, 999e3}, Counts{1e6, 999e3}, 0, 0.49, 0.51},
		{"equal windows at 10^7", Counts{1e7, 9999e3}, Counts{1e7, 9999e3}, 0, 0.49, 0.51},
		{"clearly bad", Counts{10000, 9990}, Counts{10000, 9700}, 0.005, 0, 0.01},
		{"clearly bad at 10^7", Counts{1e7, 0.9995e7}, Counts{1e7, 0.9985e7}, 0.0005, 0, 0.01},
		{"clearly fine", Counts{10000, 9990}, Counts{10000, 9989}, 0.005, 0.99, 1},
		{"clearly fine at 10^7", Counts{1e7, 0.9995e7}, Counts{1e7, 0.9994e7}, 0.0005, 0.99, 1},
		{"close call on 40 requests", Counts{40, 40}, Counts{40, 38}, 0.005, 0.05, 0.95},
		{"close call on 40 requests, both flawless", Counts{40, 40}, Counts{40, 40}, 0.005, 0.05, 0.95},
		{"fractional counts", Counts{40.7, 39.2}, Counts{39.6, 38.9}, 0.005, 0.05, 0.95},
		{"successes above requests", Counts{100, 100}, Counts{100, 130}, 0, 0.45, 0.55},
		{"negative counts are no traffic", Counts{-5, -3}, Counts{-1, 2}, 0, 0.499, 0.501},
		{"infinite drop allowed", Counts{1e6, 1e6}, Counts{1e6, 0}, math.Inf(1), 1, 1},
		{"infinite improvement demanded", Counts{}, Counts{1e6, 1e6}, math.Inf(-1), 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ProbNotWorse(tc.primary, tc.candidate, tc.maxDrop)
			if !(got >= tc.min && got <= tc.max) {
				t.Errorf("ProbNotWorse(%v, %v, %v) = %.6f, want in [%v, %v]",
					tc.primary, tc.candidate, tc.maxDrop, got, tc.min, tc.max)
			}
		})
	}
}

func TestProbNotWorseMonotonic(t *testing.T) {
	tests := []struct {
		name    string
		primary Counts
		cand    func(step float64) Counts
		drop    func(step float64) float64
	}{
		{
			name:    "in candidate successes, 40 requests",
			primary: Counts{40, 38},
			cand:    func(s float64) Counts { return Counts{40, 30 + s} },
			drop:    func(float64) float64 { return 0.005 },
		},
		{
			name:    "in candidate successes, 10^6 requests",
			primary: Counts{1e6, 999000},
			cand:    func(s float64) Counts { return Counts{1e6, 998000 + 100*s} },
			drop:    func(float64) float64 { return 0.0005 },
		},
		{
			name:    "in maxDrop, 400 requests",
			primary: Counts{400, 396},
			cand:    func(float64) Counts { return Counts{400, 390} },
			drop:    func(s float64) float64 { return 0.005 * (s - 2) },
		},
		{
			name:    "in maxDrop, 10^7 requests",
			primary: Counts{1e7, 0.9995e7},
			cand:    func(float64) Counts { return Counts{1e7, 0.999e7} },
			drop:    func(s float64) float64 { return 0.0001 * s },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const steps = 10
			first := ProbNotWorse(tc.primary, tc.cand(0), tc.drop(0))
			prev := first
			for s := 1.0; s <= steps; s++ {
				got := ProbNotWorse(tc.primary, tc.cand(s), tc.drop(s))
				if got < prev-1e-9 {
					t.Errorf("step %v: %.9f < previous %.9f (candidate %v, maxDrop %v)",
						s, got, prev, tc.cand(s), tc.drop(s))
				}
				prev = got
			}
			// The sweep must move the answer, or monotonicity says nothing.
			if prev-first < 0.5 {
				t.Errorf("sweep moved the probability only from %.4f to %.4f", first, prev)
			}
		})
	}
}

func TestProbNotWorseMatchesClosedForm(t *testing.T) {
	tests := []struct{ primary, candidate Counts }{
		{Counts{}, Counts{}},
		{Counts{5, 0}, Counts{5, 5}},
		{Counts{10, 9}, Counts{12, 10}},
		{Counts{40, 40}, Counts{40, 38}},
		{Counts{1000, 990}, Counts{1200, 1185}},
		{Counts{1e4, 1e4}, Counts{1e4, 9999}},
		{Counts{1e5, 99900}, Counts{1e5, 99890}},
		{Counts{1e5, 99900}, Counts{50, 50}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%v vs %v", tc.primary, tc.candidate), func(t *testing.T) {
			got := ProbNotWorse(tc.primary, tc.candidate, 0)
			want := closedForm(tc.primary, tc.candidate)
			if math.Abs(got-want) > 1e-4 {
				t.Errorf("ProbNotWorse = %.7f, closed form = %.7f", got, want)
			}
		})
	}
}

// closedForm is P(pc > pp) for whole counts (Evan Miller, "Formulas for
// Bayesian A/B testing"); ties have probability 0, so it is ProbNotWorse
// with maxDrop 0.
func closedForm(primary, candidate Counts) float64 {
	pa, pb := 1+primary.Successes, 1+primary.Requests-primary.Successes
	ca, cb := 1+candidate.Successes, 1+candidate.Requests-candidate.Successes
	lbeta := func(x, y float64) float64 {
		lx, _ := math.Lgamma(x)
		ly, _ := math.Lgamma(y)
		lxy, _ := math.Lgamma(x + y)
		return lx + ly - lxy
	}
	var sum float64
	for i := 0.0; i < ca; i++ {
		sum += math.Exp(lbeta(pa+i, pb+cb) - math.Log(cb+i) - lbeta(1+i, cb) - lbeta(pa, pb))
	}
	return sum
}

func TestProbNotWorseMatchesMonteCarlo(t *testing.T) {
	tests := []struct {
		primary, candidate Counts
		maxDrop            float64
	}{
		{Counts{}, Counts{}, 0.2},
		{Counts{10, 9}, Counts{12, 10}, 0.05},
		{Counts{40, 40}, Counts{40, 38}, 0.005},
		{Counts{40, 39}, Counts{400, 380}, 0.01},
		{Counts{500, 480}, Counts{20, 20}, 0},
		{Counts{10000, 9990}, Counts{10000, 9978}, 0.001},
		{Counts{1e6, 999000}, Counts{1e6, 998950}, 0},
		{Counts{1e6, 999000}, Counts{1e6, 998500}, 0.0005},
		{Counts{1e6, 999900}, Counts{2e5, 199960}, 0.0001},
		{Counts{1e6, 1e6}, Counts{1e6, 999998}, 0},
		{Counts{1e6, 999990}, Counts{1e3, 1e3}, 0.001},
		{Counts{5e6, 2.5e6}, Counts{5e6, 2.4985e6}, 0.0002},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprintf("%v vs %v drop %v", tc.primary, tc.candidate, tc.maxDrop), func(t *testing.T) {
			got := ProbNotWorse(tc.primary, tc.candidate, tc.maxDrop)
			want := monteCarlo(tc.primary, tc.candidate, tc.maxDrop, 200_000, uint64(i))
			if math.Abs(got-want) > 0.01 {
				t.Errorf("ProbNotWorse = %.4f, Monte Carlo = %.4f", got, want)
			}
			t.Logf("ProbNotWorse = %.4f, Monte Carlo = %.4f, off by %.4f", got, want, got-want)
		})
	}
}

// monteCarlo estimates P(pc >= pp - maxDrop) from draws of both posteriors.
func monteCarlo(primary, candidate Counts, maxDrop float64, draws int, seed uint64) float64 {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	pa, pb := 1+primary.Successes, 1+primary.Requests-primary.Successes
	ca, cb := 1+candidate.Successes, 1+candidate.Requests-candidate.Successes
	hits := 0
	for range draws {
		if betaDraw(r, ca, cb) >= betaDraw(r, pa, pb)-maxDrop {
			hits++
		}
	}
	return float64(hits) / float64(draws)
}

func betaDraw(r *rand.Rand, a, b float64) float64 {
	x, y := gammaDraw(r, a), gammaDraw(r, b)
	return x / (x + y)
}

// gammaDraw is Marsaglia and Tsang's sampler, for shape >= 1.
func gammaDraw(r *rand.Rand, shape float64) float64 {
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := r.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := r.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}

func TestGammaDraw(t *testing.T) {
	// The Monte Carlo reference is only as good as its sampler.
	r := rand.New(rand.NewPCG(7, 7))
	for _, shape := range []float64{1, 2.5, 1e3, 1e6} {
		const n = 200_000
		var sum, sq float64
		for range n {
			x := gammaDraw(r, shape)
			sum += x
			sq += x * x
		}
		mean := sum / n
		variance := sq/n - mean*mean
		if math.Abs(mean-shape) > 5*math.Sqrt(shape/n) {
			t.Errorf("shape %v: mean %v", shape, mean)
		}
		if math.Abs(variance/shape-1) > 0.02 {
			t.Errorf("shape %v: variance %v", shape, variance)
		}
	}
}

func TestGaussLegendre8(t *testing.T) {
	// An 8-point rule is exact for polynomials up to degree 15.
	for k := 0; k <= 15; k++ {
		var got float64
		for _, nw := range gaussLegendre8 {
			got += nw[1] * (math.Pow(nw[0], float64(k)) + math.Pow(-nw[0], float64(k)))
		}
		want := 0.0
		if k%2 == 0 {
			want = 2 / float64(k+1)
		}
		if math.Abs(got-want) > 1e-15 {
			t.Errorf("∫x^%d over [-1, 1] = %.17g, want %.17g", k, got, want)
		}
	}
}

func FuzzProbNotWorse(f *testing.F) {
	inf, nan := math.Inf(1), math.NaN()
	f.Add(0.0, 0.0, 0.0, 0.0, 0.0)
	f.Add(40.0, 38.0, 40.0, 40.0, 0.005)
	f.Add(1e7, 9.999e6, 1e7, 9.99e6, 0.0005)
	f.Add(1e7, 1e7, 1e7, 0.0, 0.0)
	f.Add(1e9, 1e9, 1e9, 1e9, 0.0)
	f.Add(5e8, 2.5e8, 5e8, 2.5e8, 0.0)
	f.Add(1e300, 1e300, 1e300, 5e299, 1e-300)
	f.Add(math.MaxFloat64, math.MaxFloat64, 1.0, -1.0, -1.0)
	f.Add(inf, inf, inf, nan, nan)
	f.Add(nan, nan, -inf, inf, inf)
	f.Add(3.5, 7.25, 1e-300, 5e-324, -inf)
	f.Add(100.0, 99.0, 100.0, 99.0, 2.0)
	f.Add(100.0, 99.0, 100.0, 99.0, -2.0)
	f.Fuzz(func(t *testing.T, pn, ps, cn, cs, maxDrop float64) {
		primary, candidate := Counts{pn, ps}, Counts{cn, cs}
		got := ProbNotWorse(primary, candidate, maxDrop)
		if !(got >= 0 && got <= 1) {
			t.Fatalf("ProbNotWorse(%v, %v, %v) = %v, want in [0, 1]", primary, candidate, maxDrop, got)
		}
		// P(pc >= pp - m) and P(pp >= pc + m) are complements, and swapping
		// the sides may swap the posterior integrated over.
		swapped := ProbNotWorse(candidate, primary, -maxDrop)
		if math.Abs(got+swapped-1) > 2e-3 {
			t.Fatalf("ProbNotWorse(%v, %v, %v) = %v, but swapped = %v", primary, candidate, maxDrop, got, swapped)
		}
	})
}

func BenchmarkProbNotWorse(b *testing.B) {
	benchmarks := []struct {
		name               string
		primary, candidate Counts
		maxDrop            float64
	}{
		{"empty", Counts{}, Counts{}, 0},
		{"40 requests", Counts{40, 39}, Counts{40, 38}, 0.005},
		{"10^4 requests", Counts{1e4, 9990}, Counts{1e4, 9980}, 0.001},
		{"10^7 at 0.999", Counts{1e7, 9.99e6}, Counts{1e7, 9.989e6}, 0.0001},
		{"10^7 at 0.5", Counts{1e7, 5e6}, Counts{1e7, 4.999e6}, 0.0001},
		{"10^7 against 10^3", Counts{1e7, 9.99e6}, Counts{1e3, 999}, 0.001},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				ProbNotWorse(bm.primary, bm.candidate, bm.maxDrop)
			}
		})
	}
}
