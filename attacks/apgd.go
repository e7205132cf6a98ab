package attacks

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
)

// APGD is Auto-PGD (Croce & Hein 2020, fra31/auto-attack autopgd_base.py) on
// the cross-entropy or the DLR loss, L∞ or L2: a random start on the ε-sphere,
// initial step 2ε, momentum 0.75 after the first step, and step-size halving
// at the checkpoints 0.22·N, then shrinking by 0.03·N down to 0.06·N
// iterations (22, 41, 57, 70, 80, 87, 93, 99 for N = 100), where the loss
// oscillated (≤ Rho·k increases in the last k steps) or stagnated. A restart
// attacks only the samples no earlier restart fooled; a sample counts as
// fooled when any iterate was misclassified, and its latest misclassified
// iterate is returned; the rows of unfooled samples are their clean inputs.
//
// The zero value is AutoAttack's APGD-CE: L∞, ε = 8/255, 100 iterations,
// 1 restart, ρ = 0.75, EOT 1. One run costs (1 + Steps)·EOT gradient calls
// (the official code evaluates the start point too), one forward pass for the
// clean predictions and one to verify the result.
type APGD struct {
	Epsilon  float32  `json:"epsilon"`  // 0: 8/255 (L∞), 0.5 (L2)
	Norm     Norm     `json:"norm"`     // "": L∞; L1 is not implemented
	Loss     LossKind `json:"loss"`     // CrossEntropy (default) or DLR
	Steps    int      `json:"steps"`    // 0: 100
	Restarts int      `json:"restarts"` // 0: 1
	Rho      float32  `json:"rho"`      // 0: 0.75
	EOT      int      `json:"eot"`      // 0: 1; gradients averaged over EOT calls (AutoAttack "rand" uses 20)
	Seed     uint64   `json:"seed"`
}

// Name returns "apgd-ce" or "apgd-dlr".
func (a *APGD) Name() string {
	if a.Loss == DLR {
		return "apgd-dlr"
	}
	return "apgd-ce"
}

type apgdParams struct {
	eps   float32
	p     Norm
	steps int
	rho   float32
	eot   int
}

func resolveAPGD(name string, eps float32, p Norm, steps, restarts int, rho float32, eot int) (apgdParams, int, error) {
	eps, p, err := resolveEps(name, eps, p)
	if err != nil {
		return apgdParams{}, 0, err
	}
	if p == L1 {
		return apgdParams{}, 0, fmt.Errorf("%s: the L1 version of APGD is not implemented (use Linf or L2)", name)
	}
	if steps < 0 || restarts < 0 || eot < 0 || rho < 0 || rho > 1 {
		return apgdParams{}, 0, fmt.Errorf("%s: steps %d, restarts %d, eot %d must be ≥ 0 and rho %g in [0,1]", name, steps, restarts, eot, rho)
	}
	if steps == 0 {
		steps = 100
	}
	if restarts == 0 {
		restarts = 1
	}
	if rho == 0 {
		rho = 0.75
	}
	if eot == 0 {
		eot = 1
	}
	return apgdParams{eps: eps, p: p, steps: steps, rho: rho, eot: eot}, restarts, nil
}

// Threat returns the resolved ε and norm.
func (a *APGD) Threat() (float32, Norm) {
	pr, _, _ := resolveAPGD(a.Name(), a.Epsilon, a.Norm, a.Steps, a.Restarts, a.Rho, a.EOT)
	return pr.eps, pr.p
}

// Run attacks x with labels y.
func (a *APGD) Run(ctx context.Context, m Model, x []float32, y []int64) (*Result, error) {
	name := a.Name()
	pr, restarts, err := resolveAPGD(name, a.Epsilon, a.Norm, a.Steps, a.Restarts, a.Rho, a.EOT)
	if err != nil {
		return nil, err
	}
	if a.Loss != CrossEntropy && a.Loss != DLR {
		return nil, fmt.Errorf("%s: loss %v not supported (want ce or dlr)", name, a.Loss)
	}
	e, n, err := begin(name, m, true, x, y)
	if err != nil {
		return nil, err
	}
	if err := checkLoss(Loss{Kind: a.Loss, Labels: y}, n, e.k); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	adv := append([]float32(nil), x...)
	robust, err := e.correct(ctx, x, y)
	if err != nil {
		return nil, err
	}
	zeroGrad := 0
	for r := range restarts {
		idx := indicesOf(robust)
		if len(idx) == 0 {
			break
		}
		xs, ys := gather(x, idx, e.d), gatherLabels(y, idx)
		rngs := sampleRands(a.Seed, streamAPGD, runKey(0, r), xs, ys, e.d)
		fooled, rows, zg, err := e.apgdRun(ctx, rngs, xs, Loss{Kind: a.Loss, Labels: ys}, pr)
		if err != nil {
			return nil, err
		}
		zeroGrad += zg
		e.merge(idx, fooled, rows, robust, adv)
	}
	return e.finish(ctx, x, adv, y, pr.eps, pr.p, zeroGrad)
}

