package analyzer

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

const sharedFixture = "../testdata/fixtures/attacks/fmnist_rn_w8_pgd.onnx"

// fixtures lists every model the tests split: the shared robust model and
// the six exports of testdata/models (gen_models.py).
func fixtures(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob("../testdata/models/*.onnx")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 6 {
		t.Fatalf("found %d fixture exports in testdata/models; want at least 6 (run testdata/gen_models.py)", len(paths))
	}
	return append(paths, sharedFixture)
}

func analyze(t *testing.T, path string) *Analysis {
	t.Helper()
	m, err := onnxio.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	an, err := Analyze(m)
	if err != nil {
		t.Fatalf("Analyze(%s): %v", path, err)
	}
	return an
}

func TestLayersSharedFixture(t *testing.T) {
	an := analyze(t, sharedFixture)
	// reference.json: "Small PGD-5-trained ResNet (13 weight layers, width 8)".
	if len(an.Layers) != 13 {
		t.Fatalf("%d weight layers; want 13", len(an.Layers))
	}
	first, last := an.Layers[0], an.Layers[12]
	if first.Op != "Conv" || first.Params[0] != "conv1.weight" || first.ParamCount != 8*1*3*3 {
		t.Errorf("layer 1 = %+v; want Conv conv1.weight with 72 parameters", first)
	}
	// MACs of a 3x3 conv 1→8 on 28×28 with padding 1: 28·28·8·9.
	if first.MACs != 28*28*8*9 {
		t.Errorf("layer 1 MACs = %d; want %d", first.MACs, 28*28*8*9)
	}
	if last.Op != "Gemm" || len(last.Params) != 2 || last.ParamCount != 64*10+10 || last.MACs != 640 {
		t.Errorf("layer 13 = %+v; want Gemm with weight+bias, 650 parameters, 640 MACs", last)
	}
	for i, l := range an.Layers {
		if l.Index != i+1 {
			t.Errorf("layer %d has index %d", i+1, l.Index)
		}
		if len(l.Shape) == 0 || l.Shape[0] != -1 {
			t.Errorf("layer %d output shape %v; want a symbolic batch first", l.Index, l.Shape)
		}
	}
}

func TestCutsSharedFixture(t *testing.T) {
	an := analyze(t, sharedFixture)
	// After layer 2 (first conv of the first block) the skip tensor crosses too.
	c, err := an.CutAfter(2)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tensors) != 2 {
		t.Errorf("cut after layer 2 has %d tensors %v; want 2 (block branch + skip)", len(c.Tensors), c.Tensors)
	}
	// After layer 3 the block is complete: a single tensor.
	c, err = an.CutAfter(3)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tensors) != 1 || c.Tensors[0].Name != "/layer1/layer1.0/Relu_1_output_0" {
		t.Errorf("cut after layer 3 = %v; want the block output only", c.Tensors)
	}
	k, _ := an.CutTail(10)
	if k.After != 3 {
		t.Errorf("CutTail(10).After = %d; want 3", k.After)
	}
	// A tensor-defined cut reproduces the layer cut.
	ct, err := an.CutAt([]string{"/layer1/layer1.0/Relu_1_output_0"})
	if err != nil || len(ct.Tensors) != 1 {
		t.Errorf("CutAt(block output) = %v, %v", ct, err)
	}
	// A tensor inside a block does not cut the graph alone.
	if _, err := an.CutAt([]string{"/layer1/layer1.0/Relu_output_0"}); err == nil || !strings.Contains(err.Error(), "tail also needs") {
		t.Errorf("CutAt(inside block) err = %v; want 'tail also needs'", err)
	}
	for _, bad := range []int{0, -1, 13, 14} {
		if _, err := an.CutAfter(bad); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("CutAfter(%d) err = %v; want out of range", bad, err)
		}
	}
	if _, err := an.CutAt([]string{"nope"}); err == nil {
		t.Errorf("CutAt(unknown tensor) accepted")
	}
}

