// Package hessian computes Hessian-vector products and the largest
// eigenvalue of the Hessian of a loss, from gradients alone.
//
// The loss is a function of a flat float32 parameter vector w (the values a
// model runs with), given by a GradientFunc that returns its gradient; Mean
// averages one over a data set in batches. FiniteDiff turns it into
// Hessian-vector products by central differences of gradient calls,
//
//	D(h) = (∇ℓ(w + h v) − ∇ℓ(w − h v)) / 2h,   H v ≈ (4·D(h/2) − D(h)) / 3,
//
// the Richardson extrapolation cancelling D's h² error term (Plain keeps
// D(h): half the gradient calls, O(h²) error). The step is relative,
// h = Step·‖w‖/‖v‖, as in hessian-eigenthings; DefaultStep is 3e-3. It was
// chosen on srtool's Fashion-MNIST ResNet f* (testdata/hessian, against
// PyTorch's double backward in float64): there the float32 rounding of the
// gradients dominates below about 1e-3 (relative L2 error 2e-3 at 1e-4)
// and the truncation above 1e-2, and power iteration, which seeks out the
// directions where a product is largest, drove plain differences at 3e-3 to
// a "λmax" 24 % too large; extrapolated at 3e-3, the products were within
// 3e-4 and λmax within 0.01 %.
//
// A ReLU network's loss is only piecewise smooth in its weights, and automatic
// differentiation (PyTorch's double backward, PyHessian) takes the Hessian
// with every ReLU gate held fixed. FreezeGates rewrites an ONNX model so that
// its gates are fixed at the current parameters; without it a difference of
// gradients also counts the gates that flip between w − hv and w + hv, which
// made the products several times too large at every usable step.
//
// PowerIteration finds the eigenvalue of largest magnitude by power
// iteration, as PyHessian does: a seeded standard-normal start, at most 100
// products, stopping when the Rayleigh quotient changes by less than a
// relative tolerance (1e-4) between two products. MaxEigenvalue returns the
// largest (algebraic) eigenvalue, shifting the operator when the dominant
// one is negative.
//
// Vectors are float64; the point w and the vectors passed in are read, never
// written or kept. Long calls take a context and stop at the next gradient
// call once it is cancelled. Nothing in this package prints; progress goes
// through callbacks.
package hessian
