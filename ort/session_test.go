//go:build cgo

package ort

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/semirobust/srtool/ort/internal/onnxtest"
)

// needLib loads ONNX Runtime or fails the test: the library is part of the
// test setup (`make test` fetches it), so a missing one is not a skip.
func needLib(t testing.TB) {
	t.Helper()
	p, err := LibraryLookup()
	if err != nil {
		t.Fatalf("this test needs ONNX Runtime: %v", err)
	}
	if err := Init(p); err != nil {
		t.Fatalf("this test needs ONNX Runtime: %v (run `make ort`)", err)
	}
}

func newSession(t testing.TB, m onnxtest.Model, opts Options) *Session {
	t.Helper()
	needLib(t)
	s, err := NewSession(m.Marshal(), opts)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func randFloats(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// linearRef computes Relu(x·w + b) in float64 for x [n, in], w [in, out].
func linearRef(x, w, b []float32) []float32 {
	out := len(b)
	in := len(w) / out
	n := len(x) / in
	y := make([]float32, n*out)
	for i := 0; i < n; i++ {
		for j := 0; j < out; j++ {
			s := float64(b[j])
			for k := 0; k < in; k++ {
				s += float64(x[i*in+k]) * float64(w[k*out+j])
			}
			y[i*out+j] = float32(math.Max(s, 0))
		}
	}
	return y
}

func closeTo(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s has %d values; want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("%s[%d] = %g; want %g (Go reference)", what, i, got[i], want[i])
		}
	}
}

func TestRunLinear(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	w, b := randFloats(r, 3*4), randFloats(r, 4)
	for _, opts := range []Options{{}, {Threads: 1}, {Device: Device{Kind: "cpu"}, DisableOptimizations: true}} {
		s := newSession(t, onnxtest.Linear(w, b), opts)
		if got := s.InputNames(); len(got) != 1 || got[0] != "X" {
			t.Errorf("InputNames() = %q; want [X]", got)
		}
		if got := s.OutputNames(); len(got) != 1 || got[0] != "Y" {
			t.Errorf("OutputNames() = %q; want [Y]", got)
		}
		if got := s.Inputs()[0].Shape; len(got) != 2 || got[0] != -1 || got[1] != 3 {
			t.Errorf("Inputs()[0].Shape = %v; want [-1 3]", got)
		}
		for _, n := range []int{1, 5} {
			x := randFloats(r, n*3)
			out, err := s.Run(context.Background(), map[string]Tensor{"X": {Shape: []int64{int64(n), 3}, Float32: x}}, nil)
			if err != nil {
				t.Fatalf("Run(%+v, n=%d): %v", opts, n, err)
			}
			y := out["Y"]
			if len(y.Shape) != 2 || y.Shape[0] != int64(n) || y.Shape[1] != 4 || y.Int64 != nil {
				t.Fatalf("Run(%+v, n=%d) gives Y of shape %v; want [%d 4] float32", opts, n, y.Shape, n)
			}
			closeTo(t, "Y", y.Float32, linearRef(x, w, b))
		}
	}
}

// multiModel: Y = Relu(X·W + B) [N,3]→[N,2]; C = ArgMax(Y, axis 1) + L (int64);
// S = ReduceSum(Y) as a rank-0 scalar.
func multiModel(w, b []float32) onnxtest.Model {
	m := onnxtest.Linear(w, b)
	m.Nodes = append(m.Nodes,
		onnxtest.Node{Op: "ArgMax", Inputs: []string{"Y"}, Outputs: []string{"A"}, Attrs: []onnxtest.Attr{{Name: "axis", Int: 1}, {Name: "keepdims", Int: 0}}},
		onnxtest.Node{Op: "Add", Inputs: []string{"A", "L"}, Outputs: []string{"C"}},
		onnxtest.Node{Op: "ReduceSum", Inputs: []string{"Y"}, Outputs: []string{"S"}, Attrs: []onnxtest.Attr{{Name: "keepdims", Int: 0}}},
	)
	m.Inputs = append(m.Inputs, onnxtest.Value{Name: "L", ElemType: onnxtest.Int64, Dims: []int64{-1}})
	m.Outputs = append(m.Outputs,
		onnxtest.Value{Name: "C", ElemType: onnxtest.Int64, Dims: []int64{-1}},
		onnxtest.Value{Name: "S", ElemType: onnxtest.Float, Dims: []int64{}})
	return m
}

