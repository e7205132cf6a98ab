package ort

import "github.com/semirobust/srtool/onnxio"

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
	in, out, err := onnxio.ReadGraphIO(model)
	if err != nil {
		return nil, err
	}
	return newModelInfo(in, out), nil
}

// graphInfo describes m's inputs to feed and its outputs.
func graphInfo(m *onnxio.Model) *modelInfo { return newModelInfo(m.GraphIO()) }

func newModelInfo(in, out []onnxio.IOValue) *modelInfo {
	info := &modelInfo{}
	for _, v := range in {
		info.inputs = append(info.inputs, ValueInfo(v))
	}
	for _, v := range out {
		info.outputs = append(info.outputs, ValueInfo(v))
	}
	return info
}
