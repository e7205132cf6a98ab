package estimators

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/semirobust/srtool/internal/parallel"
)

// NullOptions configures PermutationNull.
type NullOptions struct {
	// P is the number of permutations; 0 means 100.
	P int `json:",omitempty"`
	// Seed seeds the permutations (permutation r uses its own stream, so
	// the result does not depend on the number of CPUs).
	Seed uint64 `json:",omitempty"`
	// Strict makes a class with too few rows an error (see PerClass).
	Strict bool `json:",omitempty"`
	// Progress, if set, is called after each permutation (from any
	// goroutine, serialised).
	Progress func(done, total int) `json:"-"`
}

// NullResult is an estimate with its permutation null.
type NullResult struct {
	// Raw is the (class-weighted) estimate on the data as paired.
	Raw float64
	// Mean and Std are the mean and sample standard deviation of the null.
	Mean, Std float64
	// Corrected is Raw − Mean: the part of the estimate the pairing explains.
	Corrected float64
	// PValue is (1 + #{null ≥ Raw})/(P + 1).
	PValue float64
	// Values are the P null estimates in permutation order.
	Values []float64
	// Classes is the raw per-class breakdown.
	Classes ClassResult
}

// PermutationNull estimates est on (x, y) and on P copies in which y's rows
// are shuffled within each class (labels nil: one class), which keeps both
// marginals and the class structure and destroys the within-class pairing:
// the estimator's floor at this N, dimension and class mix. Values are
// class-weighted as in PerClass. For EDGE the projections, sorted columns
// and kNN query rows are computed once per class and only the bandwidth of y
// at the permuted query rows and the hashing are redone (permutation r uses
// shift stream Seed + r + 1 in EDGE's stochastic mode), so P permutations
// cost about P hashing passes. Permutations run in parallel on GOMAXPROCS
// goroutines; ctx is checked between permutations.
func PermutationNull(ctx context.Context, est Estimator, x, y mat.Matrix, labels []int, opts NullOptions) (NullResult, error) {
	P := opts.P
	if P == 0 {
		P = 100
	}
	if err := checkReps("permutation null: P", P); err != nil {
		return NullResult{}, err
	}
	if err := Validate(est); err != nil {
		return NullResult{}, err
	}
	name := est.Name()
	xv, yv, err := pair(x, y)
	if err != nil {
		return NullResult{}, fmt.Errorf("permutation null %s: %w", name, err)
	}
	classes, err := splitClasses(xv.n, labels)
	if err != nil {
		return NullResult{}, fmt.Errorf("permutation null %s: %w", name, err)
	}
	fs := make([]classFunc, len(classes))
	raw := make([]float64, len(classes))
	for k, c := range classes {
		fs[k], raw[k], err = prepareClass(est, xv, yv, c)
		if err != nil && (opts.Strict || !errors.Is(err, ErrTooFewSamples)) {
			return NullResult{}, fmt.Errorf("permutation null %s: class %d: %w", name, c.label, err)
		}
	}
	rawRes, err := combine(est, classes, fs, raw)
	if err != nil {
		return NullResult{}, fmt.Errorf("permutation null: %w", err)
	}
	values := make([]float64, P)
	err = parallelReps(ctx, P, opts.Progress, func(r int) error {
		rng := newPCG(opts.Seed, uint64(r)+0x7065726d)
		vals := make([]float64, len(classes))
		for k, c := range classes {
			if fs[k] == nil {
				continue
			}
			perm := rng.Perm(len(c.idx))
			v, err := fs[k](perm, uint64(r)+1)
			if err != nil {
				return fmt.Errorf("permutation %d class %d: %w", r, c.label, err)
			}
			vals[k] = v
		}
		res, err := combine(est, classes, fs, vals)
		values[r] = res.Value
		return err
	})
	if err != nil {
		return NullResult{}, fmt.Errorf("permutation null %s: %w", name, err)
	}
	mean, std := meanStd(values)
	ge := 0
	for _, v := range values {
		if v >= rawRes.Value {
			ge++
		}
	}
	return NullResult{
		Raw: rawRes.Value, Mean: mean, Std: std, Corrected: rawRes.Value - mean,
		PValue: float64(1+ge) / float64(P+1), Values: values, Classes: rawRes,
	}, nil
}