func TestSplitEveryCutIsValid(t *testing.T) {
	for _, path := range fixtures(t) {
		an := analyze(t, path)
		for a := 1; a < len(an.Layers); a++ {
			c, err := an.CutAfter(a)
			if err != nil {
				t.Fatalf("%s: CutAfter(%d): %v", path, a, err)
			}
			head, tail, err := an.Split(c)
			if err != nil {
				t.Fatalf("%s: Split(%d): %v", path, a, err)
			}
			hl, err := Analyze(head)
			if err != nil {
				t.Fatalf("%s at %d: head: %v", path, a, err)
			}
			tl, err := Analyze(tail)
			if err != nil {
				t.Fatalf("%s at %d: tail: %v", path, a, err)
			}
			if len(hl.Layers) != a || len(tl.Layers) != len(an.Layers)-a {
				t.Errorf("%s at %d: head has %d layers, tail %d; want %d and %d", path, a, len(hl.Layers), len(tl.Layers), a, len(an.Layers)-a)
			}
			if head.Opset() != an.Model.Opset() || tail.Opset() != an.Model.Opset() {
				t.Errorf("%s at %d: opset changed", path, a)
			}
			// Initializers only where used.
			for _, sub := range []*onnxio.Model{head, tail} {
				used := map[string]bool{}
				for _, n := range sub.Graph().Node {
					for _, in := range n.Input {
						used[in] = true
					}
				}
				for _, init := range sub.Graph().Initializer {
					if !used[init.Name] {
						t.Errorf("%s at %d: unused initializer %q in %s", path, a, init.Name, sub.Graph().Name)
					}
				}
			}
			// Head outputs are exactly the tail inputs, by name.
			if len(head.Graph().Output) != len(c.Tensors) {
				t.Errorf("%s at %d: head has %d outputs for %d cut tensors", path, a, len(head.Graph().Output), len(c.Tensors))
			}
			for i, o := range head.Graph().Output {
				if tail.Graph().Input[i].Name != o.Name {
					t.Errorf("%s at %d: head output %q vs tail input %q", path, a, o.Name, tail.Graph().Input[i].Name)
				}
			}
		}
	}
}

func TestNoWeightLayer(t *testing.T) {
	g := &onnxpb.GraphProto{Input: []*onnxpb.ValueInfoProto{onnxio.ValueInfo("x", onnxio.Float, onnxio.ShapeOf(1, 4))}}
	y := onnxio.NewBuilder(g, "").Op1("Relu", []string{"x"})
	g.Output = []*onnxpb.ValueInfoProto{onnxio.ValueInfo(y, onnxio.Float, nil)}
	m := &onnxio.Model{Proto: &onnxpb.ModelProto{Graph: g, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}}}}
	if _, err := Analyze(m); !errors.Is(err, ErrNoWeightLayer) {
		t.Errorf("Analyze(relu only) err = %v; want ErrNoWeightLayer", err)
	}
}

func TestNormalizationRoundTrip(t *testing.T) {
	m, err := onnxio.Read(sharedFixture)
	if err != nil {
		t.Fatal(err)
	}
	n, err := PrependNormalization(m, []float32{0.5}, []float32{0.25})
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Graph().Node) != len(m.Graph().Node)+2 || len(n.Graph().Initializer) != len(m.Graph().Initializer)+2 {
		t.Errorf("normalisation added %d nodes and %d initializers; want 2 and 2", len(n.Graph().Node)-len(m.Graph().Node), len(n.Graph().Initializer)-len(m.Graph().Initializer))
	}
	back := StripNormalization(n)
	if err := back.Validate(); err != nil {
		t.Fatal(err)
	}
	a, _ := m.Encode()
	b, _ := back.Encode()
	if string(a) != string(b) {
		t.Errorf("StripNormalization(PrependNormalization(m)) differs from m")
	}
	if _, err := PrependNormalization(m, []float32{0.5, 0.5}, []float32{0.25}); err == nil {
		t.Errorf("mismatched mean/std accepted")
	}
	if _, err := PrependNormalization(m, []float32{0.5}, []float32{0}); err == nil {
		t.Errorf("zero std accepted")
	}
	if _, err := PrependNormalization(m, []float32{0.5, 0.5, 0.5}, []float32{1, 1, 1}); err == nil {
		t.Errorf("3-channel normalisation of a 1-channel model accepted")
	}
}
