//go:build !cgo

package diffmodel

import (
	"errors"
	"testing"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
	"github.com/semirobust/srtool/ort"
)

// linearModel is logits = X·W, X [N, 4], W [4, 2] an initializer.
func linearModel() *onnxio.Model {
	g := &onnxpb.GraphProto{
		Name:        "g",
		Input:       []*onnxpb.ValueInfoProto{onnxio.ValueInfo("x", onnxio.Float, onnxio.Shape{onnxio.Sym("N"), onnxio.D(4)})},
		Output:      []*onnxpb.ValueInfoProto{onnxio.ValueInfo("y", onnxio.Float, onnxio.Shape{onnxio.Sym("N"), onnxio.D(2)})},
		Initializer: []*onnxpb.TensorProto{{Name: "w", Dims: []int64{4, 2}, DataType: onnxio.Float, FloatData: make([]float32, 8)}},
		Node:        []*onnxpb.NodeProto{{Name: "mm", OpType: "MatMul", Input: []string{"x", "w"}, Output: []string{"y"}}},
	}
	return &onnxio.Model{Proto: &onnxpb.ModelProto{IrVersion: 8, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}}, Graph: g}}
}

// Without cgo the graphs are still built, and opening their sessions says
// that ONNX Runtime is unavailable.
func TestUnavailableWithoutCgo(t *testing.T) {
	if c, err := NewClassifier(linearModel(), ort.Options{}); !errors.Is(err, ort.ErrUnavailable) || c != nil {
		t.Errorf("NewClassifier = %v, %v; want nil, ort.ErrUnavailable", c, err)
	}
	if tr, _, _, err := NewTrainer(linearModel(), ort.Options{}, TrainerOptions{Trainable: []string{"w"}}); !errors.Is(err, ort.ErrUnavailable) || tr != nil {
		t.Errorf("NewTrainer = %v, %v; want nil, ort.ErrUnavailable", tr, err)
	}
	if bs, err := NCHWcBlockSize(); !errors.Is(err, ort.ErrUnavailable) {
		t.Errorf("NCHWcBlockSize = %d, %v; want ort.ErrUnavailable", bs, err)
	}
}
