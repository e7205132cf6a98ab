package estimators

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// EDGE is the ensemble dependency-graph estimator of Noshad, Zeng and Hero
// (ICASSP 2019, arXiv 1801.09125) exactly as the paper authors' copy of the
// reference code (mrtnoshad/EDGE v4.4.1, Sekeh-Lab/SemirobustSubnetworks
// MI/AuxiliaryScripts/mi_estimator.py) computes it. The zero value runs the
// authors' settings: U = 10, gamma (1, 1) scaled by 0.4, one base estimator
// (L = 1), epsilon_vector 'range', no epsilon normalisation, stochastic
// shifts, p-stable hashing (floor hashing when both sides have ≤ 6
// columns), log base 2. The result is in bits unless Units is Nats.
//
// The algorithm (docs/edge.md §2): when either side has more than 6
// columns, both sides are projected with Gaussian matrices W (d_x×d′_x) and
// V (d_y×d′_y), d′ = min(d, ⌊log₂(N/10)⌋), entries N(0, 1/(s_j·√d)) with s_j
// the population std of column j (1 where s_j < 1e-4), drawn W first from
// one stream seeded with 3334. Each projected column c gets the bandwidth
// e_c = mean over 500 rows (drawn with replacement, the same rows for every
// column) of the distance to the k-th nearest value of the column, the row
// itself counting as the first, plus 1e-4, with
// k = ⌊0.43·N^(2/3 + 0.17·d′/(d′+1))·exp(−1/max(10⁴, d′⁴))⌋. Then
// ε_c = e_c·c·γ·T_j with c = 18·d′/max(1 + ln d, 1), each row is bucketed as
// ⌊(v_c + b_c)/ε_c⌋ per column, and the base estimate is
// (1/N)·Σ over occupied joint buckets N_ij·clip(log₂(N_ij·N/(N_i·M_j)), 0.001, U).
//
// Behaviour kept from the reference on purpose (docs/edge.md §4):
//   - NormalizeEpsilon runs a second pass with γ·2^(0.5/Î − √(2Î)) and the
//     second pass multiplies γ by 0.4 again (effective 0.16·…); the reference
//     default, it returns near-saturated values, which is why the authors
//     (and this zero value) leave it off.
//   - X and Y are projected with different random matrices even when they
//     are the same array, so above ~64 dimensions dependent and independent
//     data give about the same value: use PermutationNull.
//   - The estimate lies in [0.001, min(U, log₂ N)] bits: never negative,
//     positive on independent data, growing with d and N, and capped at U.
//   - p-stable hashing needs N ≥ 20 (d′ ≥ 1) and the kNN step needs
//     1 ≤ k ≤ N; smaller inputs return ErrTooFewSamples where the reference
//     crashes. The reference's d′ = 1 np.asscalar crash (numpy ≥ 1.23) is
//     not reproduced: such inputs are computed as numpy < 1.23 would.
//   - No second hash H2: buckets are grouped exactly by their integer
//     vectors, as the reference code (not the paper) does.
//   - Columns with std < 1e-4 get projection weights of scale 1/√d instead
//     of 1/(s√d); a constant non-zero column shifts every projection (and
//     so the grid); an all-zero column contributes nothing. Under floor
//     hashing a constant column has bandwidth 1e-4·c·γ and one bucket.
//     Constant data is therefore accepted, not an error.
//   - The projection (seed 3334) and the 500 kNN rows are the same for every
//     call; only the shifts are stochastic. The reference draws the shifts
//     from OS entropy; here they come from Seed, so a call is reproducible.
//   - The 500 kNN rows are the same for every column and drawn with
//     replacement, and the k-th neighbour includes the query row itself.
//   - Logarithms are base 2 throughout (U is in bits).
//   - Manual bandwidths are used only when Epsilon[0] ≠ 0 (the reference
//     tests epsilon[0] alone) and then take the factor 15 instead of 18.
//
// RNG "reference" rebuilds numpy's legacy generator (docs/edge.md §5)
// so that with Deterministic set the result equals the authors' code to
// about 1e-6 bit (the projection X·W is summed in a different order than
// OpenBLAS, which can move a value that sits on a bucket edge). The default
// RNG draws W, the kNN rows and the shifts from math/rand/v2 streams seeded
// with Seed; the numbers then differ from the reference by its own
// sampling noise.
type EDGE struct {
	// U caps the log ratio of each bucket, in bits; 0 means 10.
	U float64 `json:",omitempty"`
	// Gamma is the smoothness (γ_x, γ_y) before the 0.4 scaling; zero
	// entries mean 1.
	Gamma [2]float64 `json:",omitzero"`
	// Epsilon sets manual bandwidths (ε_x, ε_y) when Epsilon[0] ≠ 0.
	Epsilon [2]float64 `json:",omitzero"`
	// EpsilonVector is "range" (default: member j uses ε·T_j with
	// T = linspace(1, 1+EpsRangeFactor, L)) or "fixed" (T = 1).
	EpsilonVector string `json:",omitempty"`
	// EpsRangeFactor is the relative width of the 'range' bandwidths;
	// 0 means 0.1.
	EpsRangeFactor float64 `json:",omitempty"`
	// NormalizeEpsilon runs the reference's second, renormalised pass
	// (reference default true; authors false).
	NormalizeEpsilon bool `json:",omitempty"`
	// Ensemble combines the L base estimates: "median" (default) or
	// "average". ("optimal_weights" needs a QP solver and is not offered.)
	Ensemble string `json:",omitempty"`
	// L is the number of base estimators; 0 means 1 (the authors'
	// setting; the reference default is 10).
	L int `json:",omitempty"`
	// Hashing is "p-stable" (default; switches to floor hashing when both
	// sides have ≤ 6 columns, as the reference does) or "floor" (no
	// projection at any dimension).
	Hashing string `json:",omitempty"`
	// Deterministic uses the reference's deterministic shifts b = (j/L)·ε
	// (b = 0 for L = 1) instead of stochastic ones b = 0.1·U(0,1)·ε. The
	// fixtures in testdata/fixtures/edge were made this way.
	Deterministic bool `json:",omitempty"`
	// RNG is "default" (math/rand/v2 streams derived from Seed for W, V,
	// the kNN rows and the shifts) or "reference" (numpy's legacy
	// generator: W, V and the kNN rows exactly as the authors' code with
	// seed 3334; stochastic shifts from one stream seeded like
	// numpy.random.seed(Seed mod 2³²), where the reference reseeds from OS
	// entropy before every ensemble member).
	RNG string `json:",omitempty"`
	// Seed selects the random streams (see RNG). The same Seed gives the
	// same result.
	Seed uint64 `json:",omitempty"`
	// Units of the result; the zero value is Bits.
	Units Units `json:",omitempty"`
}

