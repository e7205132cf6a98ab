package autodiff

import (
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// Gemm: Y = α·A'·B' + β·C with A' = transA ? Aᵀ : A (B' likewise). The
// gradients are Gemm nodes with the transposes flipped (as ONNX Runtime's
// own gradient builder writes them) and β·dY summed to C's shape.
func vjpGemm(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	a, b := in(n, 0), in(n, 1)
	alpha := onnxio.GetFloat(n, "alpha", 1)
	beta := onnxio.GetFloat(n, "beta", 1)
	ta := onnxio.GetInt(n, "transA", 0) != 0
	tb := onnxio.GetInt(n, "transB", 0) != 0
	gemm := func(x, y string, tx, ty bool) string {
		attrs := []attr{}
		if tx {
			attrs = append(attrs, onnxio.AttrInt("transA", 1))
		}
		if ty {
			attrs = append(attrs, onnxio.AttrInt("transB", 1))
		}
		if alpha != 1 {
			attrs = append(attrs, onnxio.AttrFloat("alpha", alpha))
		}
		return c.opA("Gemm", []string{x, y}, attrs...)
	}
	g := grads(n)
	d := dy[0]
	if need[0] {
		switch {
		case !ta && !tb:
			g[0] = gemm(d, b, false, true)
		case !ta && tb:
			g[0] = gemm(d, b, false, false)
		case ta && !tb:
			g[0] = gemm(b, d, false, true)
		default:
			g[0] = gemm(b, d, true, true)
		}
	}
	if need[1] {
		switch {
		case !ta && !tb:
			g[1] = gemm(a, d, true, false)
		case !ta && tb:
			g[1] = gemm(d, a, true, false)
		case ta && !tb:
			g[1] = gemm(a, d, false, false)
		default:
			g[1] = gemm(d, a, true, true)
		}
	}
	if len(need) > 2 && need[2] {
		dc := d
		if beta != 1 {
			dc = c.mul(dc, c.scalar(beta))
		}
		g[2] = c.unbroadcast(dc, c.shape(out(n, 0)), c.shape(in(n, 2)), in(n, 2))
	}
	return g
}

// MatMul: dA = dY·Bᵀ, dB = Aᵀ·dY over the last two axes, summed over
// broadcast batch axes. 2-D operands use Gemm with transpose flags.
func vjpMatMul(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	a, b := in(n, 0), in(n, 1)
	as, bs := c.shape(a), c.shape(b)
	if len(as) < 2 || len(bs) < 2 {
		unsupported("MatMul", n.GetName(), "1-D operands")
	}
	g := grads(n)
	d := dy[0]
	if len(as) == 2 && len(bs) == 2 {
		if need[0] {
			g[0] = c.opA("Gemm", []string{d, b}, onnxio.AttrInt("transB", 1))
		}
		if need[1] {
			g[1] = c.opA("Gemm", []string{a, d}, onnxio.AttrInt("transA", 1))
		}
		return g
	}
	swap := func(x string, r int) string {
		perm := make([]int64, r)
		for i := range perm {
			perm[i] = int64(i)
		}
		perm[r-2], perm[r-1] = perm[r-1], perm[r-2]
		return c.transpose(x, perm...)
	}
	ys := c.shape(out(n, 0))
	batch := ys[:len(ys)-2]
	// The products have Y's batch axes and the operand's matrix axes.
	like := func(s onnxio.Shape) onnxio.Shape {
		return append(append(onnxio.Shape{}, batch...), s[len(s)-2:]...)
	}
	if need[0] {
		g[0] = c.unbroadcast(c.op("MatMul", d, swap(b, len(bs))), like(as), as, a)
	}
	if need[1] {
		g[1] = c.unbroadcast(c.op("MatMul", swap(a, len(as)), d), like(bs), bs, b)
	}
	return g
}
