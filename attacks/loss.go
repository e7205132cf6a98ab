package attacks

import (
	"fmt"
	"math"
	"sort"
)

// checkLoss validates a Loss against n samples and k classes.
func checkLoss(l Loss, n, k int) error {
	if len(l.Labels) != n {
		return fmt.Errorf("loss %v: %d labels for %d samples", l.Kind, len(l.Labels), n)
	}
	switch l.Kind {
	case CrossEntropy, CWMargin:
	case DLR:
		if k < 3 {
			return fmt.Errorf("the DLR loss needs at least 3 classes; the model has %d", k)
		}
	case TargetedDLR, LogitDiff:
		if l.Kind == TargetedDLR && k < 4 {
			return fmt.Errorf("the targeted DLR loss needs at least 4 classes; the model has %d", k)
		}
		if len(l.Targets) != n {
			return fmt.Errorf("loss %v: %d targets for %d samples", l.Kind, len(l.Targets), n)
		}
	default:
		return fmt.Errorf("unknown loss kind %d", int(l.Kind))
	}
	for i, y := range l.Labels {
		if y < 0 || int(y) >= k {
			return fmt.Errorf("loss %v: label %d of sample %d out of range [0,%d)", l.Kind, y, i, k)
		}
	}
	if l.Kind == TargetedDLR || l.Kind == LogitDiff {
		for i, t := range l.Targets {
			if t < 0 || int(t) >= k {
				return fmt.Errorf("loss %v: target %d of sample %d out of range [0,%d)", l.Kind, t, i, k)
			}
		}
	}
	return nil
}

// lossAndGrad evaluates sample i's loss at logits z and, when dz is not nil,
// writes dLoss/dz into dz. It is the reference definition of each LossKind
// (the package doc and the LossKind comments), in float64.
func lossAndGrad(l Loss, i int, z []float32, dz []float64) float64 {
	k := len(z)
	y := int(l.Labels[i])
	if dz != nil {
		clear(dz)
	}
	switch l.Kind {
	case CrossEntropy:
		m := math.Inf(-1)
		for _, v := range z {
			m = max(m, float64(v))
		}
		s := 0.0
		for _, v := range z {
			s += math.Exp(float64(v) - m)
		}
		lse := m + math.Log(s)
		if dz != nil {
			for j, v := range z {
				dz[j] = math.Exp(float64(v) - lse)
			}
			dz[y] -= 1
		}
		return lse - float64(z[y])
	case CWMargin:
		o := otherMax(z, y)
		v := float64(z[o]) - float64(z[y])
		kappa := float64(l.Kappa)
		if v < -kappa {
			return -kappa
		}
		if dz != nil {
			dz[o] += 1
			dz[y] -= 1
		}
		return v
	case LogitDiff:
		t := int(l.Targets[i])
		if dz != nil {
			dz[t] += 1
			dz[y] -= 1
		}
		return float64(z[t]) - float64(z[y])
	case DLR, TargetedDLR:
		idx := make([]int, k)
		for j := range idx {
			idx[j] = j
		}
		// Sort decreasing; stable so ties resolve like a deterministic sort.
		sort.SliceStable(idx, func(a, b int) bool { return z[idx[a]] > z[idx[b]] })
		var other int
		var den float64
		if l.Kind == DLR {
			other = otherMax(z, y)
			den = float64(z[idx[0]]) - float64(z[idx[2]]) + 1e-12
		} else {
			other = int(l.Targets[i])
			den = float64(z[idx[0]]) - 0.5*(float64(z[idx[2]])+float64(z[idx[3]])) + 1e-12
		}
		num := float64(z[y]) - float64(z[other])
		if dz != nil {
			dz[y] += -1 / den
			dz[other] += 1 / den
			g := num / (den * den) // d(−num/den)/d den
			dz[idx[0]] += g
			if l.Kind == DLR {
				dz[idx[2]] -= g
			} else {
				dz[idx[2]] -= g / 2
				dz[idx[3]] -= g / 2
			}
		}
		return -num / den
	}
	panic(fmt.Sprintf("attacks: unknown loss kind %d", int(l.Kind)))
}

// otherMax returns argmax_{j≠y} z_j.
func otherMax(z []float32, y int) int {
	b := -1
	for j, v := range z {
		if j == y {
			continue
		}
		if b < 0 || v > z[b] {
			b = j
		}
	}
	return b
}

// margin returns z_y − max_{j≠y} z_j; it is ≤ 0 exactly when the sample is
// misclassified or tied.
func margin(z []float32, y int) float32 {
	return z[y] - z[otherMax(z, y)]
}

// rankedClass returns the class at rank r (1 = largest logit) of z, with the
// order of a stable descending sort.
func rankedClass(z []float32, r int) int {
	idx := make([]int, len(z))
	for j := range idx {
		idx[j] = j
	}
	sort.SliceStable(idx, func(a, b int) bool { return z[idx[a]] > z[idx[b]] })
	return idx[r-1]
}
