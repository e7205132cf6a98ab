package attacks

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/semirobust/srtool/internal/parallel"
)

// FAB is the Fast Adaptive Boundary attack (Croce & Hein 2020,
// fra31/auto-attack fab_base.py): it linearises the decision boundary
// z_t − z_y = 0 at the current point, projects both the current point and
// the clean point onto that hyperplane within the [0,1] box (exact minimal
// L∞ or L2 projections), takes a convex combination biased towards the clean
// point (α ≤ AlphaMax) with overshoot Eta, and after each success pulls back
// towards the clean point by Beta. It minimises the perturbation; a sample
// counts as broken only if its smallest adversarial perturbation is ≤ ε.
//
// The zero value is AutoAttack standard's FAB-T: L∞, ε = 8/255, 9 target
// classes (the 2nd … 10th largest clean logits), 100 iterations, 1 restart per
// target without random start, α_max 0.1, η 1.05, β 0.9. Untargeted FAB
// (AutoAttack "plus") picks, per iteration, the class whose linearised
// boundary is closest.
//
// FAB-T follows the Gradienter's LogitDiff head (z_t − z_y), so one
// iteration is one gradient call on N samples plus one forward pass, as in
// the official code. Untargeted FAB takes ∇z_c − ∇z_y = ∇CE(y) − ∇CE(c)
// from the cross-entropy head, one gradient call on N·K samples.
type FAB struct {
	Epsilon    float32 `json:"epsilon"`    // 0: 8/255 (L∞), 0.5 (L2)
	Norm       Norm    `json:"norm"`       // "": L∞; L1 is not implemented
	Untargeted bool    `json:"untargeted"` // false: FAB-T
	Targets    int     `json:"targets"`    // 0: 9; capped at classes − 1
	Steps      int     `json:"steps"`      // 0: 100
	Restarts   int     `json:"restarts"`   // 0: 1 (per target); restarts after the first start at distance ε/2
	AlphaMax   float32 `json:"alpha_max"`  // 0: 0.1
	Eta        float32 `json:"eta"`        // 0: 1.05
	Beta       float32 `json:"beta"`       // 0: 0.9
	Seed       uint64  `json:"seed"`
}

// Name returns "fab-t" or "fab".
func (a *FAB) Name() string {
	if a.Untargeted {
		return "fab"
	}
	return "fab-t"
}

type fabParams struct {
	eps                 float32
	p                   Norm
	steps               int
	alphaMax, eta, beta float64
}

func (a *FAB) settings() (fabParams, int, error) {
	eps, p, err := resolveEps(a.Name(), a.Epsilon, a.Norm)
	if err != nil {
		return fabParams{}, 0, err
	}
	if p == L1 {
		return fabParams{}, 0, fmt.Errorf("%s: the L1 version of FAB is not implemented (use Linf or L2)", a.Name())
	}
	if a.Steps < 0 || a.Restarts < 0 || a.AlphaMax < 0 || a.Eta < 0 || a.Beta < 0 {
		return fabParams{}, 0, fmt.Errorf("%s: negative setting", a.Name())
	}
	pr := fabParams{eps: eps, p: p, steps: a.Steps, alphaMax: float64(a.AlphaMax), eta: float64(a.Eta), beta: float64(a.Beta)}
	if pr.steps == 0 {
		pr.steps = 100
	}
	if pr.alphaMax == 0 {
		pr.alphaMax = 0.1
	}
	if pr.eta == 0 {
		pr.eta = 1.05
	}
	if pr.beta == 0 {
		pr.beta = 0.9
	}
	restarts := a.Restarts
	if restarts == 0 {
		restarts = 1
	}
	return pr, restarts, nil
}

// Threat returns the resolved ε and norm.
func (a *FAB) Threat() (float32, Norm) {
	pr, _, _ := a.settings()
	return pr.eps, pr.p
}

