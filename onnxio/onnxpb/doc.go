// Package onnxpb holds the ONNX protobuf types, generated with protoc-gen-go
// from onnx.proto3 of ONNX release 1.12.0 (IR version 8), as produced by that
// release's own gen_proto.py from onnx.in.proto (Debian's libonnx-dev /
// python3-onnx 1.12.0 ship both files).
//
// protobuf-go keeps unknown fields, so models written by newer exporters (IR 9
// and later) round-trip through these types without losing fields.
package onnxpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go_opt=Monnx.proto3=github.com/semirobust/srtool/onnxio/onnxpb onnx.proto3
