package number

import (
	"math"
	"strings"
	"testing"
)

func TestParseNumber(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"8/255", 8.0 / 255, true},
		{" 0.031 ", 0.031, true},
		{"1e-3", 0.001, true},
		{"-2/4", -0.5, true},
		{"8/0", 0, false},
		{"inf/1", 0, false},
		{"1e308/1e-308", 0, false},
		{"NaN", 0, false},
		{"0x1p-3", 0.125, true},
		{"8/255/2", 0, false},
		{"", 0, false},
		{"eps", 0, false},
	} {
		got, err := Parse(tc.in)
		if (err == nil) != tc.ok || (tc.ok && math.Abs(got-tc.want) > 1e-12) {
			t.Errorf("Parse(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// FuzzParseNumber checks that any flag value either parses to a finite
// number or gives an error that quotes it, and that Floats agrees with
// Parse on each comma-separated part.
func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"8/255", "0.031", "1/0", "-0", "1e999", "junk", "8/255,0.5", " 3 / 4 ", "∞"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s)
		if err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
			t.Fatalf("Parse(%q) = %v without error", s, v)
		}
		if err != nil && !strings.Contains(err.Error(), "not a number") {
			t.Fatalf("Parse(%q): unclear error %q", s, err)
		}
		fs, err := Floats(s)
		if err == nil {
			for _, x := range fs {
				if math.IsNaN(float64(x)) {
					t.Fatalf("Floats(%q) holds NaN", s)
				}
			}
		}
	})
}

func TestStep(t *testing.T) {
	for _, tc := range []struct {
		in   string
		eps  float64
		want float64
		ok   bool
	}{
		{"eps/4", 8.0 / 255, 2.0 / 255, true},
		{"ε/5", 0.5, 0.1, true},
		{"2/255", 1, 2.0 / 255, true},
		{"eps/0", 1, 0, false},
		{"eps/-2", 1, 0, false},
		{"0", 1, 0, false},
		{"-0.1", 1, 0, false},
		{"eps", 1, 0, false},
	} {
		got, err := Step(tc.in, tc.eps)
		if (err == nil) != tc.ok || (tc.ok && math.Abs(got-tc.want) > 1e-12) {
			t.Errorf("Step(%q, %v) = %v, %v; want %v, ok %v", tc.in, tc.eps, got, err, tc.want, tc.ok)
		}
	}
}
