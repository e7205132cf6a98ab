package estimators

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Corr is the authors' "connectivity" for one block of samples (utils.py
// connectivity_worker_function): the mean over all (x column, y column)
// pairs of the absolute Pearson correlation |r|, unitless in [0, 1].
// Constant columns have undefined correlation (NaN in numpy) and their
// pairs are skipped, as the authors' nanmean does; if every pair is
// skipped the result is ErrConstant. The authors apply it to channel-mean
// activations (spatial averaging is the caller's job) and round r to
// float32; this keeps float64. Its value on independent data is about
// √(2/(πN)), so it needs a null too. Cost O(N·d_x·d_y).
type Corr struct{}

// Name returns "corr".
func (Corr) Name() string { return "corr" }

// Estimate returns the mean |r| over column pairs (unitless).
func (Corr) Estimate(x, y mat.Matrix) (float64, error) {
	xv, yv, err := pair(x, y)
	if err != nil {
		return 0, fmt.Errorf("corr: %w", err)
	}
	sum, cnt := absCorrSum(xv, yv)
	if cnt == 0 {
		return 0, fmt.Errorf("corr: every column pair involves a constant column: %w", ErrConstant)
	}
	return sum / float64(cnt), nil
}

// absCorrSum returns Σ|r| over column pairs with defined correlation and
// how many there were.
func absCorrSum(xv, yv rows) (float64, int) {
	x, y := centred(xv), centred(yv)
	nx, ny := colNorms(x), colNorms(y)
	for i, k := range xv.constantCols() {
		if k {
			nx[i] = 0
		}
	}
	for j, k := range yv.constantCols() {
		if k {
			ny[j] = 0
		}
	}
	var c mat.Dense
	c.Mul(x.T(), y)
	sum, cnt := 0.0, 0
	for i, a := range nx {
		if a == 0 {
			continue
		}
		for j, b := range ny {
			if b == 0 {
				continue
			}
			r := c.At(i, j) / (a * b)
			sum += math.Min(math.Abs(r), 1)
			cnt++
		}
	}
	return sum, cnt
}

func colNorms(m *mat.Dense) []float64 {
	r, c := m.Dims()
	out := make([]float64, c)
	for i := 0; i < r; i++ {
		for j, v := range m.RawRowView(i) {
			out[j] += v * v
		}
	}
	for j := range out {
		out[j] = math.Sqrt(out[j])
	}
	return out
}

// Connectivity reproduces the authors' calc_conn on channel-mean
// activations: per class, |r| between every x column and every y column,
// then the nanmean over all classes and pairs together (so every class
// weighs the same, not by frequency; NaN pairs from columns constant
// within a class are skipped). Their per-class standardisation is a
// no-op for correlations and is not repeated. Classes with fewer than 2
// rows return ErrTooFewSamples.
func Connectivity(x, y mat.Matrix, labels []int) (float64, error) {
	xv, yv, err := pair(x, y)
	if err != nil {
		return 0, fmt.Errorf("connectivity: %w", err)
	}
	classes, err := splitClasses(xv.n, labels)
	if err != nil {
		return 0, fmt.Errorf("connectivity: %w", err)
	}
	sum, cnt := 0.0, 0
	for _, c := range classes {
		if len(c.idx) < 2 {
			return 0, fmt.Errorf("connectivity: class %d has %d row: %w", c.label, len(c.idx), ErrTooFewSamples)
		}
		s, k := absCorrSum(xv.subset(c.idx), yv.subset(c.idx))
		sum += s
		cnt += k
	}
	if cnt == 0 {
		return 0, fmt.Errorf("connectivity: no column pair with defined correlation: %w", ErrConstant)
	}
	return sum / float64(cnt), nil
}