// Run attacks x with labels y.
func (a *FAB) Run(ctx context.Context, m Model, x []float32, y []int64) (*Result, error) {
	name := a.Name()
	pr, restarts, err := a.settings()
	if err != nil {
		return nil, err
	}
	e, _, err := begin(name, m, true, x, y)
	if err != nil {
		return nil, err
	}
	targets := 0
	if !a.Untargeted {
		if targets, err = targetCount(name, a.Targets, e.k); err != nil {
			return nil, err
		}
	}
	adv := append([]float32(nil), x...)
	robust, err := e.correct(ctx, x, y)
	if err != nil {
		return nil, err
	}
	attack := func(rank, restart int) error {
		idx := indicesOf(robust)
		if len(idx) == 0 {
			return nil
		}
		xs, ys := gather(x, idx, e.d), gatherLabels(y, idx)
		var ts []int64
		if rank > 0 {
			var err error
			if ts, err = e.targets(ctx, xs, rank); err != nil {
				return err
			}
		}
		var rngs []*rand.Rand
		if restart > 0 {
			rngs = sampleRands(a.Seed, streamFAB, runKey(rank, restart), xs, ys, e.d)
		}
		rows, err := e.fabRun(ctx, rngs, xs, ys, ts, pr)
		if err != nil {
			return err
		}
		// As fab_base.perturb: a result counts if it is misclassified and within ε.
		z, err := e.logits(ctx, rows, len(idx))
		if err != nil {
			return err
		}
		fooled := make([]bool, len(idx))
		for j := range idx {
			r := rows[j*e.d : (j+1)*e.d]
			fooled[j] = Argmax(z[j*e.k:(j+1)*e.k]) != int(ys[j]) && distance(r, xs[j*e.d:(j+1)*e.d], pr.p) <= float64(pr.eps)
		}
		e.merge(idx, fooled, rows, robust, adv)
		return nil
	}
	if a.Untargeted {
		for r := range restarts {
			if err := attack(0, r); err != nil {
				return nil, err
			}
		}
	} else {
		for rank := 2; rank <= targets+1; rank++ {
			for r := range restarts {
				if err := attack(rank, r); err != nil {
					return nil, err
				}
			}
		}
	}
	return e.finish(ctx, x, adv, y, pr.eps, pr.p, 0)
}

