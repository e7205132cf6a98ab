package estimators

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// CKA is centred kernel alignment (Kornblith et al., ICML 2019),
// HSIC(K, L)/√(HSIC(K, K)·HSIC(L, L)), a unitless similarity in [0, 1]
// (the unbiased form can dip slightly below 0 on independent data). It is
// 1 for identical inputs and, with the linear kernel, invariant to
// orthogonal transforms and isotropic scaling of either side.
//
// Kernel "linear" (default) uses K = XXᵀ and costs O(N·d_x·d_y) without
// forming N×N matrices when that is cheaper; "rbf" uses
// exp(−‖a−b‖²/(2σ²)) with σ from Sigma or the median heuristic (see
// RBFBandwidth) and streams the kernel rows in O(N²·(d_x+d_y)) time and
// O(N) memory. HSIC is the unbiased estimator of Song et al. (2012) by
// default, whose value does not drift with N the way the biased one does
// (docs/edge.md §8.3); Biased selects tr(KHLH)/(N−1)², Kornblith's
// original. A side whose columns are all constant gives ErrConstant.
type CKA struct {
	// Kernel is "linear" (default) or "rbf".
	Kernel string `json:",omitempty"`
	// Biased uses the biased HSIC estimator (needs N ≥ 2; unbiased N ≥ 4).
	Biased bool `json:",omitempty"`
	// Sigma is the RBF bandwidth used for both sides; 0 means the median
	// heuristic per side.
	Sigma float64 `json:",omitempty"`
	// Seed picks the rows of the median heuristic's subsample.
	Seed uint64 `json:",omitempty"`
}

// Name returns "cka".
func (CKA) Name() string { return "cka" }

// Estimate returns CKA(x, y) (unitless).
func (o CKA) Estimate(x, y mat.Matrix) (float64, error) {
	if err := o.validate(); err != nil {
		return 0, err
	}
	xv, yv, err := pair(x, y)
	if err != nil {
		return 0, fmt.Errorf("cka: %w", err)
	}
	k := kernelOpts{kernel: o.Kernel, biased: o.Biased, sigma: o.Sigma, seed: o.Seed}
	s, err := k.stats(xv, yv)
	if err != nil {
		return 0, fmt.Errorf("cka: %w", err)
	}
	den := math.Sqrt(s.xx * s.yy)
	if !(den > 0) {
		return 0, fmt.Errorf("cka: HSIC(x,x)·HSIC(y,y) = %g is not positive: %w", s.xx*s.yy, ErrConstant)
	}
	return s.xy / den, nil
}

// HSIC is the Hilbert–Schmidt independence criterion (Gretton et al.
// 2005), unitless and ≥ 0 in population. Kernel "rbf" (default) uses
// exp(−‖a−b‖²/(2σ²)) with σ from Sigma or the median heuristic
// (RBFBandwidth); "linear" uses the dot product. The unbiased estimator
// (Song et al. 2012, can be negative) is the default; Biased gives
// tr(KHLH)/(N−1)². Cost O(N²·(d_x+d_y)) time and O(N) memory for "rbf".
type HSIC struct {
	// Kernel is "rbf" (default) or "linear".
	Kernel string `json:",omitempty"`
	// Biased uses tr(KHLH)/(N−1)² instead of the unbiased estimator.
	Biased bool `json:",omitempty"`
	// Sigma is the RBF bandwidth; 0 means the median heuristic per side.
	Sigma float64 `json:",omitempty"`
	// Seed picks the rows of the median heuristic's subsample.
	Seed uint64 `json:",omitempty"`
}

// Name returns "hsic".
func (HSIC) Name() string { return "hsic" }

// Estimate returns HSIC(x, y) (unitless).
func (o HSIC) Estimate(x, y mat.Matrix) (float64, error) {
	if err := o.validate(); err != nil {
		return 0, err
	}
	xv, yv, err := pair(x, y)
	if err != nil {
		return 0, fmt.Errorf("hsic: %w", err)
	}
	kern := o.Kernel
	if kern == "" {
		kern = "rbf"
	}
	k := kernelOpts{kernel: kern, biased: o.Biased, sigma: o.Sigma, seed: o.Seed, crossOnly: true}
	s, err := k.stats(xv, yv)
	if err != nil {
		return 0, fmt.Errorf("hsic: %w", err)
	}
	return s.xy, nil
}

type kernelOpts struct {
	kernel    string
	biased    bool
	sigma     float64
	seed      uint64
	crossOnly bool // HSIC(x,x) and HSIC(y,y) not needed
}

// hsicStats holds HSIC(K,L), HSIC(K,K) and HSIC(L,L).
type hsicStats struct{ xy, xx, yy float64 }

