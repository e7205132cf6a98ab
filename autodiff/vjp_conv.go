package autodiff

import (
	"math"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// convGeom is a Conv node's resolved geometry.
type convGeom struct {
	p          onnxio.WindowParams
	x, w, y    []int64 // shapes; x[0], y[0] (batch) may be -1
	spatial    int     // number of spatial axes
	k, l       int64   // kernel size (product) and output positions per sample
	c, m, cg   int64   // input channels, output channels, input channels per group
	pointwise  bool    // 1×…×1 kernel without padding
	unitStride bool
}

func (c *ctx) convGeom(n *onnxpb.NodeProto) convGeom {
	xs, ws, ys := c.shape(in(n, 0)), c.shape(in(n, 1)), c.shape(out(n, 0))
	if len(xs) < 3 || len(ws) != len(xs) || len(ys) != len(xs) {
		unsupported(n.GetOpType(), n.GetName(), "shapes %v, %v", xs, ws)
	}
	staticDims(xs[1:], "Conv input "+in(n, 0)+" (beyond the batch)")
	staticDims(ws, "Conv weight "+in(n, 1))
	staticDims(ys[1:], "Conv output "+out(n, 0)+" (beyond the batch)")
	gm := convGeom{x: xs.Ints(), w: ws.Ints(), y: ys.Ints(), spatial: len(xs) - 2}
	p, err := onnxio.Window(n, xs[2:], gm.w[2:])
	if err != nil {
		unsupported(n.GetOpType(), n.GetName(), "%v", err)
	}
	gm.p = p
	gm.k, gm.l = 1, 1
	gm.pointwise, gm.unitStride = true, true
	for i := 0; i < gm.spatial; i++ {
		gm.k *= gm.w[2+i]
		gm.l *= gm.y[2+i]
		if gm.w[2+i] != 1 || p.PadsBegin[i] != 0 || p.PadsEnd[i] != 0 {
			gm.pointwise = false
		}
		if p.Strides[i] != 1 {
			gm.unitStride = false
		}
	}
	gm.c, gm.m, gm.cg = gm.x[1], gm.w[0], gm.w[1]
	return gm
}

// Conv: dX by ConvTranspose, dW by im2col + MatMul, dB by ReduceSum.
func vjpConv(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	gm := c.convGeom(n)
	g := grads(n)
	if need[0] {
		g[0] = c.convDX(n, dy[0], in(n, 1), gm)
	}
	if need[1] {
		g[1] = c.convDW(n, in(n, 0), dy[0], gm)
	}
	if len(need) > 2 && need[2] {
		axes := []int64{0}
		for i := 0; i < gm.spatial; i++ {
			axes = append(axes, int64(2+i))
		}
		g[2] = c.reduceSum(dy[0], axes, false)
	}
	return g
}

// convDX is the gradient of a convolution's input. A pointwise unit-stride
// convolution's is a MatMul with Wᵀ; otherwise it is ConvTranspose(dY, W)
// with the forward strides, dilations and group (the Conv weight layout
// [M, C/g, k…] is already ConvTranspose's [in, out/g, k…]), symmetric pads
// min(pb, pe) and output_padding (H + pb + pe − eff) mod s, followed by a
// Slice when the forward pads were asymmetric.
func (c *ctx) convDX(n *onnxpb.NodeProto, dy, w string, gm convGeom) string {
	p := gm.p
	if gm.pointwise && gm.unitStride && p.Group == 1 {
		wt := c.transpose(c.reshape(w, gm.m, gm.c), 1, 0)    // [C, M]
		dx := c.op("MatMul", wt, c.reshape(dy, 0, gm.m, -1)) // [N, C, L]
		return c.reshape(dx, append([]int64{0}, gm.x[1:]...)...)
	}
	if gm.unitStride && c.isConst(w) {
		if dx, ok := c.convDXByConv(dy, w, gm); ok {
			return dx
		}
	}
	return c.convTransposeTo(dy, w, p, gm.x[2:], gm.y[2:])
}

// convDXByConv writes a unit-stride convolution's input gradient as a Conv
// of dY with the flipped, channel-transposed kernel and pads eff−1−p, which
// ONNX Runtime runs on its fast (NCHWc) convolution path; its ConvTranspose
// was measured about 2× slower per FLOP. Only for constant weights: ONNX
// Runtime folds the flip at load and NCHWc needs a constant kernel, while
// for a trained weight (a graph input) the per-step flip (a negative-step
// Slice) costs more than it saves. ok is false when the forward pads exceed
// eff−1 (the Conv would need negative pads).
func (c *ctx) convDXByConv(dy, w string, gm convGeom) (string, bool) {
	p := gm.p
	r := gm.spatial
	pads := make([]int64, 2*r)
	for i := 0; i < r; i++ {
		eff := (p.Kernel[i]-1)*p.Dilations[i] + 1
		pads[i], pads[r+i] = eff-1-p.PadsBegin[i], eff-1-p.PadsEnd[i]
		if pads[i] < 0 || pads[r+i] < 0 {
			return "", false
		}
	}
	attrs := []attr{onnxio.AttrInts("kernel_shape", p.Kernel...), onnxio.AttrInts("pads", pads...)}
	if !allOnes(p.Dilations) {
		attrs = append(attrs, onnxio.AttrInts("dilations", p.Dilations...))
	}
	if p.Group != 1 {
		attrs = append(attrs, onnxio.AttrInt("group", p.Group))
	}
	return c.opA("Conv", []string{dy, c.flipWeight(w, gm)}, attrs...), true
}

// flipWeight turns a Conv weight [M, C/g, k…] into the weight of the
// transposed convolution written as a Conv: [C, M/g, k…] with every spatial
// axis reversed. For a constant weight ONNX Runtime folds this at load.
func (c *ctx) flipWeight(w string, gm convGeom) string {
	r := gm.spatial
	g := gm.p.Group
	var wt string
	if g == 1 {
		perm := []int64{1, 0}
		for i := 0; i < r; i++ {
			perm = append(perm, int64(2+i))
		}
		wt = c.transpose(w, perm...)
	} else {
		ws := append([]int64{g, gm.m / g, gm.cg}, gm.w[2:]...)
		perm := []int64{0, 2, 1}
		for i := 0; i < r; i++ {
			perm = append(perm, int64(3+i))
		}
		wt = c.reshape(c.transpose(c.reshape(w, ws...), perm...), append([]int64{gm.c, gm.m / g}, gm.w[2:]...)...)
	}
	starts := make([]int64, r)
	ends := make([]int64, r)
	axes := make([]int64, r)
	steps := make([]int64, r)
	for i := range starts {
		starts[i], ends[i], axes[i], steps[i] = -1, math.MinInt64, int64(2+i), -1
	}
	return c.slice(wt, starts, ends, axes, steps)
}

// convTransposeTo emits ConvTranspose(dy, w) (kernel, strides, dilations
// and group from p) whose output is the gradient over the input positions
// [0, h) of a window op with begin pads p.PadsBegin and output size ho. The
// end is reached with output_padding or extra end padding as needed; pads
// are written symmetric (ONNX Runtime's CUDA provider runs asymmetric
// ConvTranspose pads on the CPU) and a Slice trims the surplus.
func (c *ctx) convTransposeTo(dy, w string, p onnxio.WindowParams, h, ho []int64) string {
	r := len(h)
	pads := make([]int64, 2*r)
	outPad := make([]int64, r)
	var starts, ends, axes []int64
	for i := 0; i < r; i++ {
		pb := p.PadsBegin[i]
		eff := (p.Kernel[i]-1)*p.Dilations[i] + 1
		end := p.Strides[i]*(ho[i]-1) + eff - pb // one past the last input row a window reaches
		pe := max(0, end-h[i])
		outPad[i] = max(0, h[i]-end)
		a := min(pb, pe)
		pads[i], pads[r+i] = a, a
		if pb != pe {
			starts = append(starts, pb-a)
			ends = append(ends, pb-a+h[i])
			axes = append(axes, int64(2+i))
		}
	}
	attrs := []attr{
		onnxio.AttrInts("kernel_shape", p.Kernel...),
		onnxio.AttrInts("strides", p.Strides...),
		onnxio.AttrInts("pads", pads...),
	}
	if !allOnes(p.Dilations) {
		attrs = append(attrs, onnxio.AttrInts("dilations", p.Dilations...))
	}
	if p.Group != 1 {
		attrs = append(attrs, onnxio.AttrInt("group", p.Group))
	}
	if !allZero(outPad) {
		attrs = append(attrs, onnxio.AttrInts("output_padding", outPad...))
	}
	dx := c.opA("ConvTranspose", []string{dy, w}, attrs...)
	if len(axes) > 0 {
		dx = c.slice(dx, starts, ends, axes, nil)
	}
	return dx
}

// convDW is the gradient of a convolution's weight: im2col of X (a Conv
// with a one-hot kernel bank over X reshaped to one channel per image and
// channel, or a strided Slice for pointwise convolutions) gives
// cols [N, C·K, L]; then dW = Σ_n dY_n · cols_nᵀ per group.
func (c *ctx) convDW(n *onnxpb.NodeProto, x, dy string, gm convGeom) string {
	p := gm.p
	r := gm.spatial
	var cols string // [N, C·K, L]
	if gm.pointwise {
		xs := x
		if !gm.unitStride {
			starts := make([]int64, r)
			ends := make([]int64, r)
			axes := make([]int64, r)
			for i := range ends {
				ends[i] = 1 << 62
				axes[i] = int64(2 + i)
			}
			xs = c.slice(x, starts, ends, axes, p.Strides)
		}
		cols = c.reshape(xs, 0, gm.c, gm.l)
	} else {
		kb := make([]float32, gm.k*gm.k)
		for q := int64(0); q < gm.k; q++ {
			kb[q*gm.k+q] = 1
		}
		kdims := append([]int64{gm.k, 1}, p.Kernel...)
		bank := c.constF(kdims, kb)
		xr := c.reshape(x, append([]int64{-1, 1}, gm.x[2:]...)...)
		pads := append(append([]int64{}, p.PadsBegin...), p.PadsEnd...)
		col := c.opA("Conv", []string{xr, bank},
			onnxio.AttrInts("kernel_shape", p.Kernel...),
			onnxio.AttrInts("strides", p.Strides...),
			onnxio.AttrInts("dilations", p.Dilations...),
			onnxio.AttrInts("pads", pads...))
		cols = c.reshape(col, -1, gm.c*gm.k, gm.l)
	}
	wdims := gm.w
	if p.Group == 1 {
		dyr := c.reshape(dy, 0, gm.m, gm.l) // [N, M, L]
		ck := gm.c * gm.k
		var dw string
		switch dwStrategy(gm.m, ck, gm.l) {
		case dwFold:
			// One GEMM over the batch folded into the contraction:
			// [M, N·L]·[N·L, CK]; costs transposes of dY and cols.
			a := c.reshape(c.transpose(dyr, 1, 0, 2), gm.m, -1)
			b := c.reshape(c.transpose(cols, 0, 2, 1), -1, ck)
			dw = c.opA("Gemm", []string{a, b})
		case dwBatchedColsFirst:
			// [N, CK, L]·[N, L, M] → [N, CK, M] → Σ_n → [CK, M] → [M, CK]
			prod := c.op("MatMul", cols, c.transpose(dyr, 0, 2, 1))
			dw = c.transpose(c.reduceSum(prod, []int64{0}, false), 1, 0)
		default:
			prod := c.op("MatMul", dyr, c.transpose(cols, 0, 2, 1)) // [N, M, CK]
			dw = c.reduceSum(prod, []int64{0}, false)
		}
		return c.reshape(dw, wdims...)
	}
	gr := p.Group
	colsg := c.reshape(cols, 0, gr, gm.cg*gm.k, gm.l)           // [N, g, CgK, L]
	dyg := c.reshape(dy, 0, gr, gm.m/gr, gm.l)                  // [N, g, Mg, L]
	prod := c.op("MatMul", dyg, c.transpose(colsg, 0, 1, 3, 2)) // [N, g, Mg, CgK]
	return c.reshape(c.reduceSum(prod, []int64{0}, false), wdims...)
}

func allOnes(v []int64) bool {
	for _, x := range v {
		if x != 1 {
			return false
		}
	}
	return true
}

func allZero(v []int64) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

// Weight-gradient GEMM layouts for group-1 convolutions.
const (
	dwBatched          = iota // MatMul(dY [N,M,L], colsᵀ) then ReduceSum over N
	dwBatchedColsFirst        // MatMul(cols, dYᵀ) then ReduceSum and a small Transpose
	dwFold                    // transposes, then one [M, N·L]·[N·L, CK] GEMM
)

// dwForce, when ≥ 0, overrides dwStrategy (for measurements in tests).
var dwForce = -1

// dwStrategy picks the weight-gradient layout by the memory each moves per
// sample: the batched forms write and reduce an [N, CK, M] product, the
// folded form transposes cols [N, CK, L] and dY [N, M, L].
func dwStrategy(m, ck, l int64) int {
	if dwForce >= 0 {
		return dwForce
	}
	if ck*m <= ck*l+m*l {
		if m <= ck {
			return dwBatchedColsFirst
		}
		return dwBatched
	}
	return dwFold
}
