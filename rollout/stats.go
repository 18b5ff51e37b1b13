package rollout

import "math"

// Counts are the requests one side answered in a window, and how many succeeded.
type Counts struct{ Requests, Successes float64 }

// ProbNotWorse is the probability, given the two windows, that the candidate's
// true success rate is no more than maxDrop below the primary's.
//
// maxDrop is a fraction: 0.005 is half a percentage point. A value near 1
// means the candidate is safe to promote, near 0 that it is worse by more
// than maxDrop, and anything between that the window holds too little
// traffic to tell: with tens of requests it stays well away from both ends.
// Each side starts from a uniform prior on its rate, so with no traffic the
// answer is the chance for two unknown rates (0.5 for maxDrop 0).
//
// Counts may be fractional, as Prometheus increase() extrapolates. Successes
// is clamped into [0, Requests]; a negative, NaN or infinite Requests and a NaN
// Successes count as 0. Beyond 10^9 requests a side is scaled down to that,
// keeping its rate: its posterior is then narrower than any maxDrop worth
// deciding on. A NaN maxDrop counts as 0.
func ProbNotWorse(primary, candidate Counts, maxDrop float64) float64 {
	if math.IsNaN(maxDrop) {
		maxDrop = 0
	}
	pp, pc := posterior(primary), posterior(candidate)
	// P(pc >= pp - maxDrop) is taken over the narrower posterior, so the
	// other side's CDF is smooth on the scale of the quadrature grid.
	var p float64
	if pc.sd() <= pp.sd() {
		p = pc.expect(func(x float64) float64 { return pp.cdf(x + maxDrop) }, -maxDrop, 1-maxDrop)
	} else {
		p = pp.expect(func(y float64) float64 { return 1 - pc.cdf(y-maxDrop) }, maxDrop, 1+maxDrop)
	}
	return min(max(p, 0), 1)
}

// maxRequests bounds a side's counts: past it, float64 can no longer resolve
// the posterior's width near a rate of 1, and the extra evidence is moot.
const maxRequests = 1e9

// betaDist is the Beta(a, b) posterior of a success rate, with its mean
// p0 = a/(a+b), q0 = 1 - p0 and logC = log(p0^a q0^b / B(a, b)) kept for
// the evaluations at every quadrature node.
type betaDist struct{ a, b, p0, q0, logC float64 }

func newBeta(a, b float64) betaDist {
	n := a + b
	p0, q0 := a/n, b/n
	// Stirling's series for log B(a, b) keeps logC exact at large counts,
	// where the plain lgamma sum cancels terms of size n log n.
	logC := 0.5*math.Log(p0*b/(2*math.Pi)) - stirlingErr(a) - stirlingErr(b) + stirlingErr(n)
	return betaDist{a: a, b: b, p0: p0, q0: q0, logC: logC}
}

// posterior is the Beta posterior of a side's rate after a uniform prior.
func posterior(c Counts) betaDist {
	n, s := c.Requests, c.Successes
	if !(n > 0) || math.IsInf(n, 1) {
		n = 0
	}
	s = min(max(s, 0), n) // max(NaN, 0) is NaN; min(NaN, n) too.
	if math.IsNaN(s) {
		s = 0
	}
	if n > maxRequests {
		s, n = s*(maxRequests/n), maxRequests
	}
	return newBeta(1+s, 1+(n-s))
}

func (d betaDist) sd() float64 {
	return math.Sqrt(d.p0 * d.q0 / (d.a + d.b + 1))
}

// quadPanels is the number of Gauss–Legendre panels over a posterior's
// window; the accuracy tests pin it against exact and Monte Carlo answers.
const quadPanels = 8

// windowSDs is the half-width of the window in standard deviations. With
// a, b >= 1 the density is log-concave, so its tails fall at least
// exponentially and the mass outside is a few 1e-6 at most.
const windowSDs = 12

// gaussLegendre8 holds the positive nodes of the 8-point Gauss–Legendre rule
// on [-1, 1] and their weights. An open rule never evaluates the density at
// 0 or 1, where a fractional count makes it drop to 0 within a few ulps.
var gaussLegendre8 = [4][2]float64{
	{0.1834346424956498049, 0.3626837833783619830},
	{0.5255324099163289858, 0.3137066458778872873},
	{0.7966664774136267396, 0.2223810344533744705},
	{0.9602898564975362317, 0.1012285362903762592},
}

// gradeLevels and gradeRatio shape the panels next to 0, 1 and a kink of g:
// each is cut into geometrically shrinking panels, as a fractional count
// makes the density or the other side's CDF behave like (1-x)^0.3 there, and
// uniform panels would then converge only slowly.
const (
	gradeLevels = 5
	gradeRatio  = 0.15
)

