// Package number reads the numbers of srtool's settings as written on the
// command line: decimals, fractions such as 8/255, comma-separated lists
// of them, and step sizes written as eps/K.
package number

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Parse reads a finite number written as a decimal or a fraction such as
// 8/255; an error quotes s and says it is not a number.
func Parse(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if num, den, ok := strings.Cut(s, "/"); ok {
		a, err1 := strconv.ParseFloat(strings.TrimSpace(num), 64)
		b, err2 := strconv.ParseFloat(strings.TrimSpace(den), 64)
		v := a / b
		if err1 != nil || err2 != nil || b == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("%q is not a number or fraction", s)
		}
		return v, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return v, nil
}

// Floats reads a comma-separated list of Parse's numbers as float32 (nil
// for a blank s), refusing values too large for float32.
func Floats(s string) ([]float32, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []float32
	for _, p := range strings.Split(s, ",") {
		v, err := Parse(p)
		if err != nil {
			return nil, err
		}
		if math.IsInf(float64(float32(v)), 0) {
			return nil, fmt.Errorf("%q is too large for float32", p)
		}
		out = append(out, float32(v))
	}
	return out, nil
}

// Step reads a step size: a positive number or fraction, or eps/K (also
// ε/K) for eps/K.
func Step(s string, eps float64) (float64, error) {
	t := strings.TrimSpace(s)
	for _, p := range []string{"eps/", "ε/"} {
		if rest, ok := strings.CutPrefix(t, p); ok {
			k, err := Parse(rest)
			if err != nil || !(k > 0) {
				return 0, fmt.Errorf("%q: want eps/K with K > 0", s)
			}
			return eps / k, nil
		}
	}
	v, err := Parse(t)
	if err != nil || !(v > 0) {
		return 0, fmt.Errorf("%q: want a positive step, e.g. 2/255, or eps/K", s)
	}
	return v, nil
}
