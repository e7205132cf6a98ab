// Package onnxtest hand-encodes small ONNX models (ModelProto) with protowire,
// so that ort's tests and ortcheck need no other srtool package. It writes only
// the fields those models use; field numbers are from onnx/onnx.proto.
package onnxtest

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// ONNX TensorProto.DataType values.
const (
	Float = 1
	Int64 = 7
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

// Marshal encodes m as a serialized ModelProto.
func (m Model) Marshal() []byte {
	ir, opset := m.IRVersion, m.Opset
	if ir == 0 {
		ir = 8
	}
	if opset == 0 {
		opset = 17
	}
	var g []byte
	for _, n := range m.Nodes {
		g = protowire.AppendTag(g, 1, protowire.BytesType)
		g = protowire.AppendBytes(g, n.marshal())
	}
	g = appendString(g, 2, "g")
	for _, in := range m.Inits {
		g = protowire.AppendTag(g, 5, protowire.BytesType)
		g = protowire.AppendBytes(g, in.marshal())
	}
	for _, v := range m.Inputs {
		g = protowire.AppendTag(g, 11, protowire.BytesType)
		g = protowire.AppendBytes(g, v.marshal())
	}
	for _, v := range m.Outputs {
		g = protowire.AppendTag(g, 12, protowire.BytesType)
		g = protowire.AppendBytes(g, v.marshal())
	}

	var op []byte
	op = appendString(op, 1, "")
	op = appendVarint(op, 2, uint64(opset))

	var b []byte
	b = appendVarint(b, 1, uint64(ir))
	b = appendString(b, 2, "srtool-onnxtest")
	b = protowire.AppendTag(b, 7, protowire.BytesType)
	b = protowire.AppendBytes(b, g)
	b = protowire.AppendTag(b, 8, protowire.BytesType)
	b = protowire.AppendBytes(b, op)
	return b
}

func (n Node) marshal() []byte {
	var b []byte
	for _, s := range n.Inputs {
		b = appendString(b, 1, s)
	}
	for _, s := range n.Outputs {
		b = appendString(b, 2, s)
	}
	b = appendString(b, 4, n.Op)
	for _, a := range n.Attrs {
		var ab []byte
		ab = appendString(ab, 1, a.Name)
		if a.Ints != nil {
			for _, v := range a.Ints {
				ab = appendVarint(ab, 8, uint64(v))
			}
			ab = appendVarint(ab, 20, 7) // AttributeType INTS
		} else {
			ab = appendVarint(ab, 3, uint64(a.Int))
			ab = appendVarint(ab, 20, 2) // AttributeType INT
		}
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, ab)
	}
	return b
}

func (t Init) marshal() []byte {
	var b []byte
	for _, d := range t.Dims {
		b = appendVarint(b, 1, uint64(d))
	}
	var raw []byte
	if t.Int64 != nil {
		b = appendVarint(b, 2, Int64)
		for _, v := range t.Int64 {
			raw = binary.LittleEndian.AppendUint64(raw, uint64(v))
		}
	} else {
		b = appendVarint(b, 2, Float)
		for _, v := range t.Float32 {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
		}
	}
	b = appendString(b, 8, t.Name)
	b = protowire.AppendTag(b, 9, protowire.BytesType)
	b = protowire.AppendBytes(b, raw)
	return b
}

func (v Value) marshal() []byte {
	var tt []byte // TypeProto.Tensor
	tt = appendVarint(tt, 1, uint64(v.ElemType))
	if !v.NoShape {
		var shape []byte
		for _, d := range v.Dims {
			var dim []byte
			if d < 0 {
				dim = appendString(dim, 2, "N")
			} else {
				dim = appendVarint(dim, 1, uint64(d))
			}
			shape = protowire.AppendTag(shape, 1, protowire.BytesType)
			shape = protowire.AppendBytes(shape, dim)
		}
		tt = protowire.AppendTag(tt, 2, protowire.BytesType)
		tt = protowire.AppendBytes(tt, shape)
	}
	var typ []byte
	typ = protowire.AppendTag(typ, 1, protowire.BytesType)
	typ = protowire.AppendBytes(typ, tt)

	var b []byte
	b = appendString(b, 1, v.Name)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, typ)
	return b
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
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
