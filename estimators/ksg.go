package estimators

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/semirobust/srtool/internal/parallel"
)

// KSG is Kraskov, Stögbauer and Grassberger's estimator 1 (Phys. Rev. E 69,
// 066138, 2004) with the max-norm in each space and in the joint space:
// ε_i is the distance from sample i to its K-th nearest neighbour in
// (x, y), n_x(i) and n_y(i) count the other samples strictly closer than
// ε_i in x and in y, and Î = ψ(K) + ψ(N) − ⟨ψ(n_x+1) + ψ(n_y+1)⟩. The
// result is in bits unless Units is Nats; it is not clipped, so
// independent data gives small negative values about half the time.
//
// Every column is standardised to zero mean and unit variance first
// (KSG is not invariant to rescaling one variable relative to another),
// and Gaussian noise of standard deviation 1e-10 (Jitter) breaks ties,
// which otherwise bias the counts (ReLU zeros, quantised data). A constant
// column becomes all zeros and carries no information; if every column of
// one side is constant the estimate is undefined and ErrConstant is
// returned.
//
// The neighbour search is exact. When the joint space has at most 10
// columns a max-norm k-d tree finds the K-th neighbour and marginal counts
// use a sorted array (one column) or k-d tree range counts (O(N log N) in
// low dimension); above that, brute force with early exit per coordinate
// (O(N²·(d_x+d_y)) worst case), in parallel over samples. KSG is accurate for one or two
// columns per side and modest MI and underestimates strong dependence in
// higher dimension (docs/edge.md §8.1): for activation-sized data reduce
// the dimension first.
type KSG struct {
	// K is the neighbour order; 0 means 5.
	K int `json:",omitempty"`
	// NoStandardize skips the per-column standardisation.
	NoStandardize bool `json:",omitempty"`
	// Jitter is the standard deviation of the tie-breaking noise added
	// after standardisation; 0 means 1e-10, negative means none.
	Jitter float64 `json:",omitempty"`
	// Seed seeds the jitter.
	Seed uint64 `json:",omitempty"`
	// Units of the result; the zero value is Bits.
	Units Units `json:",omitempty"`
}

// Name returns "ksg".
func (KSG) Name() string { return "ksg" }

// ksgTreeDims is the largest joint dimension searched with a k-d tree.
const ksgTreeDims = 10

// Estimate returns the KSG estimate of I(x; y).
func (o KSG) Estimate(x, y mat.Matrix) (float64, error) {
	xv, yv, err := pair(x, y)
	if err != nil {
		return 0, fmt.Errorf("ksg: %w", err)
	}
	return o.estimate(xv, yv)
}

func (o KSG) estimate(xv, yv rows) (float64, error) {
	if err := o.validate(); err != nil {
		return 0, err
	}
	k := o.K
	if k == 0 {
		k = 5
	}
	n := xv.n
	if n <= k {
		return 0, fmt.Errorf("ksg: %d samples for k = %d (needs at least k+1): %w", n, k, ErrTooFewSamples)
	}
	if allTrue(xv.constantCols()) {
		return 0, fmt.Errorf("ksg: every column of x is constant: %w", ErrConstant)
	}
	if allTrue(yv.constantCols()) {
		return 0, fmt.Errorf("ksg: every column of y is constant: %w", ErrConstant)
	}
	jit := o.Jitter
	if jit == 0 {
		jit = 1e-10
	}
	rng := newPCG(o.Seed, 0x4b5347)
	dx, dy := xv.d, yv.d
	dz := dx + dy
	z := make([]float64, n*dz)
	for i := 0; i < n; i++ {
		copy(z[i*dz:], xv.row(i))
		copy(z[i*dz+dx:], yv.row(i))
	}
	if !o.NoStandardize {
		standardizeCols(z, n, dz)
	}
	if jit > 0 {
		for i := range z {
			z[i] += jit * rng.NormFloat64()
		}
	}
	xs := make([]float64, n*dx)
	ys := make([]float64, n*dy)
	for i := 0; i < n; i++ {
		copy(xs[i*dx:(i+1)*dx], z[i*dz:i*dz+dx])
		copy(ys[i*dy:(i+1)*dy], z[i*dz+dx:(i+1)*dz])
	}
	psi := digammaTable(n + 1)
	terms := make([]float64, n)
	if dz <= ksgTreeDims {
		joint := newKDTree(z, n, dz)
		xc := newMarginalCounter(xs, n, dx)
		yc := newMarginalCounter(ys, n, dy)
		parallelFor(n, func(_, lo, hi int) {
			heap := make([]float64, k)
			for i := lo; i < hi; i++ {
				eps := joint.kthDist(z[i*dz:(i+1)*dz], int32(i), k, heap)
				nx := xc.count(xs[i*dx:(i+1)*dx], eps) - 1
				ny := yc.count(ys[i*dy:(i+1)*dy], eps) - 1
				terms[i] = psi[nx+1] + psi[ny+1]
			}
		})
	} else {
		// Brute force with early exit: the k-th joint distance keeps a
		// max-heap of the k best, then the strict counts stop at the first
		// coordinate ≥ ε.
		parallelFor(n, func(_, lo, hi int) {
			heap := make([]float64, 0, k)
			for i := lo; i < hi; i++ {
				xi, yi := xs[i*dx:(i+1)*dx], ys[i*dy:(i+1)*dy]
				heap = heap[:0]
				for j := 0; j < n; j++ {
					if j == i {
						continue
					}
					limit := math.Inf(1)
					if len(heap) == k {
						limit = heap[0]
					}
					a := chebyshevCapped(xi, xs[j*dx:(j+1)*dx], limit)
					if a >= limit {
						continue
					}
					b := chebyshevCapped(yi, ys[j*dy:(j+1)*dy], limit)
					if b >= limit {
						continue
					}
					d := max(a, b)
					if len(heap) < k {
						heap = append(heap, d)
						heapUp(heap, len(heap)-1)
					} else {
						heap[0] = d
						heapDown(heap, 0)
					}
				}
				eps := heap[0]
				nx, ny := -1, -1 // i itself is at distance 0
				for j := 0; j < n; j++ {
					if chebyshevCapped(xi, xs[j*dx:(j+1)*dx], eps) < eps {
						nx++
					}
					if chebyshevCapped(yi, ys[j*dy:(j+1)*dy], eps) < eps {
						ny++
					}
				}
				terms[i] = psi[nx+1] + psi[ny+1]
			}
		})
	}
	mean := 0.0
	for _, v := range terms {
		mean += v
	}
	mean /= float64(n)
	return o.Units.fromNats(psi[k] + psi[n] - mean), nil
}

