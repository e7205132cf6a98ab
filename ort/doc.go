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
// CPU lowering: the graphs that Classifier and Trainer build are written in
// standard ONNX ops (package autodiff). On the CPU they are first handed to
// ort/internal/nchwc, which moves convolutions whose weights are fed at run
// time to ONNX Runtime's NCHWc kernels (ONNX Runtime only uses them for
// constant weights). The blocked weights are computed from the fed ones on
// every step of a Trainer (which updates its parameters in place) and once
// per SetParams of a Classifier. Options.StandardOpsOnly turns this off;
// CUDA sessions always run the standard ops. NewSession itself runs the
// bytes it is given unchanged.
//
// The package never prints: ONNX Runtime logs only fatal errors, and every
// error it reports comes back as a Go error.
package ort
