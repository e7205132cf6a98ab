//go:build cgo

package diffmodel

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
	"github.com/semirobust/srtool/ort"
)

// convWithFedWeight is y = Conv(x, w), 3×3, pads 1, with w a graph input.
func convWithFedWeight(c int64) *onnxio.Model {
	g := &onnxpb.GraphProto{
		Name: "g",
		Input: []*onnxpb.ValueInfoProto{
			onnxio.ValueInfo("x", onnxio.Float, onnxio.Shape{onnxio.Sym("N"), onnxio.D(c), onnxio.D(5), onnxio.D(5)}),
			onnxio.ValueInfo("w", onnxio.Float, onnxio.ShapeOf(c, c, 3, 3)),
		},
		Output: []*onnxpb.ValueInfoProto{onnxio.ValueInfo("y", onnxio.Float, nil)},
		Node: []*onnxpb.NodeProto{{Name: "conv", OpType: "Conv", Input: []string{"x", "w"}, Output: []string{"y"},
			Attribute: []*onnxpb.AttributeProto{onnxio.AttrInts("kernel_shape", 3, 3), onnxio.AttrInts("pads", 1, 1, 1, 1)}}},
	}
	return &onnxio.Model{Proto: &onnxpb.ModelProto{IrVersion: 8, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}}, Graph: g}}
}

func TestLoweredSessionFeedsSources(t *testing.T) {
	needLib(t)
	bs, err := NCHWcBlockSize()
	if err != nil {
		t.Fatal(err)
	}
	if bs == 0 {
		t.Skip("no NCHWc kernels on this CPU")
	}
	c := int64(bs)
	m := convWithFedWeight(c)
	low, err := newSession(m, ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer low.Close()
	std, err := newSession(m, ort.Options{Threads: 1, StandardOpsOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer std.Close()
	if low.lowered.Convs != 1 || len(low.derived) != 1 || std.lowered.Convs != 0 {
		t.Fatalf("lowered %+v with %d derived inputs, standard %+v; want one lowered conv fed one derived weight", low.lowered, len(low.derived), std.lowered)
	}
	if got, want := low.InputNames(), std.InputNames(); !slices.Equal(got, want) {
		t.Fatalf("lowered session takes %q; want the model's inputs %q", got, want)
	}
	x := make([]float32, 2*c*25)
	w := make([]float32, c*c*9)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)))
	}
	for i := range w {
		w[i] = float32(math.Cos(float64(3 * i)))
	}
	in := map[string]ort.Tensor{"x": {Shape: []int64{2, c, 5, 5}, Float32: x}, "w": {Shape: []int64{c, c, 3, 3}, Float32: w}}
	ctx := context.Background()
	a, err := low.Run(ctx, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := std.Run(ctx, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e := relL2(a["y"].Float32, b["y"].Float32); e > 1e-6 {
		t.Fatalf("lowered output differs from standard ops: relative L2 %.2g", e)
	}
	if _, ok := in["w@nchwc_1"]; ok || len(in) != 2 {
		t.Fatalf("Run changed the caller's input map: %v", in)
	}

	for name, tc := range map[string]struct {
		in   map[string]ort.Tensor
		want string
	}{
		"missing weight": {map[string]ort.Tensor{"x": in["x"]}, `missing input "w"`},
		"wrong shape":    {map[string]ort.Tensor{"x": in["x"], "w": {Shape: []int64{c, c, 1, 9}, Float32: w}}, "shape"},
		"int64 weight":   {map[string]ort.Tensor{"x": in["x"], "w": {Shape: []int64{c, c, 3, 3}, Int64: make([]int64, c*c*9)}}, "int64"},
		"unknown input":  {map[string]ort.Tensor{"x": in["x"], "w": in["w"], "v": in["w"]}, `unknown input "v"`},
	} {
		if _, err := low.Run(ctx, tc.in, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v; want one naming %q", name, err, tc.want)
		}
	}
}
