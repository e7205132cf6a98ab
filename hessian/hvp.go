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

// DefaultStep is FiniteDiff's relative step when Step is 0, and
// DefaultLossChange its LossChange when that is 0.
const (
	DefaultStep       = 3e-3
	DefaultLossChange = 1e-4
)

// FiniteDiff computes Hessian-vector products of the loss given by Grad at
// the point W from central differences of gradient calls. The zero values
// of Step and LossChange are DefaultStep and DefaultLossChange.
type FiniteDiff struct {
	Grad GradientFunc `json:"-"`
	// W is the point the Hessian is taken at; read-only.
	W []float32 `json:"-"`
	// Step is the relative step: the parameters are moved by ±h·v with
	// h·‖v‖ = Step·‖W‖ (Step when W is zero), unless LossChange shortens it.
	// 0 means DefaultStep.
	Step float64 `json:"step"`
	// LossChange bounds the step along directions of high curvature: with
	// ρ = vᵀHv/‖v‖² measured by the product itself, a step whose
	// second-order loss change ½|ρ|(h‖v‖)² exceeds twice LossChange is
	// redone at the length that changes the loss by LossChange (in the
	// loss's units; nats for cross-entropy). Relative to the curvature the
	// truncation error then stays below about 3·LossChange, while along
	// flat directions the step stays long enough for the float32 rounding
	// of the gradients not to matter. The length used last is the next
	// product's first try (a step more than 4 times too short is redone
	// too), so power iteration, whose directions change slowly, redoes few
	// products.
	// 0 means DefaultLossChange.
	LossChange float64 `json:"loss_change"`
	// Richardson, if set, extrapolates two central differences, at h and
	// h/2, to (4·D(h/2) − D(h))/3, cancelling D's h² error term: twice the
	// gradient calls, and on srtool's test model no more accurate than the
	// plain difference with LossChange.
	Richardson bool `json:"richardson,omitempty"`
	// Calls counts the gradient calls made so far; Redone the products
	// computed twice because the first step was too long or too short.
	Calls  int `json:"gradient_calls"`
	Redone int `json:"redone"`
	// length is the step length h·‖v‖ of the last product.
	length float64
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
	step, budget := f.Step, f.LossChange
	if step == 0 {
		step = DefaultStep
	}
	if budget == 0 {
		budget = DefaultLossChange
	}
	if !(step > 0) || math.IsInf(step, 0) {
		return nil, fmt.Errorf("hessian: finite-difference step %g must be positive", step)
	}
	if !(budget > 0) || math.IsInf(budget, 0) {
		return nil, fmt.Errorf("hessian: loss change %g must be positive", budget)
	}
	scale := norm32(f.W)
	if scale == 0 {
		scale = 1
	}
	full := step * scale // the step length without the curvature bound
	length := full
	if f.length > 0 {
		length = min(full, f.length)
	}
	for try := 0; ; try++ {
		d, err := f.difference(ctx, v, length/nv)
		if err != nil {
			return nil, err
		}
		// The length at which the second-order loss change is the budget.
		bound := full
		if rho := math.Abs(Dot(v, d)) / (nv * nv); rho > 0 {
			bound = min(full, math.Sqrt(2*budget/rho))
		}
		if try == 1 || (length <= 2*bound && length >= bound/4) {
			f.length = length
			return d, nil
		}
		f.Redone++
		length = bound
	}
}

// difference returns D(h), or its Richardson extrapolation.
func (f *FiniteDiff) difference(ctx context.Context, v []float64, h float64) ([]float64, error) {
	d, err := f.central(ctx, v, h)
	if err != nil || !f.Richardson {
		return d, err
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
