package attacks

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// PGD is projected gradient ascent on a per-sample loss (Madry et al. 2018),
// in the form torchattacks and most papers run it: an optional uniform
// random start in the ε-ball, Steps steps of size StepSize along the
// steepest-ascent direction of the norm (sign of the gradient for L∞, the
// L2-normalised gradient for L2, a sparse top-1 % sign step for L1 as in
// SLIDE, Tramèr & Boneh 2019), each followed by projection onto the ε-ball
// and the [0,1] box. Epsilon and StepSize are in pixel units of [0,1].
//
// The zero value is torchattacks' default torchattacks.PGD(eps=8/255,
// alpha=2/255, steps=10, random_start=True) on the cross-entropy loss,
// returning the last iterate; α = ε/4 is also Madry et al.'s CIFAR-10
// setting (ε = 8, step 2 in 0–255 pixels). With Steps: 1, NoRandomStart and
// StepSize = Epsilon it is FGSM; with NoRandomStart it is I-FGSM/BIM.
type PGD struct {
	Epsilon float32 `json:"epsilon"` // 0: 8/255 (L∞), 0.5 (L2), 12 (L1)
	Norm    Norm    `json:"norm"`    // "": L∞
	// StepSize 0: ε/4 for L∞ (2/255 at ε = 8/255: torchattacks.PGD, Madry et al.), ε/5 for
	// L2 and L1 (torchattacks.PGDL2: alpha 0.2 at eps 1).
	StepSize      float32 `json:"step_size"`
	Steps         int     `json:"steps"`           // 0: 10
	NoRandomStart bool    `json:"no_random_start"` // false: uniform start in the ε-ball (L∞: U[−ε,ε]^d; L2, L1: uniform direction, radius U(0,1)·ε)
	// Restarts 0: 1. Each restart starts afresh and attacks only the samples no
	// earlier restart fooled.
	Restarts int `json:"restarts"`
	// Loss is CrossEntropy (default), CWMargin or DLR. With CWMargin the
	// attacker's objective is min(max_{j≠y} z_j − z_y, Kappa) (C&W's clamp).
	Loss  LossKind `json:"loss"`
	Kappa float32  `json:"kappa,omitempty"`
	// Best false returns the last iterate (torchattacks, Madry). Best true
	// returns per sample the best iterate seen: a misclassified one beats a
	// correctly classified one, and among equals the higher loss wins.
	Best bool   `json:"best"`
	Seed uint64 `json:"seed"`
}

// Name returns "pgd".
func (a *PGD) Name() string { return "pgd" }

func (a *PGD) settings() (eps, step float32, p Norm, steps, restarts int, err error) {
	eps, p, err = resolveEps("pgd", a.Epsilon, a.Norm)
	if err != nil {
		return
	}
	step = a.StepSize
	if step < 0 {
		err = fmt.Errorf("pgd: step size %g < 0", step)
		return
	}
	if step == 0 {
		if p == LInf {
			step = eps / 4
		} else {
			step = eps / 5
		}
	}
	steps, restarts = a.Steps, a.Restarts
	if steps < 0 || restarts < 0 {
		err = fmt.Errorf("pgd: steps %d and restarts %d must be ≥ 0", steps, restarts)
		return
	}
	if steps == 0 {
		steps = 10
	}
	if restarts == 0 {
		restarts = 1
	}
	return
}

// Threat returns the resolved ε and norm.
func (a *PGD) Threat() (float32, Norm) {
	eps, _, p, _, _, _ := a.settings()
	return eps, p
}

