package autodiff_test

import (
	"context"
	"errors"
	"github.com/semirobust/srtool/autodiff"
	"math"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

var ortOnce struct {
	sync.Once
	err error
}

// needORT skips the test in a build without cgo; a cgo build without a
// loadable ONNX Runtime library fails (make test fetches it first).
func needORT(t testing.TB) {
	t.Helper()
	ortOnce.Do(func() { ortOnce.err = ort.Init("") })
	if errors.Is(ortOnce.err, ort.ErrUnavailable) {
		t.Skipf("built without cgo: %v", ortOnce.err)
	}
	if ortOnce.err != nil {
		t.Fatalf("ONNX Runtime unavailable (run `make ort`): %v", ortOnce.err)
	}
}

func threads() int {
	if v, err := strconv.Atoi(os.Getenv("SRTOOL_BENCH_THREADS")); err == nil && v > 0 {
		return v
	}
	return 2
}

// newSession opens an ONNX Runtime session on m.
func newSession(t testing.TB, m *onnxio.Model) *ort.Session {
	t.Helper()
	needORT(t)
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// SRTOOL_BENCH_PROFILE=prefix writes ONNX Runtime's per-node trace
	// (scripts/ort_profile.py summarises it).
	s, err := ort.NewSession(b, ort.Options{Threads: threads(), ProfilePrefix: os.Getenv("SRTOOL_BENCH_PROFILE")})
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func run(t testing.TB, s *ort.Session, in map[string]ort.Tensor, outs ...string) map[string]ort.Tensor {
	t.Helper()
	res, err := s.Run(context.Background(), in, outs)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

// relL2 returns ‖got − want‖₂ / ‖want‖₂ (the absolute error when want is 0).
func relL2(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	var d, w float64
	for i := range got {
		e := float64(got[i]) - float64(want[i])
		d += e * e
		w += float64(want[i]) * float64(want[i])
	}
	if w == 0 {
		return math.Sqrt(d)
	}
	return math.Sqrt(d / w)
}

func f32(shape []int64, v []float32) ort.Tensor { return ort.Tensor{Shape: shape, Float32: v} }
func i64(shape []int64, v []int64) ort.Tensor   { return ort.Tensor{Shape: shape, Int64: v} }

func ints(v []int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

// addFeeds adds r.Feeds (initial parameter values) to in.
func addFeeds(t testing.TB, in map[string]ort.Tensor, r *autodiff.Result) {
	t.Helper()
	for name, tp := range r.Feeds {
		v, err := onnxio.Float32s(tp)
		if err != nil {
			t.Fatal(err)
		}
		in[name] = f32(tp.GetDims(), v)
	}
}
