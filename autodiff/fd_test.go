package autodiff_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/semirobust/srtool/autodiff"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
	"github.com/semirobust/srtool/ort"
)

// net builds a small random ONNX graph (opset 17) with one float input "x"
// whose first dimension is the symbolic batch.
type net struct {
	g      *onnxpb.GraphProto
	b      *onnxio.Builder
	rng    *rand.Rand
	x      string
	params []string
}

func newNet(seed uint64, xShape ...int64) *net {
	g := &onnxpb.GraphProto{Name: "fd"}
	shape := onnxio.Shape{onnxio.Sym("batch")}
	for _, d := range xShape[1:] {
		shape = append(shape, onnxio.D(d))
	}
	g.Input = append(g.Input, onnxio.ValueInfo("x", onnxio.Float, shape))
	return &net{g: g, b: onnxio.NewBuilder(g, "n/"), rng: rand.New(rand.NewPCG(seed, 7)), x: "x"}
}

// param adds a random initializer (N(0, scale²), shifted by offset) that the
// test differentiates.
func (n *net) param(name string, scale, offset float32, dims ...int64) string {
	size := int64(1)
	for _, d := range dims {
		size *= d
	}
	v := make([]float32, size)
	for i := range v {
		v[i] = offset + scale*float32(n.rng.NormFloat64())
	}
	n.g.Initializer = append(n.g.Initializer, onnxio.FloatTensor(name, dims, v))
	n.params = append(n.params, name)
	return name
}

func (n *net) op(op string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	return n.b.Op1(op, inputs, attrs...)
}

// logits appends Flatten and a random Gemm to k classes and returns the model.
func (n *net) logits(t *testing.T, y string, k int64) *onnxio.Model {
	t.Helper()
	m := &onnxio.Model{Proto: &onnxpb.ModelProto{
		IrVersion:   8,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: "", Version: 17}},
		Graph:       n.g,
	}}
	sh, err := onnxio.InferShapes(m)
	if err != nil {
		t.Fatal(err)
	}
	ys := sh.Shape(y)
	if ys == nil {
		t.Fatalf("shape of %s unknown", y)
	}
	d := ys[1:].Size()
	f := n.op("Flatten", []string{y})
	w := n.b.ConstF("head_w", []int64{d, k}, randn(n.rng, int(d*k), float32(1/math.Sqrt(float64(d)))))
	bias := n.b.ConstF("head_b", []int64{k}, randn(n.rng, int(k), 0.1))
	z := n.op("Gemm", []string{f, w, bias})
	n.g.Node = append(n.g.Node, &onnxpb.NodeProto{Name: "out", OpType: "Identity", Input: []string{z}, Output: []string{"logits"}})
	n.g.Output = []*onnxpb.ValueInfoProto{onnxio.ValueInfo("logits", onnxio.Float, onnxio.Shape{onnxio.Sym("batch"), onnxio.D(k)})}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

func randn(r *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = scale * float32(r.NormFloat64())
	}
	return v
}

// distinct returns n values in random order spaced by gap and centred on
// 0, so that max/ReLU-type kinks are at least gap/2 away from every value.
func distinct(r *rand.Rand, n int, gap float32) []float32 {
	v := make([]float32, n)
	for i, p := range r.Perm(n) {
		v[i] = gap * (float32(p) - float32(n)/2 + 0.5)
	}
	return v
}

