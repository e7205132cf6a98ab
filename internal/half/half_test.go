package half

import (
	"math"
	"testing"
)

func TestToFloat32(t *testing.T) {
	cases := []struct {
		h    uint16
		want float32
	}{
		{0x0000, 0},
		{0x3c00, 1},
		{0xc000, -2},
		{0x3555, 0.33325195},                  // nearest half to 1/3
		{0x7bff, 65504},                       // largest finite half
		{0x0400, float32(math.Ldexp(1, -14))}, // smallest normal
		{0x0001, float32(math.Ldexp(1, -24))}, // smallest subnormal
		{0x03ff, float32(math.Ldexp(1023, -24))},
		{0x8001, float32(-math.Ldexp(1, -24))}, // negative subnormal
		{0x7c00, float32(math.Inf(1))},
		{0xfc00, float32(math.Inf(-1))},
	}
	for _, c := range cases {
		if got := ToFloat32(c.h); got != c.want {
			t.Errorf("ToFloat32(%#04x) = %v; want %v", c.h, got, c.want)
		}
	}
	if got := ToFloat32(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("ToFloat32(0x8000) = %v; want -0", got)
	}
	for _, h := range []uint16{0x7e00, 0x7c01, 0xfe00} {
		if got := ToFloat32(h); !math.IsNaN(float64(got)) {
			t.Errorf("ToFloat32(%#04x) = %v; want NaN", h, got)
		}
	}
}

// TestToFloat32Exhaustive checks every half against the value its fields
// define, (-1)^s · 2^(e-15) · (1 + m/1024), or 2^-14 · m/1024 when e is 0.
func TestToFloat32Exhaustive(t *testing.T) {
	for h := range 1 << 16 {
		s, e, m := h>>15, (h>>10)&0x1f, h&0x3ff
		got := ToFloat32(uint16(h))
		if e == 0x1f {
			if m == 0 && !math.IsInf(float64(got), 1-2*s) || m != 0 && !math.IsNaN(float64(got)) {
				t.Fatalf("ToFloat32(%#04x) = %v; want inf or NaN", h, got)
			}
			continue
		}
		want := math.Ldexp(float64(m), -24)
		if e > 0 {
			want = math.Ldexp(1+float64(m)/1024, e-15)
		}
		if s == 1 {
			want = -want
		}
		if float64(got) != want || math.Signbit(float64(got)) != (s == 1) {
			t.Fatalf("ToFloat32(%#04x) = %v; want %v", h, got, want)
		}
	}
}
