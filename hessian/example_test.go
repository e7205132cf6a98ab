package hessian_test

import (
	"context"
	"fmt"

	"github.com/semirobust/srtool/hessian"
)

// The largest Hessian eigenvalue of ℓ(w) = w₀² + 3·w₀·w₁ + 5·w₁² + w₁⁴/12,
// from gradients only. At w = (1, 0) the Hessian is [[2, 3], [3, 10]], whose
// eigenvalues are 6 ± 5.
func ExampleMaxEigenvalue() {
	grad := func(_ context.Context, w []float32) ([]float64, float64, error) {
		a, b := float64(w[0]), float64(w[1])
		return []float64{2*a + 3*b, 3*a + 10*b + b*b*b/3}, a*a + 3*a*b + 5*b*b + b*b*b*b/12, nil
	}
	fd := &hessian.FiniteDiff{Grad: grad, W: []float32{1, 0}}
	e, err := hessian.MaxEigenvalue(context.Background(), 2, fd.Product, hessian.PowerOptions{Seed: 1})
	if err != nil {
		panic(err)
	}
	fmt.Printf("λmax %.3f, converged %v\n", e.Value, e.Converged)
	// Output: λmax 11.000, converged true
}
