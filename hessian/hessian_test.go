package hessian

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// quadratic is ℓ(w) = ½ wᵀAw + bᵀw + c·Σ w_i³/6 + q·Σ w_i⁴/24 with A
// symmetric: its Hessian is A + diag(c·w + q·w²/2). A central difference of
// its gradient is off by q·h²·v³/6; the Richardson extrapolation is exact.
type quadratic struct {
	a    [][]float64
	b    []float64
	c, q float64
	grad int
}

func newQuadratic(eigs []float64, seed uint64) *quadratic {
	n := len(eigs)
	rng := rand.New(rand.NewPCG(seed, 1))
	// A = Q diag(eigs) Qᵀ with Q from Gram–Schmidt on a random matrix.
	q := make([][]float64, n)
	for i := range q {
		q[i] = make([]float64, n)
		for j := range q[i] {
			q[i][j] = rng.NormFloat64()
		}
		for k := range i {
			d := Dot(q[i], q[k])
			for j := range q[i] {
				q[i][j] -= d * q[k][j]
			}
		}
		scale(q[i], 1/norm(q[i]))
	}
	a := make([][]float64, n)
	for i := range a {
		a[i] = make([]float64, n)
		for j := range a[i] {
			for k := range n {
				a[i][j] += q[k][i] * eigs[k] * q[k][j]
			}
		}
	}
	b := make([]float64, n)
	for i := range b {
		b[i] = rng.NormFloat64()
	}
	return &quadratic{a: a, b: b}
}

func (f *quadratic) gradient(_ context.Context, w []float32) ([]float64, float64, error) {
	f.grad++
	g := make([]float64, len(w))
	var loss float64
	for i := range w {
		wi := float64(w[i])
		g[i] = f.b[i] + f.c*wi*wi/2 + f.q*wi*wi*wi/6
		for j := range w {
			g[i] += f.a[i][j] * float64(w[j])
			loss += 0.5 * float64(w[i]) * f.a[i][j] * float64(w[j])
		}
		loss += f.b[i]*float64(w[i]) + f.c*math.Pow(float64(w[i]), 3)/6 + f.q*math.Pow(float64(w[i]), 4)/24
	}
	return g, loss, nil
}

func (f *quadratic) hessianTimes(w []float32, v []float64) []float64 {
	out := make([]float64, len(v))
	for i := range v {
		wi := float64(w[i])
		out[i] = (f.c*wi + f.q*wi*wi/2) * v[i]
		for j := range v {
			out[i] += f.a[i][j] * v[j]
		}
	}
	return out
}

func relErr(got, want []float64) float64 {
	d := make([]float64, len(got))
	for i := range got {
		d[i] = got[i] - want[i]
	}
	return norm(d) / norm(want)
}

func TestFiniteDiffProduct(t *testing.T) {
	eigs := []float64{5, 2, 1, 0.5, -0.3, 0.1}
	for _, tc := range []struct {
		name       string
		c, q       float64
		step       float64
		richardson bool
		lossChange float64
		tol        float64
		minimum    float64 // the error must be at least this (truncation shows)
		calls      int
	}{
		{"quadratic, defaults", 0, 0, 0, false, 0, 1e-4, 0, 2},
		{"cubic term, defaults", 0.7, 0, 0, false, 0, 1e-4, 0, 2},
		{"quartic term, defaults", 0.7, 3, 0, false, 0, 1e-4, 0, 2},
		{"quartic term, step 0.1 unbounded", 0.7, 3, 0.1, false, 1e9, 0.05, 1e-3, 2},
		{"quartic term, step 0.1, Richardson", 0.7, 3, 0.1, true, 1e9, 1e-5, 0, 4},
		{"quartic term, step 0.1 shortened by the loss change", 0.7, 3, 0.1, false, 0, 2e-4, 0, 4},
		{"quadratic, step 0.1 unbounded", 0, 0, 0.1, false, 1e9, 1e-5, 0, 2},
	} {
		f := newQuadratic(eigs, 3)
		f.c, f.q = tc.c, tc.q
		w := []float32{0.5, -1, 2, 0.25, 1.5, -0.75}
		v := []float64{1, 0, -2, 0.5, 0.1, 3}
		fd := &FiniteDiff{Grad: f.gradient, W: w, Step: tc.step, Richardson: tc.richardson, LossChange: tc.lossChange}
		got, err := fd.Product(context.Background(), v)
		if err != nil {
			t.Fatal(err)
		}
		if e := relErr(got, f.hessianTimes(w, v)); e > tc.tol || e < tc.minimum {
			t.Errorf("%s: Product relative error %.2g; want ≤ %.0g and ≥ %.0g", tc.name, e, tc.tol, tc.minimum)
		}
		if fd.Calls != tc.calls {
			t.Errorf("%s: %d gradient calls; want %d", tc.name, fd.Calls, tc.calls)
		}
		// The next product along a similar direction starts from the length
		// that was used: no product is redone.
		redone := fd.Redone
		v[0] += 0.1
		if _, err := fd.Product(context.Background(), v); err != nil || fd.Redone != redone {
			t.Errorf("%s: second product redone (%d → %d), %v", tc.name, redone, fd.Redone, err)
		}
	}
	fd := &FiniteDiff{Grad: newQuadratic(eigs, 3).gradient, W: make([]float32, 6)}
	got, err := fd.Product(context.Background(), make([]float64, 6))
	if err != nil || norm(got) != 0 || fd.Calls != 0 {
		t.Errorf("Product(0) = %v, %v after %d calls; want zeros, nil, 0 calls", got, err, fd.Calls)
	}
	if _, err := fd.Product(context.Background(), make([]float64, 5)); err == nil {
		t.Errorf("Product of a vector of the wrong length: no error")
	}
	fd.Step = -1
	if _, err := fd.Product(context.Background(), []float64{1, 0, 0, 0, 0, 0}); err == nil {
		t.Errorf("Product with a negative step: no error")
	}
}

