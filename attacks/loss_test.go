package attacks

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

func TestLossValues(t *testing.T) {
	z := []float32{1, 2, 3, 0.5}
	lse := math.Log(math.Exp(1) + math.Exp(2) + math.Exp(3) + math.Exp(0.5))
	cases := []struct {
		name string
		loss Loss
		want float64
	}{
		// Hand-computed from the definitions in model.go.
		{"ce", Loss{Kind: CrossEntropy, Labels: []int64{0}}, lse - 1},
		{"cw", Loss{Kind: CWMargin, Labels: []int64{0}, Kappa: 10}, 3 - 1},
		{"cw clamped", Loss{Kind: CWMargin, Labels: []int64{2}, Kappa: 0.5}, -0.5}, // 2 − 3 = −1 < −κ
		{"dlr", Loss{Kind: DLR, Labels: []int64{0}}, -(1 - 3) / (3 - 1 + 1e-12)},
		{"dlr top", Loss{Kind: DLR, Labels: []int64{2}}, -(3 - 2) / (3 - 1 + 1e-12)},
		{"dlr-t", Loss{Kind: TargetedDLR, Labels: []int64{2}, Targets: []int64{3}}, -(3 - 0.5) / (3 - (1+0.5)/2 + 1e-12)},
	}
	for _, c := range cases {
		got := lossAndGrad(c.loss, 0, z, nil)
		if math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: loss = %.9g; want %.9g (hand-computed)", c.name, got, c.want)
		}
	}
}

// TestMLPGradient checks the test MLP's analytic input gradient, for every
// LossKind, against central finite differences.
func TestMLPGradient(t *testing.T) {
	m := newMLP(1, 1, 3, 6, 5)
	x, y := data(m, 2, 3)
	d := m.dim()
	kinds := []Loss{
		{Kind: CrossEntropy, Labels: y},
		{Kind: CWMargin, Labels: y, Kappa: 100},
		{Kind: DLR, Labels: y},
		{Kind: TargetedDLR, Labels: y, Targets: []int64{(y[0] + 1) % 5, (y[1] + 2) % 5, (y[2] + 3) % 5}},
	}
	for _, loss := range kinds {
		_, g, _, err := m.LossGrad(context.Background(), x, 3, loss)
		if err != nil {
			t.Fatal(err)
		}
		for j := range 3 {
			f := func(v []float64) float64 {
				_, z := m.forward(v)
				return lossAndGrad64(loss, j, z)
			}
			x0 := to64(x[j*d : (j+1)*d])
			for i := range d {
				const h = 1e-6
				xp := append([]float64(nil), x0...)
				xm := append([]float64(nil), x0...)
				xp[i] += h
				xm[i] -= h
				fd := (f(xp) - f(xm)) / (2 * h)
				if got := float64(g[j*d+i]); math.Abs(got-fd) > 1e-4*(1+math.Abs(fd)) {
					t.Errorf("%v sample %d coord %d: analytic gradient %.6g; want %.6g (finite difference)", loss.Kind, j, i, got, fd)
				}
			}
		}
	}
}

// lossAndGrad64 evaluates a loss on float64 logits (same formulas as lossAndGrad).
func lossAndGrad64(l Loss, i int, z []float64) float64 {
	y := int(l.Labels[i])
	o := -1
	for j := range z {
		if j != y && (o < 0 || z[j] > z[o]) {
			o = j
		}
	}
	s := append([]float64(nil), z...)
	for a := range s {
		for b := a + 1; b < len(s); b++ {
			if s[b] > s[a] {
				s[a], s[b] = s[b], s[a]
			}
		}
	}
	switch l.Kind {
	case CrossEntropy:
		sum := 0.0
		for _, v := range z {
			sum += math.Exp(v - s[0])
		}
		return s[0] + math.Log(sum) - z[y]
	case CWMargin:
		return math.Max(z[o]-z[y], -float64(l.Kappa))
	case DLR:
		return -(z[y] - z[o]) / (s[0] - s[2] + 1e-12)
	default:
		return -(z[y] - z[l.Targets[i]]) / (s[0] - (s[2]+s[3])/2 + 1e-12)
	}
}

// TestLossGradFiniteDifference checks lossAndGrad's logit gradient.
func TestLossGradFiniteDifference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for trial := range 20 {
		k := 6
		z := make([]float64, k)
		for i := range z {
			z[i] = r.NormFloat64() * 3
		}
		y := int64(trial % k)
		for _, l := range []Loss{
			{Kind: CrossEntropy, Labels: []int64{y}},
			{Kind: CWMargin, Labels: []int64{y}, Kappa: 100},
			{Kind: DLR, Labels: []int64{y}},
			{Kind: TargetedDLR, Labels: []int64{y}, Targets: []int64{(y + 1) % int64(k)}},
		} {
			z32 := make([]float32, k)
			for i := range z {
				z32[i] = float32(z[i])
			}
			dz := make([]float64, k)
			lossAndGrad(l, 0, z32, dz)
			for c := range k {
				const h = 1e-6
				zp := to64(z32)
				zm := to64(z32)
				zp[c] += h
				zm[c] -= h
				fd := (lossAndGrad64(l, 0, zp) - lossAndGrad64(l, 0, zm)) / (2 * h)
				if math.Abs(dz[c]-fd) > 1e-5*(1+math.Abs(fd)) {
					t.Errorf("trial %d %v: dL/dz_%d = %.6g; want %.6g (finite difference)", trial, l.Kind, c, dz[c], fd)
				}
			}
		}
	}
}
