package attacks

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
)

// Square is the Square Attack (Andriushchenko et al. 2020,
// fra31/auto-attack square.py), a score-based black-box attack that needs
// only logits. It minimises the margin z_y − max_{j≠y} z_j by random
// square-shaped updates: L∞ starts from vertical stripes x ± ε and proposes
// windows set to x ± ε per channel; L2 starts from a grid of ±"η" bumps and
// moves L2 mass between two windows. A proposal is kept when the margin
// decreases or the sample becomes misclassified; a sample stops at its first
// misclassification. The window side shrinks with the schedule p_init/2^k
// after 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 queries. As in the
// official code one window position (and, for L∞, one sign per channel) is
// drawn per iteration for the whole batch, so results depend on how samples
// are batched. Rows of samples it cannot fool are their clean inputs.
//
// The zero value is AutoAttack standard's Square: L∞, ε = 8/255, 5000
// queries, p_init 0.8, 1 restart, margin loss, unrescaled schedule. Inputs
// are read as C×H×W from the model's InputShape (leading dimensions fold
// into C; a flat input is 1×1×W); windows are capped at min(H, W).
type Square struct {
	Epsilon  float32 `json:"epsilon"`  // 0: 8/255 (L∞), 0.5 (L2)
	Norm     Norm    `json:"norm"`     // "": L∞; L1 is not implemented
	Queries  int     `json:"queries"`  // 0: 5000 per restart
	PInit    float32 `json:"p_init"`   // 0: 0.8
	Restarts int     `json:"restarts"` // 0: 1
	// RescaleSchedule stretches the p schedule to Queries (i → ⌊i·10000/Queries⌋),
	// the default of the standalone attack and of torchattacks; AutoAttack sets it false.
	RescaleSchedule bool   `json:"rescale_schedule"`
	Seed            uint64 `json:"seed"`
}

// Name returns "square".
func (a *Square) Name() string { return "square" }

func (a *Square) settings() (eps float32, p Norm, queries, restarts int, pInit float64, err error) {
	eps, p, err = resolveEps("square", a.Epsilon, a.Norm)
	if err != nil {
		return
	}
	if p == L1 {
		err = fmt.Errorf("square: the L1 version is not implemented (use Linf or L2)")
		return
	}
	queries, restarts, pInit = a.Queries, a.Restarts, float64(a.PInit)
	if queries < 0 || restarts < 0 || pInit < 0 || pInit > 1 {
		err = fmt.Errorf("square: queries %d, restarts %d must be ≥ 0 and p_init %g in [0,1]", queries, restarts, pInit)
		return
	}
	if queries == 0 {
		queries = 5000
	}
	if restarts == 0 {
		restarts = 1
	}
	if pInit == 0 {
		pInit = 0.8
	}
	return
}

// Threat returns the resolved ε and norm.
func (a *Square) Threat() (float32, Norm) {
	eps, p, _, _, _, _ := a.settings()
	return eps, p
}

// Run attacks x with labels y using logits only.
func (a *Square) Run(ctx context.Context, m Model, x []float32, y []int64) (*Result, error) {
	eps, p, queries, restarts, pInit, err := a.settings()
	if err != nil {
		return nil, err
	}
	e, _, err := begin("square", m, false, x, y)
	if err != nil {
		return nil, err
	}
	adv := append([]float32(nil), x...)
	robust, err := e.correct(ctx, x, y)
	if err != nil {
		return nil, err
	}
	sq := &squareRun{e: e, seed: a.Seed, eps: eps, p: p, queries: queries, pInit: pInit, rescale: a.RescaleSchedule}
	sq.c, sq.h, sq.w = chw(e.shape)
	for r := range restarts {
		idx := indicesOf(robust)
		if len(idx) == 0 {
			break
		}
		xs, ys := gather(x, idx, e.d), gatherLabels(y, idx)
		rows, err := sq.run(ctx, xs, ys, sampleRands(a.Seed, streamSquare, runKey(0, r), xs, ys, e.d))
		if err != nil {
			return nil, err
		}
		z, err := e.logits(ctx, rows, len(idx))
		if err != nil {
			return nil, err
		}
		fooled := make([]bool, len(idx))
		for j := range idx {
			fooled[j] = Argmax(z[j*e.k:(j+1)*e.k]) != int(ys[j])
		}
		e.merge(idx, fooled, rows, robust, adv)
	}
	return e.finish(ctx, x, adv, y, eps, p, 0)
}

// chw reads a per-sample shape as channels × height × width.
func chw(shape []int) (c, h, w int) {
	switch len(shape) {
	case 1:
		return 1, 1, shape[0]
	case 2:
		return 1, shape[0], shape[1]
	}
	c = 1
	for _, s := range shape[:len(shape)-2] {
		c *= s
	}
	return c, shape[len(shape)-2], shape[len(shape)-1]
}

type squareRun struct {
	e       *engine
	seed    uint64
	eps     float32
	p       Norm
	queries int
	pInit   float64
	rescale bool
	c, h, w int
}

