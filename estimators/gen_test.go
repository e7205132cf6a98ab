package estimators

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// Samplers for the ground-truth cases of docs/edge.md §7.1/§7.2. Each
// returns x, y and the true MI in bits.

const ln2 = math.Ln2

func testRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0xdada)) }

// pairsGauss: d coordinates, the first k of x and y correlated with rho,
// the rest independent. Truth −k/2·log2(1−ρ²).
func pairsGauss(n, dx, dy, k int, rho float64, seed uint64) (*mat.Dense, *mat.Dense, float64) {
	r := testRNG(seed)
	x, y := mat.NewDense(n, dx, nil), mat.NewDense(n, dy, nil)
	s := math.Sqrt(1 - rho*rho)
	for i := 0; i < n; i++ {
		for j := 0; j < dx; j++ {
			x.Set(i, j, r.NormFloat64())
		}
		for j := 0; j < dy; j++ {
			v := r.NormFloat64()
			if j < k {
				v = rho*x.At(i, j) + s*v
			}
			y.Set(i, j, v)
		}
	}
	return x, y, -float64(k) / 2 * math.Log2(1-rho*rho)
}

// denseGauss: all 2m joint coordinates with pairwise correlation a.
// Truth for a = 0.5: ln(m+1) − ½ln(2m+1) nats.
func denseGauss(n, m int, a float64, seed uint64) (*mat.Dense, *mat.Dense, float64) {
	r := testRNG(seed)
	x, y := mat.NewDense(n, m, nil), mat.NewDense(n, m, nil)
	sa, sb := math.Sqrt(a), math.Sqrt(1-a)
	for i := 0; i < n; i++ {
		c := r.NormFloat64()
		for j := 0; j < m; j++ {
			x.Set(i, j, sa*c+sb*r.NormFloat64())
			y.Set(i, j, sa*c+sb*r.NormFloat64())
		}
	}
	// det of an equicorrelated n-block: (1−a)^(n−1)(1+(n−1)a)
	ld := func(k int) float64 { return float64(k-1)*math.Log(1-a) + math.Log(1+float64(k-1)*a) }
	return x, y, 0.5 * (2*ld(m) - ld(2*m)) / ln2
}

// studentAsinh: multivariate Student-t (identity dispersion, ν dof) split
// m×m, asinh applied per coordinate (MI unchanged). Truth from bmi's
// closed form: 2×2 ν=1 → 0.4319 nats.
func studentAsinh(n, m int, nu float64, seed uint64) (*mat.Dense, *mat.Dense) {
	r := testRNG(seed)
	x, y := mat.NewDense(n, m, nil), mat.NewDense(n, m, nil)
	for i := 0; i < n; i++ {
		w := 0.0
		for k := 0; k < int(nu); k++ {
			g := r.NormFloat64()
			w += g * g
		}
		s := 1 / math.Sqrt(w/nu)
		for j := 0; j < m; j++ {
			x.Set(i, j, math.Asinh(s*r.NormFloat64()))
			y.Set(i, j, math.Asinh(s*r.NormFloat64()))
		}
	}
	return x, y
}

// additiveUniform: X ~ U(0,1), Y = X + U(−ε, ε). Truth 1/(4ε) nats for ε ≥ ½.
func additiveUniform(n int, eps float64, seed uint64) (*mat.Dense, *mat.Dense, float64) {
	r := testRNG(seed)
	x, y := mat.NewDense(n, 1, nil), mat.NewDense(n, 1, nil)
	for i := 0; i < n; i++ {
		v := r.Float64()
		x.Set(i, 0, v)
		y.Set(i, 0, v+eps*(2*r.Float64()-1))
	}
	truth := eps - math.Log(2*eps)
	if eps > 0.5 {
		truth = 1 / (4 * eps)
	}
	return x, y, truth / ln2
}

// copiedBits: x holds b fair bits per row, y = x. Truth b bits.
func copiedBits(n, b int, seed uint64) (*mat.Dense, *mat.Dense) {
	r := testRNG(seed)
	x := mat.NewDense(n, b, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < b; j++ {
			x.Set(i, j, float64(r.IntN(2)))
		}
	}
	return x, mat.DenseCopyOf(x)
}

func meanSD(v []float64) (float64, float64) { return meanStd(v) }
