package plotting

import (
	"math"
	"path/filepath"
	"testing"
)

// TestLinePlotMargins: on the accuracy plot of a fine-tuning row (Acc_sr at
// epoch 0, three epochs, the Acc* line), epoch ticks are whole numbers and
// no line sits on the frame.
func TestLinePlotMargins(t *testing.T) {
	ss := []Series{
		{Name: "trial 1", X: []float64{0, 1, 2, 3}, Y: []float64{48.2, 60, 70.5, 74.8}},
		{Name: "Acc* (robust f*)", X: []float64{0, 3}, Y: []float64{74.8, 74.8}},
	}
	p, err := newLinePlot("t", "epoch", "accuracy (%)", ss)
	if err != nil {
		t.Fatal(err)
	}
	_, _, ymin, ymax, _ := seriesBounds(ss)
	if !(p.Y.Max > ymax && p.Y.Min < ymin && p.X.Min < 0 && p.X.Max > 3) {
		t.Errorf("axes x %v..%v, y %v..%v for data y %v..%v; want margins on every side", p.X.Min, p.X.Max, p.Y.Min, p.Y.Max, ymin, ymax)
	}
	for _, tk := range p.X.Tick.Marker.Ticks(p.X.Min, p.X.Max) {
		if tk.Label != "" && (tk.Value != math.Trunc(tk.Value) || tk.Label == "-0") {
			t.Errorf("x tick %v %q; want whole epochs", tk.Value, tk.Label)
		}
	}
	if err := WriteLinePlot(filepath.Join(t.TempDir(), "a.png"), "t", "epoch", "accuracy (%)", ss); err != nil {
		t.Fatal(err)
	}
}
