package hessian

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
)

// ProductFunc returns H v for a symmetric operator H; v is read-only and the
// result belongs to the caller. (*FiniteDiff).Product is one.
type ProductFunc func(ctx context.Context, v []float64) ([]float64, error)

// PowerOptions configure PowerIteration. The zero value is PyHessian's
// setting: relative tolerance 1e-4, at most 100 products, seed 0.
type PowerOptions struct {
	// Tol stops the iteration when the Rayleigh quotient changes by less
	// than Tol·(|previous| + 1e-6) between two products. 0 means 1e-4.
	Tol float64 `json:"tol"`
	// MaxIter is the most products; 0 means 100.
	MaxIter int `json:"max_iter"`
	// Seed draws the standard-normal start vector.
	Seed uint64 `json:"seed"`
	// Progress, if set, is called after every product with the iteration
	// (1-based), the current estimate and its relative change (+Inf after the
	// first product).
	Progress func(iter int, estimate, change float64) `json:"-"`
}

func (o PowerOptions) withDefaults() (PowerOptions, error) {
	if o.Tol == 0 {
		o.Tol = 1e-4
	}
	if o.MaxIter == 0 {
		o.MaxIter = 100
	}
	if !(o.Tol > 0) || math.IsInf(o.Tol, 0) {
		return o, fmt.Errorf("hessian: tolerance %g must be positive", o.Tol)
	}
	if o.MaxIter < 1 {
		return o, fmt.Errorf("hessian: at most %d iterations; want at least 1", o.MaxIter)
	}
	return o, nil
}

// Eigen is the result of a power iteration.
type Eigen struct {
	// Value is the eigenvalue estimate: the last Rayleigh quotient vᵀHv.
	Value float64 `json:"value"`
	// Vector is the unit eigenvector estimate, H v / ‖H v‖ of the last
	// product.
	Vector []float64 `json:"-"`
	// Iterations counts the products, over both runs when Shifted.
	Iterations int `json:"iterations"`
	// Converged says the relative change fell below the tolerance (in both
	// runs when Shifted) before MaxIter.
	Converged bool `json:"converged"`
	// RelChange is the last relative change of the estimate (+Inf after a
	// single product, encoded as null).
	RelChange *float64 `json:"rel_change"`
	// Shifted is set by MaxEigenvalue when the dominant eigenvalue was
	// negative and Value comes from a second run on H − Dominant·I.
	Shifted  bool     `json:"shifted,omitempty"`
	Dominant *float64 `json:"dominant,omitempty"`
}

// PowerIteration returns the eigenvalue of largest magnitude of the
// symmetric operator hv on vectors of dim values. When ctx is cancelled it
// returns the estimate so far (Converged false) with ctx's error.
func PowerIteration(ctx context.Context, dim int, hv ProductFunc, o PowerOptions) (Eigen, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Eigen{}, err
	}
	if dim < 1 {
		return Eigen{}, fmt.Errorf("hessian: power iteration on %d dimensions", dim)
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x6865737369616e)) // "hessian"
	v := make([]float64, dim)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	scale(v, 1/norm(v))
	var e Eigen
	for it := 1; it <= o.MaxIter; it++ {
		if err := ctx.Err(); err != nil {
			return e, err
		}
		hvv, err := hv(ctx, v)
		if err != nil {
			return e, err
		}
		if len(hvv) != dim {
			return e, fmt.Errorf("hessian: product has %d values for %d dimensions", len(hvv), dim)
		}
		est := Dot(hvv, v)
		n := norm(hvv)
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return e, fmt.Errorf("hessian: product %d is not finite", it)
		}
		change := math.Inf(1)
		if it > 1 {
			change = math.Abs(est-e.Value) / (math.Abs(e.Value) + 1e-6)
		}
		e.Value, e.Iterations = est, it
		if change < math.Inf(1) {
			c := change
			e.RelChange = &c
		}
		if n == 0 {
			// v is in the null space: H v = 0, so 0 is the eigenvalue seen.
			e.Vector, e.Converged = v, true
			return e, nil
		}
		scale(hvv, 1/n)
		v = hvv
		e.Vector = v
		if o.Progress != nil {
			o.Progress(it, est, change)
		}
		if change < o.Tol {
			e.Converged = true
			break
		}
	}
	return e, nil
}

// MaxEigenvalue returns the largest eigenvalue of the symmetric operator hv.
// It runs PowerIteration; when the dominant eigenvalue λ is negative, a
// second run on H − λI (whose eigenvalues are all ≥ 0, the largest being
// λmax − λ) gives λmax. Options apply to each run; Progress counts on
// across both.
func MaxEigenvalue(ctx context.Context, dim int, hv ProductFunc, o PowerOptions) (Eigen, error) {
	e, err := PowerIteration(ctx, dim, hv, o)
	if err != nil || e.Value >= 0 {
		return e, err
	}
	dom := e.Value
	first := e.Iterations
	shifted := func(ctx context.Context, v []float64) ([]float64, error) {
		out, err := hv(ctx, v)
		if err != nil {
			return nil, err
		}
		for i := range out {
			out[i] -= dom * v[i]
		}
		return out, nil
	}
	o2 := o
	if p := o.Progress; p != nil {
		o2.Progress = func(it int, est, change float64) { p(first+it, est+dom, change) }
	}
	o2.Seed = o.Seed + 1
	s, err := PowerIteration(ctx, dim, shifted, o2)
	out := Eigen{Value: s.Value + dom, Vector: s.Vector, Iterations: first + s.Iterations,
		Converged: e.Converged && s.Converged, RelChange: s.RelChange, Shifted: true, Dominant: &dom}
	return out, err
}

func scale(v []float64, a float64) {
	for i := range v {
		v[i] *= a
	}
}