// expect is E[g(X)] for X ~ d, by composite Gauss–Legendre over the window
// where d has its mass, split at the kinks of g so each piece is smooth. It
// divides by the integral of the density over the window, so the density
// need not be normalized and the clipped tails cancel.
func (d betaDist) expect(g func(float64) float64, kink1, kink2 float64) float64 {
	mu, sd := d.p0, d.sd()
	lo, hi := max(mu-windowSDs*sd, 0), min(mu+windowSDs*sd, 1)
	var num, den float64
	from, gradeFrom := lo, lo == 0
	for _, to := range [3]float64{min(kink1, kink2), max(kink1, kink2), hi} {
		if to <= from || to > hi {
			continue
		}
		gradeTo := to < hi || hi == 1
		n, dn := d.piece(g, from, to, int(math.Ceil(quadPanels*(to-from)/(hi-lo))), gradeFrom, gradeTo)
		num, den = num+n, den+dn
		from, gradeFrom = to, true
	}
	if !(den > 0) {
		return g(mu)
	}
	return num / den
}

// piece integrates kernel·g and kernel over [from, to] with equal panels,
// graded toward the ends asked for.
func (d betaDist) piece(g func(float64) float64, from, to float64, panels int, gradeFrom, gradeTo bool) (num, den float64) {
	if panels < 2 && gradeFrom && gradeTo {
		panels = 2
	}
	h := (to - from) / float64(panels)
	for i := range panels {
		a, b := from+float64(i)*h, from+float64(i+1)*h
		if i == panels-1 {
			b = to
		}
		var n, dn float64
		switch {
		case i == 0 && gradeFrom:
			n, dn = d.graded(g, a, b)
		case i == panels-1 && gradeTo:
			n, dn = d.graded(g, b, a)
		default:
			n, dn = d.panel(g, a, b)
		}
		num, den = num+n, den+dn
	}
	return num, den
}

// graded integrates over the panel between end and other, in panels that
// shrink geometrically toward end.
func (d betaDist) graded(g func(float64) float64, end, other float64) (num, den float64) {
	w := other - end // negative when grading toward the right end
	for range gradeLevels {
		n, dn := d.panel(g, end+w*gradeRatio, end+w)
		num, den = num+n, den+dn
		w *= gradeRatio
	}
	n, dn := d.panel(g, end, end+w)
	return num + n, den + dn
}

// panel integrates kernel·g and kernel between a and b by 8-point
// Gauss–Legendre; b may be below a.
func (d betaDist) panel(g func(float64) float64, a, b float64) (num, den float64) {
	mid, half := (a+b)/2, math.Abs(b-a)/2
	for _, nw := range gaussLegendre8 {
		for _, x := range [2]float64{mid - half*nw[0], mid + half*nw[0]} {
			f := nw[1] * d.kernel(x)
			if f == 0 {
				continue
			}
			den += f
			num += f * g(x)
		}
	}
	return num * half, den * half
}

// kernel is the density at x divided by its value at the mean, written with
// log1p around the mean so it stays exact with millions of requests.
func (d betaDist) kernel(x float64) float64 {
	var l float64
	if d.a != 1 {
		l += (d.a - 1) * math.Log1p((x-d.p0)/d.p0)
	}
	if d.b != 1 {
		l += (d.b - 1) * math.Log1p(((1-x)-d.q0)/d.q0)
	}
	return math.Exp(l)
}

// cdf is P(X <= x), the regularized incomplete beta function I_x(a, b).
func (d betaDist) cdf(x float64) float64 {
	if !(x > 0) { // also NaN
		return 0
	}
	if x >= 1 {
		return 1
	}
	// front is x^a (1-x)^b / B(a, b).
	front := math.Exp(d.a*math.Log1p((x-d.p0)/d.p0) + d.b*math.Log1p(((1-x)-d.q0)/d.q0) + d.logC)
	if x < (d.a+1)/(d.a+d.b+2) {
		return front * betaCF(d.a, d.b, x) / d.a
	}
	return 1 - front*betaCF(d.b, d.a, 1-x)/d.b
}

// stirlingErr is lgamma(z) - ((z-0.5) log z - z + log(2π)/2), for z >= 1.
func stirlingErr(z float64) float64 {
	if z < 10 {
		lg, _ := math.Lgamma(z)
		return lg - (z-0.5)*math.Log(z) + z - 0.5*math.Log(2*math.Pi)
	}
	z2 := z * z
	return (1.0/12 - (1.0/360-(1.0/1260-(1.0/1680-1.0/(1188*z2))/z2)/z2)/z2) / z
}

// betaCF is the continued fraction for I_x(a, b), evaluated by modified
// Lentz; it converges fast for x below the mean, which cdf ensures.
func betaCF(a, b, x float64) float64 {
	const (
		tiny    = 1e-300
		eps     = 1e-12
		maxIter = 20000
	)
	clamp := func(v float64) float64 {
		if math.Abs(v) < tiny {
			return tiny
		}
		return v
	}
	c, d := 1.0, 1/clamp(1-(a+b)*x/(a+1))
	h := d
	for m := 1.0; m <= maxIter; m++ {
		num := m * (b - m) * x / ((a + 2*m - 1) * (a + 2*m))
		d = 1 / clamp(1+num*d)
		c = clamp(1 + num/c)
		h *= d * c
		num = -(a + m) * (a + b + m) * x / ((a + 2*m) * (a + 2*m + 1))
		d = 1 / clamp(1+num*d)
		c = clamp(1 + num/c)
		del := d * c
		h *= del
		if math.Abs(del-1) < eps {
			break
		}
	}
	return h
}
