package diffmodel

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestTRADESLogitGrads checks the closed-form logit gradients of the TRADES
// loss against central finite differences in float64.
func TestTRADESLogitGrads(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n, k, beta = 3, 5, 6.0
	zn, za := make([]float32, n*k), make([]float32, n*k)
	for i := range zn {
		zn[i] = float32(r.NormFloat64() * 2)
		za[i] = zn[i] + float32(r.NormFloat64()*0.5)
	}
	y := []int64{0, 3, 4}
	gN, gA, _ := tradesLogitGrads(zn, za, y, k, beta)
	loss := func(zn, za []float32) float64 { _, _, l := tradesLogitGrads(zn, za, y, k, beta); return l }
	const h = 1e-3
	for _, side := range []struct {
		name string
		z    []float32
		g    []float32
	}{{"clean", zn, gN}, {"adversarial", za, gA}} {
		for i := range side.z {
			orig := side.z[i]
			side.z[i] = orig + h
			up := loss(zn, za)
			side.z[i] = orig - h
			down := loss(zn, za)
			side.z[i] = orig
			fd := (up - down) / (2 * h)
			if math.Abs(fd-float64(side.g[i])) > 2e-3*math.Max(1, math.Abs(fd)) {
				t.Errorf("%s logit %d: gradient %.6f, finite difference %.6f", side.name, i, side.g[i], fd)
			}
		}
	}
	// At z′ = z the KL term and its adversarial gradient vanish.
	_, gA0, l0 := tradesLogitGrads(zn, zn, y, k, beta)
	ce := 0.0
	lp := make([]float64, k)
	for i := 0; i < n; i++ {
		logSoftmax(zn[i*k:(i+1)*k], lp)
		ce -= lp[y[i]]
	}
	if math.Abs(l0-ce/n) > 1e-9 {
		t.Errorf("loss at z′ = z is %.9f; want the mean cross-entropy %.9f", l0, ce/n)
	}
	for i, v := range gA0 {
		if v != 0 {
			t.Fatalf("adversarial gradient %d = %v at z′ = z; want 0", i, v)
		}
	}
}