func TestRunMultipleOutputs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	w, b := randFloats(r, 3*2), randFloats(r, 2)
	s := newSession(t, multiModel(w, b), Options{Threads: 1})
	if got := strings.Join(s.InputNames(), ","); got != "X,L" {
		t.Errorf("InputNames() = %s; want X,L", got)
	}
	if got := strings.Join(s.OutputNames(), ","); got != "Y,C,S" {
		t.Errorf("OutputNames() = %s; want Y,C,S", got)
	}
	const n = 6
	x := randFloats(r, n*3)
	l := []int64{0, 10, 20, 30, 40, 50}
	in := map[string]Tensor{"X": {Shape: []int64{n, 3}, Float32: x}, "L": {Shape: []int64{n}, Int64: l}}
	out, err := s.Run(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	y := linearRef(x, w, b)
	closeTo(t, "Y", out["Y"].Float32, y)
	var sum float64
	for i := 0; i < n; i++ {
		want := l[i]
		if y[i*2+1] > y[i*2] {
			want++
		}
		if c := out["C"]; c.Int64 == nil || len(c.Shape) != 1 || c.Int64[i] != want {
			t.Errorf("C = %v %v; want C[%d] = %d", c.Shape, c.Int64, i, want)
		}
		sum += float64(y[i*2]) + float64(y[i*2+1])
	}
	if sc := out["S"]; len(sc.Shape) != 0 || len(sc.Float32) != 1 || math.Abs(float64(sc.Float32[0])-sum) > 1e-4 {
		t.Errorf("S = %v %v; want scalar %g", sc.Shape, sc.Float32, sum)
	}

	// A subset of outputs.
	out, err = s.Run(context.Background(), in, []string{"C"})
	if err != nil || len(out) != 1 || out["C"].Int64 == nil {
		t.Errorf("Run(outputs=[C]) = %v, %v; want only C", out, err)
	}

	// Misuse is an error naming the problem, never a panic.
	bad := []struct {
		name    string
		in      map[string]Tensor
		outputs []string
		want    string
	}{
		{"missing input", map[string]Tensor{"X": in["X"]}, nil, `missing input "L"`},
		{"unknown input", map[string]Tensor{"X": in["X"], "L": in["L"], "Z": in["L"]}, nil, `unknown input "Z"`},
		{"unknown output", in, []string{"Q"}, `unknown output "Q"`},
		{"output twice", in, []string{"Y", "Y"}, "twice"},
		{"wrong type", map[string]Tensor{"X": in["X"], "L": {Shape: []int64{n}, Float32: make([]float32, n)}}, nil, "wants int64"},
		{"short data", map[string]Tensor{"X": {Shape: []int64{n, 3}, Float32: x[:5]}, "L": in["L"]}, nil, "needs 18 elements"},
		{"both types", map[string]Tensor{"X": {Shape: []int64{n, 3}, Float32: x, Int64: l}, "L": in["L"]}, nil, "both"},
		{"wrong rank", map[string]Tensor{"X": {Shape: []int64{n * 3}, Float32: x}, "L": in["L"]}, nil, "ort: run"},
		{"batch mismatch", map[string]Tensor{"X": in["X"], "L": {Shape: []int64{2}, Int64: l[:2]}}, nil, "ort: run"},
	}
	for _, tt := range bad {
		if out, err := s.Run(context.Background(), tt.in, tt.outputs); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Run(%s) = %v, %v; want an error containing %q", tt.name, out, err, tt.want)
		}
	}
}

