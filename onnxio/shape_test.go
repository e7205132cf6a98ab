package onnxio

import (
	"reflect"
	"testing"

	"github.com/semirobust/srtool/onnxio/onnxpb"
)

func TestInferShapesFixture(t *testing.T) {
	m, err := Read(fixtureModel)
	if err != nil {
		t.Fatal(err)
	}
	s, err := InferShapes(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Unknown) != 0 {
		t.Errorf("ops without a shape rule: %v", s.Unknown)
	}
	for _, n := range m.Graph().Node {
		for _, o := range n.Output {
			if s.Shape(o) == nil {
				t.Errorf("no shape for %s output %q", n.OpType, o)
			}
		}
	}
	got := s.Shape("logits").Ints()
	if !reflect.DeepEqual(got, []int64{-1, 10}) {
		t.Errorf("logits shape = %v; want [-1 10] (symbolic batch)", got)
	}
}

// single runs inference on a one-node graph and returns the output shape.
func single(t *testing.T, op string, inputs []Shape, inits []*onnxpb.TensorProto, nOut int, attrs ...*onnxpb.AttributeProto) []Shape {
	t.Helper()
	g := &onnxpb.GraphProto{}
	var names []string
	for i, sh := range inputs {
		name := string(rune('a' + i))
		g.Input = append(g.Input, ValueInfo(name, Float, sh))
		names = append(names, name)
	}
	for _, in := range inits {
		g.Initializer = append(g.Initializer, in)
		names = append(names, in.Name)
	}
	b := NewBuilder(g, "")
	outs := b.Op(op, names, nOut, attrs...)
	m := &Model{Proto: &onnxpb.ModelProto{Graph: g, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}}}}
	s, err := InferShapes(m)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	var res []Shape
	for _, o := range outs {
		res = append(res, s.Shape(o))
	}
	return res
}

func TestInferShapeRules(t *testing.T) {
	N := Sym("batch")
	x := func(c, h, w int64) Shape { return Shape{N, D(c), D(h), D(w)} }
	w := func(dims ...int64) *onnxpb.TensorProto {
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		return FloatTensor("w", dims, make([]float32, n))
	}
	cases := []struct {
		name string
		got  Shape
		want Shape
	}{
		{"conv 3x3 s2 p1 odd", single(t, "Conv", []Shape{x(3, 7, 7)}, []*onnxpb.TensorProto{w(8, 3, 3, 3)}, 1, AttrInts("strides", 2, 2), AttrInts("pads", 1, 1, 1, 1))[0], x(8, 4, 4)},
		{"conv 3x3 s2 p1 even", single(t, "Conv", []Shape{x(3, 8, 8)}, []*onnxpb.TensorProto{w(8, 3, 3, 3)}, 1, AttrInts("strides", 2, 2), AttrInts("pads", 1, 1, 1, 1))[0], x(8, 4, 4)},
		{"conv asym pads", single(t, "Conv", []Shape{x(3, 8, 8)}, []*onnxpb.TensorProto{w(4, 3, 3, 3)}, 1, AttrInts("pads", 0, 1, 2, 0))[0], x(4, 8, 7)},
		{"conv groups dilation", single(t, "Conv", []Shape{x(4, 9, 9)}, []*onnxpb.TensorProto{w(4, 2, 3, 3)}, 1, AttrInt("group", 2), AttrInts("dilations", 2, 2))[0], x(4, 5, 5)},
		{"conv same_upper", single(t, "Conv", []Shape{x(3, 7, 7)}, []*onnxpb.TensorProto{w(2, 3, 3, 3)}, 1, AttrString("auto_pad", "SAME_UPPER"), AttrInts("strides", 2, 2))[0], x(2, 4, 4)},
		{"maxpool stem", single(t, "MaxPool", []Shape{x(8, 32, 32)}, nil, 2, AttrInts("kernel_shape", 3, 3), AttrInts("strides", 2, 2), AttrInts("pads", 1, 1, 1, 1))[1], x(8, 16, 16)},
		{"maxpool ceil", single(t, "MaxPool", []Shape{x(8, 6, 6)}, nil, 1, AttrInts("kernel_shape", 3, 3), AttrInts("strides", 2, 2), AttrInt("ceil_mode", 1))[0], x(8, 3, 3)},
		{"avgpool 4", single(t, "AveragePool", []Shape{x(8, 4, 4)}, nil, 1, AttrInts("kernel_shape", 4, 4), AttrInts("strides", 4, 4))[0], x(8, 1, 1)},
		{"convtranspose", single(t, "ConvTranspose", []Shape{x(8, 4, 4)}, []*onnxpb.TensorProto{w(8, 3, 3, 3)}, 1, AttrInts("strides", 2, 2), AttrInts("pads", 1, 1, 1, 1), AttrInts("output_padding", 1, 1))[0], x(3, 8, 8)},
		{"gap", single(t, "GlobalAveragePool", []Shape{x(8, 4, 4)}, nil, 1)[0], x(8, 1, 1)},
		{"flatten", single(t, "Flatten", []Shape{x(8, 2, 2)}, nil, 1)[0], Shape{N, D(32)}},
		{"gemm transB", single(t, "Gemm", []Shape{{N, D(32)}}, []*onnxpb.TensorProto{w(10, 32)}, 1, AttrInt("transB", 1))[0], Shape{N, D(10)}},
		{"matmul", single(t, "MatMul", []Shape{{N, D(32)}}, []*onnxpb.TensorProto{w(32, 10)}, 1)[0], Shape{N, D(10)}},
		{"add broadcast", single(t, "Add", []Shape{x(8, 4, 4), {D(8), D(1), D(1)}}, nil, 1)[0], x(8, 4, 4)},
		{"reshape -1 batch", single(t, "Reshape", []Shape{x(8, 2, 2)}, []*onnxpb.TensorProto{Int64Tensor("s", []int64{2}, []int64{-1, 32})}, 1)[0], Shape{N, D(32)}},
		{"reshape 0 copy", single(t, "Reshape", []Shape{x(8, 2, 2)}, []*onnxpb.TensorProto{Int64Tensor("s", []int64{2}, []int64{0, -1})}, 1)[0], Shape{N, D(32)}},
		{"transpose", single(t, "Transpose", []Shape{x(8, 2, 3)}, nil, 1, AttrInts("perm", 1, 0, 2, 3))[0], Shape{D(8), N, D(2), D(3)}},
		{"reduce mean", single(t, "ReduceMean", []Shape{x(8, 2, 3)}, nil, 1, AttrInts("axes", 0, 2, 3))[0], Shape{D(1), D(8), D(1), D(1)}},
		{"pad", single(t, "Pad", []Shape{x(3, 4, 4)}, []*onnxpb.TensorProto{Int64Tensor("p", []int64{8}, []int64{0, 0, 1, 2, 0, 0, 3, 4})}, 1)[0], x(3, 8, 10)},
	}
	for _, c := range cases {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: shape = %v; want %v", c.name, c.got, c.want)
		}
	}
}

