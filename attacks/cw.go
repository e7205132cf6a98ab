package attacks

import (
	"context"
	"fmt"
	"math"
)

// CW is the Carlini & Wagner L2 attack (Carlini & Wagner 2017): it optimises
// w in tanh space, x' = (tanh(w) + 1)/2, minimising
// ‖x' − x‖₂² + c·max(z_y − max_{j≠y} z_j, −κ) with Adam, and keeps per
// sample the misclassified iterate with the smallest L2 distance.
//
// The zero value is the paper's call torchattacks.CW(c=1, kappa=0, steps=50,
// lr=0.01): one fixed c, no binary search, and torchattacks' early stop (every
// ⌈Steps/10⌉ steps the batch's total cost must not have increased). With
// BinarySearchSteps > 0 it searches c per sample as Carlini & Wagner do
// (start at C, default 1e-3; ×10 until the first success, then bisect),
// restarting Adam from the clean point for each c.
//
// C&W is a minimum-norm attack: with Epsilon 0 every misclassified point
// counts; with Epsilon > 0 adversarials farther than Epsilon (L2) are dropped.
// Rows of samples it cannot fool are their clean inputs. Deterministic: Seed
// is recorded but unused.
type CW struct {
	C                 float32 `json:"c"`                   // 0: 1 without search, 1e-3 with search
	Kappa             float32 `json:"kappa"`               // confidence κ ≥ 0; 0: 0
	Steps             int     `json:"steps"`               // Adam steps per c; 0: 50
	LR                float32 `json:"lr"`                  // Adam learning rate; 0: 0.01
	BinarySearchSteps int     `json:"binary_search_steps"` // 0: no search
	Epsilon           float32 `json:"epsilon"`             // L2 bound on counted adversarials; 0: unbounded
	Seed              uint64  `json:"seed"`
}

// Name returns "cw".
func (a *CW) Name() string { return "cw" }

// Threat returns Epsilon (0 when unbounded) and L2.
func (a *CW) Threat() (float32, Norm) { return a.Epsilon, L2 }

// Run attacks x with labels y.
func (a *CW) Run(ctx context.Context, m Model, x []float32, y []int64) (*Result, error) {
	c0, steps, lr, bs := float64(a.C), a.Steps, float64(a.LR), a.BinarySearchSteps
	if c0 < 0 || steps < 0 || lr < 0 || bs < 0 || a.Kappa < 0 || a.Epsilon < 0 {
		return nil, fmt.Errorf("cw: c %g, kappa %g, steps %d, lr %g, binary search steps %d and epsilon %g must be ≥ 0",
			c0, a.Kappa, steps, lr, bs, a.Epsilon)
	}
	if c0 == 0 {
		c0 = 1
		if bs > 0 {
			c0 = 1e-3
		}
	}
	if steps == 0 {
		steps = 50
	}
	if lr == 0 {
		lr = 0.01
	}
	e, n, err := begin("cw", m, true, x, y)
	if err != nil {
		return nil, err
	}
	d := e.d
	best := append([]float32(nil), x...)
	bestL2 := make([]float64, n) // squared
	for i := range bestL2 {
		bestL2[i] = math.Inf(1)
	}
	cs := make([]float64, n)
	lower, upper := make([]float64, n), make([]float64, n)
	for i := range cs {
		cs[i], upper[i] = c0, 1e10
	}
	rounds := max(bs, 1)
	if n == 0 {
		rounds = 0
	}
	w0 := make([]float64, len(x))
	for i, v := range x {
		w0[i] = math.Atanh((2*float64(v) - 1) * (1 - 1e-6))
	}
	for range rounds {
		found, err := e.cwRound(ctx, x, y, w0, cs, steps, lr, float64(a.Kappa), best, bestL2)
		if err != nil {
			return nil, err
		}
		if bs == 0 {
			break
		}
		for i := range n {
			if found[i] {
				upper[i] = math.Min(upper[i], cs[i])
				cs[i] = (lower[i] + upper[i]) / 2
			} else {
				lower[i] = math.Max(lower[i], cs[i])
				if upper[i] < 1e9 {
					cs[i] = (lower[i] + upper[i]) / 2
				} else {
					cs[i] *= 10
				}
			}
		}
	}
	if a.Epsilon > 0 {
		for i := range n {
			if math.Sqrt(bestL2[i]) > float64(a.Epsilon) {
				copy(best[i*d:(i+1)*d], x[i*d:(i+1)*d])
			}
		}
	}
	return e.finish(ctx, x, best, y, a.Epsilon, L2, 0)
}

// cwRound runs Adam from the clean point with per-sample constants cs and
// updates best/bestL2 (squared). It reports which samples it fooled.
func (e *engine) cwRound(ctx context.Context, x []float32, y []int64, w0, cs []float64, steps int, lr, kappa float64, best []float32, bestL2 []float64) ([]bool, error) {
	n, d, k := len(y), e.d, e.k
	w := append([]float64(nil), w0...)
	m1 := make([]float64, len(w))
	m2 := make([]float64, len(w))
	xa := make([]float32, len(w))
	th := make([]float64, len(w))
	found := make([]bool, n)
	const beta1, beta2, adamEps = 0.9, 0.999, 1e-8
	prevCost := 1e10
	every := max(steps/10, 1)
	for step := range steps {
		for i, v := range w {
			th[i] = math.Tanh(v)
			xa[i] = float32((th[i] + 1) / 2)
		}
		ls, g, z, err := e.lossGrad(ctx, xa, n, Loss{Kind: CWMargin, Labels: y, Kappa: noClamp})
		if err != nil {
			return nil, err
		}
		cost := 0.0
		for j := range n {
			l2 := 0.0
			for i := j * d; i < (j+1)*d; i++ {
				t := float64(xa[i]) - float64(x[i])
				l2 += t * t
			}
			// f = max(z_y − max_{j≠y} z_j, −κ) = max(−ls, −κ); ∇f = −∇ls while unclamped.
			f := -float64(ls[j])
			active := f > -kappa
			if !active {
				f = -kappa
			}
			cost += l2 + cs[j]*f
			for i := j * d; i < (j+1)*d; i++ {
				gx := 2 * (float64(xa[i]) - float64(x[i]))
				if active {
					gx -= cs[j] * float64(g[i])
				}
				gw := gx * (1 - th[i]*th[i]) / 2
				m1[i] = beta1*m1[i] + (1-beta1)*gw
				m2[i] = beta2*m2[i] + (1-beta2)*gw*gw
				mh := m1[i] / (1 - math.Pow(beta1, float64(step+1)))
				vh := m2[i] / (1 - math.Pow(beta2, float64(step+1)))
				w[i] -= lr * mh / (math.Sqrt(vh) + adamEps)
			}
			if Argmax(z[j*k:(j+1)*k]) != int(y[j]) {
				found[j] = true
				if l2 < bestL2[j] {
					bestL2[j] = l2
					copy(best[j*d:(j+1)*d], xa[j*d:(j+1)*d])
				}
			}
		}
		if step%every == 0 {
			if cost > prevCost {
				break
			}
			prevCost = cost
		}
	}
	return found, nil
}
