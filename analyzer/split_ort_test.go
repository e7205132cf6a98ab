//go:build cgo

package analyzer

import (
	"context"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

func session(t *testing.T, m *onnxio.Model) *ort.Session {
	t.Helper()
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(b, ort.Options{Threads: 1})
	if err != nil {
		t.Fatalf("ONNX Runtime session: %v (run `make ort` to fetch the library)", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// goldenInput returns the PyTorch golden input and logits saved next to a
// fixture export, or random inputs of the model's shape for the shared model.
func goldenInput(t *testing.T, path string, an *Analysis) (ort.Tensor, []float32) {
	t.Helper()
	if strings.HasPrefix(path, "../testdata/models/") {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(path, ".onnx"), "_eval"), "_train")
		arrs, err := npy.ReadNPZ(base + "_golden.npz")
		if err != nil {
			t.Fatal(err)
		}
		x := arrs["x"]
		shape := make([]int64, len(x.Shape))
		for i, d := range x.Shape {
			shape[i] = int64(d)
		}
		return ort.Tensor{Shape: shape, Float32: x.Float32()}, arrs["logits"].Float32()
	}
	if len(an.Index.Inputs) == 1 {
		if sh := an.Shapes.Shape(an.Index.Inputs[0]); len(sh) == 4 && sh[1].Value != 1 {
			// Any other model: deterministic pseudo-random pixels of its input shape.
			dims := []int64{2, sh[1].Value, sh[2].Value, sh[3].Value}
			n := dims[0] * dims[1] * dims[2] * dims[3]
			x := make([]float32, n)
			for i := range x {
				x[i] = float32((i*7919)%255) / 255
			}
			return ort.Tensor{Shape: dims, Float32: x}, nil
		}
	}
	arrs, err := npy.ReadNPZ("../testdata/fixtures/attacks/fmnist_test_5000_5300.npz")
	if err != nil {
		t.Fatal(err)
	}
	x := arrs["x"].Float32()[:8*28*28]
	for i := range x {
		x[i] /= 255
	}
	return ort.Tensor{Shape: []int64{8, 1, 28, 28}, Float32: x}, nil
}

// TestHeadTailEqualsModel checks head∘tail against the whole model at every
// cut of every fixture (and the model against PyTorch's logits).
func TestHeadTailEqualsModel(t *testing.T) {
	ctx := context.Background()
	paths := fixtures(t)
	// SRTOOL_EXTRA_SPLIT_MODELS adds large models that are not committed,
	// e.g. a torchvision ResNet-18 from scripts/export_torchvision_resnet18.py.
	if extra := os.Getenv("SRTOOL_EXTRA_SPLIT_MODELS"); extra != "" {
		paths = append(paths, strings.Split(extra, ",")...)
	}
	for _, path := range paths {
		an := analyze(t, path)
		in, golden := goldenInput(t, path, an)
		inName := an.Index.Inputs[0]
		outName := an.Index.Outputs[0]
		full, err := session(t, an.Model).Run(ctx, map[string]ort.Tensor{inName: in}, []string{outName})
		if err != nil {
			t.Fatal(err)
		}
		want := full[outName].Float32
		scale := 0.0
		for _, v := range want {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		if golden != nil {
			if d := maxDiff(want, golden); d > 1e-4*math.Max(1, scale) {
				t.Errorf("%s: ONNX Runtime logits differ from PyTorch's by %.3g", path, d)
			}
		}
		for a := 1; a < len(an.Layers); a++ {
			c, err := an.CutAfter(a)
			if err != nil {
				t.Fatal(err)
			}
			head, tail, err := an.Split(c)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, ct := range c.Tensors {
				names = append(names, ct.Name)
			}
			mid, err := session(t, head).Run(ctx, map[string]ort.Tensor{inName: in}, names)
			if err != nil {
				t.Fatalf("%s head at %d: %v", path, a, err)
			}
			out, err := session(t, tail).Run(ctx, mid, []string{outName})
			if err != nil {
				t.Fatalf("%s tail at %d: %v", path, a, err)
			}
			if d := maxDiff(out[outName].Float32, want); d > 1e-5*math.Max(1, scale) {
				t.Errorf("%s: head∘tail at layer %d differs from the model by %.3g (logit scale %.3g)", path, a, d, scale)
			}
		}
	}
}

func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}
