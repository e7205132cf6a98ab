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

// shapeOps lists the op types InferShapes has a rule for (the ops of the
// switch shapeRules replaced).
var shapeOps = []string{
	"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "Identity", "Softmax", "LogSoftmax",
	"Neg", "Exp", "Log", "Sqrt", "Abs", "Reciprocal", "Erf", "Floor", "Ceil", "Elu", "Selu",
	"HardSigmoid", "Softplus", "Sign", "Round", "PRelu", "Gelu", "HardSwish", "Mish",
	"Dropout", "Cast", "BatchNormalization",
	"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Equal", "Greater", "Less",
	"GreaterOrEqual", "LessOrEqual", "And", "Or", "Where",
	"Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool",
	"Flatten", "Gemm", "MatMul", "Transpose", "Shape", "Size", "Constant", "ConstantOfShape",
	"Gather", "Unsqueeze", "Squeeze", "Concat", "Reshape", "Expand", "Pad",
	"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceL1",
	"ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin",
	"Slice", "Range", "OneHot", "GatherElements", "ScatterElements", "ScatterND",
	"SoftmaxCrossEntropyLoss", "TopK",
}

func TestShapeRuleTable(t *testing.T) {
	seen := map[string]bool{}
	for _, op := range shapeOps {
		if seen[op] {
			t.Errorf("%s listed twice", op)
		}
		seen[op] = true
		if shapeRules[op] == nil {
			t.Errorf("no shape rule for %s", op)
		}
	}
	for op := range shapeRules {
		if !seen[op] {
			t.Errorf("shape rule for %s, which shapeOps does not list", op)
		}
	}
}

// TestInferShapesUnknownOp checks that an op without a rule is no error: its
// outputs stay unknown, it is listed in Unknown, and inference goes on.
func TestInferShapesUnknownOp(t *testing.T) {
	g := &onnxpb.GraphProto{Input: []*onnxpb.ValueInfoProto{ValueInfo("x", Float, ShapeOf(1, 3))}}
	b := NewBuilder(g, "")
	y := b.Op1("Resize", []string{"x"})
	z := b.Op1("Relu", []string{y})
	r := b.Op1("Relu", []string{"x"})
	m := &Model{Proto: &onnxpb.ModelProto{Graph: g, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}}}}
	s, err := InferShapes(m)
	if err != nil {
		t.Fatalf("InferShapes with an unknown op: %v; want no error", err)
	}
	if got := s.Unknown; !reflect.DeepEqual(got, []string{"Relu", "Resize"}) {
		t.Errorf("Unknown = %v; want [Relu Resize] (Resize, and the Relu after it)", got)
	}
	for _, name := range []string{y, z} {
		if _, ok := s.Types[name]; ok {
			t.Errorf("output %s after an unknown op has a type", name)
		}
	}
	if got := s.Shape(r); !reflect.DeepEqual(got, ShapeOf(1, 3)) {
		t.Errorf("Relu(x) beside the unknown op = %v; want [1 3]", got)
	}
}