// Name returns "edge".
func (EDGE) Name() string { return "edge" }

// edgeRefSeed is the seed the reference passes to np.random.seed in gen_W
// and find_knn.
const edgeRefSeed = 3334

// edgeQueries is r = 500 in the reference's find_knn.
const edgeQueries = 500

func (e EDGE) withDefaults() (EDGE, error) {
	if e.U == 0 {
		e.U = 10
	}
	for i := range e.Gamma {
		if e.Gamma[i] == 0 {
			e.Gamma[i] = 1
		}
		if !(e.Gamma[i] > 0) || math.IsInf(e.Gamma[i], 0) {
			return e, fmt.Errorf("edge: Gamma %v must be finite and positive (0 means 1): %w", e.Gamma, ErrOption)
		}
	}
	if !(e.U >= 0.001) || math.IsInf(e.U, 0) {
		return e, fmt.Errorf("edge: U = %v must be finite and ≥ 0.001: %w", e.U, ErrOption)
	}
	for _, v := range e.Epsilon {
		if err := finite("edge", "Epsilon", v); err != nil {
			return e, err
		}
	}
	if e.Epsilon[0] != 0 && (e.Epsilon[0] < 0 || e.Epsilon[1] <= 0) {
		return e, fmt.Errorf("edge: manual Epsilon %v must be positive on both sides: %w", e.Epsilon, ErrOption)
	}
	if e.Epsilon[0] == 0 && e.Epsilon[1] != 0 {
		return e, fmt.Errorf("edge: Epsilon %v: manual bandwidths are used only when Epsilon[0] ≠ 0 (set both, or neither): %w", e.Epsilon, ErrOption)
	}
	if err := finite("edge", "EpsRangeFactor", e.EpsRangeFactor); err != nil {
		return e, err
	}
	if e.EpsRangeFactor <= -1 {
		return e, fmt.Errorf("edge: EpsRangeFactor = %v must be > −1 (bandwidths 1 … 1+factor must stay positive): %w", e.EpsRangeFactor, ErrOption)
	}
	if e.L < 0 || e.L > MaxEDGEL {
		return e, fmt.Errorf("edge: L = %d outside 1..%d (0 means 1): %w", e.L, MaxEDGEL, ErrOption)
	}
	switch e.EpsilonVector {
	case "":
		e.EpsilonVector = "range"
	case "range", "fixed":
	default:
		return e, fmt.Errorf("edge: epsilon vector %q (want range or fixed): %w", e.EpsilonVector, ErrOption)
	}
	if e.EpsRangeFactor == 0 {
		e.EpsRangeFactor = 0.1
	}
	switch e.Ensemble {
	case "":
		e.Ensemble = "median"
	case "median", "average":
	default:
		return e, fmt.Errorf("edge: ensemble %q (want median or average): %w", e.Ensemble, ErrOption)
	}
	if e.L == 0 {
		e.L = 1
	}
	switch e.Hashing {
	case "":
		e.Hashing = "p-stable"
	case "p-stable", "floor":
	default:
		return e, fmt.Errorf("edge: hashing %q (want p-stable or floor): %w", e.Hashing, ErrOption)
	}
	switch e.RNG {
	case "":
		e.RNG = "default"
	case "default", "reference":
	default:
		return e, fmt.Errorf("edge: rng %q (want default or reference): %w", e.RNG, ErrOption)
	}
	return e, e.Units.check()
}