// TestViewChain checks the TorchScript x.view(x.size(0), -1) pattern:
// Shape → Gather → Unsqueeze → Concat → Reshape.
func TestViewChain(t *testing.T) {
	g := &onnxpb.GraphProto{Input: []*onnxpb.ValueInfoProto{ValueInfo("x", Float, Shape{Sym("batch"), D(8), D(2), D(2)})}}
	b := NewBuilder(g, "")
	sh := b.Op1("Shape", []string{"x"})
	zero := b.ConstI("zero", nil, []int64{0})
	n := b.Op1("Gather", []string{sh, zero}, AttrInt("axis", 0))
	un := b.Op1("Unsqueeze", []string{n, b.Ints1(0)})
	cat := b.Op1("Concat", []string{un, b.Ints1(-1)}, AttrInt("axis", 0))
	out := b.Op1("Reshape", []string{"x", cat})
	m := &Model{Proto: &onnxpb.ModelProto{Graph: g, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 13}}}}
	s, err := InferShapes(m)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Shape(out), (Shape{Sym("batch"), D(32)}); !reflect.DeepEqual(got, want) {
		t.Errorf("view chain output = %v; want %v", got, want)
	}
}

func TestInferShapeErrors(t *testing.T) {
	g := &onnxpb.GraphProto{Input: []*onnxpb.ValueInfoProto{ValueInfo("x", Float, ShapeOf(1, 3, 8, 8))}}
	g.Initializer = []*onnxpb.TensorProto{FloatTensor("w", []int64{4, 2, 3, 3}, make([]float32, 72))}
	NewBuilder(g, "").Op1("Conv", []string{"x", "w"})
	m := &Model{Proto: &onnxpb.ModelProto{Graph: g, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}}}}
	if _, err := InferShapes(m); err == nil {
		t.Errorf("Conv with 3 input channels and a 2-channel weight accepted")
	}
}
