package ort

import (
	"context"
	"fmt"
	"sync"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
	"github.com/semirobust/srtool/ort/internal/nchwc"
)

var (
	blockOnce sync.Once
	blockSize int
	blockErr  error
)

// NCHWcBlockSize returns the channel block size of ONNX Runtime's NCHWc
// convolution kernels on this CPU (8 with AVX2, 16 with AVX-512), or 0 when
// this build and CPU have none. It runs a one-node probe model once per
// process (ONNX Runtime does not export the value).
func NCHWcBlockSize() (int, error) {
	blockOnce.Do(func() { blockSize, blockErr = probeBlockSize() })
	return blockSize, blockErr
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
	s, err := NewSession(b, Options{Threads: 1})
	if err != nil {
		if Init("") != nil {
			return 0, err
		}
		return 0, nil // ONNX Runtime loads but has no NCHWc kernels
	}
	defer s.Close()
	out, err := s.Run(context.Background(), map[string]Tensor{"x": {Shape: []int64{1, 4, 1, 1}, Float32: make([]float32, 4)}}, nil)
	if err != nil {
		return 0, nil
	}
	y := out["y"]
	if len(y.Shape) != 4 || y.Shape[1] < 8 {
		return 0, nil // block size 1: the kernels are not enabled on this CPU
	}
	return int(y.Shape[1]), nil
}

// newModelSession opens a session on m. On the CPU, unless
// opts.StandardOpsOnly is set, convolutions whose weights are fed at run
// time are first moved to ONNX Runtime's NCHWc kernels (see
// Options.StandardOpsOnly); m itself is not changed.
func newModelSession(m *onnxio.Model, opts Options) (*Session, error) {
	var st nchwc.Stats
	if opts.Device.Kind == "" || opts.Device.Kind == "cpu" {
		if !opts.StandardOpsOnly {
			bs, err := NCHWcBlockSize()
			if err != nil {
				return nil, err
			}
			if bs > 0 {
				lm, stats, err := nchwc.Lower(m, bs)
				if err != nil {
					return nil, fmt.Errorf("ort: %w", err)
				}
				m, st = lm, stats
			}
		}
	}
	b, err := m.Encode()
	if err != nil {
		return nil, fmt.Errorf("ort: encode model: %w", err)
	}
	s, err := NewSession(b, opts)
	if err != nil {
		return nil, err
	}
	s.lowered = st
	return s, nil
}
