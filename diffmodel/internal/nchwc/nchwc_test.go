package nchwc_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/diffmodel/internal/nchwc"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
	"github.com/semirobust/srtool/ort"
)

// convCase is one Conv or ConvTranspose node with its weight fed at run time.
type convCase struct {
	op        string
	c, m      int64 // input and output channels
	h, k      int64 // input size and kernel size (square)
	stride    int64
	pads      []int64
	bias      bool
	wantMoved bool
}

func (tc convCase) name() string {
	return fmt.Sprintf("%s_c%d_m%d_h%d_k%d_s%d_p%v_b%v", tc.op, tc.c, tc.m, tc.h, tc.k, tc.stride, tc.pads, tc.bias)
}

// model builds a one-node graph: inputs x and w (and b), output y.
func (tc convCase) model() *onnxio.Model {
	g := &onnxpb.GraphProto{Name: "g"}
	wshape := []int64{tc.m, tc.c, tc.k, tc.k}
	if tc.op == "ConvTranspose" {
		wshape = []int64{tc.c, tc.m, tc.k, tc.k} // [in, out, k, k]
	}
	g.Input = []*onnxpb.ValueInfoProto{
		onnxio.ValueInfo("x", onnxio.Float, onnxio.Shape{onnxio.Sym("N"), onnxio.D(tc.c), onnxio.D(tc.h), onnxio.D(tc.h)}),
		onnxio.ValueInfo("w", onnxio.Float, onnxio.ShapeOf(wshape...)),
	}
	ins := []string{"x", "w"}
	if tc.bias {
		g.Input = append(g.Input, onnxio.ValueInfo("b", onnxio.Float, onnxio.ShapeOf(tc.m)))
		ins = append(ins, "b")
	}
	g.Node = []*onnxpb.NodeProto{{
		Name: "n", OpType: tc.op, Input: ins, Output: []string{"y"},
		Attribute: []*onnxpb.AttributeProto{
			onnxio.AttrInts("kernel_shape", tc.k, tc.k),
			onnxio.AttrInts("strides", tc.stride, tc.stride),
			onnxio.AttrInts("pads", tc.pads...),
		},
	}}
	g.Output = []*onnxpb.ValueInfoProto{onnxio.ValueInfo("y", onnxio.Float, nil)}
	return &onnxio.Model{Proto: &onnxpb.ModelProto{
		IrVersion:   8,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}},
		Graph:       g,
	}}
}

func TestLowerMatchesStandardOps(t *testing.T) {
	bs := blockSize(t)
	cases := []convCase{
		{op: "Conv", c: 2 * bs, m: 2 * bs, h: 9, k: 3, stride: 1, pads: []int64{1, 1, 1, 1}, bias: true, wantMoved: true},
		{op: "Conv", c: bs, m: 2 * bs, h: 9, k: 3, stride: 2, pads: []int64{1, 1, 1, 1}, wantMoved: true},
		{op: "Conv", c: bs, m: 2 * bs, h: 8, k: 3, stride: 2, pads: []int64{0, 1, 1, 0}, wantMoved: true},
		{op: "Conv", c: 3, m: bs, h: 7, k: 3, stride: 1, pads: []int64{1, 1, 1, 1}, bias: true, wantMoved: true},
		{op: "Conv", c: 1, m: 2 * bs, h: 7, k: 5, stride: 2, pads: []int64{2, 1, 2, 1}, wantMoved: true},
		{op: "Conv", c: bs, m: bs, h: 8, k: 1, stride: 2, pads: []int64{0, 0, 0, 0}, wantMoved: true},
		{op: "Conv", c: bs + 4, m: bs, h: 5, k: 3, stride: 1, pads: []int64{1, 1, 1, 1}, wantMoved: false},
		{op: "Conv", c: bs, m: bs + 4, h: 5, k: 3, stride: 1, pads: []int64{1, 1, 1, 1}, wantMoved: false},
		{op: "ConvTranspose", c: 2 * bs, m: bs, h: 6, k: 3, stride: 1, pads: []int64{1, 1, 1, 1}, wantMoved: true},
		{op: "ConvTranspose", c: bs, m: bs, h: 6, k: 3, stride: 1, pads: []int64{0, 0, 0, 0}, wantMoved: true},
		{op: "ConvTranspose", c: bs, m: bs, h: 6, k: 3, stride: 1, pads: []int64{0, 2, 1, 0}, wantMoved: true},
		{op: "ConvTranspose", c: bs, m: bs, h: 6, k: 3, stride: 2, pads: []int64{1, 1, 1, 1}, wantMoved: false},
	}
	for _, tc := range cases {
		t.Run(tc.name(), func(t *testing.T) {
			m := tc.model()
			low, derived, st, err := nchwc.Lower(m, int(bs))
			if err != nil {
				t.Fatal(err)
			}
			// Also the in-graph reorder: the weight computed by a node.
			mc := withComputedWeight(m)
			lowC, derivedC, stC, err := nchwc.Lower(mc, int(bs))
			if err != nil {
				t.Fatal(err)
			}
			if len(derivedC) != 0 || stC != st {
				t.Fatalf("computed weight: %d derived inputs, stats %+v; want none and %+v", len(derivedC), stC, st)
			}
			moved := st.Convs+st.ConvTransposes == 1
			if moved != tc.wantMoved {
				t.Fatalf("stats %+v, want moved=%v", st, tc.wantMoved)
			}
			rng := rand.New(rand.NewPCG(uint64(tc.c), uint64(tc.m*tc.h)))
			in := map[string]ort.Tensor{
				"x": randTensor(rng, 3, tc.c, tc.h, tc.h),
				"w": randTensor(rng, m.Graph().GetInput()[1].GetType().GetTensorType().GetShape().GetDim()[0].GetDimValue(),
					m.Graph().GetInput()[1].GetType().GetTensorType().GetShape().GetDim()[1].GetDimValue(), tc.k, tc.k),
			}
			if tc.bias {
				in["b"] = randTensor(rng, tc.m)
			}
			if tc.wantMoved != (len(derived) == 1) {
				t.Fatalf("%d derived inputs; want %d", len(derived), map[bool]int{true: 1}[tc.wantMoved])
			}
			want := runModel(t, m, in)
			for name, got := range map[string]ort.Tensor{
				"derived weight":   runModel(t, low, feedDerived(in, derived)),
				"in-graph reorder": runModel(t, lowC, in),
			} {
				if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
					t.Fatalf("%s: shape %v, want %v", name, got.Shape, want.Shape)
				}
				if d := maxRelDiff(got.Float32, want.Float32); d > 1e-5 {
					t.Fatalf("%s: lowered differs from standard ops: max diff %.3g of the output scale", name, d)
				}
			}
		})
	}
}

