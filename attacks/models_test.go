package attacks

import (
	"context"
	"math"
	"math/rand/v2"
)

// newRand is the tests' random source (the attacks draw per sample, sampleRands).
func newRand(seed uint64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream^0x9e3779b97f4a7c15))
}

// Pure-Go test models with analytic gradients. Both compute in float64 and
// hand float32 to the attacks, like a real model would.

// linearModel computes z = W x + b (W is K×d, row-major).
type linearModel struct {
	w, b  []float64
	k     int
	shape []int
}

func (m *linearModel) NumClasses() int   { return m.k }
func (m *linearModel) InputShape() []int { return m.shape }
func (m *linearModel) dim() int          { return len(m.w) / m.k }

func (m *linearModel) logits64(x []float32) []float64 {
	d := m.dim()
	z := make([]float64, m.k)
	for c := range m.k {
		s := m.b[c]
		for i := range d {
			s += m.w[c*d+i] * float64(x[i])
		}
		z[c] = s
	}
	return z
}

func (m *linearModel) Logits(ctx context.Context, x []float32, n int) ([]float32, error) {
	d := m.dim()
	out := make([]float32, n*m.k)
	for j := range n {
		for c, v := range m.logits64(x[j*d : (j+1)*d]) {
			out[j*m.k+c] = float32(v)
		}
	}
	return out, nil
}

func (m *linearModel) LossGrad(ctx context.Context, x []float32, n int, loss Loss) ([]float32, []float32, []float32, error) {
	if err := checkLoss(loss, n, m.k); err != nil {
		return nil, nil, nil, err
	}
	d := m.dim()
	ls, g := make([]float32, n), make([]float32, n*d)
	z, _ := m.Logits(ctx, x, n)
	dz := make([]float64, m.k)
	for j := range n {
		ls[j] = float32(lossAndGrad(loss, j, z[j*m.k:(j+1)*m.k], dz))
		for i := range d {
			s := 0.0
			for c := range m.k {
				s += m.w[c*d+i] * dz[c]
			}
			g[j*d+i] = float32(s)
		}
	}
	return ls, g, z, nil
}

// mlpModel computes z = W2 tanh(W1 x + b1) + b2.
type mlpModel struct {
	w1, b1, w2, b2 []float64
	h, k           int
	shape          []int
}

func (m *mlpModel) NumClasses() int   { return m.k }
func (m *mlpModel) InputShape() []int { return m.shape }
func (m *mlpModel) dim() int          { return len(m.w1) / m.h }

func (m *mlpModel) forward(x []float64) (hid, z []float64) {
	d := m.dim()
	hid = make([]float64, m.h)
	for a := range m.h {
		s := m.b1[a]
		for i := range d {
			s += m.w1[a*d+i] * x[i]
		}
		hid[a] = math.Tanh(s)
	}
	z = make([]float64, m.k)
	for c := range m.k {
		s := m.b2[c]
		for a := range m.h {
			s += m.w2[c*m.h+a] * hid[a]
		}
		z[c] = s
	}
	return hid, z
}

func to64(x []float32) []float64 {
	o := make([]float64, len(x))
	for i, v := range x {
		o[i] = float64(v)
	}
	return o
}

func (m *mlpModel) Logits(ctx context.Context, x []float32, n int) ([]float32, error) {
	d := m.dim()
	out := make([]float32, n*m.k)
	for j := range n {
		_, z := m.forward(to64(x[j*d : (j+1)*d]))
		for c, v := range z {
			out[j*m.k+c] = float32(v)
		}
	}
	return out, nil
}

// inputGrad returns Wᵀ-chain of dz through the network at x.
func (m *mlpModel) inputGrad(hid, dz []float64) []float64 {
	d := m.dim()
	dh := make([]float64, m.h)
	for a := range m.h {
		s := 0.0
		for c := range m.k {
			s += m.w2[c*m.h+a] * dz[c]
		}
		dh[a] = s * (1 - hid[a]*hid[a])
	}
	g := make([]float64, d)
	for a := range m.h {
		for i := range d {
			g[i] += m.w1[a*d+i] * dh[a]
		}
	}
	return g
}

func (m *mlpModel) LossGrad(ctx context.Context, x []float32, n int, loss Loss) ([]float32, []float32, []float32, error) {
	if err := checkLoss(loss, n, m.k); err != nil {
		return nil, nil, nil, err
	}
	d := m.dim()
	ls, g, zs := make([]float32, n), make([]float32, n*d), make([]float32, n*m.k)
	dz := make([]float64, m.k)
	for j := range n {
		hid, z := m.forward(to64(x[j*d : (j+1)*d]))
		z32 := zs[j*m.k : (j+1)*m.k]
		for c, v := range z {
			z32[c] = float32(v)
		}
		ls[j] = float32(lossAndGrad(loss, j, z32, dz))
		for i, v := range m.inputGrad(hid, dz) {
			g[j*d+i] = float32(v)
		}
	}
	return ls, g, zs, nil
}

