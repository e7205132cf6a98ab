package analyzer

import (
	"errors"
	"fmt"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// Layer describes one weight layer.
type Layer struct {
	Index      int      `json:"index"`  // 1-based, forward order
	Node       int      `json:"-"`      // node index in the graph
	Name       string   `json:"name"`   // node name
	Op         string   `json:"op"`     // Conv, ConvTranspose, Gemm, MatMul
	Params     []string `json:"params"` // initializer names: weight, then bias if any
	Output     string   `json:"output"` // output tensor
	Shape      []int64  `json:"shape"`  // output shape, -1 for symbolic (batch)
	ParamCount int64    `json:"param_count"`
	// MACs is the number of multiply-accumulates per sample.
	MACs int64 `json:"macs"`
}

// ErrNoWeightLayer reports a model without any weight layer.
var ErrNoWeightLayer = errors.New("model has no weight layer (Conv, Gemm or MatMul with an initializer weight)")

// Analysis is a model with its index, shapes and weight layers.
type Analysis struct {
	Model  *onnxio.Model
	Index  *onnxio.Index
	Shapes *onnxio.Shapes
	Layers []Layer
}

// Analyze indexes the model, infers shapes and lists the weight layers.
func Analyze(m *onnxio.Model) (*Analysis, error) {
	ix, err := onnxio.NewIndex(m.Graph())
	if err != nil {
		return nil, err
	}
	sh, err := onnxio.InferShapes(m)
	if err != nil {
		return nil, err
	}
	a := &Analysis{Model: m, Index: ix, Shapes: sh}
	for _, i := range ix.Order {
		n := ix.Node(i)
		switch n.GetOpType() {
		case "Conv", "ConvTranspose", "Gemm", "MatMul":
		default:
			continue
		}
		if len(n.GetInput()) < 2 || len(n.GetOutput()) == 0 {
			continue
		}
		w := a.resolveInit(n.GetInput()[1])
		if w == "" {
			continue
		}
		l := Layer{Index: len(a.Layers) + 1, Node: i, Name: n.GetName(), Op: n.GetOpType(), Output: n.GetOutput()[0]}
		l.Params = append(l.Params, w)
		if len(n.GetInput()) > 2 {
			if b := a.resolveInit(n.GetInput()[2]); b != "" {
				l.Params = append(l.Params, b)
			}
		}
		for _, p := range l.Params {
			l.ParamCount += onnxio.NumElements(ix.Init[p])
		}
		out := sh.Shape(l.Output)
		l.Shape = out.Ints()
		l.MACs = macs(n, ix.Init[w], sh.Shape(n.GetInput()[0]), out)
		a.Layers = append(a.Layers, l)
	}
	if len(a.Layers) == 0 {
		return nil, ErrNoWeightLayer
	}
	return a, nil
}

// resolveInit returns the initializer behind a tensor name (itself, or the
// one Identity nodes copy: Index.InitializerOf), or "".
func (a *Analysis) resolveInit(name string) string {
	init, _ := a.Index.InitializerOf(name)
	return init
}

// macs counts multiply-accumulates per sample.
func macs(n *onnxpb.NodeProto, w *onnxpb.TensorProto, in, out onnxio.Shape) int64 {
	wd := w.GetDims()
	switch n.GetOpType() {
	case "Conv":
		if len(out) < 3 || len(wd) < 3 || len(wd) != len(out) {
			return 0
		}
		per := int64(1)
		for _, d := range wd[1:] {
			per *= d
		}
		spatial := int64(1)
		for _, d := range out[1:] {
			if !d.Known() {
				return 0
			}
			spatial *= d.Value
		}
		return spatial * per
	case "ConvTranspose":
		// Each input position multiplies the whole [Cin, Cout/g, k...] weight once.
		spatial := int64(1)
		for _, d := range in[min(2, len(in)):] {
			if !d.Known() {
				return 0
			}
			spatial *= d.Value
		}
		return onnxio.NumElements(w) * spatial
	default: // Gemm, MatMul: one MAC per weight element per output row
		if len(out) < 2 {
			return 0 // shape unknown
		}
		rows := int64(1)
		for _, d := range out[1:max(1, len(out)-1)] {
			if d.Known() {
				rows *= d.Value
			}
		}
		return onnxio.NumElements(w) * rows
	}
}

// Totals sums parameters (all float initializers), the distinct parameters of
// weight layers, and MACs per sample.
func (a *Analysis) Totals() (params, weightParams, macs int64) {
	for _, t := range a.Model.Graph().GetInitializer() {
		if t.GetDataType() == onnxio.Float || t.GetDataType() == onnxio.Float16 || t.GetDataType() == onnxio.Double {
			params += onnxio.NumElements(t)
		}
	}
	seen := map[string]bool{}
	for _, l := range a.Layers {
		for _, p := range l.Params {
			if !seen[p] {
				seen[p] = true
				weightParams += onnxio.NumElements(a.Index.Init[p])
			}
		}
		macs += l.MACs
	}
	return
}

// Layer returns layer a (1-based) or an error naming the valid range.
func (a *Analysis) Layer(idx int) (Layer, error) {
	if idx < 1 || idx > len(a.Layers) {
		return Layer{}, fmt.Errorf("layer %d out of range: the model has %d weight layers", idx, len(a.Layers))
	}
	return a.Layers[idx-1], nil
}