// BootstrapOptions configures BootstrapCI.
type BootstrapOptions struct {
	// B is the number of resamples; 0 means 200.
	B int `json:",omitempty"`
	// Level is the confidence level; 0 means 0.95.
	Level float64 `json:",omitempty"`
	// Seed seeds the resampling (resample b uses its own stream).
	Seed uint64 `json:",omitempty"`
	// Strict makes a class with too few rows an error (see PerClass).
	Strict bool `json:",omitempty"`
	// Progress, if set, is called after each resample.
	Progress func(done, total int) `json:"-"`
}

// Interval is a bootstrap percentile confidence interval.
type Interval struct {
	// Raw is the estimate on the data.
	Raw float64
	// Lo and Hi bound the interval at Level.
	Lo, Hi, Level float64
	// Mean and Std summarise the bootstrap distribution.
	Mean, Std float64
	// Values are the B bootstrap estimates.
	Values []float64
}

// BootstrapCI returns the percentile bootstrap interval of the
// class-weighted estimate: each resample draws, within every class, as many
// rows as the class has, with replacement (pairs stay together), and the
// interval is the (1−Level)/2 and (1+Level)/2 quantiles (numpy's linear
// interpolation) of the B estimates. Resampling duplicates rows, which
// inflates kNN and binning estimators (KSG, EDGE) on the resamples: read the
// interval as the spread, not as a bias correction. Resamples run in
// parallel; ctx is checked between them.
func BootstrapCI(ctx context.Context, est Estimator, x, y mat.Matrix, labels []int, opts BootstrapOptions) (Interval, error) {
	B := opts.B
	if B == 0 {
		B = 200
	}
	level := opts.Level
	if level == 0 {
		level = 0.95
	}
	if err := checkReps("bootstrap: B", B); err != nil {
		return Interval{}, err
	}
	if !(level > 0 && level < 1) {
		return Interval{}, fmt.Errorf("bootstrap: Level = %v outside (0, 1): %w", level, ErrOption)
	}
	name := est.Name()
	xv, yv, err := pair(x, y)
	if err != nil {
		return Interval{}, fmt.Errorf("bootstrap %s: %w", name, err)
	}
	res, err := PerClass(ctx, est, x, y, labels, ClassOptions{Strict: opts.Strict})
	if err != nil {
		return Interval{}, fmt.Errorf("bootstrap: %w", err)
	}
	classes, _ := splitClasses(xv.n, labels)
	used := make([]bool, len(classes))
	for k, c := range res.Classes {
		used[k] = c.Skipped == ""
	}
	values := make([]float64, B)
	err = parallelReps(ctx, B, opts.Progress, func(b int) error {
		rng := newPCG(opts.Seed, uint64(b)+0x626f6f74)
		var s, w float64
		for k, c := range classes {
			if !used[k] {
				continue
			}
			idx := make([]int, len(c.idx))
			for i := range idx {
				idx[i] = c.idx[rng.IntN(len(c.idx))]
			}
			v, err := est.Estimate(xv.subset(idx).dense(), yv.subset(idx).dense())
			if err != nil {
				return fmt.Errorf("resample %d class %d: %w", b, c.label, err)
			}
			s += c.weight * v
			w += c.weight
		}
		values[b] = s / w
		return nil
	})
	if err != nil {
		return Interval{}, fmt.Errorf("bootstrap %s: %w", name, err)
	}
	mean, std := meanStd(values)
	sorted := sortedCopy(values)
	return Interval{
		Raw: res.Value, Level: level, Mean: mean, Std: std, Values: values,
		Lo: quantile(sorted, (1-level)/2), Hi: quantile(sorted, (1+level)/2),
	}, nil
}

// parallelReps runs f(0..n-1) on GOMAXPROCS goroutines, stopping at the
// first error or when ctx is done, and reports each success to progress.
func parallelReps(ctx context.Context, n int, progress func(done, total int), f func(r int) error) error {
	var mu sync.Mutex
	done := 0
	return parallel.Do(ctx, n, 0, func(_ context.Context, r int) error {
		if err := f(r); err != nil {
			return err
		}
		if progress != nil {
			mu.Lock()
			done++
			progress(done, n)
			mu.Unlock()
		}
		return nil
	})
}

func meanStd(v []float64) (float64, float64) {
	n := float64(len(v))
	m := 0.0
	for _, a := range v {
		m += a
	}
	m /= n
	s := 0.0
	for _, a := range v {
		s += (a - m) * (a - m)
	}
	return m, math.Sqrt(s / (n - 1))
}

// quantile is numpy's default (linear) quantile of sorted values.
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	i := int(math.Floor(pos))
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	f := pos - float64(i)
	return sorted[i] + f*(sorted[i+1]-sorted[i])
}
