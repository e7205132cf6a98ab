package ort

import (
	"strings"
	"testing"
)

func TestTensorCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    Tensor
		want string // "" = well formed
	}{
		{"float32", Tensor{Shape: []int64{2, 3}, Float32: make([]float32, 6)}, ""},
		{"int64 scalar", Tensor{Int64: []int64{7}}, ""},
		{"empty float32", Tensor{Shape: []int64{0, 3}, Float32: []float32{}}, ""},
		{"negative dim", Tensor{Shape: []int64{-1, 3}, Float32: make([]float32, 3)}, "negative dimension"},
		{"both set", Tensor{Shape: []int64{1}, Float32: []float32{1}, Int64: []int64{1}}, "both"},
		{"short float32", Tensor{Shape: []int64{2, 3}, Float32: make([]float32, 5)}, "needs 6 elements, Float32 has 5"},
		{"long int64", Tensor{Shape: []int64{2}, Int64: make([]int64, 3)}, "needs 2 elements, Int64 has 3"},
		{"no data", Tensor{Shape: []int64{2}}, "neither"},
		{"empty, no type", Tensor{Shape: []int64{0}}, "no element type"},
	} {
		err := tc.t.Check()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: Check() = %v; want nil", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: Check() = %v; want an error containing %q", tc.name, err, tc.want)
		}
	}
}
