package autodiff_test

import (
	"math"
	"testing"

	"github.com/semirobust/srtool/autodiff"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"

	"github.com/semirobust/srtool/onnxio/onnxpb"
)

func TestFDPool(t *testing.T) {
	maxpool := func(attrs ...*onnxpb.AttributeProto) func(n *net) string {
		return func(n *net) string { return n.op("MaxPool", []string{n.x}, attrs...) }
	}
	avgpool := func(attrs ...*onnxpb.AttributeProto) func(n *net) string {
		return func(n *net) string { return n.op("AveragePool", []string{n.x}, attrs...) }
	}
	gap := pieces(0.01) // max-type kinks stay ≥ 0.005 away; steps are ≤ 3e-3
	runFD(t, []fdCase{
		{name: "max/3x3/s2/p1/overlap/even", shape: []int64{2, 2, 8, 8}, x: gap, h: 1e-3,
			build: maxpool(ai("kernel_shape", 3, 3), ai("strides", 2, 2), ai("pads", 1, 1, 1, 1))},
		{name: "max/3x3/s2/p1/overlap/odd", shape: []int64{2, 2, 7, 7}, x: gap, h: 1e-3,
			build: maxpool(ai("kernel_shape", 3, 3), ai("strides", 2, 2), ai("pads", 1, 1, 1, 1))},
		{name: "max/3x3/s1/overlap", shape: []int64{2, 2, 5, 5}, x: gap, h: 1e-3,
			build: maxpool(ai("kernel_shape", 3, 3))},
		{name: "max/2x2/s2", shape: []int64{2, 3, 6, 6}, x: gap, h: 1e-3,
			build: maxpool(ai("kernel_shape", 2, 2), ai("strides", 2, 2))},
		{name: "max/3x3/s2/ceil/asymmetric", shape: []int64{2, 2, 8, 8}, x: gap, h: 1e-3,
			build: maxpool(ai("kernel_shape", 3, 3), ai("strides", 2, 2), ai("pads", 0, 1, 1, 0), a1("ceil_mode", 1))},
		{name: "avg/2x2/s2/exact", shape: []int64{2, 3, 6, 6},
			build: avgpool(ai("kernel_shape", 2, 2), ai("strides", 2, 2))},
		{name: "avg/4x4/s4/exact", shape: []int64{2, 3, 8, 8},
			build: avgpool(ai("kernel_shape", 4, 4), ai("strides", 4, 4))},
		{name: "avg/3x3/s2/p1/exclude-pad", shape: []int64{2, 2, 7, 7},
			build: avgpool(ai("kernel_shape", 3, 3), ai("strides", 2, 2), ai("pads", 1, 1, 1, 1))},
		{name: "avg/3x3/s2/p1/include-pad", shape: []int64{2, 2, 8, 8},
			build: avgpool(ai("kernel_shape", 3, 3), ai("strides", 2, 2), ai("pads", 1, 1, 1, 1), a1("count_include_pad", 1))},
		{name: "avg/3x3/s2/ceil", shape: []int64{2, 2, 8, 8},
			build: avgpool(ai("kernel_shape", 3, 3), ai("strides", 2, 2), a1("ceil_mode", 1))},
		{name: "avg/2x3/asymmetric-pads", shape: []int64{2, 2, 6, 7},
			build: avgpool(ai("kernel_shape", 2, 3), ai("strides", 2, 2), ai("pads", 1, 0, 0, 2))},
		{name: "global-avg", shape: []int64{2, 3, 5, 4},
			build: func(n *net) string { return n.op("GlobalAveragePool", []string{n.x}) }},
		{name: "reduce-mean/keepdims", shape: []int64{2, 3, 5, 4},
			build: func(n *net) string {
				return n.op("ReduceMean", []string{n.x}, ai("axes", 2, 3), a1("keepdims", 1))
			}},
		{name: "reduce-mean/no-keepdims", shape: []int64{2, 3, 5, 4},
			build: func(n *net) string { return n.op("ReduceMean", []string{n.x}, ai("axes", -1), a1("keepdims", 0)) }},
		{name: "reduce-sum", shape: []int64{2, 3, 5, 4},
			build: func(n *net) string {
				return n.op("ReduceSum", []string{n.x, n.b.Ints1(1, 2)}, a1("keepdims", 0))
			}},
	})
}