// Run attacks x with labels y.
func (a *PGD) Run(ctx context.Context, m Model, x []float32, y []int64) (*Result, error) {
	eps, step, p, steps, restarts, err := a.settings()
	if err != nil {
		return nil, err
	}
	e, n, err := begin("pgd", m, true, x, y)
	if err != nil {
		return nil, err
	}
	if a.Loss != CrossEntropy && a.Loss != CWMargin && a.Loss != DLR {
		return nil, fmt.Errorf("pgd: loss %v not supported (want ce, cw or dlr)", a.Loss)
	}
	if err := checkLoss(Loss{Kind: a.Loss, Labels: y}, n, e.k); err != nil {
		return nil, fmt.Errorf("pgd: %w", err)
	}
	d := e.d
	adv := append([]float32(nil), x...)
	done := make([]bool, n)    // fooled by an earlier restart
	bestMis := make([]bool, n) // Best mode: adv[i] is misclassified
	bestLoss := make([]float64, n)
	for i := range bestLoss {
		bestLoss[i] = math.Inf(-1)
	}
	zeroGrad := 0
	for r := range restarts {
		var idx []int
		for i := range n {
			if !done[i] {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			break
		}
		xs, ys := gather(x, idx, d), gatherLabels(y, idx)
		xa := append([]float32(nil), xs...)
		if !a.NoRandomStart {
			rngs := sampleRands(a.Seed, streamPGD, runKey(0, r), xs, ys, d)
			for j := range idx {
				randomStart(rngs[j], xa[j*d:(j+1)*d], xs[j*d:(j+1)*d], eps, p)
			}
		}
		loss := Loss{Kind: a.Loss, Labels: ys, Kappa: noClamp}
		keep := func(j int, row []float32, z []float32, l float64) {
			i := idx[j]
			mis := Argmax(z) != int(ys[j])
			if (mis && !bestMis[i]) || (mis == bestMis[i] && l > bestLoss[i]) {
				bestMis[i], bestLoss[i] = mis, l
				copy(adv[i*d:(i+1)*d], row)
			}
		}
		for t := range steps {
			ls, g, z, err := e.lossGrad(ctx, xa, len(idx), loss)
			if err != nil {
				return nil, err
			}
			if a.Loss == CWMargin {
				cwClamp(ls, g, d, a.Kappa)
			}
			if r == 0 && t == 0 {
				zeroGrad += countZeroRows(g, d)
			}
			for j := range idx {
				row := xa[j*d : (j+1)*d]
				if a.Best {
					keep(j, row, z[j*e.k:(j+1)*e.k], float64(ls[j]))
				}
				ascend(row, g[j*d:(j+1)*d], step, p)
				project(row, xs[j*d:(j+1)*d], eps, p)
			}
		}
		// The last iterate has no gradient yet: one forward pass judges it,
		// except after the last restart in last-iterate mode, where finish does.
		if a.Best || r < restarts-1 {
			z, err := e.logits(ctx, xa, len(idx))
			if err != nil {
				return nil, err
			}
			for j, i := range idx {
				zj := z[j*e.k : (j+1)*e.k]
				row := xa[j*d : (j+1)*d]
				if a.Best {
					l := lossAndGrad(Loss{Kind: a.Loss, Labels: ys, Kappa: noClamp}, j, zj, nil)
					if a.Loss == CWMargin {
						l = min(l, float64(a.Kappa))
					}
					keep(j, row, zj, l)
					done[i] = bestMis[i]
				} else {
					copy(adv[i*d:(i+1)*d], row)
					done[i] = Argmax(zj) != int(ys[j])
				}
			}
		} else {
			for j, i := range idx {
				copy(adv[i*d:(i+1)*d], xa[j*d:(j+1)*d])
			}
		}
	}
	return e.finish(ctx, x, adv, y, eps, p, zeroGrad)
}

// cwClamp applies C&W's clamp on the attacker's side: once
// max_{j≠y} z_j − z_y reaches kappa the objective is flat.
func cwClamp(ls, g []float32, d int, kappa float32) {
	for i := range ls {
		if ls[i] >= kappa {
			ls[i] = kappa
			clear(g[i*d : (i+1)*d])
		}
	}
}

func countZeroRows(g []float32, d int) int {
	c := 0
	for i := 0; i+d <= len(g); i += d {
		zero := true
		for _, v := range g[i : i+d] {
			if v != 0 {
				zero = false
				break
			}
		}
		if zero {
			c++
		}
	}
	return c
}

// randomStart sets xa = clip(x0 + δ) with δ uniform in the ε-ball
// (torchattacks PGD and PGDL2; L1 by analogy).
func randomStart(rng *rand.Rand, xa, x0 []float32, eps float32, p Norm) {
	switch p.or() {
	case LInf:
		for i := range xa {
			xa[i] = clamp01(x0[i] + eps*(2*rng.Float32()-1))
		}
		return
	case L2:
		s := 0.0
		for i := range xa {
			v := rng.NormFloat64()
			xa[i] = float32(v)
			s += v * v
		}
		f := float32(float64(eps) * rng.Float64() / (math.Sqrt(s) + 1e-12))
		for i := range xa {
			xa[i] = clamp01(x0[i] + f*xa[i])
		}
	case L1:
		s := 0.0
		for i := range xa {
			v := rng.ExpFloat64()
			if rng.IntN(2) == 0 {
				v = -v
			}
			xa[i] = float32(v)
			s += math.Abs(v)
		}
		f := float32(float64(eps) * rng.Float64() / (s + 1e-12))
		for i := range xa {
			xa[i] = clamp01(x0[i] + f*xa[i])
		}
	}
	shrinkInto(xa, x0, eps, p)
}

// ascend moves row by step along the steepest-ascent direction of g in norm p.
func ascend(row, g []float32, step float32, p Norm) {
	switch p.or() {
	case LInf:
		for i := range row {
			row[i] += step * sign(g[i])
		}
	case L2:
		f := float32(float64(step) / (normOf(g, L2) + 1e-10))
		for i := range row {
			row[i] += f * g[i]
		}
	case L1:
		thr := l1Threshold(g, 0.99)
		cnt := 0
		for _, v := range g {
			if v != 0 && float32(math.Abs(float64(v))) >= thr {
				cnt++
			}
		}
		if cnt == 0 {
			return
		}
		f := step / float32(cnt)
		for i, v := range g {
			if v != 0 && float32(math.Abs(float64(v))) >= thr {
				row[i] += f * sign(v)
			}
		}
	}
}

// l1Threshold returns the q-quantile of |g| (SLIDE's sparsity level).
func l1Threshold(g []float32, q float64) float32 {
	a := make([]float32, len(g))
	for i, v := range g {
		a[i] = float32(math.Abs(float64(v)))
	}
	sort.Slice(a, func(i, j int) bool { return a[i] < a[j] })
	k := min(int(q*float64(len(a))), len(a)-1)
	return a[k]
}

// FGSM is the fast gradient sign method (Goodfellow et al. 2015) as
// torchattacks.FGSM runs it: one step x + ε·sign(∇ CE), clipped to [0,1].
// For L2 the step follows the L2-normalised gradient (FGM), for L1 the
// sparse L1 step of PGD. Deterministic: Seed is recorded but unused.
type FGSM struct {
	Epsilon float32 `json:"epsilon"` // 0: 8/255 (L∞), 0.5 (L2), 12 (L1)
	Norm    Norm    `json:"norm"`    // "": L∞
	Seed    uint64  `json:"seed"`
}

// Name returns "fgsm".
func (a *FGSM) Name() string { return "fgsm" }

func (a *FGSM) pgd() *PGD {
	eps, p, err := resolveEps("fgsm", a.Epsilon, a.Norm)
	if err != nil {
		return &PGD{Epsilon: a.Epsilon, Norm: a.Norm} // Run reports the error
	}
	return &PGD{Epsilon: eps, Norm: p, StepSize: eps, Steps: 1, NoRandomStart: true, Seed: a.Seed}
}

// Threat returns the resolved ε and norm.
func (a *FGSM) Threat() (float32, Norm) { return a.pgd().Threat() }

// Run attacks x with labels y: one gradient call and one forward pass.
func (a *FGSM) Run(ctx context.Context, m Model, x []float32, y []int64) (*Result, error) {
	if _, _, err := resolveEps("fgsm", a.Epsilon, a.Norm); err != nil {
		return nil, err
	}
	res, err := a.pgd().Run(ctx, m, x, y)
	if err != nil {
		return nil, fmt.Errorf("fgsm: %w", err)
	}
	return res, nil
}

// MIFGSM is the momentum iterative FGSM (Dong et al. 2018) as
// torchattacks.MIFGSM runs it (L∞ only): no random start; each step divides
// the gradient by its mean absolute value, accumulates it into a momentum
// buffer with factor Decay, steps by StepSize·sign(momentum) and projects.
type MIFGSM struct {
	Epsilon  float32 `json:"epsilon"`   // 0: 8/255
	StepSize float32 `json:"step_size"` // 0: ε/4 (2/255 at 8/255, torchattacks)
	Steps    int     `json:"steps"`     // 0: 10
	Decay    float32 `json:"decay"`     // 0: 1.0
	Seed     uint64  `json:"seed"`      // recorded; the attack is deterministic
}

// Name returns "mifgsm".
func (a *MIFGSM) Name() string { return "mifgsm" }

// Threat returns the resolved ε and L∞.
func (a *MIFGSM) Threat() (float32, Norm) {
	eps, _, _ := resolveEps("mifgsm", a.Epsilon, LInf)
	return eps, LInf
}

// Run attacks x with labels y.
func (a *MIFGSM) Run(ctx context.Context, m Model, x []float32, y []int64) (*Result, error) {
	eps, p, err := resolveEps("mifgsm", a.Epsilon, LInf)
	if err != nil {
		return nil, err
	}
	step, steps, decay := a.StepSize, a.Steps, a.Decay
	if step < 0 || steps < 0 || decay < 0 {
		return nil, fmt.Errorf("mifgsm: step size %g, steps %d and decay %g must be ≥ 0", step, steps, decay)
	}
	if step == 0 {
		step = eps / 4
	}
	if steps == 0 {
		steps = 10
	}
	if decay == 0 {
		decay = 1
	}
	e, n, err := begin("mifgsm", m, true, x, y)
	if err != nil {
		return nil, err
	}
	d := e.d
	xa := append([]float32(nil), x...)
	mom := make([]float32, len(x))
	zeroGrad := 0
	if n == 0 {
		steps = 0
	}
	for t := range steps {
		_, g, _, err := e.lossGrad(ctx, xa, n, Loss{Kind: CrossEntropy, Labels: y})
		if err != nil {
			return nil, err
		}
		if t == 0 {
			zeroGrad = countZeroRows(g, d)
		}
		for i := range n {
			gi := g[i*d : (i+1)*d]
			mean := normOf(gi, L1) / float64(d)
			for j := range gi {
				v := float32(float64(gi[j])/mean) + decay*mom[i*d+j]
				if mean == 0 {
					v = decay * mom[i*d+j]
				}
				mom[i*d+j] = v
				xa[i*d+j] += step * sign(v)
			}
			project(xa[i*d:(i+1)*d], x[i*d:(i+1)*d], eps, p)
		}
	}
	return e.finish(ctx, x, xa, y, eps, p, zeroGrad)
}
