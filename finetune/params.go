package finetune

import (
	"fmt"
	"math"
	"slices"
)

// Params is a named set of float32 tensors, flattened in C order and keyed by
// PyTorch names ("layer4.0.conv1.weight", "layer4.0.bn1.running_mean"). The
// map and its slices belong to whoever made them unless a doc comment says
// otherwise; finetune copies what it keeps.
type Params map[string][]float32

// Clone returns a deep copy of p (nil for nil).
func (p Params) Clone() Params {
	if p == nil {
		return nil
	}
	c := make(Params, len(p))
	for k, v := range p {
		c[k] = slices.Clone(v)
	}
	return c
}

// Merge returns one set holding every tensor of ps, a later set's tensor
// replacing an earlier one of the same name. The slices are shared, not
// copied.
func Merge(ps ...Params) Params {
	n := 0
	for _, p := range ps {
		n += len(p)
	}
	out := make(Params, n)
	for _, p := range ps {
		for k, v := range p {
			out[k] = v
		}
	}
	return out
}

// Names returns p's keys in sorted order.
func (p Params) Names() []string {
	names := make([]string, 0, len(p))
	for k := range p {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// Len returns the number of values in all of p's tensors.
func (p Params) Len() int {
	n := 0
	for _, v := range p {
		n += len(v)
	}
	return n
}

// Equal reports whether p and q hold the same names and bit-identical values.
func (p Params) Equal(q Params) bool {
	if len(p) != len(q) {
		return false
	}
	for k, a := range p {
		b, ok := q[k]
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				return false
			}
		}
	}
	return true
}

// sameShape checks that got has exactly want's names and lengths; what
// names the set in errors ("gradients", "state").
func sameShape(what string, got, want Params) error {
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			return fmt.Errorf("%s lack %q", what, k)
		}
		if len(g) != len(w) {
			return fmt.Errorf("%s: %q has %d values; want %d", what, k, len(g), len(w))
		}
	}
	if len(got) != len(want) {
		for k := range got {
			if _, ok := want[k]; !ok {
				return fmt.Errorf("%s: unexpected %q", what, k)
			}
		}
	}
	return nil
}

// copyInto copies src's values into dst's slices, which must have the same
// names and lengths (checked by the caller).
func copyInto(dst, src Params) {
	for k, v := range src {
		copy(dst[k], v)
	}
}

// firstNonFinite returns the name and index of the first NaN or ±Inf in p,
// visiting names in sorted order.
func firstNonFinite(p Params) (string, int, bool) {
	for _, k := range p.Names() {
		for i, v := range p[k] {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return k, i, true
			}
		}
	}
	return "", 0, false
}
