package semirobust

import (
	"path/filepath"
	"testing"

	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/plotting"
)

// TestAccuracyPlot: Acc_sr is the point at epoch 0 and Acc* spans the
// epochs (plotting's TestLinePlotMargins checks the axes of this plot).
func TestAccuracyPlot(t *testing.T) {
	r := Row{Attack: "pgd", K: 4, AccSR: f64(48.2), AccStar: f64(74.8), FinetuneHistory: []finetune.TrialResult{{Trial: 1,
		Epochs: []finetune.EpochResult{{Epoch: 1, EvalAcc: 60}, {Epoch: 2, EvalAcc: 70.5}, {Epoch: 3, EvalAcc: 74.8}}}}}
	ss := accuracySeries(r)
	if len(ss) != 2 || ss[0].X[0] != 0 || ss[0].Y[0] != *r.AccSR || ss[0].X[1] != 1 {
		t.Fatalf("series %+v; want trial 1 from (0, Acc_sr %v) then epochs from 1", ss, *r.AccSR)
	}
	star := ss[len(ss)-1]
	if star.X[0] != 0 || star.X[1] != 3 || star.Y[0] != *r.AccStar {
		t.Errorf("Acc* line %+v; want epochs 0..3 at %v", star, *r.AccStar)
	}
	if err := plotting.WriteLinePlot(filepath.Join(t.TempDir(), "a.png"), "t", "epoch", "accuracy (%)", ss); err != nil {
		t.Fatal(err)
	}
}
