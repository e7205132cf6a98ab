package autodiff

import (
	"math"

	"github.com/semirobust/srtool/onnxio"
)

// lossHead appends the loss of c.spec on logits z (shape [batch, K]),
// declares the loss outputs and returns d loss / d z, written in closed form
// (no loss node is differentiated).
func (c *ctx) lossHead(z string) string {
	k := c.shape(z)[1].Value
	batch := onnxio.Sym(c.batchSym)
	rng := c.b.ConstI("classes", []int64{1, k}, iota64(k))
	onehot := func(idx string) (string, string) { // idx int64 [N,1] → bool, float [N,K]
		b := c.op("Equal", idx, rng)
		return b, c.cast(b, onnxio.Float)
	}
	labelsIn := func(hint string) string {
		name := c.input(hint, onnxio.Int64, onnxio.Shape{batch})
		return name
	}
	var per, dz string // per: [N,1]
	switch c.spec.Loss {
	case CrossEntropy:
		y := labelsIn("labels")
		c.res.Labels = y
		_, oh := onehot(c.unsqueeze(y, 1))
		lsm := c.opA("LogSoftmax", []string{z}, onnxio.AttrInt("axis", 1))
		per = c.neg(c.reduceSum(c.mul(lsm, oh), []int64{1}, true))
		dz = c.sub(c.op("Exp", lsm), oh)
	case CWMargin:
		y := labelsIn("labels")
		c.res.Labels = y
		ohb, oh := onehot(c.unsqueeze(y, 1))
		other := c.op("Where", ohb, c.scalar(-math.MaxFloat32), z)
		zy := c.reduceSum(c.mul(z, oh), []int64{1}, true)
		marg := c.sub(c.reduceMax(other, []int64{1}, true), zy)
		jstar := c.opA("ArgMax", []string{other}, onnxio.AttrInt("axis", 1), onnxio.AttrInt("keepdims", 1))
		_, ohj := onehot(jstar)
		dz = c.sub(ohj, oh)
		per = marg
		if c.spec.Clamp {
			kappa := c.scalar(c.spec.Kappa)
			per = c.op("Min", marg, kappa)
			dz = c.mul(dz, c.cast(c.op("Less", marg, kappa), onnxio.Float))
		}
	case DLR, TargetedDLR:
		y := labelsIn("labels")
		c.res.Labels = y
		yu := c.unsqueeze(y, 1)
		_, oh := onehot(yu)
		kTop := int64(3)
		if c.spec.Loss == TargetedDLR {
			kTop = 4
		}
		if k < kTop {
			fail("%s loss needs at least %d classes, the logits have %d", c.spec.Loss, kTop, k)
		}
		top := c.b.Op("TopK", []string{z, c.ints(kTop)}, 2, onnxio.AttrInt("axis", 1))
		col := func(t string, j int64) string { return c.slice(t, []int64{j}, []int64{j + 1}, []int64{1}, nil) }
		v1, v3 := col(top[0], 0), col(top[0], 2)
		i1, i3 := col(top[1], 0), col(top[1], 2)
		_, oh1 := onehot(i1)
		_, oh3 := onehot(i3)
		zy := c.reduceSum(c.mul(z, oh), []int64{1}, true)
		one := c.scalar(1)
		if c.spec.Loss == DLR {
			v2, i2 := col(top[0], 1), col(top[1], 1)
			_, oh2 := onehot(i2)
			ind := c.cast(c.op("Equal", i1, yu), onnxio.Float)
			nind := c.sub(one, ind)
			zo := c.add(c.mul(v2, ind), c.mul(v1, nind))
			num := c.sub(zy, zo)
			d := c.add(c.sub(v1, v3), c.scalar(1e-12))
			per = c.neg(c.div(num, d))
			invD := c.op("Reciprocal", d)
			q := c.mul(num, c.mul(invD, invD))
			// d/dz_y = −1/D, d/dz_o = 1/D, d/dD = num/D², D = z_π1 − z_π3.
			dzo := c.add(c.mul(ind, oh2), c.mul(nind, oh1))
			dz = c.add(c.mul(invD, c.sub(dzo, oh)), c.mul(q, c.sub(oh1, oh3)))
		} else {
			t := labelsIn("targets")
			c.res.Targets = t
			_, oht := onehot(c.unsqueeze(t, 1))
			v4, i4 := col(top[0], 3), col(top[1], 3)
			_, oh4 := onehot(i4)
			zt := c.reduceSum(c.mul(z, oht), []int64{1}, true)
			num := c.sub(zy, zt)
			half := c.scalar(0.5)
			d := c.add(c.sub(v1, c.mul(c.add(v3, v4), half)), c.scalar(1e-12))
			per = c.neg(c.div(num, d))
			invD := c.op("Reciprocal", d)
			q := c.mul(num, c.mul(invD, invD))
			// d/dz_y = −1/D, d/dz_t = 1/D, d/dD = num/D², D = z_π1 − (z_π3+z_π4)/2.
			dD := c.sub(oh1, c.mul(c.add(oh3, oh4), half))
			dz = c.add(c.mul(invD, c.sub(oht, oh)), c.mul(q, dD))
		}
	case KL:
		p := c.input("target_probs", onnxio.Float, onnxio.Shape{batch, onnxio.D(k)})
		c.res.TargetProbs = p
		lsm := c.opA("LogSoftmax", []string{z}, onnxio.AttrInt("axis", 1))
		zero := c.scalar(0)
		plogp := c.op("Where", c.op("Greater", p, zero), c.mul(p, c.op("Log", p)), zero)
		per = c.reduceSum(c.sub(plogp, c.mul(p, lsm)), []int64{1}, true)
		dz = c.sub(c.mul(c.op("Exp", lsm), c.reduceSum(p, []int64{1}, true)), p)
	case Dot:
		g := c.input("upstream", onnxio.Float, onnxio.Shape{batch, onnxio.D(k)})
		c.res.TargetProbs = g
		per = c.reduceSum(c.mul(g, z), []int64{1}, true)
		dz = g
	default:
		fail("unknown loss kind %d", int(c.spec.Loss))
	}
	perFlat := c.reshape(per, -1)
	c.res.PerSampleLoss = c.output(perFlat, "loss_per_sample", onnxio.Shape{batch})
	switch c.spec.Reduction {
	case Mean:
		c.res.Loss = c.output(c.reduceMean(perFlat, []int64{0}, false), "loss", onnxio.Shape{})
		n := c.cast(c.op("Gather", c.op("Shape", z), c.scalarI(0)), onnxio.Float)
		dz = c.mul(dz, c.op("Reciprocal", n))
	case Sum:
		c.res.Loss = c.output(c.reduceSum(perFlat, []int64{0}, false), "loss", onnxio.Shape{})
	case None:
		c.res.Loss = c.res.PerSampleLoss
	default:
		fail("unknown reduction %d", int(c.spec.Reduction))
	}
	return dz
}

// input declares a new graph input named hint (or a fresh variant).
func (c *ctx) input(hint string, elem int32, shape onnxio.Shape) string {
	name := hint
	if c.nameUsed(name) {
		name = c.b.Fresh(hint)
	} else {
		c.b.Reserve(name)
	}
	c.g.Input = append(c.g.Input, onnxio.ValueInfo(name, elem, shape))
	return name
}

func iota64(n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i)
	}
	return out
}