// APGDT is APGD on the targeted DLR loss (AutoAttack's APGD-T): for target
// rank r = 2 … Targets+1 the target of each still-robust sample is the class
// with the r-th largest clean logit, and every target gets Restarts full runs
// from fresh random starts. Success means any misclassification. Needs at
// least 4 classes.
//
// The zero value is AutoAttack standard's APGD-T: L∞, ε = 8/255, 9 targets,
// 100 iterations, 1 restart per target. Per target and restart: one forward
// pass for the targets and (1 + Steps)·EOT gradient calls.
type APGDT struct {
	Epsilon  float32 `json:"epsilon"`  // 0: 8/255 (L∞), 0.5 (L2)
	Norm     Norm    `json:"norm"`     // "": L∞
	Steps    int     `json:"steps"`    // 0: 100
	Restarts int     `json:"restarts"` // 0: 1 per target
	Targets  int     `json:"targets"`  // 0: 9; capped at classes − 1
	Rho      float32 `json:"rho"`      // 0: 0.75
	EOT      int     `json:"eot"`      // 0: 1
	Seed     uint64  `json:"seed"`
}

// Name returns "apgd-t".
func (a *APGDT) Name() string { return "apgd-t" }

// Threat returns the resolved ε and norm.
func (a *APGDT) Threat() (float32, Norm) {
	pr, _, _ := resolveAPGD("apgd-t", a.Epsilon, a.Norm, a.Steps, a.Restarts, a.Rho, a.EOT)
	return pr.eps, pr.p
}

// Run attacks x with labels y.
func (a *APGDT) Run(ctx context.Context, m Model, x []float32, y []int64) (*Result, error) {
	pr, restarts, err := resolveAPGD("apgd-t", a.Epsilon, a.Norm, a.Steps, a.Restarts, a.Rho, a.EOT)
	if err != nil {
		return nil, err
	}
	e, _, err := begin("apgd-t", m, true, x, y)
	if err != nil {
		return nil, err
	}
	if e.k < 4 {
		return nil, fmt.Errorf("apgd-t: the targeted DLR loss needs at least 4 classes; the model has %d", e.k)
	}
	targets, err := targetCount("apgd-t", a.Targets, e.k)
	if err != nil {
		return nil, err
	}
	adv := append([]float32(nil), x...)
	robust, err := e.correct(ctx, x, y)
	if err != nil {
		return nil, err
	}
	zeroGrad := 0
	for rank := 2; rank <= targets+1; rank++ {
		for r := range restarts {
			idx := indicesOf(robust)
			if len(idx) == 0 {
				break
			}
			xs, ys := gather(x, idx, e.d), gatherLabels(y, idx)
			ts, err := e.targets(ctx, xs, rank)
			if err != nil {
				return nil, err
			}
			rngs := sampleRands(a.Seed, streamAPGDT, runKey(rank, r), xs, ys, e.d)
			fooled, rows, zg, err := e.apgdRun(ctx, rngs, xs, Loss{Kind: TargetedDLR, Labels: ys, Targets: ts}, pr)
			if err != nil {
				return nil, err
			}
			zeroGrad += zg
			e.merge(idx, fooled, rows, robust, adv)
		}
	}
	return e.finish(ctx, x, adv, y, pr.eps, pr.p, zeroGrad)
}

type apgdCheckpoint struct{ it, k int }

