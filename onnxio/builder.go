package onnxio

import (
	"fmt"
	"strings"

	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// Builder appends nodes and initializers to a graph with fresh, unique names.
// Every name it hands out is new to the graph at the time of the call.
type Builder struct {
	G      *onnxpb.GraphProto
	prefix string
	used   map[string]bool
	count  int
}

// NewBuilder returns a builder over g whose generated names start with prefix
// (e.g. "grad/"). It records every name already in use in g.
func NewBuilder(g *onnxpb.GraphProto, prefix string) *Builder {
	b := &Builder{G: g, prefix: prefix, used: map[string]bool{}}
	for _, in := range g.GetInput() {
		b.used[in.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		b.used[t.GetName()] = true
	}
	for _, n := range g.GetNode() {
		b.used[n.GetName()] = true
		for _, o := range n.GetOutput() {
			b.used[o] = true
		}
	}
	for _, o := range g.GetOutput() {
		b.used[o.GetName()] = true
	}
	return b
}

// Fresh returns a new unique name built from hint.
func (b *Builder) Fresh(hint string) string {
	hint = strings.TrimPrefix(hint, b.prefix)
	for {
		b.count++
		name := fmt.Sprintf("%s%s_%d", b.prefix, hint, b.count)
		if !b.used[name] {
			b.used[name] = true
			return name
		}
	}
}

// Reserve marks name as used.
func (b *Builder) Reserve(name string) { b.used[name] = true }

// Op appends a node with nOut fresh outputs and returns their names.
func (b *Builder) Op(op string, inputs []string, nOut int, attrs ...*onnxpb.AttributeProto) []string {
	outs := make([]string, nOut)
	for i := range outs {
		outs[i] = b.Fresh(strings.ToLower(op))
	}
	b.G.Node = append(b.G.Node, &onnxpb.NodeProto{
		Name:      b.Fresh(op),
		OpType:    op,
		Input:     append([]string(nil), inputs...),
		Output:    outs,
		Attribute: attrs,
	})
	return outs
}

// Op1 appends a single-output node and returns its output name.
func (b *Builder) Op1(op string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	return b.Op(op, inputs, 1, attrs...)[0]
}

// ConstF adds a float32 initializer with a fresh name and returns the name.
func (b *Builder) ConstF(hint string, dims []int64, data []float32) string {
	name := b.Fresh(hint)
	b.G.Initializer = append(b.G.Initializer, FloatTensor(name, dims, data))
	return name
}

// ConstI adds an int64 initializer with a fresh name and returns the name.
func (b *Builder) ConstI(hint string, dims []int64, data []int64) string {
	name := b.Fresh(hint)
	b.G.Initializer = append(b.G.Initializer, Int64Tensor(name, dims, data))
	return name
}

// ScalarF adds a float32 scalar initializer.
func (b *Builder) ScalarF(v float32) string { return b.ConstF("c", nil, []float32{v}) }

// Ints1 adds a 1-D int64 initializer.
func (b *Builder) Ints1(v ...int64) string { return b.ConstI("i", []int64{int64(len(v))}, v) }

// ValueInfo makes a tensor value-info with element type elem and the given shape.
func ValueInfo(name string, elem int32, shape Shape) *onnxpb.ValueInfoProto {
	var dims []*onnxpb.TensorShapeProto_Dimension
	for _, d := range shape {
		if d.Param != "" {
			dims = append(dims, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d.Param}})
		} else if d.Value >= 0 {
			dims = append(dims, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d.Value}})
		} else {
			dims = append(dims, &onnxpb.TensorShapeProto_Dimension{})
		}
	}
	tt := &onnxpb.TypeProto_Tensor{ElemType: elem}
	if shape != nil {
		tt.Shape = &onnxpb.TensorShapeProto{Dim: dims}
	}
	return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}}}
}

// ValueInfoShape returns the element type and shape recorded in a value-info
// (shape nil when unknown).
func ValueInfoShape(vi *onnxpb.ValueInfoProto) (int32, Shape) {
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return 0, nil
	}
	if tt.GetShape() == nil {
		return tt.GetElemType(), nil
	}
	s := Shape{}
	for _, d := range tt.GetShape().GetDim() {
		switch v := d.GetValue().(type) {
		case *onnxpb.TensorShapeProto_Dimension_DimValue:
			s = append(s, Dim{Value: v.DimValue})
		case *onnxpb.TensorShapeProto_Dimension_DimParam:
			s = append(s, Dim{Value: -1, Param: v.DimParam})
		default:
			s = append(s, Dim{Value: -1, Param: "?"})
		}
	}
	return tt.GetElemType(), s
}
