package ort

// Options configure NewSession, and the models of package diffmodel, which
// open their sessions with them. The zero value runs on the CPU with ONNX
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
	// StandardOpsOnly is read by package diffmodel (NewSession ignores
	// it): it keeps the graphs that diffmodel.Trainer and Classifier build
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
	// NoWorkers is read by package diffmodel (NewSession ignores it): it
	// keeps a diffmodel.Classifier from offering single-threaded workers
	// (Classifier.Workers); attacks then run every batch on its Threads
	// intra-op threads.
	NoWorkers bool `json:",omitempty"`
}
