// Package half decodes IEEE 754 binary16 ("half", float16) values, the one
// decoder behind npy's f2 arrays, onnxio's FLOAT16 tensors and checkpoint's
// F16 tensors.
package half

import "math"

// ToFloat32 converts the binary16 value with bits h to float32, exactly
// (every half is a float32): signed zeros, subnormals (normalised into
// float32's range), infinities and NaNs (payload kept) included.
func ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | e<<23 | mant<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	default:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	}
}
