package autodiff

import (
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// Elementwise ops. Binary ops broadcast numpy-style; each operand's
// gradient is summed over the axes it was broadcast along (ReduceSum with
// keepdims, then a Reshape when the rank differs).

func (c *ctx) binary(n *onnxpb.NodeProto, need []bool, da, db func() string) []string {
	g := grads(n)
	ys := c.shape(out(n, 0))
	if need[0] {
		g[0] = c.unbroadcast(da(), ys, c.shape(in(n, 0)), in(n, 0))
	}
	if need[1] {
		g[1] = c.unbroadcast(db(), ys, c.shape(in(n, 1)), in(n, 1))
	}
	return g
}

func vjpAdd(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	return c.binary(n, need, func() string { return dy[0] }, func() string { return dy[0] })
}

func vjpSub(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	return c.binary(n, need, func() string { return dy[0] }, func() string { return c.neg(dy[0]) })
}

func vjpMul(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	return c.binary(n, need,
		func() string { return c.mul(dy[0], in(n, 1)) },
		func() string { return c.mul(dy[0], in(n, 0)) })
}

// Div: dA = dY/B, dB = −dY·Y/B.
func vjpDiv(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	var q string
	dq := func() string {
		if q == "" {
			q = c.div(dy[0], in(n, 1))
		}
		return q
	}
	return c.binary(n, need, dq, func() string { return c.neg(c.mul(dq(), out(n, 0))) })
}

func vjpNeg(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	return []string{c.neg(dy[0])}
}

// Relu: dX = dY where Y > 0 (zero at 0, like PyTorch).
func vjpRelu(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	zero := c.scalar(0)
	return []string{c.op("Where", c.op("Greater", out(n, 0), zero), dy[0], zero)}
}

// LeakyRelu: dX = dY where X > 0, α·dY elsewhere.
func vjpLeakyRelu(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	alpha := onnxio.GetFloat(n, "alpha", 0.01)
	return []string{c.op("Where", c.op("Greater", in(n, 0), c.scalar(0)), dy[0], c.mul(dy[0], c.scalar(alpha)))}
}

// Sigmoid: dX = dY·Y·(1−Y).
func vjpSigmoid(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	y := out(n, 0)
	return []string{c.mul(dy[0], c.mul(y, c.sub(c.scalar(1), y)))}
}

// Tanh: dX = dY·(1−Y²).
func vjpTanh(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	y := out(n, 0)
	return []string{c.mul(dy[0], c.sub(c.scalar(1), c.mul(y, y)))}
}

// Clip: dX = dY where min ≤ X ≤ max (PyTorch's clamp backward). The bounds
// are not differentiated.
func vjpClip(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	if (len(need) > 1 && need[1]) || (len(need) > 2 && need[2]) {
		unsupported("Clip", n.GetName(), "gradient with respect to the clip bounds")
	}
	x := in(n, 0)
	var mask string
	and := func(m string) {
		if mask == "" {
			mask = m
		} else {
			mask = c.op("And", mask, m)
		}
	}
	if lo := in(n, 1); lo != "" {
		and(c.op("GreaterOrEqual", x, lo))
	}
	if hi := in(n, 2); hi != "" {
		and(c.op("LessOrEqual", x, hi))
	}
	g := grads(n)
	if mask == "" {
		g[0] = dy[0]
	} else {
		g[0] = c.op("Where", mask, dy[0], c.scalar(0))
	}
	return g
}

func softmaxAxis(c *ctx, n *onnxpb.NodeProto) int64 {
	r := int64(len(c.shape(in(n, 0))))
	a := onnxio.GetInt(n, "axis", -1)
	if a < 0 {
		a += r
	}
	return a
}

// Softmax: dX = Y·(dY − Σ_axis dY·Y).
func vjpSoftmax(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	y := out(n, 0)
	s := c.reduceSum(c.mul(dy[0], y), []int64{softmaxAxis(c, n)}, true)
	return []string{c.mul(y, c.sub(dy[0], s))}
}

// LogSoftmax: dX = dY − exp(Y)·Σ_axis dY.
func vjpLogSoftmax(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	s := c.reduceSum(dy[0], []int64{softmaxAxis(c, n)}, true)
	return []string{c.sub(dy[0], c.mul(c.op("Exp", out(n, 0)), s))}
}

func vjpIdentity(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	return []string{dy[0]}
}

// Dropout in inference form is the identity. Training-mode dropout (ratio
// and training_mode inputs set) is not supported.
func vjpDropout(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	if t := in(n, 2); t != "" {
		v, ok := c.shapes.Values[t]
		if !ok || len(v) != 1 || v[0].Value != 0 {
			if init := c.init[t]; init == nil || !isZeroBool(init) {
				unsupported("Dropout", n.GetName(), "training-mode dropout")
			}
		}
	}
	g := grads(n)
	g[0] = dy[0]
	return g
}

func isZeroBool(t *onnxpb.TensorProto) bool {
	if len(t.GetRawData()) > 0 {
		for _, b := range t.GetRawData() {
			if b != 0 {
				return false
			}
		}
		return true
	}
	for _, v := range t.GetInt32Data() {
		if v != 0 {
			return false
		}
	}
	return true
}
