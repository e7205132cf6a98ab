//go:build cgo

package ort

import (
	"errors"
	"fmt"
	"slices"

	ortgo "github.com/yalue/onnxruntime_go"
)

// Conversion between Tensor and onnxruntime_go's OrtValue wrappers.

const (
	elemFloat = 1 // TensorProto.FLOAT
	elemInt64 = 7 // TensorProto.INT64
)

// newValue wraps t's data (not copied; ONNX Runtime only reads inputs) in an
// OrtValue that the caller must destroy.
func newValue(t Tensor, want ValueInfo) (ortgo.Value, error) {
	if err := t.Check(); err != nil {
		return nil, err
	}
	got := int32(elemFloat)
	if t.Int64 != nil {
		got = elemInt64
	}
	if want.ElemType != 0 && want.ElemType != got {
		return nil, fmt.Errorf("got %s data, the model wants %s", elemName(got), elemName(want.ElemType))
	}
	// Typed results become a Value only when there is no error, so a
	// failed constructor never leaves a non-nil Value holding a nil pointer.
	switch {
	case len(t.Shape) == 0 && t.Int64 != nil:
		return valueOf(ortgo.NewScalar(t.Int64[0]))
	case len(t.Shape) == 0:
		return valueOf(ortgo.NewScalar(t.Float32[0]))
	case t.Int64 != nil:
		return valueOf(ortgo.NewTensor(ortgo.Shape(t.Shape), t.Int64))
	}
	return valueOf(ortgo.NewTensor(ortgo.Shape(t.Shape), t.Float32))
}

// newScalar allocates a rank-0 output of the given ONNX element type, or
// returns nil for other types (ONNX Runtime then allocates it).
func newScalar(elem int32) (ortgo.Value, error) {
	switch elem {
	case elemFloat:
		return valueOf(ortgo.NewEmptyScalar[float32]())
	case elemInt64:
		return valueOf(ortgo.NewEmptyScalar[int64]())
	}
	return nil, nil
}

func valueOf[V ortgo.Value](v V, err error) (ortgo.Value, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}

// newStaticOutput allocates a Go-backed float32 tensor for an output whose
// declared shape is fully static, or returns nil (ONNX Runtime allocates).
func newStaticOutput(o ValueInfo) (ortgo.Value, error) {
	if o.ElemType != elemFloat {
		return nil, nil
	}
	n := int64(1)
	for _, d := range o.Shape {
		if d < 1 {
			return nil, nil
		}
		n *= d
	}
	return valueOf(ortgo.NewTensor(ortgo.Shape(slices.Clone(o.Shape)), make([]float32, n)))
}

// fromValue takes the data of a float32 or int64 output. The slices are Go
// memory that stays valid after the value is destroyed.
func fromValue(v ortgo.Value) (Tensor, error) {
	switch v := v.(type) {
	case *ortgo.Tensor[float32]:
		return Tensor{Shape: slices.Clone([]int64(v.GetShape())), Float32: v.GetData()}, nil
	case *ortgo.Tensor[int64]:
		return Tensor{Shape: slices.Clone([]int64(v.GetShape())), Int64: v.GetData()}, nil
	case *ortgo.Scalar[float32]:
		return Tensor{Shape: []int64{}, Float32: []float32{v.GetData()}}, nil
	case *ortgo.Scalar[int64]:
		return Tensor{Shape: []int64{}, Int64: []int64{v.GetData()}}, nil
	case nil:
		return Tensor{}, errors.New("no value")
	}
	return Tensor{}, fmt.Errorf("element type %v is not supported (ort.Tensor holds float32 and int64)", ortgo.TensorElementDataType(v.DataType()))
}

func elemName(t int32) string {
	switch t {
	case elemFloat:
		return "float32"
	case elemInt64:
		return "int64"
	}
	return ortgo.TensorElementDataType(t).String()
}

func destroyAll(vs []ortgo.Value) {
	for i, v := range vs {
		if v != nil {
			v.Destroy()
			vs[i] = nil
		}
	}
}
