//go:build cgo

package semirobust

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/shard"
)

const demoTrain = "npz:../testdata/demo/fmnist_train_3000.npz"

// boundRunOptions is a small clean semirobust run of the demo pair: K = 2,
// trials trials of one epoch, ρ on 300 test samples.
func boundRunOptions(t *testing.T, dir string, trials int, bound bool) Options {
	t.Helper()
	normal, err := onnxio.Read(demoNormal)
	if err != nil {
		t.Fatal(err)
	}
	robust, err := onnxio.Read(demoRobust)
	if err != nil {
		t.Fatal(err)
	}
	train, err := dataset.Load(demoTrain, dataset.Options{N: 256})
	if err != nil {
		t.Fatal(err)
	}
	test, err := dataset.Load(demoTest, dataset.Options{N: 300})
	if err != nil {
		t.Fatal(err)
	}
	est, err := estimators.New("edge", nil)
	if err != nil {
		t.Fatal(err)
	}
	return Options{NormalPath: demoNormal, RobustPath: demoRobust, Normal: normal, Robust: robust, Train: train, Test: test, RhoN: 300,
		Attacks: []NamedAttack{{Name: "clean"}}, Ks: []int{2}, Finetune: finetune.Options{Trials: trials, Epochs: 1, Seed: 4},
		Engine: ort.Options{Threads: 2}, Batch: 128, Estimator: est, Units: "bits", Seed: 4, Bound: bound, Dir: dir, Shard: shard.Whole}
}

