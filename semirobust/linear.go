package semirobust

import (
	"context"
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// maxLinearValues bounds N × d for Algorithm S1's activation matrix (float64).
const maxLinearValues = 1 << 28

// CheckLinearSize refuses, before any work, an Algorithm S1 matrix of n
// samples × the outputs of weight layers 1..head over maxLinearValues.
func CheckLinearSize(an *analyzer.Analysis, head, n int) error {
	dim := 0
	for _, l := range an.Layers[:head] {
		d := 1
		for _, v := range l.Shape[1:] {
			if v > 0 {
				d *= int(v)
			}
		}
		dim += d
	}
	if n*dim > maxLinearValues {
		return optionf("--linear: %d samples × %d outputs of layers 1..%d exceed %d values; lower --rho-n to at most %d", n, dim, head, maxLinearValues, maxLinearValues/max(dim, 1))
	}
	return nil
}

// LinearS1 is the paper's Algorithm S1: the outputs of every head layer
// (weight layers 1..head) of the robust model m on the inputs x are
// concatenated per sample into F*_a; the robust network's logits F are
// regressed on them, F*_a·λ = F, by least squares batch by batch (minimum-norm
// solutions, as a batch has fewer rows than features), λ is the average of
// the batch solutions, and the result is the accuracy (percent) of the
// linear predictor F*_a·λ against the labels.
func LinearS1(ctx context.Context, m *onnxio.Model, x []float32, d *dataset.Dataset, head, batch int, eng ort.Options) (float64, error) {
	layers := make([]int, head)
	for i := range layers {
		layers[i] = i + 1
	}
	sample := []int{d.C, d.H, d.W}
	acts, _, err := LayerActivations(ctx, m, x, sample, layers, RhoOptions{Batch: batch, Engine: eng})
	if err != nil {
		return 0, err
	}
	n := d.Len()
	dim := 0
	for _, l := range layers {
		_, c := acts[l].Dims()
		dim += c
	}
	if n*dim > maxLinearValues {
		return 0, fmt.Errorf("algorithm S1: %d samples × %d head features is too large; use fewer samples (--rho-n)", n, dim)
	}
	a := mat.NewDense(n, dim, nil)
	off := 0
	for _, l := range layers {
		_, c := acts[l].Dims()
		a.Slice(0, n, off, off+c).(*mat.Dense).Copy(acts[l])
		off += c
	}
	clf, err := diffmodel.NewClassifier(m, eng)
	if err != nil {
		return 0, err
	}
	defer clf.Close()
	k := clf.NumClasses()
	f := mat.NewDense(n, k, nil)
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n)
		z, err := clf.Logits(ctx, x[lo*d.Dim():hi*d.Dim()], hi-lo)
		if err != nil {
			return 0, err
		}
		for i := lo; i < hi; i++ {
			for j := 0; j < k; j++ {
				f.Set(i, j, float64(z[(i-lo)*k+j]))
			}
		}
	}
	lambda := mat.NewDense(dim, k, nil)
	batches := 0
	for lo := 0; lo < n; lo += batch {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		hi := min(lo+batch, n)
		ab := a.Slice(lo, hi, 0, dim)
		fb := f.Slice(lo, hi, 0, k)
		// Minimum-norm solution λ_b = Abᵀ (Ab Abᵀ + δI)⁻¹ Fb, δ a tiny ridge
		// (1e-8 of the mean diagonal) for numerical safety.
		var g mat.Dense
		g.Mul(ab, ab.T())
		b := hi - lo
		tr := 0.0
		for i := 0; i < b; i++ {
			tr += g.At(i, i)
		}
		delta := 1e-8 * tr / float64(b)
		if delta == 0 {
			delta = 1e-12
		}
		sym := mat.NewSymDense(b, nil)
		for i := 0; i < b; i++ {
			for j := i; j < b; j++ {
				v := g.At(i, j)
				if i == j {
					v += delta
				}
				sym.SetSym(i, j, v)
			}
		}
		var ch mat.Cholesky
		if !ch.Factorize(sym) {
			return 0, fmt.Errorf("algorithm S1: batch %d: the activation Gram matrix is not positive definite", batches)
		}
		var zb mat.Dense
		if err := ch.SolveTo(&zb, fb); err != nil {
			return 0, fmt.Errorf("algorithm S1: %w", err)
		}
		var lb mat.Dense
		lb.Mul(ab.T(), &zb)
		lambda.Add(lambda, &lb)
		batches++
	}
	lambda.Scale(1/float64(batches), lambda)
	var pred mat.Dense
	pred.Mul(a, lambda)
	correct := 0
	for i := 0; i < n; i++ {
		best := 0
		for j := 1; j < k; j++ {
			if pred.At(i, j) > pred.At(i, best) {
				best = j
			}
		}
		if int64(best) == d.Y[i] {
			correct++
		}
	}
	return 100 * float64(correct) / float64(n), nil
}