func TestRunScalarInput(t *testing.T) {
	m := onnxtest.Model{
		Nodes:   []onnxtest.Node{{Op: "Add", Inputs: []string{"A", "A"}, Outputs: []string{"Y"}}},
		Inputs:  []onnxtest.Value{{Name: "A", ElemType: onnxtest.Int64, Dims: []int64{}}},
		Outputs: []onnxtest.Value{{Name: "Y", ElemType: onnxtest.Int64, Dims: []int64{}}},
	}
	s := newSession(t, m, Options{})
	out, err := s.Run(context.Background(), map[string]Tensor{"A": {Int64: []int64{21}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if y := out["Y"]; len(y.Shape) != 0 || len(y.Int64) != 1 || y.Int64[0] != 42 {
		t.Errorf("21+21 = %+v; want scalar 42", y)
	}
}

// slowModel chains k MatMuls of a [d, d] input with a [d, d] weight: about
// 2·k·d³ flops, seconds on one thread for d = 1024, k = 64.
func slowModel(d, k int) onnxtest.Model {
	m := onnxtest.Model{
		Inits:   []onnxtest.Init{{Name: "W", Dims: []int64{int64(d), int64(d)}, Float32: make([]float32, d*d)}},
		Inputs:  []onnxtest.Value{{Name: "X", ElemType: onnxtest.Float, Dims: []int64{int64(d), int64(d)}}},
		Outputs: []onnxtest.Value{{Name: "Y", ElemType: onnxtest.Float, Dims: []int64{int64(d), int64(d)}}},
	}
	prev := "X"
	for i := 0; i < k; i++ {
		next := "h" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if i == k-1 {
			next = "Y"
		}
		m.Nodes = append(m.Nodes, onnxtest.Node{Op: "MatMul", Inputs: []string{prev, "W"}, Outputs: []string{next}})
		prev = next
	}
	return m
}

func TestRunCancel(t *testing.T) {
	const d = 1024
	s := newSession(t, slowModel(d, 64), Options{Threads: 1})
	in := map[string]Tensor{"X": {Shape: []int64{d, d}, Float32: make([]float32, d*d)}}

	// Already cancelled: nothing runs.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Run(ctx, in, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Run(cancelled ctx) = %v; want context.Canceled", err)
	}

	// Cancelled while running: ONNX Runtime stops between nodes.
	for _, mk := range []func() (context.Context, context.CancelFunc){
		func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		},
		func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		},
	} {
		ctx, cancel := mk()
		start := time.Now()
		_, err := s.Run(ctx, in, nil)
		elapsed := time.Since(start)
		cancel()
		if err == nil || !errors.Is(err, ctx.Err()) {
			t.Errorf("Run cancelled after 50ms = %v after %v; want %v", err, elapsed, ctx.Err())
		}
		if elapsed > 2*time.Second {
			t.Errorf("Run cancelled after 50ms returned after %v; want it to stop within a node or two", elapsed)
		}
	}

	// The session still works afterwards.
	small := newSession(t, onnxtest.Linear([]float32{1}, []float32{0}), Options{})
	if _, err := small.Run(context.Background(), map[string]Tensor{"X": {Shape: []int64{1, 1}, Float32: []float32{1}}}, nil); err != nil {
		t.Errorf("Run after a cancelled run: %v", err)
	}
}

func TestNewSessionErrors(t *testing.T) {
	needLib(t)
	unknownOp := onnxtest.Linear([]float32{1}, []float32{0})
	unknownOp.Nodes[2].Op = "NoSuchOp"
	danglingInput := onnxtest.Linear([]float32{1}, []float32{0})
	danglingInput.Nodes[0].Inputs[0] = "nowhere"
	for name, tt := range map[string]struct {
		model []byte
		opts  Options
	}{
		"nil bytes":      {nil, Options{}},
		"garbage":        {[]byte("definitely not protobuf \xff\xff\xff"), Options{}},
		"truncated":      {onnxtest.Linear([]float32{1}, []float32{0}).Marshal()[:20], Options{}},
		"unknown op":     {unknownOp.Marshal(), Options{}},
		"dangling input": {danglingInput.Marshal(), Options{}},
		"no inputs":      {onnxtest.Model{Outputs: []onnxtest.Value{{Name: "Y", ElemType: onnxtest.Float}}}.Marshal(), Options{}},
		"bad device":     {onnxtest.Linear([]float32{1}, []float32{0}).Marshal(), Options{Device: Device{Kind: "tpu"}}},
		"bad threads":    {onnxtest.Linear([]float32{1}, []float32{0}).Marshal(), Options{Threads: -1}},
		"bad cuda opt":   {onnxtest.Linear([]float32{1}, []float32{0}).Marshal(), Options{Device: Device{Kind: "cuda"}, CUDAOptions: map[string]string{"device_id": "7"}}},
	} {
		s, err := NewSession(tt.model, tt.opts)
		if err == nil {
			s.Close()
			t.Errorf("NewSession(%s) = nil error; want one", name)
			continue
		}
		if s != nil {
			t.Errorf("NewSession(%s) returned a session with error %v", name, err)
		}
		if !strings.HasPrefix(err.Error(), "ort: ") {
			t.Errorf("NewSession(%s) error %q; want it to start with \"ort: \"", name, err)
		}
	}
}