// TestInferShapeEveryRule runs each op of shapeOps in a one-node graph and
// checks the type of each output, and the value where the op computes one.
func TestInferShapeEveryRule(t *testing.T) {
	N := Sym("batch")
	f := func(sh ...Dim) TypeInfo { return TypeInfo{Float, append(Shape{}, sh...)} }
	i64 := func(sh ...Dim) TypeInfo { return TypeInfo{Int64, append(Shape{}, sh...)} }
	b := func(sh ...Dim) TypeInfo { return TypeInfo{Bool, append(Shape{}, sh...)} }
	ints := func(name string, v ...int64) *onnxpb.TensorProto {
		return Int64Tensor(name, []int64{int64(len(v))}, v)
	}
	scalar := func(name string, v int64) *onnxpb.TensorProto { return Int64Tensor(name, nil, []int64{v}) }
	wt := func(dims ...int64) *onnxpb.TensorProto {
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		return FloatTensor("w", dims, make([]float32, n))
	}
	x4 := f(N, D(3), D(4), D(4))
	type tc struct {
		name   string
		op     string
		inputs []TypeInfo // graph inputs "a", "b", ... before inits
		inits  []*onnxpb.TensorProto
		nOut   int
		attrs  []*onnxpb.AttributeProto
		want   []TypeInfo // per output
		value  []Dim      // value of output 0, nil for none
	}
	var cases []tc
	for _, op := range []string{"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "Softmax", "LogSoftmax",
		"Neg", "Exp", "Log", "Sqrt", "Abs", "Reciprocal", "Erf", "Floor", "Ceil", "Elu", "Selu",
		"HardSigmoid", "Softplus", "Sign", "Round", "PRelu", "Gelu", "HardSwish", "Mish"} {
		cases = append(cases, tc{name: op, op: op, inputs: []TypeInfo{x4}, nOut: 1, want: []TypeInfo{x4}})
	}
	for _, op := range []string{"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean"} {
		cases = append(cases, tc{name: op + " broadcast", op: op, inputs: []TypeInfo{x4, f(D(4), D(1))}, nOut: 1, want: []TypeInfo{x4}})
	}
	for _, op := range []string{"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or"} {
		cases = append(cases, tc{name: op + " is bool", op: op, inputs: []TypeInfo{x4, f(D(1))}, nOut: 1, want: []TypeInfo{b(N, D(3), D(4), D(4))}})
	}
	cases = append(cases,
		tc{name: "Identity value", op: "Identity", inits: []*onnxpb.TensorProto{ints("s", 2, 5)}, nOut: 1, want: []TypeInfo{i64(D(2))}, value: ShapeOf(2, 5)},
		tc{name: "Dropout mask", op: "Dropout", inputs: []TypeInfo{x4}, nOut: 2, want: []TypeInfo{x4, b(N, D(3), D(4), D(4))}},
		tc{name: "Cast to int64 value", op: "Cast", inits: []*onnxpb.TensorProto{ints("s", 7)}, nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInt("to", int64(Int64))}, want: []TypeInfo{i64(D(1))}, value: ShapeOf(7)},
		tc{name: "BatchNormalization statistics", op: "BatchNormalization", inputs: []TypeInfo{x4}, nOut: 3, want: []TypeInfo{x4, f(D(3)), f(D(3))}},
		tc{name: "Add values", op: "Add", inits: []*onnxpb.TensorProto{ints("p", 1, 2), ints("q", 10, 20)}, nOut: 1, want: []TypeInfo{i64(D(2))}, value: ShapeOf(11, 22)},
		tc{name: "Sub values", op: "Sub", inits: []*onnxpb.TensorProto{ints("p", 5, 2), ints("q", 1)}, nOut: 1, want: []TypeInfo{i64(D(2))}, value: ShapeOf(4, 1)},
		tc{name: "Div values", op: "Div", inits: []*onnxpb.TensorProto{ints("p", 7, 8), ints("q", 2)}, nOut: 1, want: []TypeInfo{i64(D(2))}, value: ShapeOf(3, 4)},
		tc{name: "Where has the branches' type", op: "Where", inputs: []TypeInfo{b(D(2), D(1)), i64(D(3)), i64(D(1))}, nOut: 1, want: []TypeInfo{i64(D(2), D(3))}},
		tc{name: "LpPool", op: "LpPool", inputs: []TypeInfo{x4}, nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInts("kernel_shape", 2, 2)}, want: []TypeInfo{f(N, D(3), D(3), D(3))}},
		tc{name: "GlobalMaxPool", op: "GlobalMaxPool", inputs: []TypeInfo{x4}, nOut: 1, want: []TypeInfo{f(N, D(3), D(1), D(1))}},
		tc{name: "Conv", op: "Conv", inputs: []TypeInfo{x4}, inits: []*onnxpb.TensorProto{wt(5, 3, 3, 3)}, nOut: 1, want: []TypeInfo{f(N, D(5), D(2), D(2))}},
		tc{name: "Shape value", op: "Shape", inputs: []TypeInfo{x4}, nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInt("start", 1)}, want: []TypeInfo{i64(D(3))}, value: ShapeOf(3, 4, 4)},
		tc{name: "Size", op: "Size", inputs: []TypeInfo{x4}, nOut: 1, want: []TypeInfo{i64()}},
		tc{name: "Constant value_ints", op: "Constant", nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInts("value_ints", 1, -1)}, want: []TypeInfo{i64(D(2))}, value: []Dim{D(1), D(-1)}},
		tc{name: "ConstantOfShape", op: "ConstantOfShape", inits: []*onnxpb.TensorProto{ints("s", 2, 3)}, nOut: 1, want: []TypeInfo{f(D(2), D(3))}},
		tc{name: "Gather", op: "Gather", inputs: []TypeInfo{x4, i64(D(5))}, nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInt("axis", 1)}, want: []TypeInfo{f(N, D(5), D(4), D(4))}},
		tc{name: "Gather value", op: "Gather", inits: []*onnxpb.TensorProto{ints("s", 4, 5, 6), scalar("i", -1)}, nOut: 1, want: []TypeInfo{i64()}, value: ShapeOf(6)},
		tc{name: "Unsqueeze", op: "Unsqueeze", inputs: []TypeInfo{f(N, D(3))}, inits: []*onnxpb.TensorProto{ints("ax", 0, -1)}, nOut: 1, want: []TypeInfo{f(D(1), N, D(3), D(1))}},
		tc{name: "Squeeze all ones", op: "Squeeze", inputs: []TypeInfo{f(N, D(1), D(3), D(1))}, nOut: 1, want: []TypeInfo{f(N, D(3))}},
		tc{name: "Concat", op: "Concat", inputs: []TypeInfo{x4, f(N, D(2), D(4), D(4))}, nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInt("axis", 1)}, want: []TypeInfo{f(N, D(5), D(4), D(4))}},
		tc{name: "Concat value", op: "Concat", inits: []*onnxpb.TensorProto{ints("p", 1), ints("q", 2, 3)}, nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInt("axis", 0)}, want: []TypeInfo{i64(D(3))}, value: ShapeOf(1, 2, 3)},
		tc{name: "Expand", op: "Expand", inputs: []TypeInfo{f(D(3), D(1))}, inits: []*onnxpb.TensorProto{ints("s", 2, 1, 4)}, nOut: 1, want: []TypeInfo{f(D(2), D(3), D(4))}},
		tc{name: "ReduceMax keepdims 0", op: "ReduceMax", inputs: []TypeInfo{x4}, nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInts("axes", 2, 3), AttrInt("keepdims", 0)}, want: []TypeInfo{f(N, D(3))}},
		tc{name: "ReduceSum noop", op: "ReduceSum", inputs: []TypeInfo{x4}, nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInt("noop_with_empty_axes", 1)}, want: []TypeInfo{x4}},
		tc{name: "ReduceL2 all", op: "ReduceL2", inputs: []TypeInfo{f(D(2), D(3))}, nOut: 1, want: []TypeInfo{f(D(1), D(1))}},
		tc{name: "ArgMax", op: "ArgMax", inputs: []TypeInfo{f(N, D(10))}, nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInt("axis", 1), AttrInt("keepdims", 0)}, want: []TypeInfo{i64(N)}},
		tc{name: "ArgMin", op: "ArgMin", inputs: []TypeInfo{f(N, D(10))}, nOut: 1, want: []TypeInfo{i64(D(1), D(10))}},
		tc{name: "Slice", op: "Slice", inputs: []TypeInfo{f(N, D(10))}, inits: []*onnxpb.TensorProto{ints("st", 1), ints("en", -1), ints("ax", 1), ints("sp", 2)}, nOut: 1, want: []TypeInfo{f(N, D(4))}},
		tc{name: "Slice value", op: "Slice", inits: []*onnxpb.TensorProto{ints("s", 4, 5, 6, 7), ints("st", -2), ints("en", 9)}, nOut: 1, want: []TypeInfo{i64(D(2))}, value: ShapeOf(6, 7)},
		tc{name: "Range", op: "Range", inits: []*onnxpb.TensorProto{scalar("st", 1), scalar("li", 8), scalar("dl", 3)}, nOut: 1, want: []TypeInfo{i64(D(3))}},
		tc{name: "OneHot", op: "OneHot", inputs: []TypeInfo{i64(N)}, inits: []*onnxpb.TensorProto{ints("d", 10), FloatTensor("v", []int64{2}, []float32{0, 1})}, nOut: 1, want: []TypeInfo{f(N, D(10))}},
		tc{name: "GatherElements", op: "GatherElements", inputs: []TypeInfo{f(N, D(10)), i64(N, D(1))}, nOut: 1, want: []TypeInfo{f(N, D(1))}},
		tc{name: "ScatterElements", op: "ScatterElements", inputs: []TypeInfo{f(N, D(10)), i64(N, D(1)), f(N, D(1))}, nOut: 1, want: []TypeInfo{f(N, D(10))}},
		tc{name: "ScatterND", op: "ScatterND", inputs: []TypeInfo{f(D(4), D(10)), i64(D(2), D(1)), f(D(2), D(10))}, nOut: 1, want: []TypeInfo{f(D(4), D(10))}},
		tc{name: "SoftmaxCrossEntropyLoss none", op: "SoftmaxCrossEntropyLoss", inputs: []TypeInfo{f(N, D(10)), i64(N)}, nOut: 2, attrs: []*onnxpb.AttributeProto{AttrString("reduction", "none")}, want: []TypeInfo{f(N), f(N, D(10))}},
		tc{name: "SoftmaxCrossEntropyLoss mean", op: "SoftmaxCrossEntropyLoss", inputs: []TypeInfo{f(N, D(10)), i64(N)}, nOut: 1, want: []TypeInfo{f()}},
		tc{name: "TopK", op: "TopK", inputs: []TypeInfo{f(N, D(10))}, inits: []*onnxpb.TensorProto{ints("k", 3)}, nOut: 2, want: []TypeInfo{f(N, D(3)), i64(N, D(3))}},
		tc{name: "Flatten", op: "Flatten", inputs: []TypeInfo{x4}, nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInt("axis", 2)}, want: []TypeInfo{f(Sym("3*batch"), D(16))}},
		tc{name: "MaxPool indices", op: "MaxPool", inputs: []TypeInfo{x4}, nOut: 2, attrs: []*onnxpb.AttributeProto{AttrInts("kernel_shape", 2, 2), AttrInts("strides", 2, 2)}, want: []TypeInfo{f(N, D(3), D(2), D(2)), i64(N, D(3), D(2), D(2))}},
		tc{name: "AveragePool", op: "AveragePool", inputs: []TypeInfo{x4}, nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInts("kernel_shape", 3, 3), AttrInts("pads", 1, 1, 1, 1)}, want: []TypeInfo{x4}},
		tc{name: "ConvTranspose", op: "ConvTranspose", inputs: []TypeInfo{x4}, inits: []*onnxpb.TensorProto{wt(3, 2, 3, 3)}, nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInts("strides", 2, 2)}, want: []TypeInfo{f(N, D(2), D(9), D(9))}},
		tc{name: "GlobalAveragePool", op: "GlobalAveragePool", inputs: []TypeInfo{x4}, nOut: 1, want: []TypeInfo{f(N, D(3), D(1), D(1))}},
		tc{name: "Gemm transA", op: "Gemm", inputs: []TypeInfo{f(D(5), N)}, inits: []*onnxpb.TensorProto{wt(5, 7)}, nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInt("transA", 1)}, want: []TypeInfo{f(N, D(7))}},
		tc{name: "MatMul batched", op: "MatMul", inputs: []TypeInfo{f(N, D(2), D(5))}, inits: []*onnxpb.TensorProto{wt(5, 7)}, nOut: 1, want: []TypeInfo{f(N, D(2), D(7))}},
		tc{name: "Reshape", op: "Reshape", inputs: []TypeInfo{x4}, inits: []*onnxpb.TensorProto{ints("s", 0, 3, -1)}, nOut: 1, want: []TypeInfo{f(N, D(3), D(16))}},
		tc{name: "Transpose reverses", op: "Transpose", inputs: []TypeInfo{f(N, D(2), D(3))}, nOut: 1, want: []TypeInfo{f(D(3), D(2), N)}},
		tc{name: "ReduceMean axes input", op: "ReduceMean", inputs: []TypeInfo{x4}, inits: []*onnxpb.TensorProto{ints("ax", -1)}, nOut: 1, want: []TypeInfo{f(N, D(3), D(4), D(1))}},
		tc{name: "ReduceMin", op: "ReduceMin", inputs: []TypeInfo{x4}, nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInts("axes", 1)}, want: []TypeInfo{f(N, D(1), D(4), D(4))}},
		tc{name: "ReduceProd", op: "ReduceProd", inputs: []TypeInfo{x4}, nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInts("axes", 1)}, want: []TypeInfo{f(N, D(1), D(4), D(4))}},
		tc{name: "ReduceL1", op: "ReduceL1", inputs: []TypeInfo{x4}, nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInts("axes", 1)}, want: []TypeInfo{f(N, D(1), D(4), D(4))}},
		tc{name: "ReduceLogSumExp", op: "ReduceLogSumExp", inputs: []TypeInfo{x4}, nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInts("axes", 1)}, want: []TypeInfo{f(N, D(1), D(4), D(4))}},
		tc{name: "ReduceSumSquare", op: "ReduceSumSquare", inputs: []TypeInfo{x4}, nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInts("axes", 1)}, want: []TypeInfo{f(N, D(1), D(4), D(4))}},
		tc{name: "Pad attribute", op: "Pad", inputs: []TypeInfo{f(N, D(3))}, nOut: 1, attrs: []*onnxpb.AttributeProto{AttrInts("pads", 0, 1, 0, 2)}, want: []TypeInfo{f(N, D(6))}},
	)
	ran := map[string]bool{}
	for _, c := range cases {
		g := &onnxpb.GraphProto{}
		var names []string
		for i, in := range c.inputs {
			name := string(rune('a' + i))
			g.Input = append(g.Input, ValueInfo(name, in.Elem, in.Shape))
			names = append(names, name)
		}
		for _, in := range c.inits {
			g.Initializer = append(g.Initializer, in)
			names = append(names, in.Name)
		}
		outs := NewBuilder(g, "").Op(c.op, names, c.nOut, c.attrs...)
		m := &Model{Proto: &onnxpb.ModelProto{Graph: g, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}}}}
		s, err := InferShapes(m)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		ran[c.op] = true
		for i, o := range outs {
			if got := s.Types[o]; i < len(c.want) && !reflect.DeepEqual(got, c.want[i]) {
				t.Errorf("%s: output %d = %v; want %v", c.name, i, got, c.want[i])
			}
		}
		if got, ok := s.Values[outs[0]]; c.value != nil && !reflect.DeepEqual(got, c.value) {
			t.Errorf("%s: value = %v (known %v); want %v", c.name, got, ok, c.value)
		}
	}
	for _, op := range shapeOps {
		if !ran[op] {
			t.Errorf("no case runs %s", op)
		}
	}
}
