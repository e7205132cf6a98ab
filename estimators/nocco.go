package estimators

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// NOCCO is the paper authors' "normalised HSIC" (hsic_normalized_cca in
// Sekeh-Lab/SemirobustSubnetworks MI/AuxiliaryScripts/utils.py, copied from
// choasma/HSIC-bottleneck): with D the squared distances, K = exp(−D/(2s²)),
// K_c = K·H (right-centred only), R = K_c(K_c + ε·N·I)⁻¹, the value is
// tr(R_x R_y) = Σ_ij R_x,ij R_y,ji, a regularised normalised
// cross-covariance, unitless, ≥ 0 and at most about the rank of K_c.
//
// Bandwidth, as the authors' code has it: with Sigma = 0, s is the median
// of the *squared* distances of the rows of [x; x] (sigma_estimation(X, X):
// every pair appears four times plus N zero self-pairs; floored at 0.01,
// the mean when the median is 0), so the denominator is 2·median². With
// Sigma > 0 the denominator is 2·Sigma²·d instead. The authors compute in
// float32; this is float64, so values agree to float32 rounding. The cost
// is one N×N inverse per side, O(N³): keep N to a few thousand.
type NOCCO struct {
	// Sigma is the authors' numeric sigma (denominator 2σ²·d); 0 means
	// their median-of-squared-distances path (sigma=None).
	Sigma float64 `json:",omitempty"`
	// Epsilon is the ridge factor ε (the ridge is ε·N); 0 means 1e-5.
	Epsilon float64 `json:",omitempty"`
}

// Name returns "nocco".
func (NOCCO) Name() string { return "nocco" }

// Estimate returns tr(R_x R_y) (unitless).
func (o NOCCO) Estimate(x, y mat.Matrix) (float64, error) {
	if err := o.validate(); err != nil {
		return 0, err
	}
	xv, yv, err := pair(x, y)
	if err != nil {
		return 0, fmt.Errorf("nocco: %w", err)
	}
	rx, err := o.resolvent(xv)
	if err != nil {
		return 0, fmt.Errorf("nocco: x: %w", err)
	}
	ry, err := o.resolvent(yv)
	if err != nil {
		return 0, fmt.Errorf("nocco: y: %w", err)
	}
	return traceProduct(rx, ry), nil
}

// resolvent returns R = K_c(K_c + λI)⁻¹ = I − λ(K_c + λI)⁻¹.
func (o NOCCO) resolvent(v rows) (*mat.Dense, error) {
	eps := o.Epsilon
	if eps == 0 {
		eps = 1e-5
	}
	if eps < 0 || o.Sigma < 0 || math.IsNaN(eps) || math.IsNaN(o.Sigma) {
		return nil, fmt.Errorf("epsilon %v, sigma %v: %w", eps, o.Sigma, ErrOption)
	}
	n := v.n
	d2 := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			s := sqDist(v.row(i), v.row(j))
			d2[i*n+j], d2[j*n+i] = s, s
		}
	}
	var den float64
	if o.Sigma > 0 {
		den = 2 * o.Sigma * o.Sigma * float64(v.d)
	} else {
		s := authorsSigma(d2, n)
		den = 2 * s * s
	}
	k := mat.NewDense(n, n, d2)
	raw := k.RawMatrix()
	for i := 0; i < n; i++ {
		r := raw.Data[i*n : (i+1)*n]
		mean := 0.0
		for j := range r {
			r[j] = math.Exp(-r[j] / den)
			mean += r[j]
		}
		mean /= float64(n)
		// K·H subtracts each row's mean from the row.
		for j := range r {
			r[j] -= mean
		}
	}
	lambda := eps * float64(n)
	for i := 0; i < n; i++ {
		raw.Data[i*n+i] += lambda
	}
	var inv mat.Dense
	if err := inv.Inverse(k); err != nil {
		return nil, fmt.Errorf("K_c + εN·I: %v: %w", err, ErrSingular)
	}
	inv.Scale(-lambda, &inv)
	for i := 0; i < n; i++ {
		inv.Set(i, i, inv.At(i, i)+1)
	}
	return &inv, nil
}

// authorsSigma is sigma_estimation(X, X) on the squared distances d2 of X:
// the median over the lower triangle of [X; X]'s distance matrix, i.e. N
// zeros plus every pair distance four times.
func authorsSigma(d2 []float64, n int) float64 {
	pairs := make([]float64, 0, n*(n-1)/2)
	sum := 0.0
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			pairs = append(pairs, d2[i*n+j])
			sum += 4 * d2[i*n+j]
		}
	}
	total := n + 4*len(pairs)
	// Element t of the sorted multiset (N zeros, then each pair 4 times).
	at := func(t int) float64 {
		if t < n {
			return 0
		}
		return kthSmallest(pairs, (t-n)/4+1)
	}
	var med float64
	if total%2 == 1 {
		med = at(total / 2)
	} else {
		med = (at(total/2-1) + at(total/2)) / 2
	}
	if med <= 0 {
		med = sum / float64(total)
	}
	return math.Max(med, 1e-2)
}

// traceProduct is Σ_ij A_ij B_ji = tr(AB).
func traceProduct(a, b *mat.Dense) float64 {
	n, _ := a.Dims()
	s := 0.0
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			s += a.At(i, j) * b.At(j, i)
		}
	}
	return s
}

// AuthorsHSICCKA reproduces the authors' calc_HSIC_CKA on activations that
// are already spatially averaged (normalize=False): per class c (labels in
// order of first appearance), v_c = NOCCO(x_c, y_c), and it returns
// hsic = Σ_c p(c)·v_c with p(c) the class frequency, and
// cka = Σ_c v_c/√(NOCCO(x_c, x_c)·NOCCO(y_c, y_c)), an unweighted *sum*
// over classes (range [0, C]), not a mean. Classes with fewer than 2 rows
// return ErrTooFewSamples.
func AuthorsHSICCKA(ctx context.Context, x, y mat.Matrix, labels []int, o NOCCO) (hsic, cka float64, err error) {
	xv, yv, err := pair(x, y)
	if err != nil {
		return 0, 0, fmt.Errorf("authors hsic/cka: %w", err)
	}
	classes, err := splitClasses(xv.n, labels)
	if err != nil {
		return 0, 0, fmt.Errorf("authors hsic/cka: %w", err)
	}
	for _, c := range classes {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		if len(c.idx) < 2 {
			return 0, 0, fmt.Errorf("authors hsic/cka: class %d has %d row: %w", c.label, len(c.idx), ErrTooFewSamples)
		}
		rx, err := o.resolvent(xv.subset(c.idx))
		if err != nil {
			return 0, 0, fmt.Errorf("authors hsic/cka: class %d x: %w", c.label, err)
		}
		ry, err := o.resolvent(yv.subset(c.idx))
		if err != nil {
			return 0, 0, fmt.Errorf("authors hsic/cka: class %d y: %w", c.label, err)
		}
		v := traceProduct(rx, ry)
		hsic += c.weight * v
		cka += v / math.Sqrt(traceProduct(rx, rx)*traceProduct(ry, ry))
	}
	return hsic, cka, nil
}