// marginalCounter counts points within a strict max-norm radius.
type marginalCounter struct {
	d      int
	pts    []float64
	sorted []float64
	tree   *kdTree
}

func newMarginalCounter(p []float64, n, d int) *marginalCounter {
	m := &marginalCounter{d: d, pts: p}
	switch {
	case d == 1:
		m.sorted = sortedCopy(p)
	case d <= ksgTreeDims:
		m.tree = newKDTree(p, n, d)
	}
	return m
}

// count returns #{j: ‖p_j − q‖∞ < r}, q itself included.
func (m *marginalCounter) count(q []float64, r float64) int {
	switch {
	case m.sorted != nil:
		return countSorted(m.sorted, q[0], r)
	case m.tree != nil:
		return m.tree.countLess(q, r)
	}
	c := 0
	for j := 0; j*m.d < len(m.pts); j++ {
		if chebyshev(q, m.pts[j*m.d:(j+1)*m.d]) < r {
			c++
		}
	}
	return c
}

// digammaTable returns ψ(0..n) for integers (ψ(0) unused): ψ(1) = −γ,
// ψ(m+1) = ψ(m) + 1/m.
func digammaTable(n int) []float64 {
	t := make([]float64, n+1)
	if n >= 1 {
		t[1] = -0.57721566490153286060651209008240243
	}
	for m := 1; m < n; m++ {
		t[m+1] = t[m] + 1/float64(m)
	}
	return t
}

// standardizeCols centres each column of the n×d row-major z and scales it
// to unit (population) variance; constant columns become zero.
func standardizeCols(z []float64, n, d int) {
	mean := make([]float64, d)
	for i := 0; i < n; i++ {
		for c, v := range z[i*d : (i+1)*d] {
			mean[c] += v
		}
	}
	for c := range mean {
		mean[c] /= float64(n)
	}
	ss := make([]float64, d)
	for i := 0; i < n; i++ {
		r := z[i*d : (i+1)*d]
		for c := range r {
			r[c] -= mean[c]
			ss[c] += r[c] * r[c]
		}
	}
	for c := range ss {
		if s := math.Sqrt(ss[c] / float64(n)); s > 0 {
			ss[c] = 1 / s
		}
	}
	for i := 0; i < n; i++ {
		r := z[i*d : (i+1)*d]
		for c := range r {
			r[c] *= ss[c]
		}
	}
}

func allTrue(b []bool) bool {
	return !slices.Contains(b, false)
}

// parallelChunks is the number of chunks parallelFor uses for n items; it
// depends on n only, so results combined per chunk do not depend on the
// number of CPUs.
func parallelChunks(n int) int { return min(n, 64) }

// parallelEach runs f(0..n-1) on GOMAXPROCS goroutines.
func parallelEach(n int, f func(i int)) { parallel.For(n, 0, f) }

// parallelFor splits [0, n) into parallelChunks(n) contiguous chunks and
// runs f on GOMAXPROCS goroutines that take chunks in turn (in order on the
// caller's goroutine below 64 items). f must only write to disjoint indices
// (or to its chunk's slot).
func parallelFor(n int, f func(chunk, lo, hi int)) {
	nc := parallelChunks(n)
	workers := 0 // GOMAXPROCS
	if n < 64 {
		workers = 1
	}
	parallel.For(nc, workers, func(c int) {
		lo, hi := parallel.Split(n, nc, c)
		f(c, lo, hi)
	})
}