func (k kernelOpts) stats(xv, yv rows) (hsicStats, error) {
	n := xv.n
	if k.sigma < 0 || math.IsNaN(k.sigma) {
		return hsicStats{}, fmt.Errorf("sigma %v: %w", k.sigma, ErrOption)
	}
	if !k.biased && n < 4 {
		return hsicStats{}, fmt.Errorf("unbiased HSIC needs N ≥ 4, have %d: %w", n, ErrTooFewSamples)
	}
	if allTrue(xv.constantCols()) {
		return hsicStats{}, fmt.Errorf("every column of x is constant: %w", ErrConstant)
	}
	if allTrue(yv.constantCols()) {
		return hsicStats{}, fmt.Errorf("every column of y is constant: %w", ErrConstant)
	}
	var g gramSums
	switch k.kernel {
	case "", "linear":
		g = linearGramSums(xv, yv)
	case "rbf":
		sx, sy := k.sigma, k.sigma
		if sx == 0 {
			sx = RBFBandwidth(xv.dense(), k.seed)
			sy = RBFBandwidth(yv.dense(), k.seed)
		}
		g = rbfGramSums(xv, yv, sx, sy)
	default:
		return hsicStats{}, fmt.Errorf("kernel %q (want linear or rbf): %w", k.kernel, ErrOption)
	}
	f := hsicUnbiased
	if k.biased {
		f = hsicBiased
	}
	return hsicStats{
		xy: f(n, g.kl, g.diagKL, g.rk, g.rl, g.dk, g.dl),
		xx: f(n, g.kk, g.diagKK, g.rk, g.rk, g.dk, g.dk),
		yy: f(n, g.ll, g.diagLL, g.rl, g.rl, g.dl, g.dl),
	}, nil
}

// gramSums holds what both HSIC estimators need from kernels K and L:
// Σ_ij K_ij L_ij (kl, full, diagonal included) and Σ_i K_ii L_ii (diagKL),
// likewise kk, ll; full row sums rk, rl; diagonals dk, dl.
type gramSums struct {
	kl, kk, ll             float64
	diagKL, diagKK, diagLL float64
	rk, rl, dk, dl         []float64
}

// hsicBiased is tr(KHLH)/(N−1)².
func hsicBiased(n int, kl, _ float64, rk, rl, _, _ []float64) float64 {
	N := float64(n)
	var sk, sl, skl float64
	for i := range rk {
		sk += rk[i]
		sl += rl[i]
		skl += rk[i] * rl[i]
	}
	return (kl - 2/N*skl + sk*sl/(N*N)) / ((N - 1) * (N - 1))
}

// hsicUnbiased is Song et al.'s (2012) estimator with K̃, L̃ the kernels
// with zeroed diagonals.
func hsicUnbiased(n int, kl, diagKL float64, rk, rl, dk, dl []float64) float64 {
	N := float64(n)
	t := kl - diagKL // tr(K̃L̃)
	var sk, sl, skl float64
	for i := range rk {
		a, b := rk[i]-dk[i], rl[i]-dl[i]
		sk += a
		sl += b
		skl += a * b
	}
	return (t + sk*sl/((N-1)*(N-2)) - 2/(N-2)*skl) / (N * (N - 3))
}

// linearGramSums computes the sums for K = XXᵀ, L = YYᵀ on centred data,
// choosing between feature-space (d×d) and Gram (N×N) products by cost.
func linearGramSums(xv, yv rows) gramSums {
	n := xv.n
	x, y := centred(xv), centred(yv)
	dx, dy := xv.d, yv.d
	g := gramSums{dk: make([]float64, n), dl: make([]float64, n), rk: make([]float64, n), rl: make([]float64, n)}
	for i := 0; i < n; i++ {
		g.dk[i] = floatsDot(x.RawRowView(i), x.RawRowView(i))
		g.dl[i] = floatsDot(y.RawRowView(i), y.RawRowView(i))
		g.diagKL += g.dk[i] * g.dl[i]
		g.diagKK += g.dk[i] * g.dk[i]
		g.diagLL += g.dl[i] * g.dl[i]
	}
	// Row sums of K = X(Xᵀ1) are 0 for centred X (up to rounding).
	var sx, sy mat.VecDense
	sx.MulVec(x.T(), mat.NewVecDense(n, ones(n)))
	sy.MulVec(y.T(), mat.NewVecDense(n, ones(n)))
	var rk, rl mat.VecDense
	rk.MulVec(x, &sx)
	rl.MulVec(y, &sy)
	copy(g.rk, rk.RawVector().Data)
	copy(g.rl, rl.RawVector().Data)
	gram := float64(n) * float64(n)
	frob := func(a, b *mat.Dense, da, db int) float64 {
		// ‖AᵀB‖²_F = Σ_ij (AAᵀ)_ij (BBᵀ)_ij
		if float64(da)*float64(db) <= gram*float64(da+db)/float64(n) {
			var m mat.Dense
			m.Mul(a.T(), b)
			return frobSq(&m)
		}
		var ka, kb mat.Dense
		ka.Mul(a, a.T())
		kb.Mul(b, b.T())
		return frobDot(&ka, &kb)
	}
	g.kl = frob(x, y, dx, dy)
	g.kk = frob(x, x, dx, dx)
	g.ll = frob(y, y, dy, dy)
	return g
}

