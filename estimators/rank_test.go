package estimators

import (
	"math"
	"testing"
)

func TestRanksTies(t *testing.T) {
	got := Ranks([]float64{10, 20, 20, 5, 20})
	want := []float64{2, 4, 4, 1, 4}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Ranks = %v; want %v", got, want)
		}
	}
}

// The expected values are computed by hand (and agree with
// scipy.stats.spearmanr / kendalltau, whose kendalltau is τ_b).
func TestSpearmanKendall(t *testing.T) {
	for _, tc := range []struct {
		name     string
		x, y     []float64
		rho, tau float64
	}{
		{"perfect", []float64{1, 2, 3, 4}, []float64{10, 20, 30, 40}, 1, 1},
		{"reversed", []float64{1, 2, 3, 4}, []float64{4, 3, 2, 1}, -1, -1},
		// ranks x 1..5, y 2,1,4,3,5: Σd² = 4, ρ = 1 − 6·4/(5·24) = 0.8;
		// pairs: 10, discordant 2 → τ = (8 − 2)/10 = 0.6.
		{"no ties", []float64{1, 2, 3, 4, 5}, []float64{2, 1, 4, 3, 5}, 0.8, 0.6},
		// x = 1,2,2,3 (ranks 1,2.5,2.5,4), y = 1,2,3,4: Pearson of ranks
		// = 4.5/sqrt(4.5·5) = 0.9486833; τ_b: concordant 5, discordant 0,
		// ties in x 1 → 5/sqrt(5·6) = 0.9128709.
		{"ties in x", []float64{1, 2, 2, 3}, []float64{1, 2, 3, 4}, 4.5 / math.Sqrt(4.5*5), 5 / math.Sqrt(30)},
		// x = 1,1,2,2 and y = 1,2,1,2: no association.
		{"ties both", []float64{1, 1, 2, 2}, []float64{1, 2, 1, 2}, 0, 0},
		// x = 1,2,3 and y = 1,3,2 with ties in y at x = 4: y = 2
		// x 1,2,3,4; y 1,3,2,2 → y ranks 1,4,2.5,2.5: Σ(rx−2.5)(ry−2.5)
		// = (−1.5)(−1.5)+(−.5)(1.5)+0+0 = 1.5; Σ(ry−2.5)² = 2.25+2.25 = 4.5,
		// Σ(rx−2.5)² = 5 → ρ = 1.5/sqrt(22.5); τ_b: pairs (1,2)+,(1,3)+,(1,4)+,
		// (2,3)−,(2,4)−,(3,4) tie y → (3−2)/sqrt(6·5).
		{"ties in y", []float64{1, 2, 3, 4}, []float64{1, 3, 2, 2}, 1.5 / math.Sqrt(22.5), 1 / math.Sqrt(30)},
	} {
		rho, err := Spearman(tc.x, tc.y)
		if err != nil || math.Abs(rho-tc.rho) > 1e-12 {
			t.Errorf("%s: Spearman = %v, %v; want %v", tc.name, rho, err, tc.rho)
		}
		tau, err := KendallTauB(tc.x, tc.y)
		if err != nil || math.Abs(tau-tc.tau) > 1e-12 {
			t.Errorf("%s: Kendall τ_b = %v, %v; want %v", tc.name, tau, err, tc.tau)
		}
	}
}

func TestRankCorrelationRefusals(t *testing.T) {
	for _, tc := range [][2][]float64{
		{{1}, {1}},
		{{1, 2}, {1}},
		{{1, 1, 1}, {1, 2, 3}},
		{{1, math.NaN()}, {1, 2}},
	} {
		if _, err := Spearman(tc[0], tc[1]); err == nil {
			t.Errorf("Spearman(%v, %v): no error", tc[0], tc[1])
		}
		if _, err := KendallTauB(tc[0], tc[1]); err == nil {
			t.Errorf("KendallTauB(%v, %v): no error", tc[0], tc[1])
		}
	}
}
