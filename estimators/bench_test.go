package estimators

import (
	"fmt"
	"testing"
)

func sizeName(n int) string {
	if n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// BenchmarkEDGE times the authors' settings (default RNG, stochastic
// shifts) on correlated Gaussian pairs of d columns per side.
func BenchmarkEDGE(b *testing.B) {
	sizes := []struct{ n, d int }{
		{1000, 10}, {2000, 64}, {2000, 1024}, {2000, 16384}, {5000, 10}, {5000, 100}, {5000, 1000},
		{20000, 10}, {20000, 100}, {20000, 1000}, {50000, 10}, {50000, 100}, {50000, 1000},
	}
	for _, s := range sizes {
		x, y, _ := pairsGauss(s.n, s.d, s.d, min(s.d, 8), 0.5, 1)
		b.Run(fmt.Sprintf("N=%s,d=%d", sizeName(s.n), s.d), func(b *testing.B) {
			for b.Loop() {
				if _, err := (EDGE{}).Estimate(x, y); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEDGEReference times the reference defaults (L = 10, two passes,
// deterministic) with numpy's generator.
func BenchmarkEDGEReference(b *testing.B) {
	for _, s := range []struct{ n, d int }{{2000, 64}, {50000, 1000}} {
		x, y, _ := pairsGauss(s.n, s.d, s.d, 8, 0.5, 1)
		b.Run(fmt.Sprintf("N=%s,d=%d", sizeName(s.n), s.d), func(b *testing.B) {
			for b.Loop() {
				if _, err := (EDGE{RNG: "reference", L: 10, NormalizeEpsilon: true, Deterministic: true}).Estimate(x, y); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkKSG times KSG (k = 5) on d columns per side.
func BenchmarkKSG(b *testing.B) {
	sizes := []struct{ n, d int }{
		{1000, 1}, {1000, 2}, {1000, 5}, {1000, 10}, {10000, 1}, {10000, 2}, {10000, 5}, {50000, 1}, {50000, 2},
	}
	for _, s := range sizes {
		x, y, _ := pairsGauss(s.n, s.d, s.d, s.d, 0.5, 1)
		b.Run(fmt.Sprintf("N=%s,d=%d", sizeName(s.n), s.d), func(b *testing.B) {
			for b.Loop() {
				if _, err := (KSG{}).Estimate(x, y); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
