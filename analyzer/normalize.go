package analyzer

import (
	"fmt"
	"strings"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// PrependNormalization returns a copy of m whose single image input takes
// pixels in [0,1] and normalises them as (x − mean)/std per channel before
// the original graph, so that perturbation budgets stay in pixel units.
// mean and std hold one value per channel, or one value for all.
func PrependNormalization(m *onnxio.Model, mean, std []float32) (*onnxio.Model, error) {
	if len(mean) == 0 && len(std) == 0 {
		return m, nil
	}
	if len(mean) != len(std) {
		return nil, fmt.Errorf("normalisation: %d mean values but %d std values", len(mean), len(std))
	}
	for _, s := range std {
		if !(s > 0) {
			return nil, fmt.Errorf("normalisation: std values must be positive, got %v", std)
		}
	}
	out := m.Clone()
	ix, err := onnxio.NewIndex(out.Graph())
	if err != nil {
		return nil, err
	}
	if len(ix.Inputs) != 1 {
		return nil, fmt.Errorf("normalisation needs a model with one image input; this one has %d", len(ix.Inputs))
	}
	in := ix.Inputs[0]
	var vi = out.Graph().GetInput()[0]
	for _, v := range out.Graph().GetInput() {
		if v.GetName() == in {
			vi = v
		}
	}
	_, shape := onnxio.ValueInfoShape(vi)
	c := int64(len(mean))
	if len(shape) == 4 && shape[1].Known() && c != 1 && shape[1].Value != c {
		return nil, fmt.Errorf("normalisation: model input %q has %d channels but mean/std give %d values", in, shape[1].Value, c)
	}
	b := onnxio.NewBuilder(out.Graph(), normalizePrefix)
	meanT := b.ConstF("mean", []int64{1, c, 1, 1}, mean)
	stdT := b.ConstF("std", []int64{1, c, 1, 1}, std)
	norm := b.Fresh("input")
	// Rename every use of the input, then compute the new tensor first.
	for _, n := range out.Graph().GetNode() {
		for i, x := range n.GetInput() {
			if x == in {
				n.Input[i] = norm
			}
		}
	}
	nodes := out.Graph().Node
	out.Graph().Node = nil
	centered := b.Op1("Sub", []string{in, meanT})
	b.G.Node = append(b.G.Node, nodeDiv(centered, stdT, norm, b.Fresh("Div")))
	out.Graph().Node = append(out.Graph().Node, nodes...)
	if err := out.Validate(); err != nil {
		return nil, fmt.Errorf("normalisation: %w", err)
	}
	return out, nil
}

// normalizePrefix names everything PrependNormalization adds.
const normalizePrefix = "normalize/"

// StripNormalization undoes PrependNormalization: it returns a copy of m
// without the normalisation nodes and constants, the image input feeding the
// original graph again. A model without them is returned unchanged (a copy).
func StripNormalization(m *onnxio.Model) *onnxio.Model {
	out := m.Clone()
	g := out.Graph()
	rename := map[string]string{}
	var kept []*onnxpb.NodeProto
	for _, n := range g.GetNode() {
		if strings.HasPrefix(n.GetName(), normalizePrefix) {
			if n.GetOpType() == "Div" && len(n.GetOutput()) == 1 {
				rename[n.GetOutput()[0]] = ""
			}
			if n.GetOpType() == "Sub" && len(n.GetInput()) == 2 {
				rename[""] = n.GetInput()[0] // the image input
			}
			continue
		}
		kept = append(kept, n)
	}
	if len(rename) == 0 {
		return out
	}
	input := rename[""]
	for _, n := range kept {
		for i, x := range n.GetInput() {
			if _, ok := rename[x]; ok && x != "" {
				n.Input[i] = input
			}
		}
	}
	g.Node = kept
	var inits []*onnxpb.TensorProto
	for _, t := range g.GetInitializer() {
		if !strings.HasPrefix(t.GetName(), normalizePrefix) {
			inits = append(inits, t)
		}
	}
	g.Initializer = inits
	return out
}
