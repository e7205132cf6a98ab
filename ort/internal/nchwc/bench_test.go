package nchwc_test

import (
	"context"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/semirobust/srtool/autodiff"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/ort/internal/nchwc"
)

func BenchmarkTrainStepLowered(b *testing.B) {
	path := os.Getenv("SRTOOL_BENCH_TRAIN_MODEL")
	if path == "" {
		b.Skip("set SRTOOL_BENCH_TRAIN_MODEL")
	}
	m, err := onnxio.Read(path)
	if err != nil {
		b.Fatal(err)
	}
	var ps []string
	for _, t := range m.Graph().GetInitializer() {
		n := t.GetName()
		if t.GetDataType() == onnxio.Float && !strings.HasSuffix(n, ".running_mean") && !strings.HasSuffix(n, ".running_var") {
			ps = append(ps, n)
		}
	}
	r, err := autodiff.Gradient(m, autodiff.Spec{WrtParams: ps, TrainBN: autodiff.BatchNorms(m)})
	if err != nil {
		b.Fatal(err)
	}
	gm := r.Model
	if os.Getenv("SRTOOL_BENCH_NCHWC") != "" {
		var st nchwc.Stats
		gm, _, st, err = nchwc.Lower(r.Model, 16)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("lowered: %+v", st)
	}
	enc, err := gm.Encode()
	if err != nil {
		b.Fatal(err)
	}
	s, err := ort.NewSession(enc, ort.Options{Threads: 2, ProfilePrefix: os.Getenv("SRTOOL_BENCH_PROFILE")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, 64*3*32*32)
	for i := range x {
		x[i] = rng.Float32()
	}
	y := make([]int64, 64)
	for i := range y {
		y[i] = rng.Int64N(10)
	}
	in := map[string]ort.Tensor{r.Input: {Shape: []int64{64, 3, 32, 32}, Float32: x}, r.Labels: {Shape: []int64{64}, Int64: y}}
	for name, tp := range r.Feeds {
		v, _ := onnxio.Float32s(tp)
		in[name] = ort.Tensor{Shape: tp.GetDims(), Float32: v}
	}
	outs := []string{r.Loss}
	for _, g := range r.ParamGrads {
		outs = append(outs, g)
	}
	ctx := context.Background()
	if _, err := s.Run(ctx, in, outs); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Run(ctx, in, outs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "images/s")
}
