//go:build cgo

package diffmodel

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
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
		c, err := NewClassifier(m, ort.Options{Threads: 2, NoWorkers: noWorkers})
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

// TestOutputsIndependentOfThreadsAndSplit is what Workers relies on: on the
// CPU, a sample's logits, loss and gradient are the same bits whether the
// session has 1 or 2 intra-op threads and whatever else is in its batch.
func TestOutputsIndependentOfThreadsAndSplit(t *testing.T) {
	for _, path := range []string{"../testdata/fixtures/attacks/fmnist_rn_w8_pgd.onnx", "../testdata/models/resnet10_cifar_eval.onnx", "../testdata/models/wrn16_1_eval.onnx"} {
		m, err := onnxio.Read(path)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := NewClassifier(m, ort.Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		c1, err := NewClassifier(m, ort.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		const n, lo = 37, 11
		d, k := c2.sampleSize(), c2.NumClasses()
		x := make([]float32, n*d)
		for i := range x {
			x[i] = float32((i*7919)%255) / 255
		}
		y, tg := make([]int64, n), make([]int64, n)
		for i := range y {
			y[i], tg[i] = int64(i%k), int64((i+3)%k)
		}
		ctx := context.Background()
		for _, kind := range []attacks.LossKind{attacks.CrossEntropy, attacks.TargetedDLR, attacks.LogitDiff} {
			l2, g2, z2, err := c2.LossGrad(ctx, x, n, attacks.Loss{Kind: kind, Labels: y, Targets: tg})
			if err != nil {
				t.Fatal(err)
			}
			l1, g1, z1, err := c1.LossGrad(ctx, x, n, attacks.Loss{Kind: kind, Labels: y, Targets: tg})
			if err != nil {
				t.Fatal(err)
			}
			ls, gs, zs, err := c1.LossGrad(ctx, x[lo*d:], n-lo, attacks.Loss{Kind: kind, Labels: y[lo:], Targets: tg[lo:]})
			if err != nil {
				t.Fatal(err)
			}
			if !equalBits(l1, l2) || !equalBits(g1, g2) || !equalBits(z1, z2) {
				t.Errorf("%s, %v: 1 and 2 threads give different outputs", path, kind)
			}
			if !equalBits(l1[lo:], ls) || !equalBits(g1[lo*d:], gs) || !equalBits(z1[lo*k:], zs) {
				t.Errorf("%s, %v: samples %d… alone give different outputs than in the whole batch", path, kind, lo)
			}
		}
		f2, err := c2.Logits(ctx, x, n)
		if err != nil {
			t.Fatal(err)
		}
		f1, err := c1.Logits(ctx, x[lo*d:], n-lo)
		if err != nil {
			t.Fatal(err)
		}
		if !equalBits(f1, f2[lo*k:]) {
			t.Errorf("%s: logits of samples %d… differ between 2 threads on the whole batch and 1 thread alone", path, lo)
		}
		c1.Close()
		c2.Close()
	}
}
