package autodiff

import (
	"fmt"
	"math"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
	"google.golang.org/protobuf/proto"
)

// Emission helpers. They append nodes through c.b and write each op in the
// form legal at c.opset (≥ 17).

type attr = *onnxpb.AttributeProto

func (c *ctx) op(op string, inputs ...string) string { return c.b.Op1(op, inputs) }

func (c *ctx) opA(op string, inputs []string, attrs ...attr) string {
	return c.b.Op1(op, inputs, attrs...)
}

// ints returns a cached 1-D int64 constant.
func (c *ctx) ints(v ...int64) string {
	key := fmt.Sprint("i", v)
	if n, ok := c.consts[key]; ok {
		return n
	}
	n := c.b.ConstI("i", []int64{int64(len(v))}, v)
	c.consts[key] = n
	return n
}

// scalarI returns a cached 0-d int64 constant.
func (c *ctx) scalarI(v int64) string {
	key := fmt.Sprint("si", v)
	if n, ok := c.consts[key]; ok {
		return n
	}
	n := c.b.ConstI("i", nil, []int64{v})
	c.consts[key] = n
	return n
}

// scalar returns a cached 0-d float32 constant.
func (c *ctx) scalar(v float32) string {
	key := fmt.Sprint("f", math.Float32bits(v))
	if n, ok := c.consts[key]; ok {
		return n
	}
	n := c.b.ScalarF(v)
	c.consts[key] = n
	return n
}

// constF adds a float32 constant of the given shape.
func (c *ctx) constF(dims []int64, data []float32) string { return c.b.ConstF("c", dims, data) }

func (c *ctx) add(a, b string) string { return c.op("Add", a, b) }
func (c *ctx) sub(a, b string) string { return c.op("Sub", a, b) }
func (c *ctx) mul(a, b string) string { return c.op("Mul", a, b) }
func (c *ctx) div(a, b string) string { return c.op("Div", a, b) }
func (c *ctx) neg(a string) string    { return c.op("Neg", a) }

// sum adds the tensors (all of the same shape).
func (c *ctx) sum(ts []string) string {
	switch len(ts) {
	case 0:
		fail("sum of nothing")
	case 1:
		return ts[0]
	case 2:
		return c.add(ts[0], ts[1])
	}
	return c.op("Sum", ts...)
}

// sumOrZero is sum, or zeros shaped like like when ts is empty.
func (c *ctx) sumOrZero(ts []string, like string) string {
	if len(ts) > 0 {
		return c.sum(ts)
	}
	return c.opA("ConstantOfShape", []string{c.op("Shape", like)}, onnxio.AttrTensor("value", onnxio.FloatTensor("", []int64{1}, []float32{0})))
}

func (c *ctx) reduce(op, x string, axes []int64, keep bool) string {
	k := int64(0)
	if keep {
		k = 1
	}
	if op == "ReduceSum" || c.opset >= 18 {
		return c.opA(op, []string{x, c.ints(axes...)}, onnxio.AttrInt("keepdims", k))
	}
	return c.opA(op, []string{x}, onnxio.AttrInts("axes", axes...), onnxio.AttrInt("keepdims", k))
}

func (c *ctx) reduceSum(x string, axes []int64, keep bool) string {
	return c.reduce("ReduceSum", x, axes, keep)
}
func (c *ctx) reduceMean(x string, axes []int64, keep bool) string {
	return c.reduce("ReduceMean", x, axes, keep)
}
func (c *ctx) reduceMax(x string, axes []int64, keep bool) string {
	return c.reduce("ReduceMax", x, axes, keep)
}

func (c *ctx) unsqueeze(x string, axes ...int64) string { return c.op("Unsqueeze", x, c.ints(axes...)) }
func (c *ctx) squeeze(x string, axes ...int64) string   { return c.op("Squeeze", x, c.ints(axes...)) }

func (c *ctx) reshape(x string, shape ...int64) string { return c.op("Reshape", x, c.ints(shape...)) }

func (c *ctx) transpose(x string, perm ...int64) string {
	return c.opA("Transpose", []string{x}, onnxio.AttrInts("perm", perm...))
}

func (c *ctx) cast(x string, to int32) string {
	return c.opA("Cast", []string{x}, onnxio.AttrInt("to", int64(to)))
}

// slice takes x[starts:ends] (steps 1 unless given) along axes.
func (c *ctx) slice(x string, starts, ends, axes, steps []int64) string {
	in := []string{x, c.ints(starts...), c.ints(ends...), c.ints(axes...)}
	if steps != nil {
		in = append(in, c.ints(steps...))
	}
	return c.op("Slice", in...)
}

// shape returns the inferred shape of a forward tensor, failing if unknown.
func (c *ctx) shape(name string) onnxio.Shape {
	s := c.shapes.Shape(name)
	if s == nil {
		fail("shape of %q unknown", name)
	}
	return s
}

// staticDims returns the fixed sizes of s, failing when one is symbolic.
func staticDims(s onnxio.Shape, what string) []int64 {
	if !s.Static() {
		fail("%s has shape %v; it must be fixed", what, s)
	}
	return s.Ints()
}

// reshapeTarget returns a 1-D int64 tensor to Reshape to x's runtime
// shape: a constant when at most one dimension is symbolic (written as -1),
// else Shape(x).
func (c *ctx) reshapeTarget(x string) string {
	s := c.shape(x)
	unknown := 0
	for _, d := range s {
		if !d.Known() {
			unknown++
		}
	}
	if unknown <= 1 {
		return c.ints(s.Ints()...)
	}
	return c.op("Shape", x)
}

// reshapeLike reshapes t to x's shape.
func (c *ctx) reshapeLike(t, x string) string {
	return c.op("Reshape", t, c.reshapeTarget(x))
}

// unbroadcast sums a gradient of shape ys back to shape xs (numpy
// broadcasting, right-aligned). Dimensions that are symbolic on both sides
// are assumed equal.
func (c *ctx) unbroadcast(dy string, ys, xs onnxio.Shape, x string) string {
	off := len(ys) - len(xs)
	if off < 0 {
		fail("cannot unbroadcast %v to %v", ys, xs)
	}
	var axes []int64
	for i := range ys {
		if i < off {
			axes = append(axes, int64(i))
			continue
		}
		xd, yd := xs[i-off], ys[i]
		if xd.Known() && xd.Value == 1 && !(yd.Known() && yd.Value == 1) {
			axes = append(axes, int64(i))
		}
	}
	if len(axes) == 0 {
		return dy
	}
	r := c.reduceSum(dy, axes, true)
	if off > 0 {
		r = c.reshapeLike(r, x)
	}
	return r
}

func cloneTensor(t *onnxpb.TensorProto) *onnxpb.TensorProto {
	return proto.Clone(t).(*onnxpb.TensorProto)
}
