package analyzer

import (
	"fmt"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// Tap returns a copy of the analysed model whose graph outputs are the given
// intermediate tensors (in that order) followed by the original outputs, so
// that one session run yields the activations of several layers. ONNX Runtime
// only returns declared graph outputs, hence the rewrite.
func (an *Analysis) Tap(tensors []string) (*onnxio.Model, error) {
	out := an.Model.Clone()
	g := out.Graph()
	have := map[string]bool{}
	for _, o := range g.GetOutput() {
		have[o.GetName()] = true
	}
	var taps []*onnxpb.ValueInfoProto
	for _, t := range tensors {
		ti, ok := an.Shapes.Types[t]
		if _, produced := an.Index.Producer[t]; !produced {
			return nil, fmt.Errorf("tap %q: no node produces this tensor", t)
		}
		if have[t] {
			continue
		}
		have[t] = true
		elem := ti.Elem
		if !ok || elem == 0 {
			elem = onnxio.Float
		}
		taps = append(taps, onnxio.ValueInfo(t, elem, ti.Shape))
	}
	g.Output = append(taps, g.GetOutput()...)
	return out, nil
}

// LayerOutputs returns the output tensors of the given 1-based layers.
func (an *Analysis) LayerOutputs(layers []int) ([]string, error) {
	out := make([]string, len(layers))
	for i, l := range layers {
		ly, err := an.Layer(l)
		if err != nil {
			return nil, err
		}
		out[i] = ly.Output
	}
	return out, nil
}
