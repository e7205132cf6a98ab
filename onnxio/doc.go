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
// Nothing in this package prints, and nothing panics across its exported API.
package onnxio
