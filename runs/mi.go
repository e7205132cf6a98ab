package runs

import (
	"context"
	"fmt"
	"io"

	"gonum.org/v1/gonum/mat"

	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/report"
)

// MIArrayReport is the JSON document of `srtool mi --x A.npy --y B.npy`.
type MIArrayReport struct {
	report.Header
	Estimator string                  `json:"estimator"`
	Options   estimators.Estimator    `json:"options"`
	Units     string                  `json:"units"`
	N         int                     `json:"n"`
	MI        float64                 `json:"mi"`
	NullMean  *float64                `json:"null_mean,omitempty"`
	NullStd   *float64                `json:"null_std,omitempty"`
	Corrected *float64                `json:"corrected,omitempty"`
	PValue    *float64                `json:"p_value,omitempty"`
	Bootstrap *estimators.Interval    `json:"bootstrap,omitempty"`
	Classes   *estimators.ClassResult `json:"classes,omitempty"`
}

// MIArrayOptions are MIArrays' settings.
type MIArrayOptions struct {
	Header    report.Header // the report's header
	Estimator estimators.Estimator
	Units     string // the estimator's units as reported (bits, nats, unitless)
	// X and Y are the two variables (.npy, rows = samples); Labels, when
	// set, integer classes (.npy) for per-class weighting.
	X, Y, Labels string
	// Permutations and Bootstrap are the repetitions of the permutation
	// null and of the bootstrap interval (0 = none), drawn from Seed.
	Permutations, Bootstrap int
	Seed                    uint64
	JSON                    string // the report ("" = none)
}

// ReadMatrix reads a .npy file as a matrix of one row per sample.
func ReadMatrix(path string) (*mat.Dense, error) {
	a, err := npy.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(a.Shape) == 0 || a.Shape[0] == 0 {
		return nil, fmt.Errorf("%s: want rows of samples, got shape %v", path, a.Shape)
	}
	n := a.Shape[0]
	d := a.Len() / n
	if d == 0 {
		return nil, fmt.Errorf("%s: shape %v has no columns", path, a.Shape)
	}
	return mat.NewDense(n, d, a.Float64()), nil
}

// MIArrays estimates the dependence between the arrays o.X and o.Y
// (per class with o.Labels), with the permutation null and bootstrap
// interval when asked, prints it on w and writes the report.
func MIArrays(ctx context.Context, o MIArrayOptions, w io.Writer) (*MIArrayReport, error) {
	est := o.Estimator
	x, err := ReadMatrix(o.X)
	if err != nil {
		return nil, err
	}
	y, err := ReadMatrix(o.Y)
	if err != nil {
		return nil, err
	}
	xr, _ := x.Dims()
	if yr, _ := y.Dims(); xr != yr {
		return nil, fmt.Errorf("--x has %d rows but --y has %d", xr, yr)
	}
	var labels []int
	if p := o.Labels; p != "" {
		a, err := npy.ReadFile(p)
		if err != nil {
			return nil, err
		}
		l, err := a.Int64()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if len(l) != xr {
			return nil, fmt.Errorf("--labels has %d entries for %d rows", len(l), xr)
		}
		for _, v := range l {
			labels = append(labels, int(v))
		}
	}
	rep := &MIArrayReport{Header: o.Header, Estimator: est.Name(), Options: est, Units: o.Units, N: xr}
	cr, err := estimators.PerClass(ctx, est, x, y, labels, estimators.ClassOptions{})
	if err != nil {
		return nil, err
	}
	rep.MI = cr.Value
	if labels != nil {
		rep.Classes = &cr
	}
	if p := o.Permutations; p > 0 {
		nr, err := estimators.PermutationNull(ctx, est, x, y, labels, estimators.NullOptions{P: p, Seed: o.Seed})
		if err != nil {
			return nil, err
		}
		rep.NullMean, rep.NullStd, rep.Corrected, rep.PValue = &nr.Mean, &nr.Std, &nr.Corrected, &nr.PValue
	}
	if b := o.Bootstrap; b > 0 {
		iv, err := estimators.BootstrapCI(ctx, est, x, y, labels, estimators.BootstrapOptions{B: b, Seed: o.Seed})
		if err != nil {
			return nil, err
		}
		iv.Values = nil
		rep.Bootstrap = &iv
	}
	fmt.Fprintf(w, "%s: %.6g %s (n = %d)\n", rep.Estimator, rep.MI, o.Units, xr)
	if rep.NullMean != nil {
		fmt.Fprintf(w, "permutation null: %.4g ± %.4g, corrected %.6g, p = %.3g\n", *rep.NullMean, *rep.NullStd, *rep.Corrected, *rep.PValue)
	}
	if rep.Bootstrap != nil {
		fmt.Fprintf(w, "bootstrap %.0f%% interval: [%.4g, %.4g]\n", 100*rep.Bootstrap.Level, rep.Bootstrap.Lo, rep.Bootstrap.Hi)
	}
	return rep, report.WriteJSON(o.JSON, rep)
}