// Estimate returns EDGE's estimate of I(x; y), in bits unless e.Units is
// Nats. Constant columns are accepted (see the type's doc comment).
func (e EDGE) Estimate(x, y mat.Matrix) (float64, error) {
	xv, yv, err := pair(x, y)
	if err != nil {
		return 0, fmt.Errorf("edge: %w", err)
	}
	p, err := e.prepare(xv, yv)
	if err != nil {
		return 0, err
	}
	return p.estimate(nil, 0)
}

// edgeSide holds one side after projection and bandwidth selection.
type edgeSide struct {
	d, dp  int         // original and projected dimension
	cols   [][]float64 // projected columns, each of length n
	sorted [][]float64 // sorted copies of cols (auto bandwidth only)
	e      []float64   // e_c (kNN mean distance + 1e-4, or manual ε)
	c      float64     // the factor 18·d′/max(1 + ln d, 1) (15 for manual)
	k      int         // kNN order
}

// edgePrep is everything that does not depend on the pairing of rows, so a
// permutation null reuses it: the projections, the sorted columns and the
// query rows.
type edgePrep struct {
	o    EDGE
	n    int
	x, y edgeSide
	rows []int // the 500 kNN query rows
}

// edgeK is the reference's kNN order for N samples and d projected columns.
func edgeK(n, d int) int {
	fd := float64(d)
	return int(math.Floor(0.43 * math.Pow(float64(n), 2.0/3+0.17*(fd/(fd+1))) * math.Exp(-1.0/math.Max(10000, math.Pow(fd, 4)))))
}

