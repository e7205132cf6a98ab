//go:build cgo

package diffmodel

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/semirobust/srtool/autodiff"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// BenchmarkTrainStep measures what `srtool train` and `srtool finetune` do
// per batch: Trainer.Step (train-mode BN, mean cross-entropy, gradients of
// every parameter, new running statistics) plus the SGD update (lr 0.1, no
// momentum), on the --train-export ResNet-18 in $SRTOOL_BENCH_TRAIN_MODEL,
// batch 64, $SRTOOL_BENCH_THREADS threads (default 2). This is PyTorch's
// train_step in scripts/bench_pytorch.py. SRTOOL_BENCH_STANDARD_OPS=1 runs
// the standard-op graph instead of the NCHWc-lowered one.
func BenchmarkTrainStep(b *testing.B) {
	path := os.Getenv("SRTOOL_BENCH_TRAIN_MODEL")
	if path == "" {
		b.Skip("set SRTOOL_BENCH_TRAIN_MODEL to the --train-export ResNet-18 (scripts/export_resnet18.py) to run this benchmark")
	}
	threads := benchThreads(b)
	needLib(b)
	m, err := onnxio.Read(path)
	if err != nil {
		b.Fatal(err)
	}
	var trainable []string
	for _, t := range m.Graph().GetInitializer() {
		n := t.GetName()
		if t.GetDataType() == onnxio.Float && !strings.HasSuffix(n, ".running_mean") && !strings.HasSuffix(n, ".running_var") {
			trainable = append(trainable, n)
		}
	}
	opts := ort.Options{Threads: threads, StandardOpsOnly: os.Getenv("SRTOOL_BENCH_STANDARD_OPS") == "1", ProfilePrefix: os.Getenv("SRTOOL_BENCH_PROFILE")}
	tr, params, state, err := NewTrainer(m, opts, TrainerOptions{Trainable: trainable, TrainBN: autodiff.BatchNorms(m), HeadBN: "train"})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	const batch = 64
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, batch*3*32*32)
	for i := range x {
		x[i] = rng.Float32()
	}
	y := make([]int64, batch)
	for i := range y {
		y[i] = rng.Int64N(10)
	}
	ctx := context.Background()
	opt := finetune.SGD{LR: 0.1}
	ost := &finetune.OptimizerState{}
	step := func() {
		r, err := tr.Step(ctx, params, state, x, batch, y)
		if err != nil {
			b.Fatal(err)
		}
		if err := opt.Update(ost, params, r.Grads, 0.1, 0); err != nil {
			b.Fatal(err)
		}
		for k, v := range r.State {
			state[k] = v
		}
	}
	b.Run(fmt.Sprintf("batch=%d,threads=%d,standard_ops=%v", batch, threads, opts.StandardOpsOnly), func(b *testing.B) {
		step() // untimed
		images := 0
		for b.Loop() {
			step()
			images += batch
		}
		b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
	})
}
