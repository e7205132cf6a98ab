package estimators

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestQuickselect checks kthSmallest and the keyed quickselect against a
// sort, on data with many ties and on distinct values.
func TestQuickselect(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 10, 101, 1000} {
		for _, levels := range []int{3, 1 << 30} {
			a := make([]float64, n)
			for i := range a {
				a[i] = float64(rng.IntN(levels))
			}
			sorted := slices.Sorted(slices.Values(a))
			for _, k := range []int{1, (n + 1) / 2, n} {
				b := slices.Clone(a)
				if got := kthSmallest(b, k); got != sorted[k-1] {
					t.Errorf("kthSmallest(n=%d, levels=%d, k=%d) = %v; want %v", n, levels, k, got, sorted[k-1])
				}
				idx := make([]int32, n)
				for i := range idx {
					idx[i] = int32(i)
				}
				quickselect(idx, k-1, func(i int32) float64 { return a[i] })
				if got := a[idx[k-1]]; got != sorted[k-1] {
					t.Errorf("quickselect(n=%d, levels=%d, k=%d) put %v at k; want %v", n, levels, k, got, sorted[k-1])
				}
				for _, i := range idx[:k-1] {
					if a[i] > sorted[k-1] {
						t.Errorf("quickselect(n=%d, k=%d): %v before rank k exceeds %v", n, k, a[i], sorted[k-1])
					}
				}
			}
		}
	}
}
