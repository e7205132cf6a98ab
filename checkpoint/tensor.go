package checkpoint

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/semirobust/srtool/internal/half"
)

// DType is an element type, spelled as in the safetensors header.
type DType string

// Element types srtool reads. Float32s decodes the floating-point ones;
// Int64s the integer ones.
const (
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	F64  DType = "F64"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	Bool DType = "BOOL"
)

var dtypeSize = map[DType]int{F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, Bool: 1}

// Size returns the number of bytes per element (0 for an unknown type).
func (d DType) Size() int { return dtypeSize[d] }

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool { return d == F32 || d == F16 || d == BF16 || d == F64 }

// Tensor is a dense array in C order. Data holds the elements little-endian,
// exactly len(Shape product) × DType.Size() bytes. A Tensor owns Data.
type Tensor struct {
	DType DType
	Shape []int64
	Data  []byte
}

// FromFloat32 makes an F32 tensor; it copies data and shape.
func FromFloat32(shape []int64, data []float32) Tensor {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return Tensor{DType: F32, Shape: slices.Clone(shape), Data: b}
}

// NumElements returns the product of the shape (1 for a scalar).
func (t Tensor) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Check reports whether the type is known, the shape non-negative and Data
// exactly as long as the shape needs.
func (t Tensor) Check() error {
	sz := t.DType.Size()
	if sz == 0 {
		return fmt.Errorf("unknown dtype %q", t.DType)
	}
	n, err := numElements(t.Shape)
	if err != nil {
		return err
	}
	if n > math.MaxInt64/int64(sz) || int64(len(t.Data)) != n*int64(sz) {
		return fmt.Errorf("%s shape %v needs %d elements, data has %d bytes", t.DType, t.Shape, n, len(t.Data))
	}
	return nil
}

// numElements multiplies dims, failing on negative dims and overflow.
func numElements(shape []int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, fmt.Errorf("shape %v is too large", shape)
		}
		n *= d
	}
	return n, nil
}

// Float32s decodes a floating-point tensor to float32 (F64 is rounded).
func (t Tensor) Float32s() ([]float32, error) {
	if err := t.Check(); err != nil {
		return nil, err
	}
	b := t.Data
	out := make([]float32, len(b)/max(1, t.DType.Size()))
	switch t.DType {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = half.ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	default:
		return nil, fmt.Errorf("dtype %s is not floating point", t.DType)
	}
	return out, nil
}

// Int64s decodes an integer or boolean tensor to int64.
func (t Tensor) Int64s() ([]int64, error) {
	if err := t.Check(); err != nil {
		return nil, err
	}
	b := t.Data
	out := make([]int64, len(b)/max(1, t.DType.Size()))
	switch t.DType {
	case I64:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
	case I32:
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		}
	case I16:
		for i := range out {
			out[i] = int64(int16(binary.LittleEndian.Uint16(b[2*i:])))
		}
	case I8:
		for i := range out {
			out[i] = int64(int8(b[i]))
		}
	case U8, Bool:
		for i := range out {
			out[i] = int64(b[i])
		}
	default:
		return nil, fmt.Errorf("dtype %s is not an integer type", t.DType)
	}
	return out, nil
}
