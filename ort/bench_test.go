//go:build cgo

package ort

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// BenchmarkForward measures images/s of Forward at batch 64 on the ONNX
// model in $SRTOOL_BENCH_MODEL (one float32 input [N, …] with static sample
// dims, one output) with $SRTOOL_BENCH_THREADS intra-op threads (default 2).
//
//	SRTOOL_BENCH_MODEL=resnet18.onnx go test -run '^$' -bench Forward ./ort/
func BenchmarkForward(b *testing.B) {
	path := os.Getenv("SRTOOL_BENCH_MODEL")
	if path == "" {
		b.Skip("set SRTOOL_BENCH_MODEL to an .onnx classifier to run this benchmark")
	}
	threads := benchThreads(b)
	model, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	needLib(b)
	s, err := NewSession(model, Options{Threads: threads})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ins, outs := s.Inputs(), s.Outputs()
	if len(ins) != 1 || len(outs) != 1 {
		b.Fatalf("%s has inputs %q and outputs %q; want one of each", path, s.InputNames(), s.OutputNames())
	}
	in := ins[0]
	if len(in.Shape) < 2 {
		b.Fatalf("input %q has shape %v; want [N, …]", in.Name, in.Shape)
	}
	sample := make([]int, len(in.Shape)-1)
	size := 1
	for i, d := range in.Shape[1:] {
		if d < 1 {
			b.Fatalf("input %q has shape %v; want static sample dims", in.Name, in.Shape)
		}
		sample[i] = int(d)
		size *= int(d)
	}

	const batch = 64
	r := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, batch*size)
	for i := range x {
		x[i] = r.Float32()
	}
	ctx := context.Background()
	b.Run(fmt.Sprintf("batch=%d,threads=%d", batch, threads), func(b *testing.B) {
		// One untimed run so that allocation and kernel set-up are not measured.
		if _, _, err := Forward(ctx, s, in.Name, outs[0].Name, x, sample, batch, nil); err != nil {
			b.Fatal(err)
		}
		images := 0
		for b.Loop() {
			if _, _, err := Forward(ctx, s, in.Name, outs[0].Name, x, sample, batch, nil); err != nil {
				b.Fatal(err)
			}
			images += batch
		}
		b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
	})
}

// benchThreads is $SRTOOL_BENCH_THREADS, default 2.
func benchThreads(b *testing.B) int {
	v := os.Getenv("SRTOOL_BENCH_THREADS")
	if v == "" {
		return 2
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		b.Fatalf("SRTOOL_BENCH_THREADS=%q: want a number ≥ 0", v)
	}
	return n
}
