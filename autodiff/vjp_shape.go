package autodiff

import (
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// Reshape, Flatten, Squeeze, Unsqueeze: dX = Reshape(dY, shape of X). The
// shape inputs are integer tensors and get no gradient.
func vjpReshape(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	g := grads(n)
	g[0] = c.reshapeLike(dy[0], in(n, 0))
	return g
}

// Transpose: dX = Transpose(dY, inverse permutation).
func vjpTranspose(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	r := len(c.shape(in(n, 0)))
	perm := onnxio.GetInts(n, "perm", nil)
	if perm == nil {
		for i := r - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	inv := make([]int64, r)
	for i, p := range perm {
		inv[p] = int64(i)
	}
	return []string{c.transpose(dy[0], inv...)}
}

// Concat: each input's gradient is its slice of dY along the axis (sizes
// along the axis must be fixed).
func vjpConcat(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	r := len(c.shape(out(n, 0)))
	axis := onnxio.GetInt(n, "axis", 0)
	if axis < 0 {
		axis += int64(r)
	}
	g := grads(n)
	off := int64(0)
	for i, x := range n.GetInput() {
		d := c.shape(x)[axis]
		if !d.Known() {
			unsupported("Concat", n.GetName(), "input %q has a symbolic size along the concat axis", x)
		}
		if need[i] {
			g[i] = c.slice(dy[0], []int64{off}, []int64{off + d.Value}, []int64{axis}, nil)
		}
		off += d.Value
	}
	return g
}

// Pad (constant mode, non-negative pads): dX = Slice(dY) back to X's extent.
func vjpPad(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	if mode := onnxio.GetString(n, "mode", "constant"); mode != "constant" {
		unsupported("Pad", n.GetName(), "mode %q", mode)
	}
	if len(need) > 2 && need[2] {
		unsupported("Pad", n.GetName(), "gradient with respect to the pad value")
	}
	xs := c.shape(in(n, 0))
	r := len(xs)
	var pads []int64
	if a := onnxio.FindAttr(n, "pads"); a != nil {
		pads = a.GetInts()
	} else if v, ok := c.shapes.Values[in(n, 1)]; ok {
		for _, d := range v {
			if !d.Known() {
				unsupported("Pad", n.GetName(), "symbolic pads")
			}
			pads = append(pads, d.Value)
		}
	} else {
		unsupported("Pad", n.GetName(), "pads are not a constant")
	}
	axes := make([]int64, r)
	for i := range axes {
		axes[i] = int64(i)
	}
	if ax := in(n, 3); ax != "" {
		v, ok := c.shapes.Values[ax]
		if !ok {
			unsupported("Pad", n.GetName(), "axes are not a constant")
		}
		axes = axes[:0]
		for _, d := range v {
			a := d.Value
			if a < 0 {
				a += int64(r)
			}
			axes = append(axes, a)
		}
	}
	k := len(axes)
	if len(pads) != 2*k {
		fail("Pad node %q: %d pads for %d axes", n.GetName(), len(pads), k)
	}
	var starts, ends, sax []int64
	for i, a := range axes {
		b, e := pads[i], pads[i+k]
		if b < 0 || e < 0 {
			unsupported("Pad", n.GetName(), "negative pads")
		}
		if b == 0 && e == 0 {
			continue
		}
		starts = append(starts, b)
		if xs[a].Known() {
			ends = append(ends, b+xs[a].Value)
		} else {
			ends = append(ends, -e)
			if e == 0 {
				ends[len(ends)-1] = 1 << 62
			}
		}
		sax = append(sax, a)
	}
	g := grads(n)
	if len(sax) == 0 {
		g[0] = dy[0]
	} else {
		g[0] = c.slice(dy[0], starts, ends, sax, nil)
	}
	return g
}
