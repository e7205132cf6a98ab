package ort

import (
	"fmt"
)

// Options configure NewSession. The zero value runs on the CPU with ONNX
// Runtime's default thread count, all graph optimisations, and the library
// LibraryLookup finds. Options marshal to JSON for run reports.
type Options struct {
	Device Device // zero value (Kind "") means cpu
	// Threads is the number of intra-op threads; 0 = ONNX Runtime's default
	// (one per physical core).
	Threads int
	// LibraryPath is the ONNX Runtime shared library; "" = LibraryLookup().
	// Only the first successful Init in a process loads a library.
	LibraryPath string
	// DisableOptimizations turns ONNX Runtime's graph optimisations off
	// (ORT_DISABLE_ALL) instead of all on (ORT_ENABLE_ALL), e.g. when a fused
	// kernel's rounding matters for a gradient check.
	DisableOptimizations bool
	// CUDAOptions adds or overrides CUDA execution provider options (keys as
	// in ONNX Runtime's CUDA EP documentation) on top of srtool's defaults;
	// ignored on the CPU.
	CUDAOptions map[string]string `json:",omitempty"`
	// ProfilePrefix, when not empty, turns on ONNX Runtime's profiler: every
	// run's per-node timings go to a JSON trace file named
	// ProfilePrefix_<date>.json (Chrome trace format), written when the
	// session is closed. For finding where a graph's time goes.
	ProfilePrefix string `json:",omitempty"`
	// StandardOpsOnly keeps the graphs that Trainer and Classifier build
	// (training, gradient and logits graphs) in standard ONNX ops. By
	// default, on the CPU, their convolutions whose weights are fed at run
	// time (trained or overridable weights, and the flipped kernels of
	// backward passes) are moved to ONNX Runtime's NCHWc kernels, which ONNX
	// Runtime itself only uses for constant weights: faster training steps,
	// same values up to float rounding; the blocked weights are computed
	// from the fed ones on every training step, and once per SetParams of
	// a Classifier. Ignored on CUDA, which always gets standard ops.
	StandardOpsOnly bool `json:",omitempty"`
	// MemoryPattern turns on ONNX Runtime's memory pattern: one block for
	// all intermediate tensors, planned from the first run's shapes. Off by
	// default: on the ResNet-18 CIFAR train step (batch 64) it raised the
	// process's peak RSS from 1.4 GB to 2.2 GB and ran about 8 % slower;
	// forward passes and PGD were the same within noise (BENCHMARKS.md).
	MemoryPattern bool `json:",omitempty"`
	// NoWorkers keeps a Classifier from offering single-threaded workers
	// (Classifier.Workers): attacks then run every batch on its Threads
	// intra-op threads.
	NoWorkers bool `json:",omitempty"`
}

// Tensor is a dense row-major tensor. Exactly one of Float32 and Int64 is
// set, with as many elements as Shape asks for; an empty Shape is a scalar
// (one element).
type Tensor struct {
	Shape   []int64
	Float32 []float32
	Int64   []int64
}

// NumElements returns the product of t.Shape (1 for a scalar), or -1 if a
// dimension is negative.
func (t Tensor) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		if d < 0 {
			return -1
		}
		n *= d
	}
	return n
}

// check reports whether t is well formed.
func (t Tensor) check() error {
	n := t.NumElements()
	if n < 0 {
		return fmt.Errorf("shape %v has a negative dimension", t.Shape)
	}
	switch {
	case t.Float32 != nil && t.Int64 != nil:
		return fmt.Errorf("both Float32 and Int64 are set")
	case t.Float32 != nil:
		if int64(len(t.Float32)) != n {
			return fmt.Errorf("shape %v needs %d elements, Float32 has %d", t.Shape, n, len(t.Float32))
		}
	case t.Int64 != nil:
		if int64(len(t.Int64)) != n {
			return fmt.Errorf("shape %v needs %d elements, Int64 has %d", t.Shape, n, len(t.Int64))
		}
	default:
		if n != 0 {
			return fmt.Errorf("neither Float32 nor Int64 is set")
		}
		return fmt.Errorf("empty tensor of shape %v has no element type: set Float32 or Int64 to an empty slice", t.Shape)
	}
	return nil
}

// ValueInfo describes a graph input or output as the model declares it.
type ValueInfo struct {
	Name string
	// ElemType is the ONNX TensorProto.DataType (1 float32, 7 int64, …);
	// 0 if the model does not say or the value is not a tensor.
	ElemType int32
	// Shape holds the declared dimensions, -1 for a symbolic or unknown one
	// (such as the batch); nil if the rank is unknown. Use HasShape to tell
	// a scalar (rank 0) from an unknown rank.
	Shape    []int64
	HasShape bool
}
