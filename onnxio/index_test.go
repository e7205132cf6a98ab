package onnxio

import (
	"testing"

	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// TestTopoMultiOutputProducer: a node reading two outputs of one producer
// must wait for every producer it reads (the nodes here are listed out of
// order on purpose).
func TestTopoMultiOutputProducer(t *testing.T) {
	node := func(name, op string, in, out []string) *onnxpb.NodeProto {
		return &onnxpb.NodeProto{Name: name, OpType: op, Input: in, Output: out}
	}
	g := &onnxpb.GraphProto{
		Input: []*onnxpb.ValueInfoProto{ValueInfo("x", Float, ShapeOf(4))},
		Node: []*onnxpb.NodeProto{
			node("concat", "Concat", []string{"a", "b", "c"}, []string{"y"}),
			node("split", "Split", []string{"x"}, []string{"a", "b"}),
			node("neg", "Neg", []string{"x2"}, []string{"c"}),
			node("relu", "Relu", []string{"x"}, []string{"x2"}),
		},
	}
	ix, err := NewIndex(g)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for k, i := range ix.Order {
		pos[g.Node[i].Name] = k
	}
	for _, n := range g.Node {
		for _, in := range n.Input {
			if p, ok := ix.Producer[in]; ok && pos[g.Node[p].Name] > pos[n.Name] {
				t.Errorf("order %v puts %s before %s, which produces its input %s", ix.Order, n.Name, g.Node[p].Name, in)
			}
		}
	}
	// A cycle is an error.
	g.Node[3].Input = []string{"y"}
	if _, err := NewIndex(g); err == nil {
		t.Errorf("cyclic graph accepted")
	}
}
