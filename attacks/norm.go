package attacks

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Norm names a threat model. The zero value means LInf.
type Norm string

const (
	LInf Norm = "Linf"
	L2   Norm = "L2"
	L1   Norm = "L1"
)

// ParseNorm accepts "linf", "inf", "Linf", "l2", "2", "l1", "1" (any case);
// "" gives LInf.
func ParseNorm(s string) (Norm, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "linf", "inf", "l_inf", "infinity":
		return LInf, nil
	case "l2", "2":
		return L2, nil
	case "l1", "1":
		return L1, nil
	}
	return "", fmt.Errorf("unknown norm %q (want linf, l2 or l1)", s)
}

func (p Norm) or() Norm {
	if p == "" {
		return LInf
	}
	return p
}

// defaultEpsilon is the radius used when an options struct leaves Epsilon at
// zero: 8/255 for L∞ (the paper, RobustBench CIFAR-10), 0.5 for L2
// (RobustBench CIFAR-10 L2) and 12 for L1 (Croce & Hein 2021, AutoAttack L1).
func defaultEpsilon(p Norm) float32 {
	switch p.or() {
	case L2:
		return 0.5
	case L1:
		return 12
	}
	return 8.0 / 255
}

// resolveEps validates the threat model of one attack.
func resolveEps(name string, eps float32, p Norm) (float32, Norm, error) {
	p = p.or()
	if p != LInf && p != L2 && p != L1 {
		return 0, "", fmt.Errorf("%s: unknown norm %q", name, string(p))
	}
	if eps < 0 || math.IsNaN(float64(eps)) || math.IsInf(float64(eps), 0) {
		return 0, "", fmt.Errorf("%s: epsilon %g must be a finite number ≥ 0", name, eps)
	}
	if p == LInf && eps > 1 {
		return 0, "", fmt.Errorf("%s: L∞ epsilon %g is larger than 1, the whole pixel range (pass 8/255, not 8)", name, eps)
	}
	if eps == 0 {
		eps = defaultEpsilon(p)
	}
	return eps, p, nil
}

// normOf returns ‖v‖ in float64.
func normOf(v []float32, p Norm) float64 {
	switch p.or() {
	case L2:
		s := 0.0
		for _, a := range v {
			s += float64(a) * float64(a)
		}
		return math.Sqrt(s)
	case L1:
		s := 0.0
		for _, a := range v {
			s += math.Abs(float64(a))
		}
		return s
	}
	m := 0.0
	for _, a := range v {
		m = max(m, math.Abs(float64(a)))
	}
	return m
}

// distance returns ‖a − b‖ in float64.
func distance(a, b []float32, p Norm) float64 {
	switch p.or() {
	case L2:
		s := 0.0
		for i := range a {
			t := float64(a[i]) - float64(b[i])
			s += t * t
		}
		return math.Sqrt(s)
	case L1:
		s := 0.0
		for i := range a {
			s += math.Abs(float64(a[i]) - float64(b[i]))
		}
		return s
	}
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

func clamp01(v float32) float32 {
	if v < 0 {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}

// project moves xa (one sample) into {‖xa − x0‖ ≤ eps} ∩ [0,1]^d in place.
// L∞ is the exact projection (clip, then clip to the box). L2 and L1 project
// onto the ball, then clip to the box, which keeps the norm bound (x0 is in
// the box, so clipping only shrinks |δ_i|) but is not the exact projection
// onto the intersection — the convention of AutoAttack and torchattacks.
func project(xa, x0 []float32, eps float32, p Norm) {
	switch p.or() {
	case LInf:
		for i := range xa {
			lo, hi := x0[i]-eps, x0[i]+eps
			v := xa[i]
			if v < lo {
				v = lo
			}
			if v > hi {
				v = hi
			}
			xa[i] = clamp01(v)
		}
		return
	case L2:
		nrm := distance(xa, x0, L2)
		if nrm > float64(eps) {
			f := float64(eps) / nrm
			for i := range xa {
				xa[i] = x0[i] + float32(f*(float64(xa[i])-float64(x0[i])))
			}
		}
	case L1:
		d := make([]float32, len(xa))
		for i := range xa {
			d[i] = xa[i] - x0[i]
		}
		projectL1Ball(d, eps)
		for i := range xa {
			xa[i] = x0[i] + d[i]
		}
	}
	for i := range xa {
		xa[i] = clamp01(xa[i])
	}
	shrinkInto(xa, x0, eps, p)
}

// shrinkInto pulls xa towards x0 by a relative 1e-6 until float32 rounding no
// longer leaves it outside the ball (a no-op almost always).
func shrinkInto(xa, x0 []float32, eps float32, p Norm) {
	for range 8 {
		nrm := distance(xa, x0, p)
		if nrm <= float64(eps) {
			return
		}
		f := float64(eps) / nrm * (1 - 1e-6)
		for i := range xa {
			xa[i] = x0[i] + float32(f*(float64(xa[i])-float64(x0[i])))
		}
	}
}

// projectL1Ball projects v onto {‖v‖₁ ≤ r} (Duchi et al. 2008, sort-based).
func projectL1Ball(v []float32, r float32) {
	if normOf(v, L1) <= float64(r) {
		return
	}
	u := make([]float64, len(v))
	for i, a := range v {
		u[i] = math.Abs(float64(a))
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(u)))
	cum, theta := 0.0, 0.0
	for j, a := range u {
		cum += a
		t := (cum - float64(r)) / float64(j+1)
		if a-t > 0 {
			theta = t
		}
	}
	for i, a := range v {
		m := math.Abs(float64(a)) - theta
		if m < 0 {
			m = 0
		}
		if a < 0 {
			m = -m
		}
		v[i] = float32(m)
	}
}

// verify checks the invariants every attack promises: x_adv in [0,1] and,
// for bounded attacks (eps > 0), ‖x_adv − x‖ ≤ eps + 1e-6 in the attack's norm.
func verify(name string, x, adv []float32, n, d int, eps float32, p Norm) error {
	if len(adv) != len(x) {
		return fmt.Errorf("%s: internal error: %d adversarial values for %d inputs", name, len(adv), len(x))
	}
	for i := range n {
		a := adv[i*d : (i+1)*d]
		for j, v := range a {
			if !(v >= 0 && v <= 1) {
				return fmt.Errorf("%s: invariant violated: sample %d value %d is %g, outside [0,1]", name, i, j, v)
			}
		}
		if eps > 0 {
			if dist := distance(a, x[i*d:(i+1)*d], p); dist > float64(eps)+1e-6 {
				return fmt.Errorf("%s: invariant violated: sample %d has %s perturbation %.8g > epsilon %.8g", name, i, p.or(), dist, eps)
			}
		}
	}
	return nil
}