// fabRun is one FAB run (fab_base.py attack_single_run) on correctly
// classified samples xs. ts holds the targets, or nil for untargeted FAB;
// rngs, one per sample, give a random start (nil: start at the clean point).
// It returns per sample the smallest adversarial point found, or the clean
// point when none was found.
func (e *engine) fabRun(ctx context.Context, rngs []*rand.Rand, xs []float32, ys, ts []int64, pr fabParams) ([]float32, error) {
	n, d, k := len(ys), e.d, e.k
	x1 := append([]float32(nil), xs...)
	adv := append([]float32(nil), xs...)
	res := make([]float64, n)
	for j := range res {
		res[j] = 1e10
	}
	if rngs != nil {
		for j := range n {
			row, x0, rng := x1[j*d:(j+1)*d], xs[j*d:(j+1)*d], rngs[j]
			t := make([]float64, d)
			for i := range t {
				if pr.p == LInf {
					t[i] = 2*rng.Float64() - 1
				} else {
					t[i] = rng.NormFloat64()
				}
			}
			nt := normOf64(t, pr.p)
			r := math.Min(res[j], float64(pr.eps)) * 0.5
			for i := range row {
				row[i] = clamp01(x0[i] + float32(r*t[i]/nt))
			}
		}
	}
	// Targeted: one LogitDiff call gives ∇(z_t − z_y) directly. Untargeted:
	// block c of the gradient batch holds x1 with label c, and
	// ∇z_c − ∇z_y = ∇CE(y) − ∇CE(c).
	var xb []float32
	var lb []int64
	if ts == nil {
		xb = make([]float32, k*n*d)
		lb = make([]int64, k*n)
		for c := range k {
			for j := range n {
				lb[c*n+j] = int64(c)
			}
		}
	}
	for range pr.steps {
		var g, z []float32
		var err error
		if ts != nil {
			_, g, z, err = e.lossGrad(ctx, x1, n, Loss{Kind: LogitDiff, Labels: ys, Targets: ts})
		} else {
			for c := range k {
				copy(xb[c*n*d:(c+1)*n*d], x1)
			}
			_, g, z, err = e.lossGrad(ctx, xb, k*n, Loss{Kind: CrossEntropy, Labels: lb})
		}
		if err != nil {
			return nil, err
		}
		// Samples are independent; the projections (O(d) each) run in parallel.
		parallelFor(n, func(lo, hi int) {
			w, d1, d2 := make([]float64, d), make([]float64, d), make([]float64, d)
			var hs hyperplaneScratch
			for j := lo; j < hi; j++ {
				y := int(ys[j])
				zj := z[j*k : (j+1)*k]
				row, x0 := x1[j*d:(j+1)*d], xs[j*d:(j+1)*d]
				var df float64
				if ts != nil {
					t := int(ts[j])
					df = float64(zj[t]) - float64(zj[y])
					for i, v := range g[j*d : (j+1)*d] {
						w[i] = float64(v)
					}
				} else {
					// gy = ∇CE(y) sits in block y.
					grow := func(c int) []float32 { return g[(c*n+j)*d : (c*n+j+1)*d] }
					gy := grow(y)
					best, cls := math.Inf(1), 0
					for c := range k {
						if c == y {
							continue
						}
						gc := grow(c)
						df := float64(zj[c]) - float64(zj[y])
						dn := 0.0
						for i := range gc {
							v := float64(gy[i]) - float64(gc[i])
							if pr.p == LInf {
								dn += math.Abs(v)
							} else {
								dn += v * v
							}
						}
						if pr.p == L2 {
							dn = math.Sqrt(dn)
						}
						if dist := math.Abs(df) / (1e-12 + dn); dist < best {
							best, cls = dist, c
						}
					}
					gc := grow(cls)
					df = float64(zj[cls]) - float64(zj[y])
					for i := range w {
						w[i] = float64(gy[i]) - float64(gc[i])
					}
				}
				b := -df
				for i := range w {
					b += w[i] * float64(row[i])
				}
				hs.project(row, w, b, pr.p, d1)
				hs.project(x0, w, b, pr.p, d2)
				a1 := math.Max(normOf64(d1, pr.p), 1e-8)
				a2 := math.Max(normOf64(d2, pr.p), 1e-8)
				alpha := math.Min(math.Max(a1/(a1+a2), 0), pr.alphaMax)
				for i := range row {
					v := (float64(row[i])+pr.eta*d1[i])*(1-alpha) + (float64(x0[i])+pr.eta*d2[i])*alpha
					row[i] = clamp01(float32(v))
				}
			}
		})
		zn, err := e.logits(ctx, x1, n)
		if err != nil {
			return nil, err
		}
		for j := range n {
			if Argmax(zn[j*k:(j+1)*k]) == int(ys[j]) {
				continue
			}
			row, x0 := x1[j*d:(j+1)*d], xs[j*d:(j+1)*d]
			if t := distance(row, x0, pr.p); t < res[j] {
				res[j] = t
				copy(adv[j*d:(j+1)*d], row)
			}
			for i := range row {
				row[i] = x0[i] + (row[i]-x0[i])*float32(pr.beta)
			}
		}
	}
	return adv, nil
}

// parallelFor splits [0, n) into one contiguous chunk per CPU and runs f on
// each chunk concurrently. f must only write state owned by its indices.
func parallelFor(n int, f func(lo, hi int)) {
	workers := min(parallel.Workers(), n)
	if workers <= 1 {
		f(0, n)
		return
	}
	parallel.For(workers, workers, func(t int) { f(parallel.Split(n, workers, t)) })
}

func normOf64(v []float64, p Norm) float64 {
	s := 0.0
	for _, a := range v {
		if p == LInf {
			s = math.Max(s, math.Abs(a))
		} else {
			s += a * a
		}
	}
	if p == L2 {
		s = math.Sqrt(s)
	}
	return s
}