func TestRunBoundPerTrial(t *testing.T) {
	dir := t.TempDir()
	o := boundRunOptions(t, dir, 1, true)
	rep, err := Run(context.Background(), o, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 1 {
		t.Fatalf("%d rows, want 1", len(rep.Rows))
	}
	row := rep.Rows[0]
	if len(row.BoundPerTrial) != 1 {
		t.Fatalf("bound_per_trial has %d entries, want 1", len(row.BoundPerTrial))
	}
	for i, b := range row.BoundPerTrial {
		if b.Trial != i+1 {
			t.Errorf("entry %d is trial %d", i, b.Trial)
		}
		for name, v := range map[string]float64{"lambda_max_tail": b.LambdaMaxTail, "lambda_max_all": b.LambdaMaxAll, "weight_diff_sq": b.WeightDiffSq,
			"bound": b.Bound, "quadratic_form": b.QuadraticForm, "loss_gap": b.LossGap} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Errorf("trial %d: %s = %v", b.Trial, name, v)
			}
		}
		if b.Bound < 0 || b.WeightDiffSq <= 0 {
			t.Errorf("trial %d: bound %g, ‖Δω_b‖² %g", b.Trial, b.Bound, b.WeightDiffSq)
		}
		if b.LambdaMaxTail > b.LambdaMaxAll*(1+1e-3) {
			t.Errorf("trial %d: λmax tail %g exceeds λmax all %g", b.Trial, b.LambdaMaxTail, b.LambdaMaxAll)
		}
		// The same numbers as the bound computed directly on the trial's
		// best model (the unit's model file).
		ft, err := onnxio.Read(filepath.Join(dir, "units", UnitID{Attack: "clean", K: 2, Trial: b.Trial}.file()+".onnx"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := ComputeTrialBound(context.Background(), TrialBoundOptions(o.Robust, ft, demoRobust, "ft", 2, o.Engine, o.Batch, o.Seed, nil), o.Test.Slice(0, o.RhoN), b.Trial)
		if err != nil {
			t.Fatal(err)
		}
		rel := func(a, w float64) bool { return a == w || math.Abs(a-w) <= 1e-9*math.Abs(w) }
		for _, p := range [][3]any{{"lambda_max_tail", b.LambdaMaxTail, want.LambdaMaxTail}, {"lambda_max_all", b.LambdaMaxAll, want.LambdaMaxAll},
			{"weight_diff_sq", b.WeightDiffSq, want.WeightDiffSq}, {"bound", b.Bound, want.Bound}, {"quadratic_form", b.QuadraticForm, want.QuadraticForm}, {"loss_gap", b.LossGap, want.LossGap}} {
			if !rel(p[1].(float64), p[2].(float64)) {
				t.Errorf("trial %d: %s %v in the run, %v computed directly", b.Trial, p[0], p[1], p[2])
			}
		}
		if b.Converged != want.Converged || b.PowerTail.Iterations != want.PowerTail.Iterations || b.PowerAll.Iterations != want.PowerAll.Iterations {
			t.Errorf("trial %d: power iterations %+v/%+v in the run, %+v/%+v directly", b.Trial, b.PowerTail, b.PowerAll, want.PowerTail, want.PowerAll)
		}
	}
	// report.json carries the entries with their keys; report.md the
	// section and the plot.
	raw, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var js struct {
		Rows []struct {
			BoundPerTrial []map[string]any `json:"bound_per_trial"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(raw, &js); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"trial", "lambda_max_tail", "lambda_max_all", "weight_diff_sq", "bound", "quadratic_form", "loss_gap", "converged", "power_tail", "power_all"} {
		if _, ok := js.Rows[0].BoundPerTrial[0][k]; !ok {
			t.Errorf("report.json's bound_per_trial lacks %q", k)
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "## Weight-difference bound") || !strings.Contains(string(md), "(bound_K.png)") {
		t.Error("report.md has no weight-difference bound section with bound_K.png")
	}
	if _, err := os.Stat(filepath.Join(dir, "bound_K.png")); err != nil {
		t.Error(err)
	}
	if _, ok := rep.Outputs[filepath.Join(dir, "bound_K.png")]; !ok {
		t.Error("report's outputs lack bound_K.png")
	}
}

// A run without Bound (or RhoEveryEpoch) has another fingerprint and
// identity, so a run with it does not take its units over (and the reverse).
func TestBoundChangesRunIdentity(t *testing.T) {
	o := boundRunOptions(t, t.TempDir(), 1, false)
	fpOff, err := fingerprint(o)
	if err != nil {
		t.Fatal(err)
	}
	o.Bound = true
	fpOn, err := fingerprint(o)
	if err != nil {
		t.Fatal(err)
	}
	if fpOff == fpOn {
		t.Error("Bound does not change the run's fingerprint")
	}
	o.Bound = false
	o.RhoEveryEpoch = true
	fpRho, err := fingerprint(o)
	if err != nil {
		t.Fatal(err)
	}
	if fpRho == fpOff || fpRho == fpOn {
		t.Error("RhoEveryEpoch does not give the run a fingerprint of its own")
	}
	for _, c := range []struct {
		bound, rho bool
		want       int
	}{{false, false, 0}, {true, false, 1}, {false, true, 1}, {true, true, 2}} {
		if got := len(optInSettings(c.bound, c.rho)); got != c.want {
			t.Errorf("optInSettings(%v, %v): %d settings, want %d", c.bound, c.rho, got, c.want)
		}
	}
}

// With RhoEveryEpoch every epoch holds ρ of the tail's pairs, measured on
// the epoch's model: at the best trial's best epoch they equal the row's ρ,
// measured afterwards on the saved best model, bit for bit. ρ_n at each
// threshold is that trial data's, by the definition.
func TestRunRhoEveryEpoch(t *testing.T) {
	o := boundRunOptions(t, t.TempDir(), 2, false)
	o.Finetune.Epochs = 2
	o.RhoEveryEpoch = true
	rep, err := Run(context.Background(), o, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	row := rep.Rows[0]
	if len(row.Rhos) != 2 {
		t.Fatalf("%d ρ pairs, want 2", len(row.Rhos))
	}
	for _, h := range row.FinetuneHistory {
		for _, e := range h.Epochs {
			for _, p := range row.Rhos {
				if v, ok := e.Extra[epochRhoKey(p)]; !ok || math.IsNaN(v) {
					t.Errorf("trial %d epoch %d: no ρ of %d:%d (%v)", h.Trial, e.Epoch, p.Parent, p.Child, e.Extra)
				}
			}
		}
	}
	best := row.FinetuneHistory[row.BestTrial-1]
	at := best.Epochs[best.BestEpoch-1].Extra
	for _, p := range row.Rhos {
		if at[epochRhoKey(p)] != p.Value {
			t.Errorf("pair %d:%d: ρ %v after the best epoch, %v of the saved best model", p.Parent, p.Child, at[epochRhoKey(p)], p.Value)
		}
	}
	if len(row.RhoAtThreshold) != len(Thresholds) {
		t.Fatalf("%d thresholds, want %d", len(row.RhoAtThreshold), len(Thresholds))
	}
	want := rhoAtThresholds(row.FinetuneHistory, *row.AccStar, row.Rhos[1])
	for i, th := range row.RhoAtThreshold {
		if th.Reached+th.Censored+th.NotReached != 2 || th.Reached != want[i].Reached || (th.MeanRho == nil) != (th.Reached == 0) {
			t.Errorf("k = %g: %+v", th.K, th)
		}
	}
}

// rhoAtThresholds takes each trial's first epoch at or above Acc* − k,
// and tells censored trials (stopped at the run's threshold first) from
// those that never got there.
func TestRhoAtThresholds(t *testing.T) {
	p := Pair{Parent: 3, Child: 4}
	ep := func(n int, acc, rho float64) finetune.EpochResult {
		return finetune.EpochResult{Epoch: n, EvalAcc: acc, Extra: finetune.Metrics{"rho_3:4": rho}}
	}
	hs := []finetune.TrialResult{
		{Trial: 1, Epochs: []finetune.EpochResult{ep(1, 60, 2), ep(2, 68, 3), ep(3, 70, 4)}, Converged: true},
		{Trial: 2, Epochs: []finetune.EpochResult{ep(1, 55, 1), ep(2, 58, 1.5), ep(3, 59, 1.75)}},
	}
	got := rhoAtThresholds(hs, 70, p)
	type want struct {
		reached, censored, notReached int
		rho, epoch                    float64
	}
	for i, w := range []want{ // k = 0, 1, 2, 5, 10, 20
		{1, 0, 1, 4, 3}, {1, 0, 1, 4, 3}, {1, 0, 1, 3, 2}, {1, 0, 1, 3, 2}, {1, 0, 1, 2, 1}, {2, 0, 0, 1.5, 1},
	} {
		g := got[i]
		if g.Reached != w.reached || g.Censored != w.censored || g.NotReached != w.notReached || *g.MeanRho != w.rho || *g.MeanEpoch != w.epoch {
			t.Errorf("k = %g: %+v (ρ %v, epoch %v), want %+v", g.K, g, *g.MeanRho, *g.MeanEpoch, w)
		}
	}
	// Trial 1 stopped at its run's threshold (Acc* − 2 = 68) after epoch 2:
	// k = 0 is censored for it.
	hs[0].Epochs = hs[0].Epochs[:2]
	got = rhoAtThresholds(hs, 70, p)
	if g := got[0]; g.Reached != 0 || g.Censored != 1 || g.NotReached != 1 || g.MeanRho != nil {
		t.Errorf("k = 0 with trial 1 stopped at 68: %+v", g)
	}
	// A NaN ρ (an estimator's undefined value) counts as reached, without a ρ.
	hs[0].Epochs = append(hs[0].Epochs, ep(3, 70, math.NaN()))
	hs[0].Converged = false
	got = rhoAtThresholds(hs, 70, p)
	if g := got[0]; g.Reached != 1 || g.MeanRho != nil || len(g.Rhos) != 0 || g.MeanEpoch == nil || *g.MeanEpoch != 3 {
		t.Errorf("k = 0 reached at an epoch whose ρ is NaN: %+v", g)
	}
	if _, err := json.Marshal(got); err != nil {
		t.Errorf("thresholds with a NaN ρ: %v", err)
	}
	hs[1].Epochs[2].Extra = nil
	if rhoAtThresholds(hs, 70, p) != nil {
		t.Error("an epoch without ρ: want no thresholds")
	}
}
