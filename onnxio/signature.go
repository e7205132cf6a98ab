package onnxio

import "fmt"

// Signature reads a classifier's per-sample input shape and class count
// from the graph (static shape inference), without running it: one image
// input whose every dimension but the batch is fixed, and logits
// [batch, classes] as the first output.
func Signature(m *Model) (sample []int, classes int, err error) {
	ix, err := NewIndex(m.Graph())
	if err != nil {
		return nil, 0, err
	}
	if len(ix.Inputs) != 1 || len(ix.Outputs) < 1 {
		return nil, 0, fmt.Errorf("the graph has %d inputs and %d outputs; want one image input and logits", len(ix.Inputs), len(ix.Outputs))
	}
	sh, err := InferShapes(m)
	if err != nil {
		return nil, 0, err
	}
	in, out := sh.Shape(ix.Inputs[0]), sh.Shape(ix.Outputs[0])
	for _, d := range in[min(1, len(in)):] {
		if !d.Known() {
			return nil, 0, fmt.Errorf("input %q has shape %v; every dimension but the batch must be fixed", ix.Inputs[0], in)
		}
		sample = append(sample, int(d.Value))
	}
	if len(out) != 2 || !out[1].Known() {
		return nil, 0, fmt.Errorf("output %q has shape %v; want logits [batch, classes]", ix.Outputs[0], out)
	}
	return sample, int(out[1].Value), nil
}
