//go:build cgo

package diffmodel

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/semirobust/srtool/autodiff"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// TestTrainerMatchesPyTorchSGDStep checks one full train-mode SGD step
// (lr 0.1, no momentum) against PyTorch's (testdata/gen_models.py): weights
// after the step and BN running statistics.
//
// It runs both the default CPU graph, whose convolutions with trained
// weights run on ONNX Runtime's NCHWc kernels (diffmodel/internal/nchwc), and the
// standard-op graph (Options.StandardOpsOnly).
func TestTrainerMatchesPyTorchSGDStep(t *testing.T) {
	bs, err := NCHWcBlockSize()
	if err != nil {
		t.Fatal(err)
	}
	for _, std := range []bool{false, true} {
		for _, name := range []string{"resnet10_cifar", "wrn16_1", "resnet10_imagenet"} {
			t.Run(fmt.Sprintf("%s/standard_ops=%v", name, std), func(t *testing.T) {
				trainerMatchesPyTorch(t, name, ort.Options{Threads: 1, StandardOpsOnly: std}, !std && bs > 0)
			})
		}
	}
}

// trainerMatchesPyTorch runs one SGD step of the named fixture; wantLowered
// asks that some convolutions were moved to the NCHWc kernels.
func trainerMatchesPyTorch(t *testing.T, name string, opts ort.Options, wantLowered bool) {
	{
		{
			m, err := onnxio.Read("../testdata/models/" + name + "_train.onnx")
			if err != nil {
				t.Fatal(err)
			}
			g, err := npy.ReadNPZ("../testdata/models/" + name + "_golden.npz")
			if err != nil {
				t.Fatal(err)
			}
			var trainable []string
			for k := range g {
				if p, ok := strings.CutPrefix(k, "step/"); ok {
					trainable = append(trainable, p)
				}
			}
			tr, params, state, err := NewTrainer(m, opts, TrainerOptions{Trainable: trainable, TrainBN: autodiff.BatchNorms(m), HeadBN: "train"})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			if moved := tr.sess.lowered.Convs + tr.sess.lowered.ConvTransposes; (moved > 0) != wantLowered {
				t.Fatalf("%d convolutions moved to NCHWc kernels (%+v); want some: %v", moved, tr.sess.lowered, wantLowered)
			}
			x := g["train_x"]
			y, _ := g["train_y"].Int64()
			r, err := tr.Step(context.Background(), params, state, x.Float32(), x.Shape[0], y)
			if err != nil {
				t.Fatal(err)
			}
			if want := g["train_loss"].Float32()[0]; math.Abs(float64(r.Loss-want)) > 1e-5*math.Max(1, math.Abs(float64(want))) {
				t.Errorf("loss = %v; want %v (PyTorch)", r.Loss, want)
			}
			opt := finetune.SGD{LR: 0.1}
			st := &finetune.OptimizerState{}
			if err := opt.Update(st, params, r.Grads, 0.1, 0); err != nil {
				t.Fatal(err)
			}
			for _, p := range trainable {
				if e := relL2(params[p], g["step/"+p].Float32()); e > 1e-4 {
					t.Errorf("%s after the step: relative L2 error %.2g vs PyTorch", p, e)
				}
			}
			checked := 0
			for k, want := range g {
				s, ok := strings.CutPrefix(k, "step_bn/")
				if !ok {
					continue
				}
				got, ok := r.State[s]
				if !ok {
					t.Errorf("no updated running statistic for %s", s)
					continue
				}
				if e := relL2(got, want.Float32()); e > 1e-5 {
					t.Errorf("%s after the step: relative L2 error %.2g vs PyTorch", s, e)
				}
				checked++
			}
			if checked == 0 {
				t.Errorf("golden file has no BN statistics")
			}
		}
	}
}

func TestTrainerRefusesNothingToTrain(t *testing.T) {
	m, err := onnxio.Read("../testdata/models/resnet10_cifar_train.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := NewTrainer(m, ort.Options{}, TrainerOptions{}); err == nil || !strings.Contains(err.Error(), "no trainable") {
		t.Errorf("NewTrainer without trainable parameters: err = %v", err)
	}
}

