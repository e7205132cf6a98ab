// Package onnxtest builds the small ONNX models (ModelProto) that ort's
// tests and ortcheck run, from a few plain structs, with package onnxio.
package onnxtest

import (
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// ONNX TensorProto.DataType values.
const (
	Float = onnxio.Float
	Int64 = onnxio.Int64
)

// Model is a single-graph ONNX model in the default domain.
type Model struct {
	IRVersion int64 // 0 means 8
	Opset     int64 // 0 means 17
	Nodes     []Node
	Inits     []Init
	Inputs    []Value
	Outputs   []Value
}

// Node is one NodeProto.
type Node struct {
	Op      string
	Inputs  []string
	Outputs []string
	Attrs   []Attr
}

// Attr is an INT or INTS attribute (the only kinds the test models use).
type Attr struct {
	Name string
	Int  int64
	Ints []int64 // used when non-nil
}

// Init is an initializer with float32 or int64 data.
type Init struct {
	Name    string
	Dims    []int64
	Float32 []float32
	Int64   []int64
}

// Value is a graph input or output. A negative dim becomes the symbolic dim
// "N"; NoShape leaves the shape out altogether (unknown rank).
type Value struct {
	Name     string
	ElemType int32
	Dims     []int64
	NoShape  bool
}

// Proto returns m as an onnxio.Model (not validated: tests build broken
// models on purpose).
func (m Model) Proto() *onnxio.Model {
	ir, opset := m.IRVersion, m.Opset
	if ir == 0 {
		ir = 8
	}
	if opset == 0 {
		opset = 17
	}
	g := &onnxpb.GraphProto{Name: "g"}
	for _, n := range m.Nodes {
		np := &onnxpb.NodeProto{OpType: n.Op, Input: n.Inputs, Output: n.Outputs}
		for _, a := range n.Attrs {
			if a.Ints != nil {
				np.Attribute = append(np.Attribute, onnxio.AttrInts(a.Name, a.Ints...))
			} else {
				np.Attribute = append(np.Attribute, onnxio.AttrInt(a.Name, a.Int))
			}
		}
		g.Node = append(g.Node, np)
	}
	for _, t := range m.Inits {
		tp := &onnxpb.TensorProto{Name: t.Name, Dims: t.Dims, DataType: onnxio.Float, FloatData: t.Float32}
		if t.Int64 != nil {
			tp = &onnxpb.TensorProto{Name: t.Name, Dims: t.Dims, DataType: onnxio.Int64, Int64Data: t.Int64}
		}
		g.Initializer = append(g.Initializer, tp)
	}
	for _, v := range m.Inputs {
		g.Input = append(g.Input, v.proto())
	}
	for _, v := range m.Outputs {
		g.Output = append(g.Output, v.proto())
	}
	return &onnxio.Model{Proto: &onnxpb.ModelProto{
		IrVersion:    ir,
		ProducerName: "srtool-onnxtest",
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Version: opset}},
		Graph:        g,
	}}
}

// Marshal encodes m as a serialized ModelProto.
func (m Model) Marshal() []byte {
	b, err := m.Proto().Encode()
	if err != nil {
		panic(err) // the structs above always encode
	}
	return b
}

func (v Value) proto() *onnxpb.ValueInfoProto {
	if v.NoShape {
		return onnxio.ValueInfo(v.Name, v.ElemType, nil)
	}
	shape := onnxio.Shape{}
	for _, d := range v.Dims {
		if d < 0 {
			shape = append(shape, onnxio.Sym("N"))
		} else {
			shape = append(shape, onnxio.D(d))
		}
	}
	return onnxio.ValueInfo(v.Name, v.ElemType, shape)
}

// Linear returns Y = Relu(X·W + B) with X [N, in] (N symbolic), W [in, out]
// and B [out] as initializers; w is row-major [in, out].
func Linear(w []float32, b []float32) Model {
	in, out := int64(len(w)/len(b)), int64(len(b))
	return Model{
		Nodes: []Node{
			{Op: "MatMul", Inputs: []string{"X", "W"}, Outputs: []string{"XW"}},
			{Op: "Add", Inputs: []string{"XW", "B"}, Outputs: []string{"Z"}},
			{Op: "Relu", Inputs: []string{"Z"}, Outputs: []string{"Y"}},
		},
		Inits: []Init{
			{Name: "W", Dims: []int64{in, out}, Float32: w},
			{Name: "B", Dims: []int64{out}, Float32: b},
		},
		Inputs:  []Value{{Name: "X", ElemType: Float, Dims: []int64{-1, in}}},
		Outputs: []Value{{Name: "Y", ElemType: Float, Dims: []int64{-1, out}}},
	}
}
