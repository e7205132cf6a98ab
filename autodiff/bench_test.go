package autodiff_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/semirobust/srtool/autodiff"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

const benchBatch = 64

// benchModel reads the model named by env, or skips.
func benchModel(b *testing.B, env string) *onnxio.Model {
	path := os.Getenv(env)
	if path == "" {
		b.Skipf("set %s to the ResNet-18 CIFAR export (scripts/export_resnet18.py) to run this benchmark", env)
	}
	return readModel(b, path)
}

func benchInputs(r *autodiff.Result) map[string]ort.Tensor {
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, benchBatch*3*32*32)
	for i := range x {
		x[i] = rng.Float32()
	}
	y := make([]int64, benchBatch)
	for i := range y {
		y[i] = rng.Int64N(10)
	}
	return map[string]ort.Tensor{r.Input: f32([]int64{benchBatch, 3, 32, 32}, x), r.Labels: i64([]int64{benchBatch}, y)}
}

func benchRun(b *testing.B, r *autodiff.Result, in map[string]ort.Tensor, outs []string) {
	s := newSession(b, r.Model)
	ctx := context.Background()
	b.Run(fmt.Sprintf("batch=%d,threads=%d", benchBatch, threads()), func(b *testing.B) {
		if _, err := s.Run(ctx, in, outs); err != nil { // warm-up, untimed
			b.Fatal(err)
		}
		images := 0
		for b.Loop() {
			if _, err := s.Run(ctx, in, outs); err != nil {
				b.Fatal(err)
			}
			images += benchBatch
		}
		b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
	})
}

// BenchmarkInputGradient measures forward + mean cross-entropy + d loss/d x
// (what attacks run every step) on $SRTOOL_BENCH_MODEL, batch 64,
// $SRTOOL_BENCH_THREADS intra-op threads (default 2).
func BenchmarkInputGradient(b *testing.B) {
	m := benchModel(b, "SRTOOL_BENCH_MODEL")
	r, err := autodiff.Gradient(m, autodiff.Spec{WrtInput: true})
	if err != nil {
		b.Fatal(err)
	}
	benchRun(b, r, benchInputs(r), []string{r.Loss, r.InputGrad})
}

// BenchmarkTrainStep measures one training step's graph (train-mode BN with
// running statistics, mean cross-entropy, gradients of every parameter) on
// $SRTOOL_BENCH_TRAIN_MODEL (the --train-export ResNet-18), batch 64. The
// SGD update itself (axpy in Go) is not included.
func BenchmarkTrainStep(b *testing.B) {
	m := benchModel(b, "SRTOOL_BENCH_TRAIN_MODEL")
	var ps []string
	for _, t := range m.Graph().GetInitializer() {
		if t.GetDataType() == onnxio.Float && !isRunningStat(t.GetName()) {
			ps = append(ps, t.GetName())
		}
	}
	r, err := autodiff.Gradient(m, autodiff.Spec{WrtParams: ps, TrainBN: autodiff.BatchNorms(m)})
	if err != nil {
		b.Fatal(err)
	}
	in := benchInputs(r)
	addFeeds(b, in, r)
	outs := []string{r.Loss}
	for _, g := range r.ParamGrads {
		outs = append(outs, g)
	}
	for _, s := range r.RunningStats {
		outs = append(outs, s)
	}
	benchRun(b, r, in, outs)
}

func isRunningStat(name string) bool {
	for _, s := range []string{".running_mean", ".running_var"} {
		if len(name) > len(s) && name[len(name)-len(s):] == s {
			return true
		}
	}
	return false
}
