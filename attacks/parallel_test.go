package attacks

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync/atomic"
	"testing"
)

// parallelMLP offers workers that are the same model, and counts the calls
// each receives.
type parallelMLP struct {
	*mlpModel
	workers []Model
}

func (p *parallelMLP) Workers() []Model { return p.workers }

// countingWorker counts its calls and fails after failAfter of them (0: never).
type countingWorker struct {
	*mlpModel
	calls     atomic.Int64
	failAfter int64
}

var errWorker = errors.New("worker failed")

func (w *countingWorker) LossGrad(ctx context.Context, x []float32, n int, l Loss) ([]float32, []float32, []float32, error) {
	if c := w.calls.Add(1); w.failAfter > 0 && c > w.failAfter {
		return nil, nil, nil, errWorker
	}
	return w.mlpModel.LossGrad(ctx, x, n, l)
}

// TestParallelSplitChangesNoResult runs Evaluate (AutoAttack's components,
// shortened, and PGD) and AdversarialAccuracy on a model with 3 workers and
// on the same model without, and requires identical per-point results,
// adversarial examples and sample counts; every worker must have been used.
func TestParallelSplitChangesNoResult(t *testing.T) {
	m := newMLP(4, 3, 4, 8, 10)
	x, y := data(m, 3, 17, 2, 11)
	ws := []*countingWorker{{mlpModel: m}, {mlpModel: m}, {mlpModel: m}}
	p := &parallelMLP{mlpModel: m, workers: []Model{ws[0], ws[1], ws[2]}}
	list := []Attack{
		&PGD{Epsilon: 0.15, Steps: 5},
		&APGD{Epsilon: 0.15, Steps: 10},
		&APGDT{Epsilon: 0.15, Steps: 10, Targets: 3},
		&FAB{Epsilon: 0.15, Steps: 10, Targets: 3},
		&Square{Epsilon: 0.15, Queries: 200},
	}
	opts := EvalOptions{BatchSize: 8, SkipChecks: true}
	want, err := Evaluate(bg, m, x, y, list, opts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Evaluate(bg, p, x, y, list, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Samples, want.Samples) {
		t.Errorf("per-point results differ:\n got %+v\nwant %+v", got.Samples, want.Samples)
	}
	if !slices.EqualFunc(got.Adv, want.Adv, func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
		t.Error("adversarial examples differ")
	}
	for i := range want.Attacks {
		g, w := got.Attacks[i], want.Attacks[i]
		if g.Broken != w.Broken || g.ZeroGrad != w.ZeroGrad || g.Counts.GradSamples != w.Counts.GradSamples || g.Counts.ForwardSamples != w.Counts.ForwardSamples {
			t.Errorf("%s: split %+v; whole %+v", w.Name, g, w)
		}
	}
	for i, w := range ws {
		if w.calls.Load() == 0 {
			t.Errorf("worker %d was never called", i)
		}
	}
	broken := 0
	for _, s := range want.Samples {
		if s.BrokenBy != "" && s.BrokenBy != "clean" {
			broken++
		}
	}
	if broken == 0 || broken == len(want.Samples) {
		t.Errorf("%d of %d points broken by an attack: the comparison shows little", broken, len(want.Samples))
	}
	a1, err := AdversarialAccuracy(bg, m, x, y, &APGD{Epsilon: 0.15, Steps: 10}, 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := AdversarialAccuracy(bg, p, x, y, &APGD{Epsilon: 0.15, Steps: 10}, 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a1.Correct != a2.Correct || !slices.Equal(a1.Pred, a2.Pred) || !slices.Equal(a1.Adv, a2.Adv) {
		t.Errorf("adversarial accuracy: split %d correct, whole %d, or their outputs differ", a2.Correct, a1.Correct)
	}
}

// TestParallelSplitError: a failing worker stops the split run with its
// error, not with the cancellation it causes in the others.
func TestParallelSplitError(t *testing.T) {
	m := newMLP(4, 3, 4, 8, 10)
	x, y := data(m, 3, 12)
	ws := []Model{&countingWorker{mlpModel: m}, &countingWorker{mlpModel: m, failAfter: 3}}
	_, err := Evaluate(bg, &parallelMLP{mlpModel: m, workers: ws}, x, y, []Attack{&APGD{Epsilon: 0.1}}, EvalOptions{SkipChecks: true})
	if !errors.Is(err, errWorker) {
		t.Errorf("error %v; want the worker's", err)
	}
	// Attacks that may depend on their batch (C&W) are never split.
	if splittable(&CW{}) || !splittable(&Square{}) {
		t.Error("splittable: C&W must not be split, Square may")
	}
}
