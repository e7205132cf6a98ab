package onnxio

import "github.com/semirobust/srtool/onnxio/onnxpb"

// InitializerAliases maps the output of every Identity node that copies an
// initializer — directly or through a chain of Identity nodes — to that
// initializer's name. This is how the PyTorch exporter ties parameters: a
// parameter shared by several modules, or parameters with equal values that
// its de-duplication merged, become one initializer (often named
// "onnx::…") read through Identity nodes whose outputs carry the
// state_dict names. Only Identity nodes with one input and one output
// count (the first one when two claim the same output), and a name that is
// itself an initializer is never a key. It is the one place srtool
// resolves these aliases; Index.Aliases holds its result for an indexed
// graph.
func InitializerAliases(g *onnxpb.GraphProto) map[string]string {
	init := map[string]bool{}
	for _, t := range g.GetInitializer() {
		init[t.GetName()] = true
	}
	src := map[string]string{} // Identity output → its input
	for _, n := range g.GetNode() {
		if n.GetOpType() != "Identity" || len(n.GetInput()) != 1 || len(n.GetOutput()) != 1 {
			continue
		}
		if o := n.GetOutput()[0]; o != "" && !init[o] {
			if _, dup := src[o]; !dup {
				src[o] = n.GetInput()[0]
			}
		}
	}
	out := map[string]string{}
	for o := range src {
		name := o
		for range len(src) { // a chain visits each Identity once; the bound stops cycles
			next, ok := src[name]
			if !ok {
				break
			}
			if init[next] {
				out[o] = next
				break
			}
			name = next
		}
	}
	return out
}

// InitializerOf returns the initializer that the tensor name is: name
// itself when it is an initializer, or the one an Identity chain copies
// (Aliases). ok is false for any other tensor.
func (ix *Index) InitializerOf(name string) (init string, ok bool) {
	if ix.IsInit(name) {
		return name, true
	}
	init, ok = ix.Aliases[name]
	return init, ok
}
