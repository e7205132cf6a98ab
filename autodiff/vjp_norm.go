package autodiff

import (
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// bnSaved holds the forward tensors of a training-mode BatchNormalization
// that its gradient reuses.
type bnSaved struct {
	xc    string // centred input X − μ
	inv   string // 1/√(σ²+ε), shape [1,C,1,…]
	a     string // γ·inv, shape [1,C,1,…]
	count string // float32 scalar: elements per channel (N·H·W)
}

// bnAxes returns the reduction axes [0, 2, …] and the broadcast shape
// [1, C, 1, …] of a BatchNormalization input.
func (c *ctx) bnAxes(n *onnxpb.NodeProto) (axes, bshape []int64, ch int64) {
	xs := c.shape(in(n, 0))
	if len(xs) < 2 || !xs[1].Known() {
		unsupported("BatchNormalization", n.GetName(), "input shape %v", xs)
	}
	ch = xs[1].Value
	axes = []int64{0}
	bshape = []int64{1, ch}
	for i := 2; i < len(xs); i++ {
		axes = append(axes, int64(i))
		bshape = append(bshape, 1)
	}
	return axes, bshape, ch
}

// emitTrainBN writes the training-mode forward of BN node n (batch mean and
// biased variance by ReduceMean, as PyTorch normalises) producing n's
// output, and the updated running statistics as graph outputs:
// new = (1−m)·old + m·batch with the unbiased batch variance
// (PyTorch's BatchNorm rule; m is torch's momentum).
func (c *ctx) emitTrainBN(n *onnxpb.NodeProto) *bnSaved {
	axes, bshape, ch := c.bnAxes(n)
	x, gamma, beta, rm, rv := in(n, 0), in(n, 1), in(n, 2), in(n, 3), in(n, 4)
	eps := onnxio.GetFloat(n, "epsilon", 1e-5)
	m := c.spec.Momentum
	if m == 0 {
		m = 1 - onnxio.GetFloat(n, "momentum", 0.9)
	}
	// Y = (X−μ)·(γ·inv) + β: three passes over X besides the two
	// reductions; x̂ is never materialised.
	count := c.div(c.cast(c.op("Size", x), onnxio.Float), c.scalar(float32(ch)))
	mu := c.reduceMean(x, axes, true)
	xc := c.sub(x, mu)
	v := c.div(c.reduce("ReduceSumSquare", xc, axes, true), count)
	inv := c.op("Reciprocal", c.op("Sqrt", c.add(v, c.scalar(eps))))
	a := c.mul(c.reshape(gamma, bshape...), inv)
	c.g.Node = append(c.g.Node, &onnxpb.NodeProto{
		Name: n.GetName(), OpType: "Add", Output: []string{out(n, 0)},
		Input: []string{c.mul(xc, a), c.reshape(beta, bshape...)},
	})
	keep := c.scalar(1 - m)
	mom := c.scalar(m)
	newRM := c.add(c.mul(rm, keep), c.mul(c.reshape(mu, ch), mom))
	unbiased := c.div(count, c.sub(count, c.scalar(1)))
	newRV := c.add(c.mul(rv, keep), c.mul(c.reshape(v, ch), c.mul(unbiased, mom)))
	for _, s := range [][2]string{{rm, newRM}, {rv, newRV}} {
		if c.init[s[0]] != nil {
			c.makeInput(s[0])
		}
		c.res.RunningStats[s[0]] = c.output(s[1], s[0]+"_new", onnxio.ShapeOf(ch))
	}
	return &bnSaved{xc: xc, inv: inv, a: a, count: count}
}

// vjpBatchNorm differentiates BatchNormalization. Inference form:
// dX = dY·γ/√(σ²+ε) per channel, dγ = Σ dY·x̂, dβ = Σ dY (and the running
// statistics' gradients if asked). Training form (batch statistics), with
// x̂ = (X−μ)·inv and a = γ·inv: dγ = inv·Σ dY·(X−μ), dβ = Σ dY,
// dX = a·dY − (X−μ)·(a·inv·dγ/n) − a·dβ/n.
func vjpBatchNorm(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string {
	axes, bshape, ch := c.bnAxes(n)
	d := dy[0]
	g := grads(n)
	if sv, ok := c.trainBN[n]; ok {
		dgamma := c.mul(c.reduceSum(c.mul(d, sv.xc), axes, true), sv.inv) // Σ dY·x̂, [1,C,1,…]
		sumDY := c.reduceSum(d, axes, true)
		if need[0] {
			an := c.div(sv.a, sv.count)
			k1 := c.mul(c.mul(an, sv.inv), dgamma)
			k2 := c.mul(an, sumDY)
			g[0] = c.sub(c.mul(d, sv.a), c.add(c.mul(sv.xc, k1), k2))
		}
		if need[1] {
			g[1] = c.reshape(dgamma, ch)
		}
		if need[2] {
			g[2] = c.reshape(sumDY, ch)
		}
		return g
	}
	x, gamma, mean, variance := in(n, 0), in(n, 1), in(n, 3), in(n, 4)
	eps := onnxio.GetFloat(n, "epsilon", 1e-5)
	inv := c.op("Reciprocal", c.op("Sqrt", c.add(variance, c.scalar(eps)))) // [C]
	scale := c.mul(gamma, inv)
	if need[0] {
		g[0] = c.mul(d, c.reshape(scale, bshape...))
	}
	var xc string
	centred := func() string {
		if xc == "" {
			xc = c.sub(x, c.reshape(mean, bshape...))
		}
		return xc
	}
	if need[1] {
		g[1] = c.mul(c.reduceSum(c.mul(d, centred()), axes, false), inv)
	}
	var sumDY string
	if need[2] || need[3] {
		sumDY = c.reduceSum(d, axes, false)
	}
	if need[2] {
		g[2] = sumDY
	}
	if need[3] {
		g[3] = c.neg(c.mul(sumDY, scale))
	}
	if need[4] {
		// d/dσ² of γ(x−μ)(σ²+ε)^(−1/2) = −½·γ·(x−μ)·inv³
		inv3 := c.mul(inv, c.mul(inv, inv))
		g[4] = c.mul(c.reduceSum(c.mul(d, centred()), axes, false), c.mul(c.mul(gamma, inv3), c.scalar(-0.5)))
	}
	return g
}