func bn(n *net, c int64) string {
	g := n.param("gamma", 0.3, 1, c)
	b := n.param("beta", 0.3, 0, c)
	m := n.param("mean", 0.3, 0, c)
	v := n.param("var", 0.2, 1, c)
	return n.op("BatchNormalization", []string{n.x, g, b, m, v}, af("epsilon", 1e-3))
}

func TestFDBatchNorm(t *testing.T) {
	runFD(t, []fdCase{
		{name: "inference", shape: []int64{2, 3, 4, 4}, build: func(n *net) string { return bn(n, 3) }},
		{name: "inference/2d", shape: []int64{3, 4}, build: func(n *net) string { return bn(n, 4) }},
		{name: "training", shape: []int64{3, 3, 4, 4}, train: true, build: func(n *net) string {
			// mean and var do not affect a training-mode output: differentiate γ and β only.
			s := bn(n, 3)
			n.params = n.params[:2]
			return s
		}},
		{name: "training/after-conv", shape: []int64{4, 2, 5, 5}, train: true, build: func(n *net) string {
			c := conv(n, 2, 3, 1, []int64{3, 3}, ai("pads", 1, 1, 1, 1))
			n.x = c
			s := bn(n, 3)
			n.params = n.params[:4]
			return s
		}},
	})
}

func TestFDElementwise(t *testing.T) {
	away := pieces(0.01) // kinks (0, clip bounds) stay ≥ 0.005 away
	unary := func(op string, attrs ...*onnxpb.AttributeProto) func(n *net) string {
		return func(n *net) string { return n.op(op, []string{n.x}, attrs...) }
	}
	binary := func(op string, pshape []int64, paramFirst bool, offset float32) func(n *net) string {
		return func(n *net) string {
			p := n.param("p", 0.5, offset, pshape...)
			if paramFirst {
				return n.op(op, []string{p, n.x})
			}
			return n.op(op, []string{n.x, p})
		}
	}
	// both operands broadcast: x [N,3,1,5] against p [4,1] → [N,3,4,5]
	both := func(op string, paramFirst bool, offset float32) func(n *net) string {
		return binary(op, []int64{4, 1}, paramFirst, offset)
	}
	sh := []int64{2, 3, 4, 5}
	cases := []fdCase{
		{name: "relu", shape: sh, x: away, h: 1e-3, build: unary("Relu")},
		{name: "leaky-relu", shape: sh, x: away, h: 1e-3, build: unary("LeakyRelu", af("alpha", 0.2))},
		{name: "sigmoid", shape: sh, build: unary("Sigmoid")},
		{name: "tanh", shape: sh, build: unary("Tanh")},
		{name: "clip", shape: sh, x: away, h: 1e-3, build: func(n *net) string {
			lo, hi := n.b.ConstF("lo", nil, []float32{-0.2}), n.b.ConstF("hi", nil, []float32{0.3})
			return n.op("Clip", []string{n.x, lo, hi})
		}},
		{name: "clip/max-only", shape: sh, x: away, h: 1e-3, build: func(n *net) string {
			return n.op("Clip", []string{n.x, "", n.b.ConstF("hi", nil, []float32{0.1})})
		}},
		{name: "softmax", shape: []int64{2, 6}, build: unary("Softmax", a1("axis", 1))},
		{name: "softmax/axis-2", shape: []int64{2, 3, 4}, build: unary("Softmax", a1("axis", -2))},
		{name: "log-softmax", shape: []int64{2, 6}, build: unary("LogSoftmax")},
		{name: "identity", shape: sh, build: unary("Identity")},
		{name: "dropout/inference", shape: sh, build: unary("Dropout")},
		{name: "neg", shape: sh, build: unary("Neg")},
		{name: "add/x+p[3,1,1]", shape: sh, build: binary("Add", []int64{3, 1, 1}, false, 0)},
		{name: "add/p[5]+x", shape: sh, build: binary("Add", []int64{5}, true, 0)},
		{name: "sub/x-p[1,4,1]", shape: sh, build: binary("Sub", []int64{1, 4, 1}, false, 0)},
		{name: "sub/p-x", shape: sh, build: binary("Sub", []int64{3, 4, 5}, true, 0)},
		{name: "mul/x*p[3,1,1]", shape: sh, build: binary("Mul", []int64{3, 1, 1}, false, 0)},
		{name: "div/x/p", shape: sh, build: binary("Div", []int64{4, 1}, false, 2)},
		{name: "div/p/x", shape: []int64{2, 3}, x: func(r *randT, n int) []float32 { return shifted(r, n, 2) },
			build: binary("Div", []int64{3}, true, 0)},
		{name: "add/both-broadcast", shape: []int64{2, 3, 1, 5}, build: both("Add", false, 0)},
		{name: "sub/both-broadcast", shape: []int64{2, 3, 1, 5}, build: both("Sub", true, 0)},
		{name: "mul/both-broadcast", shape: []int64{2, 3, 1, 5}, build: both("Mul", true, 0)},
		{name: "div/both-broadcast", shape: []int64{2, 3, 1, 5}, build: both("Div", false, 3)},
		{name: "mul/x*x", shape: sh, build: func(n *net) string { return n.op("Mul", []string{n.x, n.x}) }},
	}
	runFD(t, cases)
}