// apgdCheckpoints lists the iterations (0-based) after which APGD checks its
// step size and the window k each check looks back on: the first after
// ⌊0.22N⌋ iterations, then windows shrinking by ⌊0.03N⌋ down to ⌊0.06N⌋
// (each at least 1). For N = 100 the checks follow iterations 22, 41, 57, 70,
// 80, 87, 93 and 99 (1-based).
func apgdCheckpoints(n int) []apgdCheckpoint {
	k := max(int(0.22*float64(n)), 1)
	nMin, decr := max(int(0.06*float64(n)), 1), max(int(0.03*float64(n)), 1)
	var out []apgdCheckpoint
	for it := k - 1; it < n; it += k {
		out = append(out, apgdCheckpoint{it, k})
		k = max(k-decr, nMin)
	}
	return out
}

// targetCount resolves a number of target classes (0: 9, capped at k−1).
func targetCount(name string, t, k int) (int, error) {
	if t < 0 {
		return 0, fmt.Errorf("%s: %d target classes", name, t)
	}
	if t == 0 {
		t = 9
	}
	return min(t, k-1), nil
}

// targets returns, per sample of xs, the class with the rank-th largest logit.
func (e *engine) targets(ctx context.Context, xs []float32, rank int) ([]int64, error) {
	n := len(xs) / e.d
	z, err := e.logits(ctx, xs, n)
	if err != nil {
		return nil, err
	}
	ts := make([]int64, n)
	for j := range n {
		ts[j] = int64(rankedClass(z[j*e.k:(j+1)*e.k], rank))
	}
	return ts, nil
}

// correct returns which samples the model classifies correctly (one forward pass).
func (e *engine) correct(ctx context.Context, x []float32, y []int64) ([]bool, error) {
	ok := make([]bool, len(y))
	if len(y) == 0 {
		return ok, nil
	}
	z, err := e.logits(ctx, x, len(y))
	if err != nil {
		return nil, err
	}
	for i, p := range argmaxRows(z, e.k) {
		ok[i] = p == y[i]
	}
	return ok, nil
}

// merge writes the fooled rows of a sub-batch back into adv and clears their robust flags.
func (e *engine) merge(idx []int, fooled []bool, rows []float32, robust []bool, adv []float32) {
	d := e.d
	for j, i := range idx {
		if fooled[j] {
			robust[i] = false
			copy(adv[i*d:(i+1)*d], rows[j*d:(j+1)*d])
		}
	}
}

func indicesOf(b []bool) []int {
	var idx []int
	for i, v := range b {
		if v {
			idx = append(idx, i)
		}
	}
	return idx
}

// apgdGrad returns the loss, gradient (averaged over EOT calls) and logits
// (of the last call) at xa.
func (e *engine) apgdGrad(ctx context.Context, xa []float32, loss Loss, eot int) (ls, g, z []float32, err error) {
	n := len(loss.Labels)
	for t := range eot {
		l, gt, zt, err := e.lossGrad(ctx, xa, n, loss)
		if err != nil {
			return nil, nil, nil, err
		}
		if t == 0 {
			g = gt
		} else {
			for i := range g {
				g[i] += gt[i]
			}
		}
		ls, z = l, zt
	}
	if eot > 1 {
		for i := range g {
			g[i] /= float32(eot)
		}
	}
	return ls, g, z, nil
}

