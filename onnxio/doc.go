// Package onnxio reads, writes, indexes, builds and shape-checks ONNX models.
//
// A Model wraps the protobuf ModelProto of package onnxpb (generated from
// ONNX 1.12.0's onnx.proto3) together with the folder it came from, so that
// external-data tensors can be resolved. Reading validates the graph: every
// node input must be a graph input, an initializer or another node's output,
// the default-domain opset must be one srtool supports, and external-data
// locations must stay inside the model's folder.
//
// Tensors are decoded to float32 or int64 regardless of how they are stored
// (float_data, int64_data, int32_data, double_data, raw_data little-endian,
// float16, external files). Shapes are []Dim where a Dim is either a fixed
// size or a named symbol such as the dynamic batch dimension "batch".
//
// Hostile files: every size, offset and length taken from a model is checked,
// overflow-safe, against the real size of its file before memory is
// allocated, and the external-data tensors of one file may not claim more
// bytes in all than it holds. Inputs must be regular files (OpenRegular,
// ReadRegular): a named pipe, device, socket or folder is refused with
// ErrNotRegular instead of hanging or reading without end. The other
// readers of srtool (npy, dataset, checkpoint) open their files the same way.
//
// Write is atomic (internal/atomicfile): a temporary file
// ".NAME.srtool-tmp-PID-RANDOM" beside the output, synced, then renamed. A
// kill before the rename leaves that file; the next atomic write of NAME
// removes the ones whose process is gone.
//
// Nothing in this package prints, and nothing panics across its exported API.
package onnxio