func relL2(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range a {
		d := float64(a[i] - b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(num / math.Max(den, 1e-30))
}

// TestTrainerTRADES runs TRADES steps on a fixture model: the loss is at
// least the clean cross-entropy part, gradients are finite and non-zero, the
// step is deterministic, and a few SGD steps lower the loss on the batch.
func TestTrainerTRADES(t *testing.T) {
	m, err := onnxio.Read("../testdata/models/resnet10_cifar_train.onnx")
	if err != nil {
		t.Fatal(err)
	}
	g, _ := npy.ReadNPZ("../testdata/models/resnet10_cifar_golden.npz")
	trainable := []string{"layer4.0.conv2.weight", "layer4.0.bn2.weight", "layer4.0.bn2.bias", "linear.weight", "linear.bias"}
	tr, params, state, err := NewTrainer(m, ort.Options{Threads: 1}, TrainerOptions{Trainable: trainable, TrainBN: []string{"/layer4/layer4.0/bn2/BatchNormalization"},
		HeadBN: "eval", TRADES: &TRADES{Epsilon: 8.0 / 255, StepSize: 2.0 / 255, Steps: 3}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	x := g["train_x"]
	y, _ := g["train_y"].Int64()
	ctx := context.Background()
	r1, err := tr.Step(ctx, params, state, x.Float32(), x.Shape[0], y)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := tr.Step(ctx, params, state, x.Float32(), x.Shape[0], y)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Loss != r2.Loss || math.IsNaN(float64(r1.Loss)) || r1.Loss <= 0 {
		t.Fatalf("TRADES loss %v then %v; want equal, finite and positive", r1.Loss, r2.Loss)
	}
	for _, p := range trainable {
		nz := false
		for i, v := range r1.Grads[p] {
			if math.IsNaN(float64(v)) || v != r2.Grads[p][i] {
				t.Fatalf("%s gradient not finite or not deterministic", p)
			}
			nz = nz || v != 0
		}
		if !nz {
			t.Errorf("%s gradient is all zero", p)
		}
	}
	opt := finetune.SGD{LR: 0.05}
	st := &finetune.OptimizerState{}
	first := r1.Loss
	var last float32
	for range 5 {
		r, err := tr.Step(ctx, params, state, x.Float32(), x.Shape[0], y)
		if err != nil {
			t.Fatal(err)
		}
		last = r.Loss
		if err := opt.Update(st, params, r.Grads, 0.05, 0); err != nil {
			t.Fatal(err)
		}
	}
	if !(last < first) {
		t.Errorf("TRADES loss went from %v to %v after 5 SGD steps; want it lower", first, last)
	}
}

// TestTRADESLogitsGraph checks the forward-only graph TRADES takes its
// logits from against the full training graph's logits (zero upstream
// gradient), both with training-mode BatchNorm.
func TestTRADESLogitsGraph(t *testing.T) {
	m, err := onnxio.Read("../testdata/models/resnet10_cifar_train.onnx")
	if err != nil {
		t.Fatal(err)
	}
	g, _ := npy.ReadNPZ("../testdata/models/resnet10_cifar_golden.npz")
	bns := autodiff.BatchNorms(m)
	tr, params, state, err := NewTrainer(m, ort.Options{Threads: 1}, TrainerOptions{Trainable: []string{"layer4.0.conv2.weight", "linear.weight"}, TrainBN: bns,
		HeadBN: "train", TRADES: &TRADES{Epsilon: 8.0 / 255, StepSize: 2.0 / 255, Steps: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if n, full := len(tr.fwd.InputNames()), len(tr.sess.InputNames()); n >= full {
		t.Errorf("the logits graph takes %d inputs, the training graph %d; want fewer (no labels, upstream gradient or running statistics)", n, full)
	}
	x := g["train_x"]
	n := x.Shape[0]
	shape := []int64{int64(n)}
	for _, d := range x.Shape[1:] {
		shape = append(shape, int64(d))
	}
	ctx := context.Background()
	feeds := map[string]ort.Tensor{tr.res.Input: {Shape: shape, Float32: x.Float32()}, tr.res.TargetProbs: {Shape: []int64{int64(n), int64(tr.k)}, Float32: make([]float32, n*tr.k)}}
	if err := tr.feedParams(feeds, params, state); err != nil {
		t.Fatal(err)
	}
	full, err := tr.sess.Run(ctx, feeds, []string{tr.res.Logits})
	if err != nil {
		t.Fatal(err)
	}
	fwdFeeds := map[string]ort.Tensor{}
	for _, name := range tr.fwd.InputNames() {
		fwdFeeds[name] = feeds[name]
	}
	only, err := tr.fwd.Run(ctx, fwdFeeds, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e := relL2(only[tr.res.Logits].Float32, full[tr.res.Logits].Float32); e > 1e-6 {
		t.Fatalf("logits-only graph differs from the training graph: relative L2 %.2g", e)
	}
	// Inference-mode BN would give other logits: the check can fail.
	clf, err := NewClassifier(m, ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer clf.Close()
	z, err := clf.Logits(ctx, x.Float32(), n)
	if err != nil {
		t.Fatal(err)
	}
	if e := relL2(z, full[tr.res.Logits].Float32); e < 1e-3 {
		t.Fatalf("training-mode and inference-mode logits agree (relative L2 %.2g); the comparison proves nothing", e)
	}
}
