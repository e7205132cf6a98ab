//go:build cgo

package analyzer

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// TestPackInputsEqualsModel feeds the head's outputs, flattened and laid
// side by side, to the packed tail at every cut of a fixture with a skip
// connection (cuts of one and of two tensors) and checks the logits.
func TestPackInputsEqualsModel(t *testing.T) {
	const path = "../testdata/models/resnet10_cifar_eval.onnx"
	m, err := onnxio.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	an, err := Analyze(m)
	if err != nil {
		t.Fatal(err)
	}
	x, want := goldenInput(t, path, an)
	n := int(x.Shape[0])
	scale := 0.0
	for _, v := range want {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	ctx := context.Background()
	multi := 0
	for a := 1; a < len(an.Layers); a++ {
		c, err := an.CutAfter(a)
		if err != nil {
			t.Fatal(err)
		}
		head, tail, err := an.Split(c)
		if err != nil {
			t.Fatal(err)
		}
		packed, parts, err := PackInputs(tail, "features")
		if err != nil {
			t.Fatalf("cut after %d: %v", a, err)
		}
		if len(parts) != len(c.Tensors) {
			t.Fatalf("cut after %d: %d packed parts for %d cut tensors", a, len(parts), len(c.Tensors))
		}
		if len(parts) > 1 {
			multi++
		}
		var names []string
		for _, p := range parts {
			names = append(names, p.Name)
		}
		hs := session(t, head)
		out, err := hs.Run(ctx, map[string]ort.Tensor{hs.InputNames()[0]: x}, names)
		if err != nil {
			t.Fatal(err)
		}
		var d int64
		for _, p := range parts {
			d += p.Size
		}
		feats := make([]float32, int64(n)*d)
		for _, p := range parts {
			v := out[p.Name].Float32
			for i := range n {
				copy(feats[int64(i)*d+p.Offset:int64(i)*d+p.Offset+p.Size], v[int64(i)*p.Size:int64(i+1)*p.Size])
			}
		}
		ts := session(t, packed)
		if got := ts.InputNames(); len(got) != 1 || got[0] != "features" {
			t.Fatalf("cut after %d: packed tail takes %q; want [features]", a, got)
		}
		res, err := ts.Run(ctx, map[string]ort.Tensor{"features": {Shape: []int64{int64(n), d}, Float32: feats}}, nil)
		if err != nil {
			t.Fatalf("cut after %d: %v", a, err)
		}
		got := res[ts.OutputNames()[0]].Float32
		if e := maxDiff(got, want); e > 1e-4*math.Max(1, scale) {
			t.Errorf("cut after %d (%d tensors): packed tail differs from the model by %.3g", a, len(parts), e)
		}
	}
	if multi == 0 {
		t.Fatal("no cut of two tensors was checked")
	}
}

func TestPackInputsRejects(t *testing.T) {
	m, err := onnxio.Read("../testdata/models/resnet10_cifar_eval.onnx")
	if err != nil {
		t.Fatal(err)
	}
	in := m.Graph().GetInput()[0].GetName()
	for name, want := range map[string]string{"": "not a new tensor name", in: "not a new tensor name", "/conv1/Conv_output_0": "not a new tensor name"} {
		if _, _, err := PackInputs(m, name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("PackInputs(%q): err = %v; want %q", name, err, want)
		}
	}
}
