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

// A run without Bound has another fingerprint and identity, so a run with
// Bound does not take its units over (and the reverse).
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
	if len(boundSetting(false)) != 0 || len(boundSetting(true)) != 1 {
		t.Error("boundSetting: nothing without Bound, one setting with it")
	}
}