// fdCheck compares directional derivatives of the loss along random
// directions, for the input and each parameter separately, with float32
// central differences of step h computed by the same ONNX Runtime session
// (parameters are graph inputs of the gradient model, so perturbed values
// are simply fed).
func fdCheck(t *testing.T, m *onnxio.Model, spec autodiff.Spec, x []float32, xShape []int64, params []string, h float64, extra map[string]ort.Tensor) *autodiff.Result {
	t.Helper()
	spec.WrtInput = true
	spec.WrtParams = params
	r, err := autodiff.Gradient(m, spec)
	if err != nil {
		t.Fatalf("Gradient: %v", err)
	}
	s := newSession(t, r.Model)
	rng := rand.New(rand.NewPCG(uint64(len(x)), 3))
	in := map[string]ort.Tensor{r.Input: f32(xShape, x)}
	for k, v := range extra {
		in[k] = v
	}
	if r.Labels != "" {
		if _, ok := in[r.Labels]; !ok {
			k := r.Model.Graph().GetOutput()[2] // logits
			_, ks := onnxio.ValueInfoShape(k)
			y := make([]int64, xShape[0])
			for i := range y {
				y[i] = rng.Int64N(ks[1].Value)
			}
			in[r.Labels] = i64([]int64{xShape[0]}, y)
		}
	}
	addFeeds(t, in, r)
	wrt := map[string]string{r.Input: r.InputGrad}
	for _, p := range params {
		wrt[p] = r.ParamGrads[p]
	}
	outs := []string{r.PerSampleLoss}
	for _, g := range wrt {
		outs = append(outs, g)
	}
	base := run(t, s, in, outs...)
	loss := func(feeds map[string]ort.Tensor) float64 {
		o := run(t, s, feeds, r.PerSampleLoss)
		sum := 0.0
		for _, v := range o[r.PerSampleLoss].Float32 {
			sum += float64(v)
		}
		if spec.Reduction == autodiff.Mean {
			sum /= float64(len(o[r.PerSampleLoss].Float32))
		}
		return sum
	}
	l0 := loss(in)
	for name, gname := range wrt {
		g := base[gname].Float32
		x0 := in[name]
		if len(g) != len(x0.Float32) {
			t.Fatalf("gradient of %s has %d elements; want %d", name, len(g), len(x0.Float32))
		}
		gnorm := norm(g)
		for dir := 0; dir < 3; dir++ {
			v := make([]float32, len(g))
			for i := range v {
				v[i] = float32(max(-3, min(3, rng.NormFloat64())))
			}
			an := 0.0
			for i := range v {
				an += float64(g[i]) * float64(v[i])
			}
			step := func(sign float64) float64 {
				p := make([]float32, len(v))
				for i := range p {
					p[i] = x0.Float32[i] + float32(sign*h)*v[i]
				}
				feeds := map[string]ort.Tensor{}
				for k, t := range in {
					feeds[k] = t
				}
				feeds[name] = f32(x0.Shape, p)
				return loss(feeds)
			}
			fd := (step(1) - step(-1)) / (2 * h)
			// relative, Cauchy–Schwarz-scaled, and float32 rounding of the loss over 2h
			tol := 1e-2*math.Abs(an) + 2e-4*gnorm*norm(v) + 4e-7*(math.Abs(l0)+1)/h
			if math.Abs(fd-an) > tol || math.IsNaN(an) {
				t.Errorf("d loss/d %s along direction %d: analytic %.6g, finite difference %.6g (|diff| %.2g > tol %.2g)", name, dir, an, fd, math.Abs(fd-an), tol)
			}
		}
	}
	return r
}

func norm(v []float32) float64 {
	s := 0.0
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

type fdCase struct {
	name  string
	shape []int64 // input shape, batch first
	// build adds the op(s) under test on n.x and returns the tensor fed to
	// the logits head.
	build func(n *net) string
	x     func(r *rand.Rand, size int) []float32 // default N(0,1)
	h     float64                                // default 1e-2
	spec  autodiff.Spec
	train bool // all BN nodes in training mode
}

func ai(name string, v ...int64) *onnxpb.AttributeProto { return onnxio.AttrInts(name, v...) }
func a1(name string, v int64) *onnxpb.AttributeProto    { return onnxio.AttrInt(name, v) }
func af(name string, v float32) *onnxpb.AttributeProto  { return onnxio.AttrFloat(name, v) }
func as(name string, v string) *onnxpb.AttributeProto   { return onnxio.AttrString(name, v) }
func pieces(gap float32) func(r *rand.Rand, n int) []float32 {
	return func(r *rand.Rand, n int) []float32 { return distinct(r, n, gap) }
}

func conv(n *net, cin, cout, group int64, k []int64, attrs ...*onnxpb.AttributeProto) string {
	w := n.param(fmt.Sprintf("w%d", len(n.params)), 0.3, 0, append([]int64{cout, cin / group}, k...)...)
	b := n.param(fmt.Sprintf("b%d", len(n.params)), 0.1, 0, cout)
	return n.op("Conv", []string{n.x, w, b}, append(attrs, a1("group", group))...)
}

func runFD(t *testing.T, cases []fdCase) {
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newNet(uint64(i+1), tc.shape...)
			y := tc.build(n)
			m := n.logits(t, y, 5)
			size := 1
			for _, d := range tc.shape {
				size *= int(d)
			}
			var x []float32
			if tc.x != nil {
				x = tc.x(n.rng, size)
			} else {
				x = randn(n.rng, size, 1)
			}
			h := tc.h
			if h == 0 {
				h = 1e-2
			}
			spec := tc.spec
			if tc.train {
				spec.TrainBN = autodiff.BatchNorms(m)
			}
			params := n.params
			if fdConstParams {
				params = nil
			}
			fdCheck(t, m, spec, x, tc.shape, params, h, nil)
		})
	}
}

