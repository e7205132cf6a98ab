package semirobust

import (
	"slices"
	"strings"
	"testing"

	"github.com/semirobust/srtool/finetune"
)

// TestUnitGrid: per attack, the attack unit, then K by K its trials.
func TestUnitGrid(t *testing.T) {
	var got []string
	for _, u := range UnitGrid([]string{"pgd", "clean"}, []int{2, 4}, 2) {
		got = append(got, u.String())
	}
	want := []string{"attack pgd", "pgd K=2 trial 1", "pgd K=2 trial 2", "pgd K=4 trial 1", "pgd K=4 trial 2",
		"attack clean", "clean K=2 trial 1", "clean K=2 trial 2", "clean K=4 trial 1", "clean K=4 trial 2"}
	if !slices.Equal(got, want) {
		t.Errorf("UnitGrid = %q; want %q", got, want)
	}
	if f := (UnitID{Attack: "pgd", K: 4, Trial: 2}).file(); f != "pgd_K4_t2" {
		t.Errorf("file %q; want pgd_K4_t2", f)
	}
}

// gridUnits are the finished units of attack pgd, K = 2, two trials: the
// attack unit measures Acc 10, Acc* 50 and Acc_sr 20; trial t reaches
// best accuracy acc[t-1].
func gridUnits(acc ...float64) map[string]*Unit {
	pct := func(v float64) *float64 { return &v }
	units := map[string]*Unit{}
	au := &Unit{Format: unitFormat, Unit: "attack pgd", Attack: "pgd", Complete: true, Acc: pct(10), AccStar: pct(50),
		Starts: []UnitStart{{K: 2, AccSR: pct(20), RhosBefore: []Pair{{Parent: 1, Child: 2, Value: 0.5}, {Parent: 2, Child: 3, Value: 0.25}}}}}
	units[au.Unit] = au
	for i, a := range acc {
		id := UnitID{Attack: "pgd", K: 2, Trial: i + 1}
		u := &Unit{Format: unitFormat, Unit: id.String(), Attack: "pgd", K: 2, Trial: i + 1, Complete: true, AccStar: pct(50), AccSR: pct(20),
			Finetune: &finetune.TrialResult{Trial: i + 1, Done: true, BestAcc: a, BestEpoch: 1, Converged: a >= 50, EpochsToConverge: 1 + i,
				Epochs: []finetune.EpochResult{{Epoch: 1, EvalAcc: a}}},
			Rhos: []Pair{{Parent: 1, Child: 2, Value: float64(i)}, {Parent: 2, Child: 3, Value: float64(10 + i)}}, Model: id.file() + ".onnx", ModelSHA256: "x"}
		units[u.Unit] = u
	}
	return units
}

// TestAssembleRows: Acc~ is the best trial's (the earliest on ties), with
// its ρ and model; convergence is averaged over the converged trials; an
// unfinished row is marked and keeps only what was measured; units that
// measured different Acc* are refused.
func TestAssembleRows(t *testing.T) {
	units := gridUnits(48, 52)
	for _, u := range units {
		if err := u.check([]int{2}); err != nil {
			t.Fatalf("unit %s: %v", u.Unit, err)
		}
	}
	rows, err := AssembleRows([]string{"pgd"}, []int{2}, 2, units, false)
	if err != nil || len(rows) != 1 {
		t.Fatalf("AssembleRows: %d rows, %v", len(rows), err)
	}
	r := rows[0]
	if !r.Complete || *r.Acc != 10 || *r.AccStar != 50 || *r.AccSR != 20 || *r.AccTilde != 52 || *r.Delta != 2 || r.BestTrial != 2 ||
		r.Rhos[1].Value != 11 || r.Model != "pgd_K2_t2.onnx" || r.Trials != 2 || r.Converged != 1 || *r.MeanEpochs != 2 {
		t.Errorf("row %+v; want trial 2 best (52, Δ +2), 1 of 2 converged after 2 epochs", r)
	}
	if len(r.RhosPerTrial) != 2 || r.RhosPerTrial[0][1] != 10 {
		t.Errorf("ρ per trial %v; want both trials'", r.RhosPerTrial)
	}
	if rows, _ := AssembleRows([]string{"pgd"}, []int{2}, 2, gridUnits(52, 52), false); rows[0].BestTrial != 1 {
		t.Errorf("tie: best trial %d; want the earliest, 1", rows[0].BestTrial)
	}

	// Trial 2 unfinished, with a best epoch so far.
	units = gridUnits(48, 60)
	u := units["pgd K=2 trial 2"]
	u.Complete, u.BestSoFar = false, &BestSoFar{Acc: 60, Trial: 2, Epoch: 1}
	if _, err := AssembleRows([]string{"pgd"}, []int{2}, 2, units, false); err == nil || !strings.Contains(err.Error(), "pgd K=2 trial 2") {
		t.Errorf("a complete merge with an unfinished unit: %v; want an error naming it", err)
	}
	rows, err = AssembleRows([]string{"pgd"}, []int{2}, 2, units, true)
	if err != nil || len(rows) != 1 {
		t.Fatalf("partial: %d rows, %v", len(rows), err)
	}
	r = rows[0]
	if r.Complete || r.AccTilde != nil || r.Delta != nil || r.BestSoFar == nil || r.BestSoFar.Acc != 60 || r.Trials != 1 {
		t.Errorf("partial row %+v; want unfinished, no Acc~, best so far 60 from trial 2", r)
	}

	// A trial unit that measured another Acc*.
	units = gridUnits(48, 52)
	other := 50.5
	units["pgd K=2 trial 1"].AccStar = &other
	if _, err := AssembleRows([]string{"pgd"}, []int{2}, 2, units, false); err == nil || !strings.Contains(err.Error(), "Acc*") {
		t.Errorf("different Acc*: %v; want an error naming Acc*", err)
	}
}

// TestCostOfTrials: mean time per epoch over every epoch, time and epochs
// to converge over the converged trials, the largest memory.
func TestCostOfTrials(t *testing.T) {
	costs := []*UnitCost{{TrainableParams: 100, PeakRSSMiB: 10, PeakRSSReset: true, GoSysMiB: 3}, {TrainableParams: 100, PeakRSSMiB: 12, PeakRSSReset: false, GoSysMiB: 2}}
	trials := []*finetune.TrialResult{
		{Converged: true, EpochsToConverge: 1, Epochs: []finetune.EpochResult{{Seconds: 1}, {Seconds: 3}}},
		{Epochs: []finetune.EpochResult{{Seconds: 2}}},
	}
	rc := costOfTrials(costs, trials)
	if rc == nil || rc.EpochsRun != 3 || rc.EpochSeconds != 2 || *rc.ConvergeSeconds != 1 || *rc.EpochsToConverge != 1 ||
		rc.PeakRSSMiB != 12 || rc.PeakRSSReset || rc.GoSysMiB != 3 || rc.TrainableParams != 100 {
		t.Errorf("cost %+v; want 3 epochs of 2 s, 1 s to converge, peak 12 MiB, reset false", rc)
	}
	if rc := costOfTrials([]*UnitCost{nil}, trials[:1]); rc != nil {
		t.Errorf("no cost record: %+v; want nil", rc)
	}
}