func TestMean(t *testing.T) {
	// Per-sample loss i·Σw: the mean over n samples is (n−1)/2·Σw whatever
	// the batch size.
	f := func(_ context.Context, w []float32, lo, hi int) ([]float32, float64, error) {
		var s float64
		for _, x := range w {
			s += float64(x)
		}
		m := float64(lo+hi-1) / 2
		g := make([]float32, len(w))
		for i := range g {
			g[i] = float32(m)
		}
		return g, m * s, nil
	}
	for _, batch := range []int{1, 3, 7, 10, 64} {
		g, loss, err := Mean(10, batch, f)(context.Background(), []float32{1, 2})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(g[0]-4.5) > 1e-12 || math.Abs(loss-13.5) > 1e-12 {
			t.Errorf("Mean(batch %d) = %v, %v; want 4.5, 13.5", batch, g, loss)
		}
	}
	if _, _, err := Mean(0, 4, f)(context.Background(), []float32{1}); err == nil {
		t.Errorf("Mean of 0 samples: no error")
	}
}

func TestPowerIteration(t *testing.T) {
	for _, tc := range []struct {
		name   string
		eigs   []float64
		maxEig float64
	}{
		{"positive dominant", []float64{10, 3, 2, 1, 0.5, -1, 0.01, 0}, 10},
		{"negative dominant", []float64{-10, 3, 2, 1, 0.5, -1, 0.01, 0}, 3},
	} {
		f := newQuadratic(tc.eigs, 5)
		w := make([]float32, len(tc.eigs))
		hv := func(_ context.Context, v []float64) ([]float64, error) { return f.hessianTimes(w, v), nil }
		var calls int
		o := PowerOptions{Tol: 1e-10, MaxIter: 500, Seed: 7, Progress: func(int, float64, float64) { calls++ }}
		e, err := MaxEigenvalue(context.Background(), len(w), hv, o)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(e.Value-tc.maxEig) > 1e-6 || !e.Converged {
			t.Errorf("%s: MaxEigenvalue = %.8g (converged %v); want %g", tc.name, e.Value, e.Converged, tc.maxEig)
		}
		if calls != e.Iterations {
			t.Errorf("%s: %d progress calls for %d iterations", tc.name, calls, e.Iterations)
		}
		if av := f.hessianTimes(w, e.Vector); relErr(av, mul(e.Vector, tc.maxEig)) > 1e-4 {
			t.Errorf("%s: the eigenvector is not one: ‖Av − λv‖/‖λv‖ = %.2g", tc.name, relErr(av, mul(e.Vector, tc.maxEig)))
		}
		if e.Shifted != (tc.eigs[0] < 0) {
			t.Errorf("%s: Shifted = %v", tc.name, e.Shifted)
		}
		again, _ := MaxEigenvalue(context.Background(), len(w), hv, o)
		if again.Value != e.Value || again.Iterations != e.Iterations {
			t.Errorf("%s: not reproducible with the same seed: %v vs %v", tc.name, again.Value, e.Value)
		}
	}
	// The default tolerance stops early; MaxIter bounds the products.
	f := newQuadratic([]float64{1, 0.999, 0.998, 0.5}, 1)
	w := make([]float32, 4)
	hv := func(_ context.Context, v []float64) ([]float64, error) { return f.hessianTimes(w, v), nil }
	e, err := PowerIteration(context.Background(), 4, hv, PowerOptions{MaxIter: 3, Tol: 1e-12})
	if err != nil || e.Iterations != 3 || e.Converged {
		t.Errorf("MaxIter 3: %d iterations, converged %v, %v; want 3, false, nil", e.Iterations, e.Converged, err)
	}
	for _, bad := range []PowerOptions{{Tol: -1}, {MaxIter: -2}, {Tol: math.NaN()}} {
		if _, err := PowerIteration(context.Background(), 4, hv, bad); err == nil {
			t.Errorf("PowerIteration(%+v): no error", bad)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopAt2 := func(ctx context.Context, v []float64) ([]float64, error) { return hv(ctx, v) }
	o := PowerOptions{Tol: 1e-12, Progress: func(it int, _, _ float64) {
		if it == 2 {
			cancel()
		}
	}}
	e, err = PowerIteration(ctx, 4, stopAt2, o)
	if !errors.Is(err, context.Canceled) || e.Iterations != 2 || e.Converged {
		t.Errorf("cancelled after 2 products: %d iterations, converged %v, %v", e.Iterations, e.Converged, err)
	}
}

// TestPowerOnFiniteDiff runs the whole chain: power iteration on
// finite-difference products of a float32 gradient.
func TestPowerOnFiniteDiff(t *testing.T) {
	eigs := []float64{4, -2, 1, 0.5, 0.25, 0.1, 0, 0}
	f := newQuadratic(eigs, 9)
	w := []float32{0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8}
	fd := &FiniteDiff{Grad: f.gradient, W: w}
	e, err := MaxEigenvalue(context.Background(), len(w), fd.Product, PowerOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(e.Value-4)/4 > 1e-3 || !e.Converged || fd.Calls < 2*e.Iterations {
		t.Errorf("λmax = %.6g after %d products (converged %v, %d gradient calls); want 4 ± 0.1 %%", e.Value, e.Iterations, e.Converged, fd.Calls)
	}
}

func mul(v []float64, a float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = a * x
	}
	return out
}