func ones(n int) []float64 {
	o := make([]float64, n)
	for i := range o {
		o[i] = 1
	}
	return o
}

func floatsDot(a, b []float64) float64 {
	s := 0.0
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

func frobSq(m *mat.Dense) float64 {
	r := m.RawMatrix()
	s := 0.0
	for i := 0; i < r.Rows; i++ {
		for _, v := range r.Data[i*r.Stride : i*r.Stride+r.Cols] {
			s += v * v
		}
	}
	return s
}

func frobDot(a, b *mat.Dense) float64 {
	ra, rb := a.RawMatrix(), b.RawMatrix()
	s := 0.0
	for i := 0; i < ra.Rows; i++ {
		s += floatsDot(ra.Data[i*ra.Stride:i*ra.Stride+ra.Cols], rb.Data[i*rb.Stride:i*rb.Stride+rb.Cols])
	}
	return s
}

// centred returns a copy of v with column means removed.
func centred(v rows) *mat.Dense {
	m := mat.NewDense(v.n, v.d, nil)
	mean := make([]float64, v.d)
	for i := 0; i < v.n; i++ {
		for c, a := range v.row(i) {
			mean[c] += a
		}
	}
	for c := range mean {
		mean[c] /= float64(v.n)
	}
	for i := 0; i < v.n; i++ {
		r := m.RawRowView(i)
		for c, a := range v.row(i) {
			r[c] = a - mean[c]
		}
	}
	return m
}

// rbfGramSums streams the RBF kernel rows over pairs i < j.
func rbfGramSums(xv, yv rows, sx, sy float64) gramSums {
	n := xv.n
	gx, gy := -1/(2*sx*sx), -1/(2*sy*sy)
	type part struct {
		kl, kk, ll float64
		rk, rl     []float64
	}
	parts := make([]part, parallelChunks(n))
	parallelFor(n, func(chunk, lo, hi int) {
		p := part{rk: make([]float64, n), rl: make([]float64, n)}
		for i := lo; i < hi; i++ {
			xi, yi := xv.row(i), yv.row(i)
			for j := i + 1; j < n; j++ {
				a := math.Exp(gx * sqDist(xi, xv.row(j)))
				b := math.Exp(gy * sqDist(yi, yv.row(j)))
				p.kl += a * b
				p.kk += a * a
				p.ll += b * b
				p.rk[i] += a
				p.rk[j] += a
				p.rl[i] += b
				p.rl[j] += b
			}
		}
		parts[chunk] = p
	})
	g := gramSums{rk: make([]float64, n), rl: make([]float64, n), dk: ones(n), dl: ones(n)}
	for _, p := range parts {
		g.kl += 2 * p.kl
		g.kk += 2 * p.kk
		g.ll += 2 * p.ll
		for i := range g.rk {
			g.rk[i] += p.rk[i]
			g.rl[i] += p.rl[i]
		}
	}
	N := float64(n)
	g.kl += N
	g.kk += N
	g.ll += N
	g.diagKL, g.diagKK, g.diagLL = N, N, N
	for i := range g.rk {
		g.rk[i]++
		g.rl[i]++
	}
	return g
}

func sqDist(a, b []float64) float64 {
	s := 0.0
	for i, v := range a {
		d := v - b[i]
		s += d * d
	}
	return s
}

// selectMedian is np.median of a, reordering a (O(len(a)) selection).
func selectMedian(a []float64) float64 {
	n := len(a)
	hi := kthSmallest(a, n/2+1)
	if n%2 == 1 {
		return hi
	}
	// After selection a[:n/2] holds the n/2 smallest; the lower middle is
	// their maximum.
	lo := a[0]
	for _, v := range a[:n/2] {
		lo = max(lo, v)
	}
	return (lo + hi) / 2
}

// rbfMedianRows is the largest number of rows whose pairwise distances the
// median heuristic uses; larger inputs use a seeded subsample of rows.
const rbfMedianRows = 1000

// RBFBandwidth is the median heuristic: the median Euclidean distance over
// all pairs of distinct rows of x (over a subsample of 1000 rows drawn
// with the given seed when x has more). When the median is 0 (mostly
// duplicated rows) the mean distance is used; constant data returns 0.
func RBFBandwidth(x mat.Matrix, seed uint64) float64 {
	v := view(x)
	idx := make([]int, v.n)
	for i := range idx {
		idx[i] = i
	}
	if v.n > rbfMedianRows {
		rng := newPCG(seed, 0x524246)
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		idx = idx[:rbfMedianRows]
	}
	d := make([]float64, 0, len(idx)*(len(idx)-1)/2)
	for a := range idx {
		for b := a + 1; b < len(idx); b++ {
			d = append(d, math.Sqrt(sqDist(v.row(idx[a]), v.row(idx[b]))))
		}
	}
	if len(d) == 0 {
		return 0
	}
	m := selectMedian(d)
	if m == 0 {
		for _, e := range d {
			m += e
		}
		m /= float64(len(d))
	}
	return m
}