// projectHyperplane writes into out the smallest displacement δ (in L∞ or L2)
// with w·(t + δ) = b and t + δ in [0,1]^d; when the box cannot reach the
// hyperplane it returns the box corner that gets closest. Coordinates with
// w_i = 0 never move. Each coordinate moves by min(λ·s_i, room_i) towards the
// plane (s_i = 1 for L∞, |w_i| for L2), and λ solves the piecewise-linear
// equation Σ |w_i|·min(λ·s_i, room_i) = |b − w·t| exactly, by a
// selection over the breakpoints room_i/s_i (expected O(d)).
func projectHyperplane(t []float32, w []float64, b float64, p Norm, out []float64) {
	new(hyperplaneScratch).project(t, w, b, p, out)
}

// hyperplaneScratch holds projectHyperplane's working memory, reused from
// one projection to the next by one goroutine.
type hyperplaneScratch struct {
	dir, room, speed, bp []float64
	idx                  []int32
}

func (s *hyperplaneScratch) project(t []float32, w []float64, b float64, p Norm, out []float64) {
	c := b
	for i := range t {
		c -= w[i] * float64(t[i])
	}
	clear(out)
	if c == 0 {
		return
	}
	d := len(t)
	if len(s.dir) != d {
		*s = hyperplaneScratch{dir: make([]float64, d), room: make([]float64, d), speed: make([]float64, d), bp: make([]float64, d), idx: make([]int32, 0, d)}
	}
	// Only the entries of coordinates in idx are written and read.
	dir, room, speed, bp := s.dir, s.room, s.speed, s.bp
	idx := s.idx[:0]
	total := 0.0
	for i, wi := range w {
		if wi == 0 {
			continue
		}
		dir[i] = math.Copysign(1, c) * math.Copysign(1, wi)
		u := float64(t[i])
		if dir[i] > 0 {
			u = 1 - u
		}
		room[i] = math.Max(u, 0)
		speed[i] = 1
		if p == L2 {
			speed[i] = math.Abs(wi)
		}
		bp[i] = room[i] / speed[i]
		idx = append(idx, int32(i))
		total += math.Abs(wi) * room[i]
	}
	need := math.Abs(c)
	if total <= need {
		for _, i := range idx {
			out[i] = dir[i] * room[i]
		}
		return
	}
	// F(λ) = sat + λ·slope, where sat sums |w_i|·room_i over coordinates with
	// breakpoint ≤ λ and slope sums |w_i|·s_i over the others. Narrow the
	// candidate breakpoints around the root of F(λ) = need by pivoting.
	sat, slope := 0.0, 0.0
	cand := idx
	for len(cand) > 0 {
		pv := medianOf3(bp[cand[0]], bp[cand[len(cand)/2]], bp[cand[len(cand)-1]])
		// Partition cand into [< pv | ≥ pv].
		lo := 0
		for k, i := range cand {
			if bp[i] < pv {
				cand[lo], cand[k] = cand[k], cand[lo]
				lo++
			}
		}
		satL, slopeGE := 0.0, 0.0
		for _, i := range cand[:lo] {
			satL += math.Abs(w[i]) * room[i]
		}
		eqEnd := lo
		satE := 0.0
		for k := lo; k < len(cand); k++ {
			i := cand[k]
			if bp[i] == pv {
				satE += math.Abs(w[i]) * room[i]
				cand[eqEnd], cand[k] = cand[k], cand[eqEnd]
				eqEnd++
			}
		}
		for _, i := range cand[lo:] {
			slopeGE += math.Abs(w[i]) * speed[i]
		}
		slopeG := 0.0
		for _, i := range cand[eqEnd:] {
			slopeG += math.Abs(w[i]) * speed[i]
		}
		if sat+satL+satE+pv*(slope+slopeG) >= need {
			// The root is at or below pv: coordinates with breakpoint ≥ pv stay unsaturated.
			slope += slopeGE
			cand = cand[:lo]
		} else {
			sat += satL + satE
			cand = cand[eqEnd:]
		}
	}
	lambda := 0.0
	if slope > 0 {
		lambda = (need - sat) / slope
	}
	for _, i := range idx {
		out[i] = dir[i] * math.Min(lambda*speed[i], room[i])
	}
}

func medianOf3(a, b, c float64) float64 {
	if a > b {
		a, b = b, a
	}
	if b > c {
		b = c
	}
	return max(a, b)
}