// apgdRun is one APGD run (autopgd_base.py attack_single_run) on the
// sub-batch xs, with one random source per sample (sampleRands). It returns
// which samples were misclassified at some iterate, their latest
// misclassified iterates, and how many samples had a zero gradient at the start.
func (e *engine) apgdRun(ctx context.Context, rngs []*rand.Rand, xs []float32, loss Loss, pr apgdParams) (fooled []bool, bestAdv []float32, zeroGrad int, err error) {
	n, d, N := len(loss.Labels), e.d, pr.steps
	eps, p := pr.eps, pr.p
	xa := make([]float32, len(xs))
	for j := range n {
		row, x0 := xa[j*d:(j+1)*d], xs[j*d:(j+1)*d]
		rng := rngs[j]
		if p == LInf {
			t := make([]float64, d)
			m := 0.0
			for i := range t {
				t[i] = 2*rng.Float64() - 1
				m = max(m, math.Abs(t[i]))
			}
			for i := range row {
				row[i] = clamp01(x0[i] + eps*float32(t[i]/(m+1e-12)))
			}
		} else {
			t := make([]float64, d)
			s := 0.0
			for i := range t {
				t[i] = rng.NormFloat64()
				s += t[i] * t[i]
			}
			s = math.Sqrt(s)
			for i := range row {
				row[i] = clamp01(x0[i] + eps*float32(t[i]/(s+1e-12)))
			}
			shrinkInto(row, x0, eps, p)
		}
	}
	ls, g, z, err := e.apgdGrad(ctx, xa, loss, pr.eot)
	if err != nil {
		return nil, nil, 0, err
	}
	zeroGrad = countZeroRows(g, d)
	robust := make([]bool, n)
	for j := range n {
		robust[j] = Argmax(z[j*e.k:(j+1)*e.k]) == int(loss.Labels[j])
	}
	bestAdv = append([]float32(nil), xa...)
	xBest := append([]float32(nil), xa...)
	gBest := append([]float32(nil), g...)
	lossBest := append([]float32(nil), ls...)
	step := make([]float32, n)
	for j := range step {
		step[j] = 2 * eps
	}
	xOld := append([]float32(nil), xa...)
	checks := apgdCheckpoints(N)
	lossLastCheck := append([]float32(nil), lossBest...)
	reducedLast := make([]bool, n)
	for j := range reducedLast {
		reducedLast[j] = true
	}
	lossSteps := make([][]float32, N) // zero rows: the first checkpoint reads one slot before 0, which wraps to the zero-initialised last row
	for i := range lossSteps {
		lossSteps[i] = make([]float32, n)
	}
	z1 := make([]float32, d)
	for it := range N {
		a := float32(0.75)
		if it == 0 {
			a = 1
		}
		for j := range n {
			row, old, x0, gj := xa[j*d:(j+1)*d], xOld[j*d:(j+1)*d], xs[j*d:(j+1)*d], g[j*d:(j+1)*d]
			// z1 = P(x + η·dir(g)); x ← P(x + a(z1 − x) + (1 − a)(x − x_old)); x_old ← x.
			copy(z1, row)
			if p == LInf {
				for i := range z1 {
					z1[i] += step[j] * sign(gj[i])
				}
			} else {
				f := float32(float64(step[j]) / (normOf(gj, L2) + 1e-12))
				for i := range z1 {
					z1[i] += f * gj[i]
				}
			}
			project(z1, x0, eps, p)
			for i := range row {
				mom := row[i] - old[i]
				old[i] = row[i]
				row[i] = row[i] + (z1[i]-row[i])*a + mom*(1-a)
			}
			project(row, x0, eps, p)
		}
		ls, g, z, err = e.apgdGrad(ctx, xa, loss, pr.eot)
		if err != nil {
			return nil, nil, 0, err
		}
		for j := range n {
			if Argmax(z[j*e.k:(j+1)*e.k]) != int(loss.Labels[j]) {
				robust[j] = false
				copy(bestAdv[j*d:(j+1)*d], xa[j*d:(j+1)*d])
			}
			lossSteps[it][j] = ls[j]
			if ls[j] > lossBest[j] {
				lossBest[j] = ls[j]
				copy(xBest[j*d:(j+1)*d], xa[j*d:(j+1)*d])
				copy(gBest[j*d:(j+1)*d], g[j*d:(j+1)*d])
			}
		}
		if len(checks) > 0 && checks[0].it == it {
			k := checks[0].k
			checks = checks[1:]
			for j := range n {
				ups := 0
				for c := range k {
					cur, prev := it-c, it-c-1
					if prev < 0 {
						prev += N
					}
					if lossSteps[cur][j] > lossSteps[prev][j] {
						ups++
					}
				}
				fl := float32(ups) <= float32(k)*pr.rho
				if !reducedLast[j] && lossLastCheck[j] >= lossBest[j] {
					fl = true
				}
				reducedLast[j] = fl
				lossLastCheck[j] = lossBest[j]
				if fl {
					step[j] /= 2
					copy(xa[j*d:(j+1)*d], xBest[j*d:(j+1)*d])
					copy(g[j*d:(j+1)*d], gBest[j*d:(j+1)*d])
				}
			}
		}
	}
	fooled = make([]bool, n)
	for j := range n {
		fooled[j] = !robust[j]
	}
	return fooled, bestAdv, zeroGrad, nil
}
