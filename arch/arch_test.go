package arch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/onnxio"
)

// fullSize is testdata/full_size.json, written by testdata/gen.py from the
// PyTorch reference modules (torch 1.13).
type fullSize map[string]struct {
	StateDict  [][2]json.RawMessage `json:"state_dict"`
	Parameters int64                `json:"parameters"`
}

// fullNames are the full-size default architectures gen.py describes.
var fullNames = []string{"resnet18", "preact-resnet18", "preact-resnet18-bn", "wrn-34-10", "wrn-28-10"}

var built struct {
	sync.Mutex
	m map[string]*onnxio.Model
}

// buildFull builds name with the zero Config once per test binary (the WRNs
// hold tens of millions of parameters).
func buildFull(t *testing.T, name string) *onnxio.Model {
	t.Helper()
	built.Lock()
	defer built.Unlock()
	if m, ok := built.m[name]; ok {
		return m
	}
	m, err := Build(name, Config{})
	if err != nil {
		t.Fatalf("Build(%q, Config{}): %v", name, err)
	}
	if built.m == nil {
		built.m = map[string]*onnxio.Model{}
	}
	built.m[name] = m
	return m
}

func readFullSize(t *testing.T) fullSize {
	t.Helper()
	b, err := os.ReadFile("testdata/full_size.json")
	if err != nil {
		t.Fatal(err)
	}
	var fs fullSize
	if err := json.Unmarshal(b, &fs); err != nil {
		t.Fatal(err)
	}
	return fs
}

func isBuffer(name string) bool {
	return strings.HasSuffix(name, ".running_mean") || strings.HasSuffix(name, ".running_var")
}

// TestStateDictNames checks that the initializers are PyTorch's state_dict,
// in order, with PyTorch's shapes, and that the parameter counts agree.
func TestStateDictNames(t *testing.T) {
	fs := readFullSize(t)
	want := map[string]int64{ // well-known counts, as a check on the fixture itself
		"resnet18":  11_173_962,
		"wrn-34-10": 46_160_474,
	}
	for _, name := range fullNames {
		t.Run(name, func(t *testing.T) {
			ref, ok := fs[name]
			if !ok {
				t.Fatalf("%s missing from testdata/full_size.json; rerun testdata/gen.py", name)
			}
			if w, ok := want[name]; ok && ref.Parameters != w {
				t.Errorf("fixture says %d parameters; want %d", ref.Parameters, w)
			}
			var wantList []string
			for _, e := range ref.StateDict {
				var n string
				var shape []int64
				if json.Unmarshal(e[0], &n) != nil || json.Unmarshal(e[1], &shape) != nil {
					t.Fatalf("bad fixture entry %s", e)
				}
				wantList = append(wantList, fmt.Sprint(n, shape))
			}
			m := buildFull(t, name)
			var gotList []string
			var params int64
			for _, init := range m.Graph().GetInitializer() {
				gotList = append(gotList, fmt.Sprint(init.GetName(), init.GetDims()))
				if !isBuffer(init.GetName()) {
					params += onnxio.NumElements(init)
				}
			}
			if !reflect.DeepEqual(gotList, wantList) {
				t.Errorf("initializers differ from PyTorch's state_dict:\n%s", listDiff(gotList, wantList))
			}
			if params != ref.Parameters {
				t.Errorf("%d parameters; want %d (PyTorch)", params, ref.Parameters)
			}
		})
	}
}

func listDiff(got, want []string) string {
	var b strings.Builder
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			fmt.Fprintf(&b, "  [%d] got %q, want %q\n", i, g, w)
		}
		if b.Len() > 2000 {
			b.WriteString("  …\n")
			break
		}
	}
	return b.String()
}

