package ort

import "fmt"

// Tensor is a dense row-major tensor. Exactly one of Float32 and Int64 is
// set, with as many elements as Shape asks for; an empty Shape is a scalar
// (one element).
type Tensor struct {
	Shape   []int64
	Float32 []float32
	Int64   []int64
}

// NumElements returns the product of t.Shape (1 for a scalar), or -1 if a
// dimension is negative.
func (t Tensor) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		if d < 0 {
			return -1
		}
		n *= d
	}
	return n
}

// Check reports whether t is well formed: one element type set, with as
// many elements as Shape asks for.
func (t Tensor) Check() error {
	n := t.NumElements()
	if n < 0 {
		return fmt.Errorf("shape %v has a negative dimension", t.Shape)
	}
	switch {
	case t.Float32 != nil && t.Int64 != nil:
		return fmt.Errorf("both Float32 and Int64 are set")
	case t.Float32 != nil:
		if int64(len(t.Float32)) != n {
			return fmt.Errorf("shape %v needs %d elements, Float32 has %d", t.Shape, n, len(t.Float32))
		}
	case t.Int64 != nil:
		if int64(len(t.Int64)) != n {
			return fmt.Errorf("shape %v needs %d elements, Int64 has %d", t.Shape, n, len(t.Int64))
		}
	default:
		if n != 0 {
			return fmt.Errorf("neither Float32 nor Int64 is set")
		}
		return fmt.Errorf("empty tensor of shape %v has no element type: set Float32 or Int64 to an empty slice", t.Shape)
	}
	return nil
}

// ValueInfo describes a graph input or output as the model declares it.
type ValueInfo struct {
	Name string
	// ElemType is the ONNX TensorProto.DataType (1 float32, 7 int64, …);
	// 0 if the model does not say or the value is not a tensor.
	ElemType int32
	// Shape holds the declared dimensions, -1 for a symbolic or unknown one
	// (such as the batch); nil if the rank is unknown. Use HasShape to tell
	// a scalar (rank 0) from an unknown rank.
	Shape    []int64
	HasShape bool
}
