package onnxio

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// IOValue describes one graph input or output the way a runtime sees it.
type IOValue struct {
	Name string
	// ElemType is the ONNX TensorProto.DataType (1 float32, 7 int64, …); 0
	// if the model does not say or the value is not a tensor.
	ElemType int32
	// Shape holds the declared dimensions, -1 for a symbolic or unknown one
	// (such as the batch); nil if the rank is unknown. HasShape tells a
	// scalar (rank 0) from an unknown rank.
	Shape    []int64
	HasShape bool
}

// ReadGraphIO decodes a serialized ModelProto and lists the graph's inputs
// that must be fed (graph inputs that are not initializers, which is how ONNX
// Runtime counts them) and its outputs, in graph order. Unlike Decode it does
// not validate the graph (opset range, topological order): it serves a
// runtime that judges validity itself.
func ReadGraphIO(model []byte) (inputs, outputs []IOValue, err error) {
	if len(model) == 0 {
		return nil, nil, errors.New("model is not a valid ONNX ModelProto: empty")
	}
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(model, mp); err != nil {
		return nil, nil, fmt.Errorf("model is not a valid ONNX ModelProto: %w", err)
	}
	if mp.GetGraph() == nil {
		return nil, nil, errors.New("model is not a valid ONNX ModelProto: no graph")
	}
	inputs, outputs = graphIO(mp.GetGraph())
	return inputs, outputs, nil
}

// GraphIO lists m's inputs to feed and its outputs, as ReadGraphIO does for
// serialized bytes.
func (m *Model) GraphIO() (inputs, outputs []IOValue) { return graphIO(m.Graph()) }

func graphIO(g *onnxpb.GraphProto) (inputs, outputs []IOValue) {
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	for _, t := range g.GetSparseInitializer() {
		inits[t.GetValues().GetName()] = true
	}
	for _, in := range g.GetInput() {
		if !inits[in.GetName()] {
			inputs = append(inputs, ioValue(in))
		}
	}
	for _, out := range g.GetOutput() {
		outputs = append(outputs, ioValue(out))
	}
	return inputs, outputs
}

// ioValue converts a ValueInfoProto: element type 0 and no shape for a value
// that is not a tensor, -1 for a symbolic or unknown dimension.
func ioValue(vi *onnxpb.ValueInfoProto) IOValue {
	v := IOValue{Name: vi.GetName()}
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