// TestGraph checks every architecture with onnxio's validator and shape
// inference: all shapes known, the batch symbolic, logits [batch, classes].
func TestGraph(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
	}{
		{"resnet18", Config{}},
		{"preact-resnet18", Config{}},
		{"preact-resnet18-bn", Config{}},
		{"wrn-34-10", Config{}},
		{"wrn-28-10", Config{}},
		{"resnet-small", Config{Width: 8}},
		{"resnet-small", Config{In: [3]int{1, 28, 28}, Classes: 2, Width: 4}},
		{"resnet18", Config{In: [3]int{3, 64, 48}, Classes: 100, Width: 4}},
		{"wrn-16-1", Config{In: [3]int{1, 28, 28}, Classes: 3, Width: 4}},
		{"wrn-40-2", Config{Width: 2}},
		{"preact-resnet18-bn", Config{Width: 2, Normalize: &Normalization{Mean: []float32{0.4914, 0.4822, 0.4465}, Std: []float32{0.2471, 0.2435, 0.2616}}}},
	}
	for _, c := range cases {
		sub := c.name + "/default"
		if c.cfg != (Config{}) {
			sub = fmt.Sprintf("%s/in=%v,classes=%d,width=%d,normalize=%v", c.name, c.cfg.In, c.cfg.Classes, c.cfg.Width, c.cfg.Normalize != nil)
		}
		t.Run(sub, func(t *testing.T) {
			var m *onnxio.Model
			if c.cfg == (Config{}) {
				m = buildFull(t, c.name)
			} else {
				var err error
				if m, err = Build(c.name, c.cfg); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if m.Opset() != 17 || m.Proto.GetIrVersion() != 8 {
				t.Errorf("opset %d, IR %d; want 17, 8", m.Opset(), m.Proto.GetIrVersion())
			}
			s, err := onnxio.InferShapes(m)
			if err != nil {
				t.Fatalf("InferShapes: %v", err)
			}
			if len(s.Unknown) > 0 {
				t.Errorf("ops without shape rules: %v", s.Unknown)
			}
			for _, n := range m.Graph().GetNode() {
				for _, o := range n.GetOutput() {
					sh := s.Shape(o)
					if sh == nil || !sh[0].Known() && sh[0].Param != "batch" || !sh[1:].Static() {
						t.Errorf("%s %s: output %s has shape %v; want [batch, known…]", n.GetOpType(), n.GetName(), o, sh)
					}
				}
			}
			classes := int64(10)
			if c.cfg.Classes != 0 {
				classes = int64(c.cfg.Classes)
			}
			if got, want := s.Shape("logits"), (onnxio.Shape{onnxio.Sym("batch"), onnxio.D(classes)}); !reflect.DeepEqual(got, want) {
				t.Errorf("logits shape %v; want %v", got, want)
			}
			_, declared := onnxio.ValueInfoShape(m.Graph().GetOutput()[0])
			if !reflect.DeepEqual(declared, s.Shape("logits")) {
				t.Errorf("declared logits shape %v; inferred %v", declared, s.Shape("logits"))
			}
		})
	}
}

// TestWeightLayers counts weight layers as srtool's analyzer numbers them:
// ResNet-18 CIFAR has 21 (docs/layers.md §1), the [1,1,1,1] ResNet 13
// (testdata/models/resnet10_cifar), WRN-16-1 16 (testdata/models/wrn16_1).
func TestWeightLayers(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want int
	}{
		{"resnet18", Config{Width: 4}, 21},
		{"resnet-small", Config{Width: 8}, 13},
		{"preact-resnet18", Config{Width: 4}, 21},
		{"wrn-16-1", Config{Width: 8}, 16},
		// WRN-D-K: conv1, 2 convs × 3(D−4)/6 blocks, fc, and a convShortcut
		// for each group whose widths change (3 groups, or 2 when K = 1).
		{"wrn-34-10", Config{Width: 1}, 35},
		{"wrn-10-2", Config{Width: 2}, 11},
	}
	for _, c := range cases {
		m, err := Build(c.name, c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		a, err := analyzer.Analyze(m)
		if err != nil {
			t.Fatalf("%s: analyzer: %v", c.name, err)
		}
		if len(a.Layers) != c.want {
			t.Errorf("%s%+v has %d weight layers; want %d", c.name, c.cfg, len(a.Layers), c.want)
		}
	}
}

func TestHead(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"resnet-small", Config{Width: 2}, "AveragePool"},                        // 32 → 4×4 = kuangliu's avg_pool2d(4)
		{"resnet-small", Config{In: [3]int{1, 28, 28}, Width: 2}, "AveragePool"}, // 28 → 4×4
		{"resnet-small", Config{In: [3]int{3, 40, 40}, Width: 2}, "GlobalAveragePool"},
		{"wrn-10-1", Config{Width: 2}, "AveragePool"},                              // 32 → 8×8 = avg_pool2d(8)
		{"wrn-10-1", Config{In: [3]int{1, 28, 28}, Width: 2}, "GlobalAveragePool"}, // 28 → 7×7
	}
	for _, c := range cases {
		m, err := Build(c.name, c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, n := range m.Graph().GetNode() {
			if strings.HasSuffix(n.GetOpType(), "AveragePool") {
				got = n.GetOpType()
				if got == "AveragePool" {
					k := onnxio.GetInts(n, "kernel_shape", nil)
					if s := onnxio.GetInts(n, "strides", nil); !reflect.DeepEqual(k, s) {
						t.Errorf("%s%+v: AveragePool kernel %v, strides %v; want equal", c.name, c.cfg, k, s)
					}
				}
			}
		}
		if got != c.want {
			t.Errorf("%s%+v pools with %q; want %q", c.name, c.cfg, got, c.want)
		}
	}
}