func TestFDShape(t *testing.T) {
	sh := []int64{2, 3, 4, 5}
	runFD(t, []fdCase{
		{name: "flatten", shape: sh, build: func(n *net) string {
			// Flatten then Tanh so the head's own Flatten is not the only one
			return n.op("Tanh", []string{n.op("Flatten", []string{n.x}, a1("axis", 1))})
		}},
		{name: "reshape", shape: sh, build: func(n *net) string {
			return n.op("Sigmoid", []string{n.op("Reshape", []string{n.x, n.b.Ints1(0, 12, -1)})})
		}},
		{name: "reshape/shape-subgraph", shape: sh, build: func(n *net) string {
			// TorchScript's x.view(x.size(0), -1): Shape → Gather → Unsqueeze → Concat → Reshape
			s := n.op("Shape", []string{n.x})
			b := n.op("Gather", []string{s, n.b.ConstI("zero", nil, []int64{0})}, a1("axis", 0))
			u := n.op("Unsqueeze", []string{b, n.b.Ints1(0)})
			target := n.op("Concat", []string{u, n.b.Ints1(-1)}, a1("axis", 0))
			return n.op("Tanh", []string{n.op("Reshape", []string{n.x, target})})
		}},
		{name: "squeeze-unsqueeze", shape: []int64{2, 3, 1, 5}, build: func(n *net) string {
			s := n.op("Squeeze", []string{n.x, n.b.Ints1(2)})
			return n.op("Unsqueeze", []string{n.op("Tanh", []string{s}), n.b.Ints1(1)})
		}},
		{name: "transpose", shape: sh, build: func(n *net) string {
			p := n.param("p", 0.5, 0, 3, 5, 4)
			return n.op("Mul", []string{n.op("Transpose", []string{n.x}, ai("perm", 0, 1, 3, 2)), p})
		}},
		{name: "concat/channels", shape: sh, build: func(n *net) string {
			p := n.param("p", 0.5, 0, 2, 2, 4, 5)
			t := n.op("Tanh", []string{n.x})
			return n.op("Concat", []string{t, p, n.x}, a1("axis", 1))
		}},
		{name: "concat/last-axis", shape: []int64{2, 3}, build: func(n *net) string {
			return n.op("Concat", []string{n.x, n.op("Sigmoid", []string{n.x})}, a1("axis", -1))
		}},
		{name: "pad/constant/asymmetric", shape: sh, build: func(n *net) string {
			pads := n.b.Ints1(0, 0, 1, 0, 0, 0, 2, 3)
			return n.op("Tanh", []string{n.op("Pad", []string{n.x, pads, n.b.ConstF("v", nil, []float32{0.5})})})
		}},
		{name: "pad/zero", shape: sh, build: func(n *net) string {
			return n.op("Pad", []string{n.x, n.b.Ints1(0, 0, 0, 0, 0, 0, 0, 0)})
		}},
	})
}

