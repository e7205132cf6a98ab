package dataset

import (
	"strings"
	"testing"
)

func TestCheckLabels(t *testing.T) {
	d := &Dataset{Name: "toy", C: 1, H: 2, W: 2, X: make([]float32, 12), Y: []int64{0, 2, 1}}
	for _, c := range []struct {
		classes int
		names   []string
		want    string // "" = accepted
	}{
		{3, nil, ""},
		{2, nil, "label 2 of sample 1 of toy is outside the 2 classes of m.onnx (labels must be 0..1)"},
		{3, []string{"a", "b"}, "the data toy has 2 classes but m.onnx has 3 outputs"},
		{3, []string{"a", "b", "c"}, ""},
	} {
		d.ClassNames = c.names
		err := d.CheckLabels(c.classes, "m.onnx")
		if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("CheckLabels(%d classes, names %v) = %v; want %q", c.classes, c.names, err, c.want)
		}
	}
}

func TestCheckShape(t *testing.T) {
	d := &Dataset{Name: "toy", C: 3, H: 32, W: 32}
	if err := d.CheckShape("m.onnx", []int{3, 32, 32}); err != nil {
		t.Errorf("CheckShape(matching) = %v; want nil", err)
	}
	err := d.CheckShape("m.onnx", []int{1, 28, 28})
	want := "model m.onnx takes inputs of shape 1×28×28 (C×H×W) but the data toy has samples of shape 3×32×32"
	if err == nil || err.Error() != want {
		t.Errorf("CheckShape(other) = %v; want %q", err, want)
	}
}