// pSelection is square.py p_selection.
func (s *squareRun) pSelection(it int) float64 {
	if s.rescale {
		it = int(float64(it) / float64(s.queries) * 10000)
	}
	div := 1.0
	switch {
	case it > 8000:
		div = 512
	case it > 6000:
		div = 256
	case it > 4000:
		div = 128
	case it > 2000:
		div = 64
	case it > 1000:
		div = 32
	case it > 500:
		div = 16
	case it > 200:
		div = 8
	case it > 50:
		div = 4
	case it > 10:
		div = 2
	}
	return s.pInit / div
}

// randomInt is square.py random_int: ⌊low + (high − low)·U⌋.
func randomInt(rng *rand.Rand, low, high int) int {
	return low + int(float64(high-low)*rng.Float64())
}

func randomSign(rng *rand.Rand) float32 {
	if rng.Float64() < 0.5 {
		return -1
	}
	return 1
}

// margins returns z_y − max_{j≠y} z_j for each row (one forward pass).
func (s *squareRun) margins(ctx context.Context, xs []float32, ys []int64) ([]float32, error) {
	k := s.e.k
	z, err := s.e.logits(ctx, xs, len(ys))
	if err != nil {
		return nil, err
	}
	m := make([]float32, len(ys))
	for j := range ys {
		m[j] = margin(z[j*k:(j+1)*k], int(ys[j]))
	}
	return m, nil
}

// run is square.py attack_single_run with the margin loss; it returns the
// best point per sample. rngs holds one random source per sample: unlike
// square.py, which draws one window position per iteration for the whole
// batch, every sample draws its own windows, so its result does not depend
// on the other samples (each sample's windows are uniform either way).
func (s *squareRun) run(ctx context.Context, xs []float32, ys []int64, rngs []*rand.Rand) ([]float32, error) {
	n, d := len(ys), s.e.d
	c, h, w := s.c, s.h, s.w
	at := func(ch, r, col int) int { return (ch*h+r)*w + col }
	best := make([]float32, len(xs))
	if s.p == LInf {
		for j := range n {
			for ch := range c {
				for col := range w {
					sg := randomSign(rngs[j])
					for r := range h {
						i := j*d + at(ch, r, col)
						best[i] = clamp01(xs[i] + s.eps*sg)
					}
				}
			}
		}
	} else {
		delta := make([]float32, len(xs))
		sz := max(h/5, 1)
		sp := (h - sz*5) / 2
		for vh, a := max(sp, 0), 0; a < h/sz; vh, a = vh+sz, a+1 {
			for vw, b := max(sp, 0), 0; b < w/sz; vw, b = vw+sz, b+1 {
				for j := range n {
					eta := etaPattern(rngs[j], sz)
					for ch := range c {
						sg := randomSign(rngs[j])
						for r := 0; r < sz && vh+r < h; r++ {
							for q := 0; q < sz && vw+q < w; q++ {
								delta[j*d+at(ch, vh+r, vw+q)] += eta[r*sz+q] * sg
							}
						}
					}
				}
			}
		}
		for j := range n {
			dj := delta[j*d : (j+1)*d]
			f := float32(float64(s.eps) / (normOf(dj, L2) + 1e-12))
			for i := range dj {
				best[j*d+i] = clamp01(xs[j*d+i] + f*dj[i])
			}
			shrinkInto(best[j*d:(j+1)*d], xs[j*d:(j+1)*d], s.eps, L2)
		}
	}
	marginMin, err := s.margins(ctx, best, ys)
	if err != nil {
		return nil, err
	}
	lossMin := append([]float32(nil), marginMin...)
	nf := float64(c * h * w)
	for it := range s.queries {
		var idx []int
		for j := range n {
			if marginMin[j] > 0 {
				idx = append(idx, j)
			}
		}
		if len(idx) == 0 {
			break
		}
		pp := s.pSelection(it)
		side := int(math.RoundToEven(math.Sqrt(pp * nf / float64(c))))
		var xNew []float32
		if s.p == LInf {
			side = min(max(side, 1), h, w)
			signs := make([]float32, c)
			xNew = gather(best, idx, d)
			for jj, j := range idx {
				rng := rngs[j]
				vh, vw := randomInt(rng, 0, h-side), randomInt(rng, 0, w-side)
				for ch := range signs {
					signs[ch] = 2 * s.eps * randomSign(rng)
				}
				row, x0 := xNew[jj*d:(jj+1)*d], xs[j*d:(j+1)*d]
				for ch := range c {
					for r := vh; r < vh+side; r++ {
						for q := vw; q < vw+side; q++ {
							i := at(ch, r, q)
							v := row[i] + signs[ch]
							v = min(max(v, x0[i]-s.eps), x0[i]+s.eps)
							row[i] = clamp01(v)
						}
					}
				}
			}
		} else {
			side = max(side, 3)
			if side%2 == 0 {
				side++
			}
			side = min(side, h, w)
			xNew = s.l2Proposal(idx, xs, best, side, rngs)
		}
		ys2 := make([]int64, len(idx))
		for jj, j := range idx {
			ys2[jj] = ys[j]
		}
		mg, err := s.margins(ctx, xNew, ys2)
		if err != nil {
			return nil, err
		}
		for jj, j := range idx {
			improved := mg[jj] < lossMin[j]
			if improved {
				lossMin[j] = mg[jj]
			}
			if improved || mg[jj] <= 0 {
				marginMin[j] = mg[jj]
				copy(best[j*d:(j+1)*d], xNew[jj*d:(jj+1)*d])
			}
		}
	}
	return best, nil
}

