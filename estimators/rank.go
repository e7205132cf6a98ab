package estimators

import (
	"errors"
	"math"
	"sort"
)

// Ranks returns the ranks of x from 1, ties given their mean rank (the
// "fractional" ranking Spearman's ρ uses).
func Ranks(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] < x[idx[b]] })
	r := make([]float64, len(x))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && x[idx[j+1]] == x[idx[i]] {
			j++
		}
		mean := float64(i+j)/2 + 1
		for k := i; k <= j; k++ {
			r[idx[k]] = mean
		}
		i = j + 1
	}
	return r
}

// errRank is returned for inputs a rank correlation is not defined on.
var errRank = errors.New("rank correlation: need two equally long samples of at least 2 finite values, each not constant")

func checkRankInput(x, y []float64) error {
	if len(x) != len(y) || len(x) < 2 {
		return errRank
	}
	for i := range x {
		if math.IsNaN(x[i]) || math.IsNaN(y[i]) || math.IsInf(x[i], 0) || math.IsInf(y[i], 0) {
			return errRank
		}
	}
	return nil
}

// Spearman is Spearman's rank correlation of x and y: Pearson's
// correlation of their fractional ranks (so ties are handled exactly).
// It fails for unequal lengths, fewer than 2 points, non-finite values or a
// constant sample.
func Spearman(x, y []float64) (float64, error) {
	if err := checkRankInput(x, y); err != nil {
		return 0, err
	}
	rx, ry := Ranks(x), Ranks(y)
	n := float64(len(x))
	mx, my := 0.0, 0.0
	for i := range rx {
		mx += rx[i]
		my += ry[i]
	}
	mx /= n
	my /= n
	sxy, sxx, syy := 0.0, 0.0, 0.0
	for i := range rx {
		dx, dy := rx[i]-mx, ry[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	if sxx == 0 || syy == 0 {
		return 0, errRank
	}
	return sxy / math.Sqrt(sxx*syy), nil
}

// KendallTauB is Kendall's τ_b of x and y: (concordant − discordant) /
// sqrt((n0 − n1)(n0 − n2)), where n0 = n(n−1)/2 and n1, n2 count the pairs
// tied in x and in y (the O(n²) definition; the samples here are small).
// It fails where Spearman does.
func KendallTauB(x, y []float64) (float64, error) {
	if err := checkRankInput(x, y); err != nil {
		return 0, err
	}
	var s, tx, ty, n0 float64
	for i := range x {
		for j := i + 1; j < len(x); j++ {
			n0++
			dx, dy := sign(x[i]-x[j]), sign(y[i]-y[j])
			if dx == 0 {
				tx++
			}
			if dy == 0 {
				ty++
			}
			s += dx * dy
		}
	}
	d := math.Sqrt((n0 - tx) * (n0 - ty))
	if d == 0 {
		return 0, errRank
	}
	return s / d, nil
}

func sign(v float64) float64 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}
