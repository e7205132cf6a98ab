package estimators

import (
	"context"
	"errors"
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// ClassOptions configures PerClass.
type ClassOptions struct {
	// Strict makes a class the estimator cannot handle (ErrTooFewSamples)
	// an error instead of a reported skip.
	Strict bool `json:",omitempty"`
	// Progress, if set, is called after each class.
	Progress func(done, total int) `json:"-"`
}

// ClassValue is one class's part of a PerClass result.
type ClassValue struct {
	Label int
	// N is the number of rows with this label.
	N int
	// Weight is p(c) = N/total rows.
	Weight float64
	// Value is the estimate on the class's rows (0 when skipped).
	Value float64
	// Skipped is empty for a used class, else why it was left out.
	Skipped string `json:",omitempty"`
}

// ClassResult is a class-weighted estimate.
type ClassResult struct {
	// Value is Σ_c p(c)·v_c / Σ_c p(c) over the classes used; with no class
	// skipped it is the authors' Σ_c p(c)·v_c (their ρ, eq. 24 of the
	// supplement: I(g; h | y) = Σ_y π(y) I(g; h | y)).
	Value float64
	// Classes lists every label in order of first appearance.
	Classes []ClassValue
	// Skipped lists the labels left out (too few rows for the estimator).
	Skipped []int `json:",omitempty"`
	// SkippedWeight is the total p(c) of the skipped classes.
	SkippedWeight float64 `json:",omitempty"`
}

type class struct {
	label  int
	idx    []int
	weight float64
}

// splitClasses groups row indices by label, labels in order of first
// appearance; nil labels give a single class holding every row.
func splitClasses(n int, labels []int) ([]class, error) {
	if labels == nil {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return []class{{label: 0, idx: idx, weight: 1}}, nil
	}
	if len(labels) != n {
		return nil, fmt.Errorf("%d labels for %d rows: %w", len(labels), n, ErrShape)
	}
	pos := map[int]int{}
	var cs []class
	for i, l := range labels {
		k, ok := pos[l]
		if !ok {
			k = len(cs)
			pos[l] = k
			cs = append(cs, class{label: l})
		}
		cs[k].idx = append(cs[k].idx, i)
	}
	for k := range cs {
		cs[k].weight = float64(len(cs[k].idx)) / float64(n)
	}
	return cs, nil
}

// PerClass returns Σ_c p(c)·est(x_c, y_c) over the classes given by labels
// (one label per row), the way the paper computes ρ. A class whose rows are
// too few for the estimator (its error wraps ErrTooFewSamples; every
// estimator needs at least 2 rows, EDGE's p-stable hashing 20, KSG k+1) is
// skipped, reported in the result, and the remaining weights are
// renormalised; with ClassOptions.Strict it is an error instead. If every
// class is skipped the result is an error wrapping ErrTooFewSamples. Other
// errors are returned with the class label.
func PerClass(ctx context.Context, est Estimator, x, y mat.Matrix, labels []int, opts ClassOptions) (ClassResult, error) {
	xv, yv, err := pair(x, y)
	if err != nil {
		return ClassResult{}, fmt.Errorf("per class %s: %w", est.Name(), err)
	}
	classes, err := splitClasses(xv.n, labels)
	if err != nil {
		return ClassResult{}, fmt.Errorf("per class %s: %w", est.Name(), err)
	}
	fs := make([]classFunc, len(classes))
	vals := make([]float64, len(classes))
	for k, c := range classes {
		if err := ctx.Err(); err != nil {
			return ClassResult{}, err
		}
		fs[k], vals[k], err = prepareClass(est, xv, yv, c)
		if err != nil && (opts.Strict || !errors.Is(err, ErrTooFewSamples)) {
			return ClassResult{}, fmt.Errorf("per class %s: class %d: %w", est.Name(), c.label, err)
		}
		if opts.Progress != nil {
			opts.Progress(k+1, len(classes))
		}
	}
	return combine(est, classes, fs, vals)
}

// classFunc evaluates an estimator on one class with y's rows permuted
// (perm nil for none); rep selects any per-call random stream.
type classFunc func(perm []int, rep uint64) (float64, error)

// prepareClass readies est on the class's rows. For EDGE the projection,
// sorted columns and kNN rows are computed once and reused by every
// permutation (they do not depend on the pairing; the bandwidth of y is
// re-evaluated from the sorted columns at the permuted query rows, so the
// null is the same estimator a fresh call on shuffled data would run, up to
// summation order in the column std).
//
// It also returns the estimate on the unpermuted class.
func prepareClass(est Estimator, xv, yv rows, c class) (classFunc, float64, error) {
	if len(c.idx) < 2 {
		return nil, 0, fmt.Errorf("%d row: %w", len(c.idx), ErrTooFewSamples)
	}
	xs, ys := xv, yv
	if len(c.idx) != xv.n {
		xs, ys = xv.subset(c.idx), yv.subset(c.idx)
	}
	var e *EDGE
	switch t := est.(type) {
	case EDGE:
		e = &t
	case *EDGE:
		e = t
	}
	if e != nil {
		p, err := e.prepare(xs, ys)
		if err != nil {
			return nil, 0, err
		}
		raw, err := p.estimate(nil, 0)
		if err != nil {
			return nil, 0, err
		}
		return p.estimate, raw, nil
	}
	xd, yd := xs.dense(), ys.dense()
	raw, err := est.Estimate(xd, yd)
	if err != nil {
		return nil, 0, err
	}
	return func(perm []int, _ uint64) (float64, error) {
		if perm == nil {
			return est.Estimate(xd, yd)
		}
		return est.Estimate(xd, ys.subset(perm).dense())
	}, raw, nil
}

// combine builds the class-weighted result from per-class values.
func combine(est Estimator, classes []class, fs []classFunc, vals []float64) (ClassResult, error) {
	res := ClassResult{Classes: make([]ClassValue, len(classes))}
	var w, s float64
	for k, c := range classes {
		cv := ClassValue{Label: c.label, N: len(c.idx), Weight: c.weight}
		if fs[k] == nil {
			cv.Skipped = fmt.Sprintf("too few rows for %s", est.Name())
			res.Skipped = append(res.Skipped, c.label)
			res.SkippedWeight += c.weight
		} else {
			cv.Value = vals[k]
			w += c.weight
			s += c.weight * vals[k]
		}
		res.Classes[k] = cv
	}
	if w == 0 {
		return res, fmt.Errorf("per class %s: every class has too few rows: %w", est.Name(), ErrTooFewSamples)
	}
	res.Value = s / w
	return res, nil
}
