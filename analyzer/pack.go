package analyzer

import (
	"fmt"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// PackedInput describes one original input inside a packed input.
type PackedInput struct {
	Name   string  // the original input
	Shape  []int64 // its per-sample shape (without the batch)
	Offset int64   // first column in the packed input
	Size   int64   // number of columns (product of Shape)
}

// PackInputs returns a copy of m whose float graph inputs (the cut tensors
// of a tail, say) are replaced by one input named name of shape [N, D]:
// each sample's inputs flattened and laid side by side in the order of
// m's inputs, D their total size. Slice and Reshape nodes at the top of the
// graph recover the original tensors under their original names, so a
// model with several inputs can be fed from one matrix of features.
// Every replaced input must have a static shape beyond the batch.
func PackInputs(m *onnxio.Model, name string) (*onnxio.Model, []PackedInput, error) {
	out := m.Clone()
	g := out.Graph()
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	var parts []PackedInput
	var kept []*onnxpb.ValueInfoProto
	var d int64
	for _, in := range g.GetInput() {
		if inits[in.GetName()] {
			kept = append(kept, in)
			continue
		}
		elem, shape := onnxio.ValueInfoShape(in)
		if elem != onnxio.Float {
			return nil, nil, fmt.Errorf("pack inputs: input %q is not float32", in.GetName())
		}
		if len(shape) < 2 {
			return nil, nil, fmt.Errorf("pack inputs: input %q has shape %v; want [N, …]", in.GetName(), shape)
		}
		p := PackedInput{Name: in.GetName(), Offset: d, Size: 1}
		for _, dim := range shape[1:] {
			if !dim.Known() {
				return nil, nil, fmt.Errorf("pack inputs: input %q has shape %v; the dimensions after the batch must be static", in.GetName(), shape)
			}
			p.Shape = append(p.Shape, dim.Value)
			p.Size *= dim.Value
		}
		d += p.Size
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return nil, nil, fmt.Errorf("pack inputs: the model has no input to pack")
	}
	if name == "" || tensorNamed(g, name) {
		return nil, nil, fmt.Errorf("pack inputs: %q is not a new tensor name in the model", name)
	}
	b := onnxio.NewBuilder(g, "pack/")
	saved := g.Node
	g.Node = nil
	for _, p := range parts {
		t := b.Op1("Slice", []string{name, b.Ints1(p.Offset), b.Ints1(p.Offset + p.Size), b.Ints1(1)})
		g.Node = append(g.Node, &onnxpb.NodeProto{
			Name: b.Fresh("unpack"), OpType: "Reshape",
			Input:  []string{t, b.Ints1(append([]int64{-1}, p.Shape...)...)},
			Output: []string{p.Name},
		})
	}
	g.Node = append(g.Node, saved...)
	packed := onnxio.ValueInfo(name, onnxio.Float, onnxio.Shape{onnxio.Sym("N"), onnxio.D(d)})
	g.Input = append([]*onnxpb.ValueInfoProto{packed}, kept...)
	if err := out.Validate(); err != nil {
		return nil, nil, fmt.Errorf("pack inputs: %w", err)
	}
	return out, parts, nil
}

// tensorNamed reports whether g has an input, initializer or node output
// called name.
func tensorNamed(g *onnxpb.GraphProto, name string) bool {
	for _, in := range g.GetInput() {
		if in.GetName() == name {
			return true
		}
	}
	for _, t := range g.GetInitializer() {
		if t.GetName() == name {
			return true
		}
	}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			if o == name {
				return true
			}
		}
	}
	return false
}