func TestFDLinear(t *testing.T) {
	gemm := func(ta, tb int64, alpha, beta float32, cshape []int64) func(n *net) string {
		return func(n *net) string {
			bshape := []int64{4, 3}
			if tb == 1 {
				bshape = []int64{3, 4}
			}
			a := n.x
			if ta == 1 {
				a = n.op("Transpose", []string{n.x})
			}
			b := n.param("b", 0.5, 0, bshape...)
			in := []string{a, b}
			if cshape != nil {
				in = append(in, n.param("c", 0.5, 0, cshape...))
			}
			return n.op("Gemm", in, a1("transA", ta), a1("transB", tb), af("alpha", alpha), af("beta", beta))
		}
	}
	runFD(t, []fdCase{
		{name: "gemm/nn", shape: []int64{2, 4}, build: gemm(0, 0, 1, 1, []int64{3})},
		{name: "gemm/nt/alpha-beta", shape: []int64{2, 4}, build: gemm(0, 1, 0.7, 1.3, []int64{1, 3})},
		{name: "gemm/tn", shape: []int64{4, 4}, build: gemm(1, 0, 1, 1, []int64{4, 3})},
		{name: "gemm/tt/no-c", shape: []int64{4, 4}, build: gemm(1, 1, 2, 1, nil)},
		{name: "matmul/2d", shape: []int64{2, 4}, build: func(n *net) string {
			return n.op("MatMul", []string{n.x, n.param("w", 0.5, 0, 4, 3)})
		}},
		{name: "matmul/batched-broadcast", shape: []int64{2, 3, 4}, build: func(n *net) string {
			return n.op("MatMul", []string{n.x, n.param("w", 0.5, 0, 4, 2)})
		}},
		{name: "matmul/param-first", shape: []int64{2, 3, 4}, build: func(n *net) string {
			return n.op("MatMul", []string{n.param("w", 0.5, 0, 1, 5, 3), n.x})
		}},
	})
}

// TestTrainBNRunningStats checks the running-statistic outputs against
// PyTorch's rule computed here: new = (1−m)·old + m·batch, with the
// unbiased batch variance.
func TestTrainBNRunningStats(t *testing.T) {
	const n, c, hw = 4, 3, 5
	for _, mom := range []float32{0, 0.3} {
		net := newNet(9, n, c, hw)
		y := bn(net, c)
		m := net.logits(t, y, 2)
		r, err := autodiff.Gradient(m, autodiff.Spec{TrainBN: autodiff.BatchNorms(m), Momentum: mom})
		if err != nil {
			t.Fatal(err)
		}
		x := randn(net.rng, n*c*hw, 2)
		s := newSession(t, r.Model)
		in := map[string]ort.Tensor{r.Input: f32([]int64{n, c, hw}, x), r.Labels: i64([]int64{n}, []int64{0, 1, 1, 0})}
		addFeeds(t, in, r)
		out := run(t, s, in, r.RunningStats["mean"], r.RunningStats["var"])
		oldM, _ := onnxio.Float32s(r.Feeds["mean"])
		oldV, _ := onnxio.Float32s(r.Feeds["var"])
		w := float64(mom)
		if w == 0 {
			w = 0.1 // 1 − ONNX's default momentum 0.9
		}
		for ch := 0; ch < c; ch++ {
			var vals []float64
			for i := 0; i < n; i++ {
				for j := 0; j < hw; j++ {
					vals = append(vals, float64(x[(i*c+ch)*hw+j]))
				}
			}
			mean, ss := 0.0, 0.0
			for _, v := range vals {
				mean += v
			}
			mean /= float64(len(vals))
			for _, v := range vals {
				ss += (v - mean) * (v - mean)
			}
			wantM := (1-w)*float64(oldM[ch]) + w*mean
			wantV := (1-w)*float64(oldV[ch]) + w*ss/float64(len(vals)-1)
			gotM, gotV := float64(out[r.RunningStats["mean"]].Float32[ch]), float64(out[r.RunningStats["var"]].Float32[ch])
			if math.Abs(gotM-wantM) > 1e-5*math.Max(1, math.Abs(wantM)) || math.Abs(gotV-wantV) > 1e-5*math.Max(1, wantV) {
				t.Errorf("momentum %v channel %d: running mean, var = %.7g, %.7g; want %.7g, %.7g", mom, ch, gotM, gotV, wantM, wantV)
			}
		}
	}
}
