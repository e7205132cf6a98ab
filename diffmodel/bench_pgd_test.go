//go:build cgo

package diffmodel

import (
	"context"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// BenchmarkPGD10 measures PGD-10 (L∞ 8/255, step 2/255, random start) on a
// batch of 64 through the Classifier, images/s, on the model in
// SRTOOL_BENCH_MODEL with SRTOOL_BENCH_THREADS threads (default 2).
// scripts/bench.sh runs it next to PyTorch's pgd10_img_s.
func BenchmarkPGD10(b *testing.B) {
	path := os.Getenv("SRTOOL_BENCH_MODEL")
	if path == "" {
		b.Skip("set SRTOOL_BENCH_MODEL to an ONNX classifier (scripts/bench.sh does)")
	}
	threads := benchThreads(b)
	m, err := onnxio.Read(path)
	if err != nil {
		b.Fatal(err)
	}
	var c *Classifier
	if os.Getenv("SRTOOL_BENCH_FED_PARAMS") == "1" {
		// Every weight fed at run time, as when a model under fine-tuning is
		// attacked (PGD training examples, evaluation after each epoch).
		var names []string
		for _, t := range m.Graph().GetInitializer() {
			if len(t.GetDims()) > 1 {
				names = append(names, t.GetName())
			}
		}
		c, err = NewClassifierWithParams(m, ort.Options{Threads: threads}, names)
	} else {
		c, err = NewClassifier(m, ort.Options{Threads: threads})
	}
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const n = 64
	d := 1
	for _, v := range c.InputShape() {
		d *= v
	}
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, n*d)
	for i := range x {
		x[i] = r.Float32()
	}
	y := make([]int64, n)
	for i := range y {
		y[i] = int64(r.IntN(c.NumClasses()))
	}
	pgd := &attacks.PGD{Epsilon: 8.0 / 255, StepSize: 2.0 / 255, Steps: 10, Seed: 1}
	if _, err := pgd.Run(context.Background(), c, x, y); err != nil { // warm-up
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := pgd.Run(context.Background(), c, x, y); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkInputGradient measures one forward + cross-entropy + input
// gradient of a batch of 64 through the Classifier (the call every gradient
// attack step makes, with the NCHWc lowering of the input-gradient graph),
// images/s, on the model in SRTOOL_BENCH_MODEL with SRTOOL_BENCH_THREADS
// threads (default 2). scripts/bench.sh runs it next to PyTorch's
// input_grad_img_s.
func BenchmarkInputGradient(b *testing.B) {
	c := benchClassifier(b)
	defer c.Close()
	const n = 64
	x := make([]float32, n*c.sampleSize())
	r := rand.New(rand.NewPCG(1, 2))
	for i := range x {
		x[i] = r.Float32()
	}
	y := make([]int64, n)
	for i := range y {
		y[i] = int64(r.IntN(c.NumClasses()))
	}
	loss := attacks.Loss{Kind: attacks.CrossEntropy, Labels: y}
	ctx := context.Background()
	if _, _, _, err := c.LossGrad(ctx, x, n, loss); err != nil { // warm-up
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, _, _, err := c.LossGrad(ctx, x, n, loss); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
}

// benchClassifier is a Classifier of the model in SRTOOL_BENCH_MODEL with
// SRTOOL_BENCH_THREADS threads, or skips the benchmark.
func benchClassifier(b *testing.B) *Classifier {
	path := os.Getenv("SRTOOL_BENCH_MODEL")
	if path == "" {
		b.Skip("set SRTOOL_BENCH_MODEL to an ONNX classifier (scripts/bench.sh does)")
	}
	m, err := onnxio.Read(path)
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewClassifier(m, ort.Options{Threads: benchThreads(b)})
	if err != nil {
		b.Fatal(err)
	}
	return c
}
