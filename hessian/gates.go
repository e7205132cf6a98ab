package hessian

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// FreezeGates returns a copy of m in which every Relu and LeakyRelu is a
// multiplication by its gate at m's current parameters: y = Relu(z) becomes
// y = z·[z₀ > 0] (LeakyRelu: z·(α + (1 − α)[z₀ > 0])), where z₀ is z computed
// by a frozen copy of the network whose parameters are m's initializers
// under new names. Inputs, outputs and parameter names are m's, so the model
// trains and differentiates like m.
//
// At m's parameters the copy computes the same logits and gradients as m.
// Its loss, though, is smooth in the parameters, and its Hessian there is
// the one automatic differentiation gives for m — double backward treats
// each ReLU's derivative as a constant gate. Without the rewrite, a central
// difference of two gradients also counts the gates that flip between
// w − hv and w + hv: on a trained ReLU network with a few hundred images
// thousands flip at any usable float32 step, and the products came out
// several times too large (testdata/hessian). The frozen copy costs one more
// forward pass per gradient. n is the number of gates rewritten. MaxPool's
// argmax is not frozen.
func FreezeGates(m *onnxio.Model) (out *onnxio.Model, n int, err error) {
	if m == nil || m.Graph() == nil {
		return nil, 0, fmt.Errorf("hessian: no model")
	}
	out = m.Clone()
	g := out.Graph()
	ix, err := onnxio.NewIndex(g)
	if err != nil {
		return nil, 0, err
	}
	var gated []int
	var pre []string
	for _, i := range ix.Order {
		nd := ix.Node(i)
		switch nd.GetOpType() {
		case "Relu", "LeakyRelu":
			gated = append(gated, i)
			pre = append(pre, nd.GetInput()[0])
		}
		for _, a := range nd.GetAttribute() {
			if a.GetG() != nil || len(a.GetGraphs()) > 0 {
				return nil, 0, fmt.Errorf("hessian: node %q (%s) has a subgraph; freezing gates needs a flat graph", nd.GetName(), nd.GetOpType())
			}
		}
	}
	if len(gated) == 0 {
		return out, 0, nil
	}
	anc := ix.Ancestors(pre)
	b := onnxio.NewBuilder(g, "gate/")
	nodes := g.GetNode()
	g.Node = nil
	// The frozen copy: every node the gates' inputs depend on, reading
	// renamed copies of the initializers.
	ref := map[string]string{}
	refInit := func(name string) string {
		if r, ok := ref[name]; ok {
			return r
		}
		t := proto.Clone(ix.Init[name]).(*onnxpb.TensorProto)
		t.Name = b.Fresh("ref/" + name)
		g.Initializer = append(g.Initializer, t)
		ref[name] = t.GetName()
		return t.GetName()
	}
	for _, i := range ix.Order {
		if !anc[i] {
			continue
		}
		c := proto.Clone(nodes[i]).(*onnxpb.NodeProto)
		c.Name = b.Fresh("ref/" + c.GetName())
		for j, in := range c.GetInput() {
			switch {
			case in == "":
			case ref[in] != "":
				c.Input[j] = ref[in]
			case ix.IsInit(in):
				c.Input[j] = refInit(in)
			}
		}
		for j, o := range c.GetOutput() {
			if o != "" {
				ref[o] = b.Fresh("ref/" + o)
				c.Output[j] = ref[o]
			}
		}
		g.Node = append(g.Node, c)
	}
	zero := b.ScalarF(0)
	gate := map[int]string{}
	for k, i := range gated {
		z0 := pre[k]
		if r, ok := ref[z0]; ok {
			z0 = r
		}
		gt := b.Op1("Greater", []string{z0, zero})
		gv := b.Op1("Cast", []string{gt}, onnxio.AttrInt("to", int64(onnxio.Float)))
		if nd := nodes[i]; nd.GetOpType() == "LeakyRelu" {
			alpha := onnxio.GetFloat(nd, "alpha", 0.01)
			gv = b.Op1("Add", []string{b.Op1("Mul", []string{gv, b.ScalarF(1 - alpha)}), b.ScalarF(alpha)})
		}
		gate[i] = gv
	}
	for i, nd := range nodes {
		if gv, ok := gate[i]; ok {
			nd = &onnxpb.NodeProto{Name: nd.GetName(), OpType: "Mul", Input: []string{nd.GetInput()[0], gv}, Output: []string{nd.GetOutput()[0]}}
		}
		g.Node = append(g.Node, nd)
	}
	return out, len(gated), nil
}
