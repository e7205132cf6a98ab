package ort

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// modelInfo is what a Session needs from a model: the graph's inputs that
// must be fed (graph inputs that are not initializers, which is how ONNX
// Runtime counts them) and its outputs, in graph order.
type modelInfo struct {
	inputs  []ValueInfo
	outputs []ValueInfo
}

// parseModelInfo decodes a serialized ModelProto and describes its graph.
// Unlike onnxio.Decode it does not validate the graph (opset range,
// topological order): what ONNX Runtime accepts is ONNX Runtime's to say.
func parseModelInfo(model []byte) (*modelInfo, error) {
	if len(model) == 0 {
		return nil, errors.New("model is not a valid ONNX ModelProto: empty")
	}
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(model, mp); err != nil {
		return nil, fmt.Errorf("model is not a valid ONNX ModelProto: %w", err)
	}
	if mp.GetGraph() == nil {
		return nil, errors.New("model is not a valid ONNX ModelProto: no graph")
	}
	return graphInfo(mp.GetGraph()), nil
}

// graphInfo describes g's inputs to feed and its outputs.
func graphInfo(g *onnxpb.GraphProto) *modelInfo {
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	for _, t := range g.GetSparseInitializer() {
		inits[t.GetValues().GetName()] = true
	}
	info := &modelInfo{}
	for _, in := range g.GetInput() {
		if !inits[in.GetName()] {
			info.inputs = append(info.inputs, valueInfo(in))
		}
	}
	for _, out := range g.GetOutput() {
		info.outputs = append(info.outputs, valueInfo(out))
	}
	return info
}

// valueInfo converts a ValueInfoProto: element type 0 and no shape for a
// value that is not a tensor, -1 for a symbolic or unknown dimension.
func valueInfo(vi *onnxpb.ValueInfoProto) ValueInfo {
	v := ValueInfo{Name: vi.GetName()}
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return v
	}
	v.ElemType = tt.GetElemType()
	if sh := tt.GetShape(); sh != nil {
		v.HasShape = true
		v.Shape = []int64{}
		for _, d := range sh.GetDim() {
			n := int64(-1)
			if dv, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue); ok && dv.DimValue >= 0 {
				n = dv.DimValue
			}
			v.Shape = append(v.Shape, n)
		}
	}
	return v
}
