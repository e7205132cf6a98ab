package arch

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// value is a tensor of the graph with its per-sample shape (channels, height,
// width; a flattened vector has h = w = 0).
type value struct {
	name    string
	c, h, w int
}

// rule is how one parameter is initialised.
type rule struct {
	kind  ruleKind
	scale float64 // bound of the uniform, std of the normal, or the constant
}

type ruleKind int

const (
	constant ruleKind = iota
	uniform           // U(−scale, scale)
	normal            // N(0, scale²)
)

// torchDefault is PyTorch's default for Conv2d and Linear weights and biases:
// kaiming_uniform_(a=√5) gives bound gain·√(3/fan_in) with gain = √(2/6),
// i.e. 1/√fan_in, and the bias uses the same bound.
func torchDefault(fanIn int) rule { return rule{uniform, 1 / math.Sqrt(float64(fanIn))} }

// heFanOut is kaiming_normal_(mode="fan_out", nonlinearity="relu"):
// std = √(2/fan_out), as RobustBench's WideResNet writes normal_(0, √(2/n)).
func heFanOut(fanOut int) rule { return rule{normal, math.Sqrt(2 / float64(fanOut))} }

func constRule(v float64) rule { return rule{constant, v} }

// param is an initializer waiting for its values.
type param struct {
	name   string
	dims   []int64
	init   rule
	values []float32 // fixed values (fixed), used instead of init
}

// net accumulates the graph of one model: nodes in topological order and
// parameters in state_dict order. The first error sticks.
type net struct {
	g      *onnxpb.GraphProto
	params []param
	count  int64
	names  map[string]bool
	err    error
}

func newNet(cfg Config) *net {
	c, h, w := cfg.In[0], cfg.In[1], cfg.In[2]
	g := &onnxpb.GraphProto{
		Input:  []*onnxpb.ValueInfoProto{onnxio.ValueInfo("input", onnxio.Float, onnxio.Shape{onnxio.Sym("batch"), onnxio.D(int64(c)), onnxio.D(int64(h)), onnxio.D(int64(w))})},
		Output: []*onnxpb.ValueInfoProto{onnxio.ValueInfo("logits", onnxio.Float, onnxio.Shape{onnxio.Sym("batch"), onnxio.D(int64(cfg.Classes))})},
	}
	return &net{g: g, names: map[string]bool{"input": true}}
}

// input is the image input, normalised as (input − mu) / sigma when
// cfg.Normalize is set (mu and sigma lead the state_dict: RobustBench's
// subclasses register them as their own buffers, which precede the
// children's entries).
func (n *net) input(cfg Config) value {
	x := value{name: "input", c: cfg.In[0], h: cfg.In[1], w: cfg.In[2]}
	if nz := cfg.Normalize; nz != nil {
		c := int64(x.c)
		mu := n.fixed("mu", nz.Mean, 1, c, 1, 1)
		sigma := n.fixed("sigma", nz.Std, 1, c, 1, 1)
		x.name = n.node("Sub", "input_minus_mu", []string{x.name, mu})
		x.name = n.node("Div", "input_normalized", []string{x.name, sigma})
	}
	return x
}

// fixed is a buffer with given values, drawn from no generator.
func (n *net) fixed(name string, values []float32, dims ...int64) string {
	n.param(name, rule{}, dims...)
	n.params[len(n.params)-1].values = values
	return name
}

// claim reserves a tensor or initializer name; a clash is a bug in a builder.
func (n *net) claim(name string) {
	if n.names[name] && n.err == nil {
		n.err = fmt.Errorf("name %q used twice", name)
	}
	n.names[name] = true
}

func (n *net) param(name string, init rule, dims ...int64) string {
	n.claim(name)
	size := int64(1)
	for _, d := range dims {
		size *= d
	}
	n.count += size
	n.params = append(n.params, param{name: name, dims: dims, init: init})
	return name
}

// node appends a node named out whose single output is the tensor out.
func (n *net) node(op, out string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	n.claim(out)
	n.g.Node = append(n.g.Node, &onnxpb.NodeProto{Name: out, OpType: op, Input: inputs, Output: []string{out}, Attribute: attrs})
	return out
}