func TestBatchNormAttributes(t *testing.T) {
	m, err := Build("wrn-10-1", Config{Width: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range m.Graph().GetNode() {
		switch n.GetOpType() {
		case "BatchNormalization":
			if e, mo, tm := onnxio.GetFloat(n, "epsilon", 0), onnxio.GetFloat(n, "momentum", 0), onnxio.GetInt(n, "training_mode", -1); e != 1e-5 || mo != 0.9 || tm != 0 {
				t.Errorf("%s: epsilon %g, momentum %g, training_mode %d; want 1e-5, 0.9, 0", n.GetName(), e, mo, tm)
			}
			if !strings.HasSuffix(n.GetInput()[1], ".weight") || !strings.HasSuffix(n.GetInput()[4], ".running_var") {
				t.Errorf("%s inputs %v", n.GetName(), n.GetInput())
			}
		case "Conv":
			if len(n.GetInput()) != 2 {
				t.Errorf("%s has %d inputs; want 2 (bias=False)", n.GetName(), len(n.GetInput()))
			}
		case "Gemm":
			if onnxio.GetInt(n, "transB", 0) != 1 {
				t.Errorf("%s: transB ≠ 1", n.GetName())
			}
		}
	}
}

func TestDeterminism(t *testing.T) {
	enc := func(seed uint64) []byte {
		m, err := Build("resnet-small", Config{Width: 8, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c := enc(7), enc(7), enc(8)
	if !bytes.Equal(a, b) {
		t.Errorf("two builds with seed 7 differ")
	}
	if bytes.Equal(a, c) || len(a) != len(c) {
		t.Errorf("seeds 7 and 8: equal=%v, sizes %d and %d; want different weights of the same size", bytes.Equal(a, c), len(a), len(c))
	}
}

func TestNames(t *testing.T) {
	want := []string{"preact-resnet18", "preact-resnet18-bn", "resnet-small", "resnet18", "wrn-28-10", "wrn-34-10"}
	if got := Names(); !reflect.DeepEqual(got, want) {
		t.Errorf("Names() = %v; want %v", got, want)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name    string
		cfg     Config
		want    string // substring of the error
		unknown bool
	}{
		{"resnet50", Config{}, "known: preact-resnet18, preact-resnet18-bn, resnet-small, resnet18, wrn-28-10, wrn-34-10, or wrn-D-K", true},
		{"", Config{}, "unknown architecture", true},
		{"wrn-33-10", Config{}, "depth 33 is not 6n+4", false},
		{"wrn-4-1", Config{}, "depth 4 is not 6n+4", false},
		{"wrn-34-0", Config{}, "widen factor 0", false},
		{"wrn-34", Config{}, "want wrn-D-K", false},
		{"wrn-a-b", Config{}, "want wrn-D-K", false},
		{"resnet18", Config{Classes: 1}, "1 classes; a classifier needs at least 2", false},
		{"resnet18", Config{Classes: -5}, "at least 2", false},
		{"resnet18", Config{In: [3]int{3, 4, 32}}, "input 4×32 is too small: the network downsamples by 8", false},
		{"wrn-16-1", Config{In: [3]int{3, 32, 3}}, "downsamples by 4", false},
		{"resnet-small", Config{In: [3]int{0, 32, 32}}, "below 1", false},
		{"preact-resnet18", Config{Width: -1}, "base width -1", false},
		{"resnet18", Config{Width: 1 << 12}, "exceed", false},
		{"resnet18", Config{Normalize: &Normalization{Mean: []float32{0.5}, Std: []float32{0.5}}}, "1 mean and 1 std values for 3 input channels", false},
		{"resnet18", Config{Normalize: &Normalization{Mean: []float32{0, 0, 0}, Std: []float32{1, 0, 1}}}, "positive std", false},
	}
	for _, c := range cases {
		m, err := Build(c.name, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) || errors.Is(err, ErrUnknownArch) != c.unknown {
			t.Errorf("Build(%q, %+v) = %v, %v; want an error containing %q (unknown architecture: %v)", c.name, c.cfg, m != nil, err, c.want, c.unknown)
		}
	}
	// The smallest accepted inputs build.
	for _, c := range []struct {
		name string
		in   [3]int
	}{{"resnet18", [3]int{3, 8, 8}}, {"wrn-10-1", [3]int{1, 4, 5}}} {
		if _, err := Build(c.name, Config{In: c.in, Width: 2, Classes: 2}); err != nil {
			t.Errorf("Build(%q, %v input): %v", c.name, c.in, err)
		}
	}
}
