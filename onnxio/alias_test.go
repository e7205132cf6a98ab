package onnxio

import (
	"maps"
	"testing"

	"github.com/semirobust/srtool/onnxio/onnxpb"
)

func TestInitializerAliases(t *testing.T) {
	id := func(in, out string) *onnxpb.NodeProto {
		return &onnxpb.NodeProto{OpType: "Identity", Input: []string{in}, Output: []string{out}}
	}
	g := &onnxpb.GraphProto{
		Initializer: []*onnxpb.TensorProto{{Name: "onnx::W"}, {Name: "bias"}},
		Input:       []*onnxpb.ValueInfoProto{{Name: "x"}},
		Node: []*onnxpb.NodeProto{
			id("a", "b"),          // a chain listed out of order
			id("onnx::W", "a"),    // the exporter's tie
			id("x", "y"),          // a copy of an input, no parameter
			id("p", "q"),          // a cycle (invalid graph): no answer, no hang
			id("q", "p"),          //
			id("bias", "onnx::W"), // an output that is an initializer itself is no alias
			{OpType: "Relu", Input: []string{"bias"}, Output: []string{"r"}},
		},
	}
	got := InitializerAliases(g)
	want := map[string]string{"a": "onnx::W", "b": "onnx::W"}
	if !maps.Equal(got, want) {
		t.Errorf("InitializerAliases = %v; want %v", got, want)
	}
	g.Node = g.Node[:3] // an index needs an acyclic graph with single producers
	ix, err := NewIndex(g)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"b": "onnx::W", "onnx::W": "onnx::W", "bias": "bias", "y": "", "x": ""} {
		if got, ok := ix.InitializerOf(name); got != want || ok != (want != "") {
			t.Errorf("InitializerOf(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
}