func TestClose(t *testing.T) {
	needLib(t)
	s, err := NewSession(onnxtest.Linear([]float32{1}, []float32{0}).Marshal(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close() = %v; want nil", err)
	}
	if _, err := s.Run(context.Background(), map[string]Tensor{"X": {Shape: []int64{1, 1}, Float32: []float32{1}}}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close = %v; want ErrClosed", err)
	}
	var nilSession *Session
	if err := nilSession.Close(); err != nil {
		t.Errorf("(*Session)(nil).Close() = %v", err)
	}
	if _, err := nilSession.Run(context.Background(), nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("(*Session)(nil).Run = %v; want ErrClosed", err)
	}
	if err := new(Session).Close(); err != nil {
		t.Errorf("zero Session Close() = %v", err)
	}
}

func TestConcurrentRun(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	w, b := randFloats(r, 8*3), randFloats(r, 3)
	s := newSession(t, onnxtest.Linear(w, b), Options{Threads: 1})
	var wg sync.WaitGroup
	errs := make([]error, 8)
	xs := make([][]float32, 8)
	ys := make([][]float32, 8)
	for i := range xs {
		xs[i] = randFloats(r, (i+1)*8)
	}
	for i := range xs {
		wg.Go(func() {
			for range 20 {
				out, err := s.Run(context.Background(), map[string]Tensor{"X": {Shape: []int64{int64(i + 1), 8}, Float32: xs[i]}}, nil)
				if err != nil {
					errs[i] = err
					return
				}
				ys[i] = out["Y"].Float32
			}
		})
	}
	wg.Wait()
	for i := range xs {
		if errs[i] != nil {
			t.Fatalf("goroutine %d: %v", i, errs[i])
		}
		closeTo(t, "Y", ys[i], linearRef(xs[i], w, b))
	}
}

// The npm package is the CPU build, so CUDA must fail with the one-sentence
// install hint rather than fall back to the CPU or crash.
func TestCUDAUnavailable(t *testing.T) {
	needLib(t)
	for _, dev := range []Device{{Kind: "cuda"}, {Kind: "cuda", ID: 1}} {
		s, err := NewSession(onnxtest.Linear([]float32{1}, []float32{0}).Marshal(), Options{Device: dev})
		if err == nil {
			s.Close()
			t.Skipf("NewSession on %s succeeded: this ONNX Runtime has a working CUDA provider", dev)
		}
		var ce *CUDAUnavailableError
		if !errors.As(err, &ce) {
			t.Fatalf("NewSession(%s) = %v (%T); want a *CUDAUnavailableError", dev, err, err)
		}
		if ce.Device != dev || ce.Err == nil || ce.Library == "" || errors.Unwrap(ce) != ce.Err {
			t.Errorf("CUDAUnavailableError = %+v; want device %s, the library and ONNX Runtime's cause", ce, dev)
		}
		for _, want := range []string{dev.String(), "install the GPU build of ONNX Runtime 1.30", "CUDA 12.x and cuDNN 9", LibraryEnv} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("NewSession(%s) error %q; want it to contain %q", dev, err, want)
			}
		}
		t.Logf("%s: %v", dev, err)
	}
}