func (e EDGE) prepare(x, y rows) (*edgePrep, error) {
	o, err := e.withDefaults()
	if err != nil {
		return nil, err
	}
	n := x.n
	p := &edgePrep{o: o, n: n}
	p.x.d, p.y.d = x.d, y.d
	floor := o.Hashing == "floor" || (x.d <= 6 && y.d <= 6)
	var rngProj, rngRows source
	if o.RNG == "reference" {
		rngProj, rngRows = newMT19937(edgeRefSeed), newMT19937(edgeRefSeed)
	} else {
		rngProj, rngRows = newPCG(o.Seed, 1), newPCG(o.Seed, 2)
	}
	if floor {
		p.x.dp, p.y.dp = x.d, y.d
		p.x.cols, p.y.cols = columns(x), columns(y)
	} else {
		shrink := int(math.Floor(math.Log(float64(n)/10) / math.Log(2)))
		p.x.dp, p.y.dp = min(x.d, shrink), min(y.d, shrink)
		if p.x.dp < 1 || p.y.dp < 1 {
			return nil, fmt.Errorf("edge: p-stable hashing projects to ⌊log₂(N/10)⌋ = %d dimensions at N = %d (needs N ≥ 20): %w", shrink, n, ErrTooFewSamples)
		}
		w := pstable(x, p.x.dp, rngProj)
		v := pstable(y, p.y.dp, rngProj)
		p.x.cols, p.y.cols = project(x, w), project(y, v)
	}
	if o.Epsilon[0] == 0 {
		// find_knn reseeds before every column, so all columns share rows.
		p.rows = make([]int, edgeQueries)
		for i := range p.rows {
			p.rows[i] = rngRows.IntN(n)
		}
		for _, s := range []*edgeSide{&p.x, &p.y} {
			s.k = edgeK(n, s.dp)
			if s.k < 1 || s.k > n {
				return nil, fmt.Errorf("edge: kNN order k = %d for N = %d, d′ = %d (needs 1 ≤ k ≤ N): %w", s.k, n, s.dp, ErrTooFewSamples)
			}
			s.sorted = make([][]float64, s.dp)
			s.e = make([]float64, s.dp)
			parallelEach(s.dp, func(c int) {
				s.sorted[c] = sortedCopy(s.cols[c])
				s.e[c] = knnMean(s.sorted[c], s.cols[c], p.rows, nil, s.k) + 0.0001
			})
			s.c = 18 * float64(s.dp) / math.Max(1+math.Log(float64(s.d)), 1)
		}
	} else {
		for i, s := range []*edgeSide{&p.x, &p.y} {
			s.e = make([]float64, s.dp)
			for c := range s.e {
				s.e[c] = o.Epsilon[i]
			}
			s.c = 15 * float64(s.dp) / math.Max(1+math.Log(float64(s.d)), 1)
		}
	}
	return p, nil
}

// columns copies x into column-major slices.
func columns(x rows) [][]float64 {
	cols := make([][]float64, x.d)
	for c := range cols {
		cols[c] = make([]float64, x.n)
	}
	for i := 0; i < x.n; i++ {
		for c, v := range x.row(i) {
			cols[c][i] = v
		}
	}
	return cols
}

// pstable draws the reference's gen_W matrix for x (d×dp, row-major).
func pstable(x rows, dp int, rng source) []float64 {
	std := numpyColStd(x)
	sq := math.Sqrt(float64(x.d))
	w := make([]float64, x.d*dp)
	for j := 0; j < x.d; j++ {
		s := std[j]
		if s < 0.0001 {
			s = 1
		}
		sigma := 1.0 / (s * sq)
		for c := 0; c < dp; c++ {
			w[j*dp+c] = 0 + sigma*rng.NormFloat64()
		}
	}
	return w
}

// project returns the columns of x·w (w is d×dp row-major): one dot
// product of each row with each column of w, in parallel over rows.
func project(x rows, w []float64) [][]float64 {
	dp := len(w) / x.d
	wt := make([][]float64, dp)
	for c := range wt {
		wt[c] = make([]float64, x.d)
		for j := range x.d {
			wt[c][j] = w[j*dp+c]
		}
	}
	cols := make([][]float64, dp)
	for c := range cols {
		cols[c] = make([]float64, x.n)
	}
	parallelFor(x.n, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			r := x.row(i)
			for c, wc := range wt {
				cols[c][i] = floats.Dot(r, wc)
			}
		}
	})
	return cols
}

func sortedCopy(a []float64) []float64 {
	s := slices.Clone(a)
	slices.Sort(s)
	return s
}

