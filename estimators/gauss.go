package estimators

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Gaussian is the log-det (canonical-correlation) estimator
// I = ½·[ln det R_x + ln det R_y − ln det R] computed on the sample
// correlation matrix R of (x, y): exact for jointly Gaussian data, the
// "linear information" otherwise (blind to non-linear dependence). The
// result is in bits unless Units is Nats.
//
// By default the analytic null bias d_x·d_y / (2(N − 1 − (d_x+d_y+1)/2))
// nats (−N ln Λ is asymptotically χ²(d_x·d_y), Bartlett's correction;
// docs/edge.md §8.2) is subtracted, so the estimate is about 0 on
// independent data and can be negative; NoCorrection returns the raw
// plug-in value. The correction assumes no shrinkage and is not applied
// when Shrinkage or LedoitWolf is set (use PermutationNull there).
//
// Constant columns carry no information and are dropped before the
// determinants (and from d_x, d_y in the correction); a side with only
// constant columns returns ErrConstant, collinear columns ErrSingular.
// Inputs with d_x + d_y ≥ N are refused (ErrTooFewSamples): the sample
// covariance is singular there.
type Gaussian struct {
	// NoCorrection returns the raw plug-in estimate.
	NoCorrection bool `json:",omitempty"`
	// Shrinkage in [0, 1] shrinks the correlation matrix towards the
	// identity, R ← (1−s)·R + s·I, which pulls the estimate towards zero.
	Shrinkage float64 `json:",omitempty"`
	// LedoitWolf chooses the shrinkage by the Ledoit–Wolf (2004) formula
	// for the standardised data (overrides Shrinkage).
	LedoitWolf bool `json:",omitempty"`
	// Units of the result; the zero value is Bits.
	Units Units `json:",omitempty"`
}

// Name returns "gauss".
func (Gaussian) Name() string { return "gauss" }

// Estimate returns the Gaussian estimate of I(x; y).
func (o Gaussian) Estimate(x, y mat.Matrix) (float64, error) {
	xv, yv, err := pair(x, y)
	if err != nil {
		return 0, fmt.Errorf("gauss: %w", err)
	}
	if err := o.validate(); err != nil {
		return 0, err
	}
	n := xv.n
	if xv.d+yv.d >= n {
		return 0, fmt.Errorf("gauss: d_x + d_y = %d ≥ N = %d, the covariance is singular: %w", xv.d+yv.d, n, ErrTooFewSamples)
	}
	z, dx, dy := standardizedJoint(xv, yv)
	if dx == 0 {
		return 0, fmt.Errorf("gauss: every column of x is constant: %w", ErrConstant)
	}
	if dy == 0 {
		return 0, fmt.Errorf("gauss: every column of y is constant: %w", ErrConstant)
	}
	d := dx + dy
	// R = ZᵀZ/N with unit-variance columns (population scaling).
	var r mat.SymDense
	r.SymOuterK(1/float64(n), z.T())
	s := o.Shrinkage
	if o.LedoitWolf {
		s = ledoitWolf(z, &r)
	}
	if s > 0 {
		for i := 0; i < d; i++ {
			for j := i; j < d; j++ {
				v := (1 - s) * r.At(i, j)
				if i == j {
					v += s
				}
				r.SetSym(i, j, v)
			}
		}
	}
	ld, err := logDet(&r)
	if err != nil {
		return 0, fmt.Errorf("gauss: joint covariance: %w", err)
	}
	ldx, err := logDet(r.SliceSym(0, dx))
	if err != nil {
		return 0, fmt.Errorf("gauss: x covariance: %w", err)
	}
	ldy, err := logDet(r.SliceSym(dx, d))
	if err != nil {
		return 0, fmt.Errorf("gauss: y covariance: %w", err)
	}
	I := 0.5 * (ldx + ldy - ld)
	if !o.NoCorrection && s == 0 {
		I -= GaussianNullBias(dx, dy, n)
	}
	return o.Units.fromNats(I), nil
}

// GaussianNullBias is the expected plug-in Gaussian MI, in nats, of
// independent Gaussian x (d_x columns) and y (d_y columns) from N samples:
// d_x·d_y / (2(N − 1 − (d_x+d_y+1)/2)).
func GaussianNullBias(dx, dy, n int) float64 {
	den := float64(n) - 1 - float64(dx+dy+1)/2
	if den <= 0 {
		return math.Inf(1)
	}
	return float64(dx*dy) / (2 * den)
}

func logDet(s mat.Symmetric) (float64, error) {
	var ch mat.Cholesky
	if ok := ch.Factorize(s); !ok {
		return 0, fmt.Errorf("not positive definite (collinear columns?): %w", ErrSingular)
	}
	return ch.LogDet(), nil
}

// standardizedJoint returns [x | y] with non-constant columns centred and
// scaled to unit population variance (constant columns dropped), and the
// number of kept x and y columns.
func standardizedJoint(xv, yv rows) (*mat.Dense, int, int) {
	n := xv.n
	cx, cy := xv.constantCols(), yv.constantCols()
	var keep []func(i int) float64
	dx, dy := 0, 0
	for j, c := range cx {
		if !c {
			keep = append(keep, func(i int) float64 { return xv.at(i, j) })
			dx++
		}
	}
	for j, c := range cy {
		if !c {
			keep = append(keep, func(i int) float64 { return yv.at(i, j) })
			dy++
		}
	}
	d := len(keep)
	z := mat.NewDense(n, max(d, 1), nil)
	raw := z.RawMatrix()
	for i := 0; i < n; i++ {
		for c, f := range keep {
			raw.Data[i*raw.Stride+c] = f(i)
		}
	}
	if d > 0 {
		standardizeCols(raw.Data, n, raw.Stride)
	}
	return z, dx, dy
}

// ledoitWolf returns the Ledoit–Wolf shrinkage intensity towards μ·I for
// the sample covariance s = ZᵀZ/N of the rows of z.
func ledoitWolf(z *mat.Dense, s *mat.SymDense) float64 {
	n, d := z.Dims()
	mu := mat.Trace(s) / float64(d)
	var fro2, delta float64
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			v := s.At(i, j)
			fro2 += v * v
			if i == j {
				v -= mu
			}
			delta += v * v
		}
	}
	var sum4 float64
	for i := 0; i < n; i++ {
		r := mat.Row(nil, i, z)
		q := 0.0
		for _, v := range r {
			q += v * v
		}
		sum4 += q * q
	}
	beta := (sum4/float64(n) - fro2) / float64(n)
	if delta <= 0 {
		return 0
	}
	return math.Min(math.Max(beta, 0), delta) / delta
}
