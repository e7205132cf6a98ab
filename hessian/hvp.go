package hessian

import (
	"context"
	"fmt"
	"math"
)

// GradientFunc returns the gradient of the loss at the parameters w and the
// loss. w is read-only and must not be kept; the returned slice belongs to
// the caller and has len(w) elements.
type GradientFunc func(ctx context.Context, w []float32) (grad []float64, loss float64, err error)

// BatchFunc returns the mean loss over the samples [lo, hi) at the
// parameters w and its gradient (len(w) values, owned by the caller).
type BatchFunc func(ctx context.Context, w []float32, lo, hi int) (grad []float32, loss float64, err error)

// Mean returns the GradientFunc of the mean loss over n samples, evaluated
// by f in batches of at most batch samples: each batch's mean loss and
// gradient are weighted by its share of the samples and summed in float64,
// so the result is the mean over all n whatever the batch size.
func Mean(n, batch int, f BatchFunc) GradientFunc {
	return func(ctx context.Context, w []float32) ([]float64, float64, error) {
		if n < 1 || batch < 1 {
			return nil, 0, fmt.Errorf("hessian: %d samples in batches of %d", n, batch)
		}
		sum := make([]float64, len(w))
		var loss float64
		for lo := 0; lo < n; lo += batch {
			if err := ctx.Err(); err != nil {
				return nil, 0, err
			}
			hi := min(lo+batch, n)
			g, l, err := f(ctx, w, lo, hi)
			if err != nil {
				return nil, 0, err
			}
			if len(g) != len(w) {
				return nil, 0, fmt.Errorf("hessian: gradient of samples %d..%d has %d values for %d parameters", lo, hi-1, len(g), len(w))
			}
			share := float64(hi-lo) / float64(n)
			for i, v := range g {
				sum[i] += share * float64(v)
			}
			loss += share * l
		}
		return sum, loss, nil
	}
}

// DefaultStep is FiniteDiff's relative step when Step is 0.
const DefaultStep = 3e-3

// FiniteDiff computes Hessian-vector products of the loss given by Grad at
// the point W from central differences of gradient calls, extrapolated
// (Richardson) unless Plain is set. The zero value of Step is DefaultStep.
type FiniteDiff struct {
	Grad GradientFunc `json:"-"`
	// W is the point the Hessian is taken at; read-only.
	W []float32 `json:"-"`
	// Step is the relative step: the parameters are moved by h·v with
	// h = Step·‖W‖/‖v‖ (Step/‖v‖ when W is zero). 0 means DefaultStep.
	Step float64 `json:"step"`
	// Plain, if set, returns the central difference D(h) itself: two
	// gradient calls per product, truncation error O(h²). By default two
	// central differences, at h and h/2, are extrapolated to
	// (4·D(h/2) − D(h))/3 (Richardson), which cancels the h² term: four
	// gradient calls, error O(h⁴), so the step can stay large enough for the
	// float32 rounding of the gradients not to matter.
	Plain bool `json:"plain,omitempty"`
	// Calls counts the gradient calls made so far.
	Calls int `json:"gradient_calls"`
}

// Product returns H v at W, in float64. v is read-only and has len(W)
// values; the zero vector gives the zero vector without a gradient call.
func (f *FiniteDiff) Product(ctx context.Context, v []float64) ([]float64, error) {
	if len(v) != len(f.W) {
		return nil, fmt.Errorf("hessian: vector of %d values for %d parameters", len(v), len(f.W))
	}
	nv := norm(v)
	if nv == 0 {
		return make([]float64, len(v)), nil
	}
	if math.IsNaN(nv) || math.IsInf(nv, 0) {
		return nil, fmt.Errorf("hessian: the vector is not finite")
	}
	step := f.Step
	if step == 0 {
		step = DefaultStep
	}
	if step < 0 || math.IsNaN(step) || math.IsInf(step, 0) {
		return nil, fmt.Errorf("hessian: finite-difference step %g must be positive", step)
	}
	scale := norm32(f.W)
	if scale == 0 {
		scale = 1
	}
	h := step * scale / nv
	d, err := f.central(ctx, v, h)
	if err != nil {
		return nil, err
	}
	if f.Plain {
		return d, nil
	}
	d2, err := f.central(ctx, v, h/2)
	if err != nil {
		return nil, err
	}
	for i := range d {
		d[i] = (4*d2[i] - d[i]) / 3
	}
	return d, nil
}

// central returns (∇ℓ(W + h v) − ∇ℓ(W − h v)) / 2h.
func (f *FiniteDiff) central(ctx context.Context, v []float64, h float64) ([]float64, error) {
	wp, wm := make([]float32, len(v)), make([]float32, len(v))
	for i, x := range f.W {
		wp[i] = float32(float64(x) + h*v[i])
		wm[i] = float32(float64(x) - h*v[i])
	}
	gp, _, err := f.Grad(ctx, wp)
	if err != nil {
		return nil, err
	}
	f.Calls++
	gm, _, err := f.Grad(ctx, wm)
	if err != nil {
		return nil, err
	}
	f.Calls++
	if len(gp) != len(v) || len(gm) != len(v) {
		return nil, fmt.Errorf("hessian: gradient has %d values for %d parameters", len(gp), len(v))
	}
	out := make([]float64, len(v))
	for i := range out {
		out[i] = (gp[i] - gm[i]) / (2 * h)
	}
	return out, nil
}

// Dot returns aᵀb in float64.
func Dot(a, b []float64) float64 {
	var s float64
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

func norm(v []float64) float64 { return math.Sqrt(Dot(v, v)) }

func norm32(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}