// kthDist returns the k-th smallest |s_i − q| over the sorted values s
// (q ∈ s, so the first is 0), as sklearn's exact kNN returns it. The k
// nearest values form a window s[l : l+k]; the window's largest distance
// max(q − s[l], s[l+k−1] − q) is minimal where the two terms cross, which a
// binary search over l finds in O(log N).
func kthDist(s []float64, q float64, k int) float64 {
	lo, hi := 0, len(s)-k+1 // first l in [lo, hi) with q − s[l] ≤ s[l+k−1] − q
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if q-s[m] <= s[m+k-1]-q {
			hi = m
		} else {
			lo = m + 1
		}
	}
	best := math.Inf(1)
	if lo <= len(s)-k {
		best = s[lo+k-1] - q
	}
	if lo > 0 {
		best = min(best, q-s[lo-1])
	}
	return best
}

// knnMean is the reference's find_knn: the mean k-th neighbour distance of
// the query rows (through perm when the column is a permuted copy).
func knnMean(sorted, col []float64, qrows, perm []int, k int) float64 {
	var d [edgeQueries]float64
	for r, i := range qrows {
		if perm != nil {
			i = perm[i]
		}
		d[r] = kthDist(sorted, col[i], k)
	}
	return pairwiseSum(d[:len(qrows)], len(qrows), 1) / float64(len(qrows))
}

// estimate runs the ensemble with y's rows permuted by perm (y′_i = y_perm[i];
// nil for none). rep selects the stochastic shift stream.
func (p *edgePrep) estimate(perm []int, rep uint64) (float64, error) {
	o := p.o
	ey := p.y.e
	if perm != nil && p.rows != nil {
		// The kNN rows now hit other y values; the sorted columns are the
		// same multiset.
		ey = make([]float64, p.y.dp)
		for c := range ey {
			ey[c] = knnMean(p.y.sorted[c], p.y.cols[c], p.rows, perm, p.y.k) + 0.0001
		}
	}
	var shifts source
	if !o.Deterministic {
		if o.RNG == "reference" {
			shifts = newMT19937(uint32(o.Seed + rep))
		} else {
			shifts = newPCG(o.Seed, 3+rep)
		}
	}
	gx, gy := o.Gamma[0]*0.4, o.Gamma[1]*0.4
	h := newEdgeHasher(p.n)
	I, err := p.ensemble(h, ey, gx, gy, perm, shifts)
	if err != nil {
		return 0, err
	}
	if o.NormalizeEpsilon {
		f := math.Pow(2, -math.Sqrt(I*2.0)+(0.5/I))
		// The recursive call scales gamma by 0.4 again (docs/edge.md §4 #1).
		I, err = p.ensemble(h, ey, gx*f*0.4, gy*f*0.4, perm, shifts)
		if err != nil {
			return 0, err
		}
	}
	return o.Units.fromBits(I), nil
}

func (p *edgePrep) ensemble(h *edgeHasher, ey []float64, gx, gy float64, perm []int, shifts source) (float64, error) {
	o := p.o
	L := o.L
	T := make([]float64, L)
	if o.EpsilonVector == "range" {
		T = linspace(1, 1+o.EpsRangeFactor, L, true)
	} else {
		for j := range T {
			T[j] = 1
		}
	}
	frac := linspace(0, 1, L, false)
	epsx, epsy := make([]float64, p.x.dp), make([]float64, p.y.dp)
	bx, by := make([]float64, p.x.dp), make([]float64, p.y.dp)
	I := make([]float64, L)
	for j := range L {
		for c := range epsx {
			epsx[c] = p.x.e[c] * p.x.c * gx * T[j]
		}
		for c := range epsy {
			epsy[c] = ey[c] * p.y.c * gy * T[j]
		}
		if shifts != nil {
			for c := range bx {
				bx[c] = 0.1 * shifts.Float64() * epsx[c]
			}
			for c := range by {
				by[c] = 0.1 * shifts.Float64() * epsy[c]
			}
		} else {
			for c := range bx {
				bx[c] = frac[j] * epsx[c]
			}
			for c := range by {
				by[c] = frac[j] * epsy[c]
			}
		}
		v, err := h.mi(p.x.cols, p.y.cols, epsx, epsy, bx, by, perm, o.U)
		if err != nil {
			return 0, err
		}
		I[j] = v
	}
	if o.Ensemble == "average" {
		return pairwiseSum(I, L, 1) / float64(L), nil
	}
	return median(I), nil
}

// median is np.median (mean of the two middle values for even length).
func median(a []float64) float64 {
	s := sortedCopy(a)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
