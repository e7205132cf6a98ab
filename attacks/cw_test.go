package attacks

import (
	"math"
	"testing"
)

// TestCWLinear: the minimal L2 perturbation of a 2-class linear model is
// margin/‖w‖₂; C&W with binary search must land within 1 % above it, and the
// default fixed-c C&W must find an adversarial.
func TestCWLinear(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		m, x := binaryLinear(seed, 0)
		nw := 0.0
		for _, v := range m.w[48:] {
			nw += v * v
		}
		nw = math.Sqrt(nw)
		const target = 0.2 // analytic minimal L2 distance
		m.b[1] -= target * nw
		res, err := (&CW{BinarySearchSteps: 12, Steps: 300, LR: 0.01}).Run(bg, m, x, []int64{0})
		if err != nil {
			t.Fatal(err)
		}
		got := float64(res.Dist[0])
		if !res.Success[0] || got < target-1e-6 || got > target*1.01 {
			t.Errorf("CW binary search (seed %d): success %v, ‖δ‖₂ = %.5g; want in [%.4g, %.4g] (analytic minimum %.4g)", seed, res.Success[0], got, target, target*1.01, target)
		}
		def, err := (&CW{}).Run(bg, m, x, []int64{0})
		if err != nil {
			t.Fatal(err)
		}
		if !def.Success[0] || float64(def.Dist[0]) < target-1e-6 {
			t.Errorf("CW default (seed %d): success %v, ‖δ‖₂ = %.5g; want a success at ≥ %.4g", seed, def.Success[0], def.Dist[0], target)
		}
	}
}
