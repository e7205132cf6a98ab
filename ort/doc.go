// Package ort runs ONNX models on ONNX Runtime through
// github.com/yalue/onnxruntime_go. It is the only package in srtool that uses
// cgo; built with CGO_ENABLED=0 it keeps the same API and every constructor
// returns ErrUnavailable.
//
// The shared library (ONNX Runtime 1.30.x) is found by LibraryLookup:
// ONNXRUNTIME_SHARED_LIBRARY_PATH first, then the per-user cache that
// `make ort` fills ($XDG_CACHE_HOME/srtool or ~/.cache/srtool). Init loads it
// once per process; NewSession calls Init itself.
//
// Ownership: a Session owns its ONNX Runtime session and must be closed;
// Close is safe on nil, on a half-built value and twice. Inputs passed to Run
// are read, never kept or written; outputs are Go-owned slices that the
// caller owns. Tensors are float32 or int64, row-major.
//
// Devices: "cpu" (default) or "cuda[:N]" through ONNX Runtime's CUDA
// execution provider, which needs the GPU build of ONNX Runtime; with the CPU
// build NewSession fails with a *CUDAUnavailableError that says what to
// install.
//
// Files: init.go (loading the library, Init, Version), signals.go with
// signals.c/.h (the C guard that keeps Go's signal handlers working next
// to the CUDA execution provider), session.go (Session: NewSession,
// NewModelSession, Run, Preallocate, Close), value.go (Tensor ⇄ OrtValue
// conversion), tensor.go (Tensor, ValueInfo), options.go (Options),
// device.go (Device, CUDA provider options), modelinfo.go (a model's inputs
// and outputs, read with onnxio's protobuf types), forward.go (batched
// Forward and Stream), library.go (LibraryLookup), nocgo.go (the stub built
// without cgo).
//
// The package is a binding: it runs the graphs it is given and knows
// nothing of classifiers, losses or training. Package diffmodel builds the
// differentiable models (gradient and training graphs, their CPU lowering)
// on top of it; Options.StandardOpsOnly and Options.NoWorkers are read
// there, and NewSession ignores them.
//
// The package never prints: ONNX Runtime logs only fatal errors, and every
// error it reports comes back as a Go error.
package ort