func TestFDConv(t *testing.T) {
	for _, st := range []struct {
		name string
		v    int
	}{{"auto", -1}, {"batched", 0}, {"batched-cols-first", 1}, {"fold", 2}} {
		t.Run(st.name, func(t *testing.T) {
			defer autodiff.SetDWStrategy(st.v)()
			runFD(t, convCases())
		})
	}
	// Constant weights (the attack graphs) take the flipped-kernel Conv
	// path for unit-stride input gradients.
	t.Run("constant-weights", func(t *testing.T) {
		fdConstParams = true
		defer func() { fdConstParams = false }()
		runFD(t, convCases())
	})
}

// fdConstParams makes runFD differentiate the input only, leaving the
// parameters as constant initializers.
var fdConstParams bool

func convCases() []fdCase {
	k3 := []int64{3, 3}
	return []fdCase{
		{name: "3x3/s1/p1", shape: []int64{2, 3, 6, 6}, build: func(n *net) string {
			return conv(n, 3, 4, 1, k3, ai("pads", 1, 1, 1, 1))
		}},
		{name: "3x3/s2/p1/odd", shape: []int64{2, 3, 7, 7}, build: func(n *net) string {
			return conv(n, 3, 4, 1, k3, ai("pads", 1, 1, 1, 1), ai("strides", 2, 2))
		}},
		{name: "3x3/s2/p1/even", shape: []int64{2, 3, 8, 8}, build: func(n *net) string {
			return conv(n, 3, 4, 1, k3, ai("pads", 1, 1, 1, 1), ai("strides", 2, 2))
		}},
		{name: "3x3/s2/asymmetric-pads", shape: []int64{2, 2, 7, 8}, build: func(n *net) string {
			return conv(n, 2, 3, 1, k3, ai("pads", 0, 1, 2, 0), ai("strides", 2, 2))
		}},
		{name: "3x3/s2/d2", shape: []int64{2, 2, 9, 9}, build: func(n *net) string {
			return conv(n, 2, 3, 1, k3, ai("pads", 1, 2, 2, 1), ai("strides", 2, 2), ai("dilations", 2, 2))
		}},
		{name: "5x3/s(2,1)/nonsquare", shape: []int64{2, 2, 9, 6}, build: func(n *net) string {
			return conv(n, 2, 3, 1, []int64{5, 3}, ai("pads", 2, 1, 2, 1), ai("strides", 2, 1))
		}},
		{name: "3x3/SAME_UPPER/s2/odd", shape: []int64{2, 2, 7, 7}, build: func(n *net) string {
			return conv(n, 2, 3, 1, k3, as("auto_pad", "SAME_UPPER"), ai("strides", 2, 2))
		}},
		{name: "3x3/VALID/s2", shape: []int64{2, 2, 8, 8}, build: func(n *net) string {
			return conv(n, 2, 3, 1, k3, as("auto_pad", "VALID"), ai("strides", 2, 2))
		}},
		{name: "groups=2", shape: []int64{2, 4, 6, 6}, build: func(n *net) string {
			return conv(n, 4, 6, 2, k3, ai("pads", 1, 1, 1, 1))
		}},
		{name: "depthwise/s2", shape: []int64{2, 4, 7, 7}, build: func(n *net) string {
			return conv(n, 4, 4, 4, k3, ai("pads", 1, 1, 1, 1), ai("strides", 2, 2))
		}},
		{name: "depthwise-multiplier2", shape: []int64{2, 3, 6, 6}, build: func(n *net) string {
			return conv(n, 3, 6, 3, k3, ai("pads", 1, 1, 1, 1))
		}},
		{name: "1x1/s1", shape: []int64{2, 4, 5, 5}, build: func(n *net) string {
			return conv(n, 4, 6, 1, []int64{1, 1})
		}},
		{name: "1x1/s2/odd", shape: []int64{2, 4, 7, 7}, build: func(n *net) string {
			return conv(n, 4, 6, 1, []int64{1, 1}, ai("strides", 2, 2))
		}},
		{name: "1x1/p1", shape: []int64{2, 3, 4, 4}, build: func(n *net) string {
			return conv(n, 3, 2, 1, []int64{1, 1}, ai("pads", 1, 0, 0, 1))
		}},
		{name: "1d/k3/s2", shape: []int64{2, 3, 9}, build: func(n *net) string {
			return conv(n, 3, 4, 1, []int64{3}, ai("pads", 1, 1), ai("strides", 2))
		}},
		{name: "stem7x7/s2/p3", shape: []int64{2, 3, 12, 12}, build: func(n *net) string {
			return conv(n, 3, 4, 1, []int64{7, 7}, ai("pads", 3, 3, 3, 3), ai("strides", 2, 2))
		}},
	}
}

type randT = rand.Rand

// shifted returns N(0,1) values pushed away from 0 by at least d.
func shifted(r *rand.Rand, n int, d float32) []float32 {
	v := randn(r, n, 1)
	for i := range v {
		if v[i] < 0 {
			v[i] -= d
		} else {
			v[i] += d
		}
	}
	return v
}