func TestLowerRejectsBadBlockSize(t *testing.T) {
	for _, bs := range []int{0, 1, 3, 12} {
		if _, _, _, err := nchwc.Lower(convCase{op: "Conv", c: 8, m: 8, h: 4, k: 1, stride: 1, pads: []int64{0, 0, 0, 0}}.model(), bs); err == nil {
			t.Errorf("block size %d accepted", bs)
		}
	}
}

func TestLowerLeavesInputUntouched(t *testing.T) {
	m := convCase{op: "Conv", c: 16, m: 16, h: 4, k: 3, stride: 1, pads: []int64{1, 1, 1, 1}}.model()
	before, _ := m.Encode()
	if _, _, _, err := nchwc.Lower(m, 16); err != nil {
		t.Fatal(err)
	}
	after, _ := m.Encode()
	if string(before) != string(after) {
		t.Fatal("Lower modified its input model")
	}
}

func blockSize(t testing.TB) int64 {
	t.Helper()
	bs, err := diffmodel.NCHWcBlockSize()
	if err != nil {
		t.Fatalf("ONNX Runtime not available (run `make ort`): %v", err)
	}
	if bs == 0 {
		t.Skip("this CPU has no NCHWc kernels")
	}
	return int64(bs)
}

func randTensor(rng *rand.Rand, dims ...int64) ort.Tensor {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return ort.Tensor{Shape: dims, Float32: v}
}

func runModel(t *testing.T, m *onnxio.Model, in map[string]ort.Tensor) ort.Tensor {
	t.Helper()
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(b, ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(context.Background(), in, []string{"y"})
	if err != nil {
		t.Fatal(err)
	}
	return out["y"]
}

func maxRelDiff(a, b []float32) float64 {
	var d, scale float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		scale = math.Max(scale, math.Abs(float64(b[i])))
	}
	return d / math.Max(scale, 1e-30)
}

// withComputedWeight returns m with the weight input w passed through an
// Identity node, so that the lowered graph must reorder it itself.
func withComputedWeight(m *onnxio.Model) *onnxio.Model {
	c := m.Clone()
	g := c.Graph()
	g.Node = append([]*onnxpb.NodeProto{{Name: "id", OpType: "Identity", Input: []string{"w"}, Output: []string{"w_id"}}}, g.Node...)
	g.Node[1].Input[1] = "w_id"
	return c
}

// feedDerived adds the derived inputs of a lowered model to in.
func feedDerived(in map[string]ort.Tensor, derived []nchwc.Derived) map[string]ort.Tensor {
	out := map[string]ort.Tensor{}
	for k, v := range in {
		out[k] = v
	}
	for _, d := range derived {
		src := in[d.From]
		dst := make([]float32, len(src.Float32))
		d.Reorder(dst, src.Float32)
		out[d.Name] = ort.Tensor{Shape: d.OutShape(), Float32: dst}
		delete(out, d.From)
	}
	return out
}

// TestLowerRefusesSubgraphs: a fed weight read only inside an If branch
// must not be dropped from the graph inputs, so such graphs are refused
// (the caller then runs the standard ops).
func TestLowerRefusesSubgraphs(t *testing.T) {
	m := convCase{op: "Conv", c: 16, m: 16, h: 4, k: 3, stride: 1, pads: []int64{1, 1, 1, 1}}.model()
	g := m.Graph()
	branch := func(name string) *onnxpb.GraphProto {
		return &onnxpb.GraphProto{
			Name:   name,
			Node:   []*onnxpb.NodeProto{{OpType: "Neg", Input: []string{"w"}, Output: []string{name + "_out"}}},
			Output: []*onnxpb.ValueInfoProto{onnxio.ValueInfo(name+"_out", onnxio.Float, nil)},
		}
	}
	g.Input = append(g.Input, onnxio.ValueInfo("cond", 9, onnxio.ShapeOf()))
	g.Node = append(g.Node, &onnxpb.NodeProto{Name: "if", OpType: "If", Input: []string{"cond"}, Output: []string{"z"},
		Attribute: []*onnxpb.AttributeProto{
			{Name: "then_branch", Type: onnxpb.AttributeProto_GRAPH, G: branch("then")},
			{Name: "else_branch", Type: onnxpb.AttributeProto_GRAPH, G: branch("else")},
		}})
	g.Output = append(g.Output, onnxio.ValueInfo("z", onnxio.Float, nil))
	if _, _, _, err := nchwc.Lower(m, 16); err == nil || !strings.Contains(err.Error(), "subgraph") {
		t.Fatalf("Lower on a graph with an If: err = %v; want a refusal naming the subgraph", err)
	}
}
