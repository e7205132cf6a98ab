package hessian

import (
	"strings"
	"testing"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

func TestFreezeGates(t *testing.T) {
	for _, name := range []string{"fresh_tiny_train", "resnet10_cifar_train", "wrn16_1_train"} {
		m, err := onnxio.Read("../testdata/models/" + name + ".onnx")
		if err != nil {
			t.Fatal(err)
		}
		relus := map[string]bool{}
		for _, n := range m.Graph().GetNode() {
			if n.GetOpType() == "Relu" {
				relus[n.GetName()] = true
			}
		}
		out, n, err := FreezeGates(m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n != len(relus) || n == 0 {
			t.Errorf("%s: %d gates; the model has %d Relus", name, n, len(relus))
		}
		if err := out.Validate(); err != nil {
			t.Errorf("%s: the rewritten model is not valid: %v", name, err)
		}
		var mul, refRelu int
		for _, nd := range out.Graph().GetNode() {
			switch {
			case relus[nd.GetName()]:
				if nd.GetOpType() != "Mul" {
					t.Errorf("%s: node %s is %s; want the gate's Mul", name, nd.GetName(), nd.GetOpType())
				}
				mul++
			case nd.GetOpType() == "Relu":
				if !strings.HasPrefix(nd.GetName(), "gate/ref/") {
					t.Errorf("%s: Relu %s outside the frozen copy", name, nd.GetName())
				}
				refRelu++
			}
		}
		if mul != n {
			t.Errorf("%s: %d gate multiplications for %d gates", name, mul, n)
		}
		// The last gate's input needs every earlier gate in the copy.
		if refRelu < n-1 {
			t.Errorf("%s: %d Relus in the frozen copy; want ≥ %d", name, refRelu, n-1)
		}
		// Inputs, outputs and the parameters' names stay m's.
		if got, want := names(out.Graph().GetInput()), names(m.Graph().GetInput()); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: inputs %v; want %v", name, got, want)
		}
		if got, want := names(out.Graph().GetOutput()), names(m.Graph().GetOutput()); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: outputs %v; want %v", name, got, want)
		}
		for _, init := range m.Graph().GetInitializer() {
			if out.Initializer(init.GetName()) == nil {
				t.Errorf("%s: initializer %s lost", name, init.GetName())
			}
		}
		// m itself is untouched.
		for _, nd := range m.Graph().GetNode() {
			if relus[nd.GetName()] && nd.GetOpType() != "Relu" {
				t.Fatalf("%s: FreezeGates changed its argument", name)
			}
		}
	}
	if _, _, err := FreezeGates(nil); err == nil {
		t.Errorf("FreezeGates(nil): no error")
	}
}

func TestFreezeGatesLeakyAndNone(t *testing.T) {
	g := &onnxpb.GraphProto{
		Input:       []*onnxpb.ValueInfoProto{onnxio.ValueInfo("x", onnxio.Float, onnxio.Shape{onnxio.Sym("batch"), onnxio.D(2)})},
		Output:      []*onnxpb.ValueInfoProto{onnxio.ValueInfo("z", onnxio.Float, nil)},
		Initializer: []*onnxpb.TensorProto{onnxio.FloatTensor("w", []int64{2, 2}, []float32{1, 2, 3, 4})},
		Node: []*onnxpb.NodeProto{
			{Name: "mm", OpType: "MatMul", Input: []string{"x", "w"}, Output: []string{"h"}},
			{Name: "act", OpType: "LeakyRelu", Input: []string{"h"}, Output: []string{"z"}, Attribute: []*onnxpb.AttributeProto{onnxio.AttrFloat("alpha", 0.2)}},
		},
	}
	m := &onnxio.Model{Proto: &onnxpb.ModelProto{Graph: g, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}}}}
	out, n, err := FreezeGates(m)
	if err != nil || n != 1 {
		t.Fatalf("FreezeGates = %d gates, %v", n, err)
	}
	if err := out.Validate(); err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, nd := range out.Graph().GetNode() {
		ops[nd.GetOpType()]++
	}
	// Copy MatMul; Greater, Cast, Mul·(1−α), Add α; the model's MatMul and gate Mul.
	if ops["MatMul"] != 2 || ops["Greater"] != 1 || ops["Cast"] != 1 || ops["Add"] != 1 || ops["Mul"] != 2 || ops["LeakyRelu"] != 0 {
		t.Errorf("ops %v", ops)
	}
	g.Node = g.Node[:1]
	g.Output[0].Name = "h"
	out, n, err = FreezeGates(m)
	if err != nil || n != 0 || len(out.Graph().GetNode()) != 1 {
		t.Errorf("no gates: %d gates, %d nodes, %v", n, len(out.Graph().GetNode()), err)
	}
}

func names(vs []*onnxpb.ValueInfoProto) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.GetName())
	}
	return out
}