// conv is nn.Conv2d(x.c, out, k, stride, padding=pad, bias=False) named mod.
// init is the weight's rule, given fan_in and fan_out.
func (n *net) conv(mod string, x value, out, k, stride, pad int, init func(fanIn, fanOut int) rule) value {
	w := n.param(mod+".weight", init(x.c*k*k, out*k*k), int64(out), int64(x.c), int64(k), int64(k))
	y := n.node("Conv", mod, []string{x.name, w},
		onnxio.AttrInts("kernel_shape", int64(k), int64(k)),
		onnxio.AttrInts("strides", int64(stride), int64(stride)),
		onnxio.AttrInts("pads", int64(pad), int64(pad), int64(pad), int64(pad)))
	return value{name: y, c: out, h: (x.h+2*pad-k)/stride + 1, w: (x.w+2*pad-k)/stride + 1}
}

// bn is nn.BatchNorm2d(x.c) in eval mode named mod.
func (n *net) bn(mod string, x value) value {
	c := int64(x.c)
	in := []string{
		x.name,
		n.param(mod+".weight", constRule(1), c),
		n.param(mod+".bias", constRule(0), c),
		n.param(mod+".running_mean", constRule(0), c),
		n.param(mod+".running_var", constRule(1), c),
	}
	y := n.node("BatchNormalization", mod, in,
		onnxio.AttrFloat("epsilon", 1e-5),
		onnxio.AttrFloat("momentum", 0.9),
		onnxio.AttrInt("training_mode", 0))
	x.name = y
	return x
}

func (n *net) relu(name string, x value) value {
	x.name = n.node("Relu", name, []string{x.name})
	return x
}

func (n *net) add(name string, a, b value) value {
	if (a.c != b.c || a.h != b.h || a.w != b.w) && n.err == nil {
		n.err = fmt.Errorf("%s: adding %d×%d×%d to %d×%d×%d", name, a.c, a.h, a.w, b.c, b.h, b.w)
	}
	a.name = n.node("Add", name, []string{a.name, b.name})
	return a
}

// head pools, flattens and applies the classifier nn.Linear(x.c, classes)
// named mod, writing "logits". k is the reference's F.avg_pool2d kernel:
// used when the last map is k×k, else the map is averaged globally.
func (n *net) head(x value, k int, mod string, classes int, zeroBias bool) {
	if x.h == k && x.w == k {
		x.name = n.node("AveragePool", "avgpool", []string{x.name},
			onnxio.AttrInts("kernel_shape", int64(k), int64(k)),
			onnxio.AttrInts("strides", int64(k), int64(k)))
	} else {
		x.name = n.node("GlobalAveragePool", "avgpool", []string{x.name})
	}
	flat := n.node("Flatten", "flatten", []string{x.name}, onnxio.AttrInt("axis", 1))
	bias := torchDefault(x.c)
	if zeroBias {
		bias = constRule(0)
	}
	w := n.param(mod+".weight", torchDefault(x.c), int64(classes), int64(x.c))
	b := n.param(mod+".bias", bias, int64(classes))
	n.node("Gemm", "logits", []string{flat, w, b},
		onnxio.AttrFloat("alpha", 1), onnxio.AttrFloat("beta", 1), onnxio.AttrInt("transB", 1))
	n.g.Node[len(n.g.Node)-1].Name = mod
}

// initialize draws every parameter from r in state_dict order and stores
// them as the graph's initializers.
func (n *net) initialize(r *rand.Rand) {
	for _, p := range n.params {
		size := int64(1)
		for _, d := range p.dims {
			size *= d
		}
		data := make([]float32, size)
		switch {
		case p.values != nil:
			copy(data, p.values)
		case p.init.kind == constant:
			for i := range data {
				data[i] = float32(p.init.scale)
			}
		case p.init.kind == uniform:
			b := p.init.scale
			for i := range data {
				data[i] = float32((2*r.Float64() - 1) * b)
			}
		case p.init.kind == normal:
			s := p.init.scale
			for i := range data {
				data[i] = float32(r.NormFloat64() * s)
			}
		}
		n.g.Initializer = append(n.g.Initializer, onnxio.FloatTensor(p.name, p.dims, data))
	}
}