// newMLP draws a random MLP with inputs of shape c×s×s.
func newMLP(seed uint64, c, s, h, k int) *mlpModel {
	r := rand.New(rand.NewPCG(seed, 7))
	d := c * s * s
	m := &mlpModel{h: h, k: k, shape: []int{c, s, s},
		w1: make([]float64, h*d), b1: make([]float64, h), w2: make([]float64, k*h), b2: make([]float64, k)}
	for i := range m.w1 {
		m.w1[i] = r.NormFloat64() * 3 / math.Sqrt(float64(d))
	}
	for i := range m.b1 {
		m.b1[i] = r.NormFloat64() * 0.5
	}
	for i := range m.w2 {
		m.w2[i] = r.NormFloat64() * 2 / math.Sqrt(float64(h))
	}
	return m
}

// data draws n inputs in [0,1] and labels them with the model's prediction
// (so clean accuracy is 100 % except where wrong[i] flips a label).
func data(m Model, seed uint64, n int, wrong ...int) ([]float32, []int64) {
	r := rand.New(rand.NewPCG(seed, 11))
	d := 1
	for _, s := range m.InputShape() {
		d *= s
	}
	x := make([]float32, n*d)
	for i := range x {
		x[i] = r.Float32()
	}
	z, _ := m.Logits(context.Background(), x, n)
	y := argmaxRows(z, m.NumClasses())
	for _, i := range wrong {
		y[i] = (y[i] + 1) % int64(m.NumClasses())
	}
	return x, y
}

// binaryLinear returns a 2-class linear model on inputs of shape 3×4×4 with
// z_0 = 0 and z_1 = w·x + b, and a point x = 0.5 with margin z_0 − z_1 = margin.
func binaryLinear(seed uint64, margin float64) (*linearModel, []float32) {
	r := rand.New(rand.NewPCG(seed, 13))
	d := 48
	m := &linearModel{k: 2, shape: []int{3, 4, 4}, w: make([]float64, 2*d), b: make([]float64, 2)}
	s := 0.0
	x := make([]float32, d)
	for i := range d {
		m.w[d+i] = r.NormFloat64()
		x[i] = 0.5
		s += m.w[d+i] * 0.5
	}
	m.b[1] = -s - margin
	return m, x
}

// quantized hides the gradient: it rounds inputs to 1/8 steps before a
// linear model, so every loss gradient is zero while logits still change.
type quantized struct{ *linearModel }

func (q quantized) round(x []float32) []float32 {
	o := make([]float32, len(x))
	for i, v := range x {
		o[i] = float32(math.Round(float64(v)*8) / 8)
	}
	return o
}

func (q quantized) Logits(ctx context.Context, x []float32, n int) ([]float32, error) {
	return q.linearModel.Logits(ctx, q.round(x), n)
}

func (q quantized) LossGrad(ctx context.Context, x []float32, n int, loss Loss) ([]float32, []float32, []float32, error) {
	ls, g, z, err := q.linearModel.LossGrad(ctx, q.round(x), n, loss)
	clear(g)
	return ls, g, z, err
}

// noisy adds fresh Gaussian noise to every logit.
type noisy struct {
	*mlpModel
	r *rand.Rand
}

func (m noisy) Logits(ctx context.Context, x []float32, n int) ([]float32, error) {
	z, err := m.mlpModel.Logits(ctx, x, n)
	for i := range z {
		z[i] += float32(m.r.NormFloat64() * 0.1)
	}
	return z, err
}

// softmaxed returns probabilities instead of logits.
type softmaxed struct{ *mlpModel }

func (m softmaxed) Logits(ctx context.Context, x []float32, n int) ([]float32, error) {
	z, err := m.mlpModel.Logits(ctx, x, n)
	for j := range n {
		row := z[j*m.k : (j+1)*m.k]
		mx := row[Argmax(row)]
		s := float32(0)
		for c := range row {
			row[c] = float32(math.Exp(float64(row[c] - mx)))
			s += row[c]
		}
		for c := range row {
			row[c] /= s
		}
	}
	return z, err
}

// logitsOnly hides LossGrad.
type logitsOnly struct{ Model }

// nanGrad returns NaN gradients, which drive an attack out of the box.
type nanGrad struct{ *mlpModel }

func (m nanGrad) LossGrad(ctx context.Context, x []float32, n int, loss Loss) ([]float32, []float32, []float32, error) {
	ls, g, z, err := m.mlpModel.LossGrad(ctx, x, n, loss)
	for i := range g {
		g[i] = float32(math.NaN())
	}
	return ls, g, z, err
}
