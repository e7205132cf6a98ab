package autodiff

import (
	"slices"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// MaxPool: the forward node is given its Indices output (flat indices into
// the whole input tensor, ONNX Runtime's convention with storage_order 0),
// and dX = ScatterElements(zeros, Indices, dY, reduction="add"): windows
// may overlap (3×3 stride 2), so one input element can receive several
// gradients, which a plain scatter or MaxUnpool would drop.
func vjpMaxPool(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	if onnxio.GetInt(n, "storage_order", 0) != 0 {
		unsupported("MaxPool", n.GetName(), "storage_order=1")
	}
	x := in(n, 0)
	idx := out(n, 1)
	if idx == "" {
		idx = c.b.Fresh("maxpool_indices")
		n.Output = append(n.Output[:1], idx)
	}
	flat := c.ints(-1)
	size := c.reshape(c.op("Size", x), 1)
	zeros := c.opA("ConstantOfShape", []string{size}, onnxio.AttrTensor("value", onnxio.FloatTensor("", []int64{1}, []float32{0})))
	sc := c.opA("ScatterElements", []string{zeros, c.op("Reshape", idx, flat), c.op("Reshape", dy[0], flat)},
		onnxio.AttrInt("axis", 0), onnxio.AttrString("reduction", "add"))
	g := grads(n)
	g[0] = c.reshapeLike(sc, x)
	return g
}

// AveragePool: dX = ConvTranspose(dY / count, ones[C,1,k…], group=C) with
// the forward strides and pads, where count is the divisor of each window
// (computed here from count_include_pad, pads and ceil_mode). A pooling with
// kernel = stride, no padding and an exact fit (CIFAR ResNets'
// avg_pool2d(out, 4)) is a broadcast Mul and two Reshapes instead.
func vjpAveragePool(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	x := in(n, 0)
	xs, ys := c.shape(x), c.shape(out(n, 0))
	staticDims(xs[1:], "AveragePool input "+x+" (beyond the batch)")
	kernel := onnxio.GetInts(n, "kernel_shape", nil)
	p, err := onnxio.Window(n, xs[2:], kernel)
	if err != nil {
		unsupported("AveragePool", n.GetName(), "%v", err)
	}
	r := len(kernel)
	h, ho := xs.Ints()[2:], ys.Ints()[2:]
	ch := xs[1].Value
	inclPad := onnxio.GetInt(n, "count_include_pad", 0) != 0
	// Divisor per output position (PyTorch's and ONNX Runtime's rule: the
	// window clipped to the padded input, or to the input without padding).
	total := int64(1)
	for _, v := range ho {
		total *= v
	}
	div := make([]float32, total)
	uniform := true
	for j := range div {
		rem := int64(j)
		cnt := int64(1)
		for i := r - 1; i >= 0; i-- {
			o := rem % ho[i]
			rem /= ho[i]
			start := o*p.Strides[i] - p.PadsBegin[i]
			lo, hi := int64(0), h[i]
			if inclPad {
				lo, hi = -p.PadsBegin[i], h[i]+p.PadsEnd[i]
			}
			k := int64(0)
			for t := int64(0); t < kernel[i]; t++ {
				pos := start + t*p.Dilations[i]
				if pos >= lo && pos < hi {
					k++
				}
			}
			cnt *= k
		}
		div[j] = 1 / float32(cnt)
		if div[j] != div[0] {
			uniform = false
		}
	}
	g := grads(n)
	exact := uniform
	for i := 0; i < r; i++ {
		if kernel[i] != p.Strides[i] || p.PadsBegin[i] != 0 || p.PadsEnd[i] != 0 || p.Dilations[i] != 1 || h[i] != ho[i]*kernel[i] {
			exact = false
		}
	}
	if exact {
		// dY [N,C,Ho,1,Wo,1] · (1/k) broadcast to [N,C,Ho,kh,Wo,kw] → [N,C,H,W].
		split := []int64{-1, ch}
		ones := []int64{1, 1}
		for i := 0; i < r; i++ {
			split = append(split, ho[i], 1)
			ones = append(ones, 1, kernel[i])
		}
		fill := make([]float32, prod(kernel))
		for i := range fill {
			fill[i] = div[0]
		}
		up := c.mul(c.reshape(dy[0], split...), c.constF(ones, fill))
		g[0] = c.reshape(up, append([]int64{-1}, xs.Ints()[1:]...)...)
		return g
	}
	var scaled string
	if uniform {
		scaled = c.mul(dy[0], c.scalar(div[0]))
	} else {
		scaled = c.mul(dy[0], c.constF(ho, div))
	}
	ones := make([]float32, ch*prod(kernel))
	for i := range ones {
		ones[i] = 1
	}
	w := c.constF(append([]int64{ch, 1}, kernel...), ones)
	p.Group = ch
	g[0] = c.convTransposeTo(scaled, w, p, h, ho)
	return g
}

func prod(v []int64) int64 {
	p := int64(1)
	for _, x := range v {
		p *= x
	}
	return p
}

// GlobalAveragePool: dX = Expand(dY / (H·W), shape of X).
func vjpGlobalAveragePool(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	x := in(n, 0)
	xs := c.shape(x)
	sp := staticDims(xs[2:], "GlobalAveragePool input "+x+" (spatial)")
	return []string{c.op("Expand", c.mul(dy[0], c.scalar(1/float32(prod(sp)))), c.op("Shape", x))}
}

// ReduceMean / ReduceSum: dX = Expand(dY with the reduced axes restored,
// shape of X), divided by the reduced count for the mean.
func vjpReduce(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	x := in(n, 0)
	xs := c.shape(x)
	r := int64(len(xs))
	var axes []int64
	if a := onnxio.FindAttr(n, "axes"); a != nil {
		axes = a.GetInts()
	} else if ax := in(n, 1); ax != "" {
		v, ok := c.shapes.Values[ax]
		if !ok {
			unsupported(n.GetOpType(), n.GetName(), "axes are not a constant")
		}
		for _, d := range v {
			axes = append(axes, d.Value)
		}
	}
	if len(axes) == 0 {
		if onnxio.GetInt(n, "noop_with_empty_axes", 0) != 0 {
			return []string{dy[0], ""}
		}
		for i := int64(0); i < r; i++ {
			axes = append(axes, i)
		}
	}
	for i := range axes {
		if axes[i] < 0 {
			axes[i] += r
		}
	}
	slices.Sort(axes)
	d := dy[0]
	if onnxio.GetInt(n, "keepdims", 1) == 0 {
		d = c.unsqueeze(d, axes...)
	}
	if n.GetOpType() == "ReduceMean" {
		cnt := int64(1)
		for _, a := range axes {
			if !xs[a].Known() {
				unsupported(n.GetOpType(), n.GetName(), "mean over the symbolic axis %d", a)
			}
			cnt *= xs[a].Value
		}
		d = c.mul(d, c.scalar(1/float32(cnt)))
	}
	g := grads(n)
	g[0] = c.op("Expand", d, c.op("Shape", x))
	return g
}
