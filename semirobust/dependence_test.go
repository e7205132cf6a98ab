package semirobust

import (
	"math"
	"testing"
)

// TestDependenceCorrelations: Spearman and Kendall τ_b of a measure
// against Acc~ − Acc* and Acc_sr across a report's rows.
func TestDependenceCorrelations(t *testing.T) {
	sr := func(v float64) *float64 { return &v }
	var rows []Row
	// measure value v, Δ = −v: perfectly anti-correlated across 3 points.
	for i, v := range []float64{0.1, 0.3, 0.2} {
		rows = append(rows, Row{K: i + 1, AccSR: sr(float64(10 * (i + 1))), Dependence: []TrialDependence{{Trial: 1, Delta: -v,
			Values: []DependenceValue{{Measure: "corr", Tail: "finetuned", Data: "clean", Value: v}}}}})
	}
	got := DependenceCorrelations(rows)
	if len(got) != 2 || got[0].Outcome != "delta" || *got[0].Spearman != -1 || *got[0].Kendall != -1 || got[0].N != 3 {
		t.Fatalf("correlations %+v; want Spearman and Kendall −1 with Δ over 3 points", got)
	}
	// Acc_sr 10, 20, 30 against 0.1, 0.3, 0.2: ρ_s = 0.5, τ_b = 1/3.
	if s, k := *got[1].Spearman, *got[1].Kendall; s != 0.5 || math.Abs(k-1.0/3) > 1e-12 {
		t.Errorf("with Acc_sr: ρ_s %v, τ_b %v; want 0.5, 1/3", s, k)
	}
}