func TestRunUnsupportedOutputType(t *testing.T) {
	m := onnxtest.Model{
		Nodes:   []onnxtest.Node{{Op: "Greater", Inputs: []string{"X", "X"}, Outputs: []string{"Y"}}},
		Inputs:  []onnxtest.Value{{Name: "X", ElemType: onnxtest.Float, Dims: []int64{-1}}},
		Outputs: []onnxtest.Value{{Name: "Y", ElemType: 9, Dims: []int64{-1}}}, // BOOL
	}
	s := newSession(t, m, Options{})
	if got := s.Outputs(); len(got) != 1 || got[0].ElemType != 9 {
		t.Errorf("Outputs() = %+v; want one BOOL output", got)
	}
	out, err := s.Run(context.Background(), map[string]Tensor{"X": {Shape: []int64{2}, Float32: []float32{1, 2}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("Run with a bool output = %v, %v; want a \"not supported\" error", out, err)
	}
}

// TestWrongDeclaredOutputShape: a user model may declare a static output
// shape its run does not produce (here [1, 2] for a batch of 3); ONNX
// Runtime tolerates that unless the output is preallocated, so user-model
// sessions must not preallocate.
func TestWrongDeclaredOutputShape(t *testing.T) {
	needLib(t)
	m := onnxtest.Linear([]float32{1, 0, 0, 1}, []float32{0, 0})
	m.Outputs[0].Dims = []int64{1, 2}
	s, err := NewSession(m.Marshal(), Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(context.Background(), map[string]Tensor{"X": {Shape: []int64{3, 2}, Float32: []float32{1, 2, 3, 4, 5, 6}}}, nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if got := out["Y"]; !slices.Equal(got.Shape, []int64{3, 2}) || !slices.Equal(got.Float32, []float32{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("Y = %v %v; want [3 2] and the input", got.Shape, got.Float32)
	}
}

// NewModelSession takes a model as onnxio holds it and runs it like
// NewSession runs its bytes.
func TestNewModelSession(t *testing.T) {
	needLib(t)
	r := rand.New(rand.NewPCG(9, 10))
	w, b := randFloats(r, 3*2), randFloats(r, 2)
	m := multiModel(w, b)
	s, err := NewModelSession(m.Proto(), Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ref := newSession(t, m, Options{Threads: 1})
	if got, want := s.Inputs(), ref.Inputs(); !reflect.DeepEqual(got, want) {
		t.Errorf("NewModelSession inputs %+v; NewSession gives %+v", got, want)
	}
	if got, want := s.Outputs(), ref.Outputs(); !reflect.DeepEqual(got, want) {
		t.Errorf("NewModelSession outputs %+v; NewSession gives %+v", got, want)
	}
	x := randFloats(r, 4*3)
	in := map[string]Tensor{"X": {Shape: []int64{4, 3}, Float32: x}, "L": {Shape: []int64{4}, Int64: make([]int64, 4)}}
	out, err := s.Run(context.Background(), in, []string{"Y"})
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "Y", out["Y"].Float32, linearRef(x, w, b))
}

// Preallocated outputs (static float shapes) come back as they would
// without, run after run; other names are ignored.
func TestPreallocate(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	w, b := randFloats(r, 2*2), randFloats(r, 2)
	m := onnxtest.Linear(w, b)
	m.Inputs[0].Dims = []int64{3, 2}
	m.Outputs[0].Dims = []int64{3, 2}
	s := newSession(t, m, Options{Threads: 1})
	s.Preallocate("Y", "not an output")
	var nilSession *Session
	nilSession.Preallocate("Y") // no panic
	var prev []float32
	for i := range 3 {
		x := randFloats(r, 3*2)
		out, err := s.Run(context.Background(), map[string]Tensor{"X": {Shape: []int64{3, 2}, Float32: x}}, nil)
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		y := out["Y"]
		if !slices.Equal(y.Shape, []int64{3, 2}) {
			t.Fatalf("run %d: Y has shape %v; want [3 2]", i, y.Shape)
		}
		closeTo(t, "Y", y.Float32, linearRef(x, w, b))
		if prev != nil && len(prev) > 0 && &prev[0] == &y.Float32[0] {
			t.Fatalf("run %d returned the previous run's Y slice; each run must own its outputs", i)
		}
		prev = y.Float32
	}
}
