package attacks

import (
	"math"
	"testing"
)

// TestPGDLinearMargin: on a 2-class linear model the best perturbation moves
// the logit difference by ε‖w‖₁ (L∞), ε‖w‖₂ (L2) or ε‖w‖∞ (L1) when the box
// does not bind, so PGD must succeed exactly when the margin is below that.
func TestPGDLinearMargin(t *testing.T) {
	for _, tc := range []struct {
		p      Norm
		eps    float32
		factor float64 // margin / reachable change
		want   bool
	}{
		{LInf, 0.02, 0.99, true},
		{LInf, 0.02, 1.01, false},
		{LInf, 0.01, 0.5, true},
		{L2, 0.3, 0.99, true},
		{L2, 0.3, 1.01, false},
		{L1, 0.3, 0.95, true},
		{L1, 0.3, 1.01, false},
	} {
		for seed := uint64(1); seed <= 3; seed++ {
			m, x := binaryLinear(seed, 0)
			w := m.w[48:]
			var reach float64
			switch tc.p {
			case LInf:
				for _, v := range w {
					reach += math.Abs(v)
				}
			case L2:
				for _, v := range w {
					reach += v * v
				}
				reach = math.Sqrt(reach)
			case L1:
				for _, v := range w {
					reach = math.Max(reach, math.Abs(v))
				}
			}
			reach *= float64(tc.eps)
			m.b[1] -= tc.factor * reach
			steps := 20
			if tc.p == L1 {
				steps = 100
			}
			res, err := (&PGD{Epsilon: tc.eps, Norm: tc.p, Steps: steps, Seed: seed}).Run(bg, m, x, []int64{0})
			if err != nil {
				t.Fatal(err)
			}
			if res.Success[0] != tc.want {
				z := m.logits64(res.Adv)
				t.Errorf("PGD %v ε=%g margin %.2f×reach (seed %d): success %v (z1−z0 = %.4g); want %v",
					tc.p, tc.eps, tc.factor, seed, res.Success[0], z[1]-z[0], tc.want)
			}
		}
	}
}
