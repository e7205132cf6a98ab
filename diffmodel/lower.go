package diffmodel

import (
	"context"
	"sync"

	"github.com/semirobust/srtool/diffmodel/internal/nchwc"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
	"github.com/semirobust/srtool/ort"
)

var (
	blockMu    sync.Mutex
	blockSize  int
	blockKnown bool
)

// NCHWcBlockSize returns the channel block size of ONNX Runtime's NCHWc
// convolution kernels on this CPU (8 with AVX2, 16 with AVX-512), or 0 when
// this build and CPU have none. It runs a one-node probe model (ONNX
// Runtime does not export the value) and remembers the answer for the
// process; an error (no ONNX Runtime loaded) is not remembered.
func NCHWcBlockSize() (int, error) {
	blockMu.Lock()
	defer blockMu.Unlock()
	if !blockKnown {
		bs, err := probeBlockSize()
		if err != nil {
			return 0, err
		}
		blockSize, blockKnown = bs, true
	}
	return blockSize, nil
}

// probeBlockSize runs ReorderInput on four channels: the result has the
// channel count rounded up to the block size.
func probeBlockSize() (int, error) {
	g := &onnxpb.GraphProto{
		Name:   "nchwc_probe",
		Input:  []*onnxpb.ValueInfoProto{onnxio.ValueInfo("x", onnxio.Float, onnxio.ShapeOf(1, 4, 1, 1))},
		Output: []*onnxpb.ValueInfoProto{onnxio.ValueInfo("y", onnxio.Float, nil)},
		Node:   []*onnxpb.NodeProto{{Name: "probe", OpType: "ReorderInput", Domain: nchwc.Domain, Input: []string{"x"}, Output: []string{"y"}}},
	}
	m := &onnxio.Model{Proto: &onnxpb.ModelProto{
		IrVersion:   8,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}, {Domain: nchwc.Domain, Version: 1}},
		Graph:       g,
	}}
	b, err := m.Encode()
	if err != nil {
		return 0, err
	}
	s, err := ort.NewSession(b, ort.Options{Threads: 1})
	if err != nil {
		if ort.Init("") != nil {
			return 0, err
		}
		return 0, nil // ONNX Runtime loads but has no NCHWc kernels
	}
	defer s.Close()
	out, err := s.Run(context.Background(), map[string]ort.Tensor{"x": {Shape: []int64{1, 4, 1, 1}, Float32: make([]float32, 4)}}, nil)
	if err != nil {
		return 0, nil
	}
	y := out["y"]
	if len(y.Shape) != 4 || y.Shape[1] < 8 {
		return 0, nil // block size 1: the kernels are not enabled on this CPU
	}
	return int(y.Shape[1]), nil
}