// l2Proposal builds the L2 candidates of one iteration (square.py, L2
// branch), with windows and pattern drawn per sample.
func (s *squareRun) l2Proposal(idx []int, xs, best []float32, side int, rngs []*rand.Rand) []float32 {
	d, c, h, w := s.e.d, s.c, s.h, s.w
	at := func(ch, r, col int) int { return (ch*h+r)*w + col }
	eps2 := float64(s.eps) * float64(s.eps)
	out := make([]float32, len(idx)*d)
	delta := make([]float32, d)
	for jj, j := range idx {
		rng := rngs[j]
		vh, vw := randomInt(rng, 0, h-side), randomInt(rng, 0, w-side)
		vh2, vw2 := randomInt(rng, 0, h-side), randomInt(rng, 0, w-side)
		in1 := func(r, q int) bool { return r >= vh && r < vh+side && q >= vw && q < vw+side }
		in2 := func(r, q int) bool { return r >= vh2 && r < vh2+side && q >= vw2 && q < vw2+side }
		eta := etaPattern(rng, side)
		x0, xb := xs[j*d:(j+1)*d], best[j*d:(j+1)*d]
		for i := range delta {
			delta[i] = xb[i] - x0[i]
		}
		normImage := normOf(delta, L2)
		nw := 0.0 // ‖δ on the union of both windows‖²
		for ch := range c {
			for r := range h {
				for q := range w {
					if in1(r, q) || in2(r, q) {
						v := float64(delta[at(ch, r, q)])
						nw += v * v
					}
				}
			}
		}
		budget := math.Sqrt(math.Max(eps2-normImage*normImage, 0)/float64(c) + nw)
		newd := make([]float64, side*side)
		for ch := range c {
			win1 := 0.0
			for r := range side {
				for q := range side {
					v := float64(delta[at(ch, vh+r, vw+q)])
					win1 += v * v
				}
			}
			win1 = math.Sqrt(win1)
			sg := float64(randomSign(rng))
			ss := 0.0
			for r := range side {
				for q := range side {
					v := float64(eta[r*side+q])*sg + float64(delta[at(ch, vh+r, vw+q)])/(1e-12+win1)
					newd[r*side+q] = v
					ss += v * v
				}
			}
			f := budget / (1e-12 + math.Sqrt(ss))
			for r := vh2; r < vh2+side; r++ {
				for q := vw2; q < vw2+side; q++ {
					delta[at(ch, r, q)] = 0
				}
			}
			for r := range side {
				for q := range side {
					delta[at(ch, vh+r, vw+q)] = float32(newd[r*side+q] * f)
				}
			}
		}
		f := float32(float64(s.eps) / (normOf(delta, L2) + 1e-12))
		row := out[jj*d : (jj+1)*d]
		for i := range row {
			row[i] = clamp01(x0[i] + f*delta[i])
		}
		shrinkInto(row, x0, s.eps, L2)
	}
	return out
}

// etaPattern is square.py eta: an s×s pattern, positive bump on the top half
// and negative on the bottom (transposed with probability 1/2), unit L2 norm.
func etaPattern(rng *rand.Rand, sz int) []float32 {
	out := make([]float64, sz*sz)
	top := etaRectangles(sz/2, sz)
	bot := etaRectangles(sz-sz/2, sz)
	copy(out, top)
	for i, v := range bot {
		out[(sz/2)*sz+i] = -v
	}
	normalize64(out)
	res := make([]float32, sz*sz)
	transpose := rng.Float64() > 0.5
	for r := range sz {
		for q := range sz {
			v := out[r*sz+q]
			if transpose {
				v = out[q*sz+r]
			}
			res[r*sz+q] = float32(v)
		}
	}
	return res
}

func etaRectangles(x, y int) []float64 {
	delta := make([]float64, x*y)
	if x == 0 {
		return delta
	}
	xc, yc := x/2+1, y/2+1
	c0, c1 := xc-1, yc-1
	for counter := range max(xc, yc) {
		for r := max(c0, 0); r < min(c0+2*counter+1, x); r++ {
			for q := max(c1, 0); q < min(c1+2*counter+1, y); q++ {
				delta[r*y+q] += 1 / float64((counter+1)*(counter+1))
			}
		}
		c0--
		c1--
	}
	normalize64(delta)
	return delta
}

func normalize64(v []float64) {
	s := 0.0
	for _, a := range v {
		s += a * a
	}
	if s == 0 {
		return
	}
	s = math.Sqrt(s)
	for i := range v {
		v[i] /= s
	}
}
