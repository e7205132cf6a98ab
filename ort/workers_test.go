//go:build cgo

package ort

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/onnxio"
)

// TestWorkersChangeNoResult runs AutoAttack's components (shortened) and
// PGD through Evaluate and AdversarialAccuracy on the shared fixture model,
// once on 2 intra-op threads (Options.NoWorkers) and once split over 2
// single-threaded workers, and requires identical per-point results: verdict,
// breaking attack, prediction, distance and every bit of the adversarial
// examples, and equal sample counts.
func TestWorkersChangeNoResult(t *testing.T) {
	m, err := onnxio.Read("../testdata/fixtures/attacks/fmnist_rn_w8_pgd.onnx")
	if err != nil {
		t.Fatal(err)
	}
	d, err := dataset.Load("npz:../testdata/fixtures/attacks/fmnist_test_5000_5300.npz", dataset.Options{N: 23})
	if err != nil {
		t.Fatal(err)
	}
	list := []attacks.Attack{
		&attacks.APGD{Epsilon: 0.1, Steps: 10},
		&attacks.APGDT{Epsilon: 0.1, Steps: 10, Targets: 3},
		&attacks.FAB{Epsilon: 0.1, Steps: 10, Targets: 3},
		&attacks.Square{Epsilon: 0.1, Queries: 300},
	}
	run := func(noWorkers bool) (*attacks.EvalResult, *attacks.AdvAccuracy) {
		c, err := NewClassifier(m, Options{Threads: 2, NoWorkers: noWorkers})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := len(c.Workers()); (got == 2) == noWorkers {
			t.Fatalf("NoWorkers %v: %d workers", noWorkers, got)
		}
		ev, err := attacks.Evaluate(context.Background(), c, d.X, d.Y, list, attacks.EvalOptions{BatchSize: 16})
		if err != nil {
			t.Fatal(err)
		}
		aa, err := attacks.AdversarialAccuracy(context.Background(), c, d.X, d.Y, &attacks.PGD{Epsilon: 0.1, Steps: 5}, 16, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ev, aa
	}
	want, wantPGD := run(true)
	got, gotPGD := run(false)
	if !slices.Equal(got.Samples, want.Samples) {
		t.Errorf("per-point results differ:\n got %+v\nwant %+v", got.Samples, want.Samples)
	}
	if !equalBits(got.Adv, want.Adv) || !equalBits(gotPGD.Adv, wantPGD.Adv) {
		t.Error("adversarial examples differ")
	}
	if !slices.Equal(gotPGD.Pred, wantPGD.Pred) || gotPGD.Correct != wantPGD.Correct {
		t.Errorf("PGD adv-acc: %d correct, predictions %v; want %d, %v", gotPGD.Correct, gotPGD.Pred, wantPGD.Correct, wantPGD.Pred)
	}
	for i := range want.Attacks {
		g, w := got.Attacks[i], want.Attacks[i]
		if g.Broken != w.Broken || g.Attacked != w.Attacked || g.ZeroGrad != w.ZeroGrad ||
			g.Counts.GradSamples != w.Counts.GradSamples || g.Counts.ForwardSamples != w.Counts.ForwardSamples {
			t.Errorf("%s: split %+v; unsplit %+v", w.Name, g, w)
		}
	}
	broken := 0
	for _, s := range want.Samples {
		if s.BrokenBy != "" && s.BrokenBy != "clean" {
			broken++
		}
	}
	if broken == 0 {
		t.Error("no attack broke a point: the comparison shows nothing")
	}
}

func equalBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
