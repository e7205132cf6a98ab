package autodiff

import (
	"fmt"
	"sort"

	"github.com/semirobust/srtool/onnxio"
)

// minOpset is the lowest default-domain opset gradients are written for:
// ScatterElements(reduction="add") needs 16, and 17 is what PyTorch's
// exporter writes.
const minOpset = 17

// sameFrom13 lists op types whose definition is the same at every opset
// from 13 to 17 for the inputs and attributes exported models use (later
// versions only added element types, or attributes whose defaults keep the
// old behaviour: Reshape's allowzero=0 (14), Shape's start/end (15),
// ScatterElements' reduction="none" (16)). BatchNormalization changed at 14
// (training_mode); its single-output inference form is unchanged, which
// upgradeOpset checks per node.
var sameFrom13 = map[string]bool{
	"Conv": true, "ConvTranspose": true, "BatchNormalization": true, "Relu": true, "LeakyRelu": true,
	"Sigmoid": true, "Tanh": true, "Clip": true, "Add": true, "Sub": true, "Mul": true, "Div": true,
	"MaxPool": true, "AveragePool": true, "GlobalAveragePool": true, "GlobalMaxPool": true, "Flatten": true,
	"Gemm": true, "MatMul": true, "Identity": true, "Reshape": true, "Shape": true, "Gather": true,
	"Unsqueeze": true, "Squeeze": true, "Concat": true, "Constant": true, "ConstantOfShape": true,
	"Cast": true, "Pad": true, "Transpose": true, "Softmax": true, "LogSoftmax": true, "Dropout": true,
	"ReduceMean": true, "ReduceSum": true, "ReduceMax": true, "ReduceMin": true, "Slice": true,
	"Expand": true, "Where": true, "Equal": true, "Greater": true, "Less": true, "Neg": true,
	"Exp": true, "Log": true, "Sqrt": true, "Range": true, "ArgMax": true, "ArgMin": true,
	"Sum": true, "Max": true, "Min": true, "Pow": true, "Erf": true, "Floor": true, "Ceil": true,
	"Abs": true, "Reciprocal": true, "ScatterElements": true, "GatherElements": true, "Size": true,
	"Not": true, "And": true, "Or": true, "Split": true, "TopK": true, "OneHot": true, "NonZero": true,
}

// upgradeOpset raises the default-domain opset import of m to minOpset when
// it is between 13 and 16 and every op present means the same at 17.
func upgradeOpset(m *onnxio.Model) error {
	v := m.Opset()
	if v >= minOpset {
		return nil
	}
	if v < 13 {
		return &OpsetError{Opset: v, Reason: fmt.Sprintf("gradients need opset ≥ 13 (re-export with opset_version=%d)", minOpset)}
	}
	bad := map[string]bool{}
	for _, n := range m.Graph().GetNode() {
		if n.GetDomain() != "" && n.GetDomain() != "ai.onnx" {
			return &OpsetError{Opset: v, Reason: fmt.Sprintf("node %q uses domain %q; cannot raise the opset to %d", n.GetName(), n.GetDomain(), minOpset)}
		}
		op := n.GetOpType()
		if !sameFrom13[op] {
			bad[op] = true
		}
		if op == "BatchNormalization" && len(n.GetOutput()) > 1 {
			return &OpsetError{Opset: v, Reason: fmt.Sprintf("BatchNormalization %q has training outputs whose meaning changed at opset 14; cannot raise the opset to %d", n.GetName(), minOpset)}
		}
	}
	if len(bad) > 0 {
		var ops []string
		for op := range bad {
			ops = append(ops, op)
		}
		sort.Strings(ops)
		return &OpsetError{Opset: v, Reason: fmt.Sprintf("cannot raise to %d: not checked for unchanged semantics: %v", minOpset, ops)}
	}
	for _, o := range m.Proto.GetOpsetImport() {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			o.Version = minOpset
		}
	}
	return nil
}
