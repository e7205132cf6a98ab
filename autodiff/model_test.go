package autodiff_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/semirobust/srtool/autodiff"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
	"github.com/semirobust/srtool/ort"
)

const fmnistModel = "../testdata/fixtures/attacks/fmnist_rn_w8_pgd.onnx"

// fmnistBatch returns the first n test images of the fmnist fixture in [0,1].
func fmnistBatch(t *testing.T, n int) ([]float32, []int64) {
	t.Helper()
	d, err := npy.ReadNPZ(filepath.Join(filepath.Dir(fmnistModel), "fmnist_test_5000_5300.npz"))
	if err != nil {
		t.Fatalf("fmnist fixture data: %v", err)
	}
	raw := d["x"].Float32()
	x := make([]float32, n*28*28)
	for i := range x {
		x[i] = raw[i] / 255
	}
	y, err := d["y"].Int64()
	if err != nil {
		t.Fatal(err)
	}
	return x, y[:n]
}

// TestOpset13 checks the opset-13 fixture (BN kept, Identity nodes of shared
// initializers): the opset is raised to 17 and the input and parameter
// gradients, with training-mode BN, match finite differences.
func TestOpset13(t *testing.T) {
	m, err := onnxio.Read(fmnistModel)
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	if m.Opset() != 13 {
		t.Fatalf("fixture opset %d; want 13", m.Opset())
	}
	x, y := fmnistBatch(t, 4)
	extra := map[string]ort.Tensor{"labels": i64([]int64{4}, y)}
	r := fdCheck(t, m, autodiff.Spec{}, x, []int64{4, 1, 28, 28}, nil, 1e-4, extra)
	if v := r.Model.Opset(); v != 17 {
		t.Errorf("gradient model opset %d; want 17", v)
	}
	if m.Opset() != 13 {
		t.Errorf("input model was modified: opset %d", m.Opset())
	}
	params := []string{"layer4.0.shortcut.1.bias", "layer4.0.bn2.bias", "linear.weight", "layer1.0.conv1.weight"}
	fdCheck(t, m, autodiff.Spec{TrainBN: autodiff.BatchNorms(m)}, x, []int64{4, 1, 28, 28}, params, 1e-4, extra)
}

// TestSharedInitializers checks that parameters the exporter deduplicated
// into Identity nodes are trained independently (fresh_tiny_train: e.g.
// layer1.0.bn2.weight = Identity(bn1.weight)).
func TestSharedInitializers(t *testing.T) {
	m := readModel(t, filepath.Join(modelsDir(), "fresh_tiny_train.onnx"))
	g := readGolden(t, "fresh_tiny")
	idOut := map[string]string{}
	for _, n := range m.Graph().GetNode() {
		if n.GetOpType() == "Identity" {
			idOut[n.GetOutput()[0]] = n.GetInput()[0]
		}
	}
	var shared []string
	ps := params(g)
	for _, p := range ps {
		if idOut[p] != "" {
			shared = append(shared, p)
		}
	}
	if len(shared) == 0 {
		t.Fatal("fixture has no deduplicated parameters")
	}
	r, err := autodiff.Gradient(m, autodiff.Spec{WrtParams: ps, TrainBN: autodiff.BatchNorms(m)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range shared {
		if r.Feeds[p] == nil {
			t.Errorf("no initial value for deduplicated parameter %s", p)
			continue
		}
		got, _ := onnxio.Float32s(r.Feeds[p])
		if e := relL2(got, g["param/"+p].Float32()); e != 0 {
			t.Errorf("initial value of %s differs from PyTorch's (rel err %.2e)", p, e)
		}
	}
	s := newSession(t, r.Model)
	yv, _ := g["y"].Int64()
	in := map[string]ort.Tensor{r.Input: tensorOf(t, g["x"]), r.Labels: i64([]int64{4}, yv)}
	addFeeds(t, in, r)
	outs := []string{r.Loss}
	asked := map[string]bool{}
	for _, p := range shared {
		for _, o := range []string{r.ParamGrads[p], r.ParamGrads[idOut[p]]} {
			if !asked[o] {
				asked[o] = true
				outs = append(outs, o)
			}
		}
	}
	out := run(t, s, in, outs...)
	for _, p := range shared {
		if relL2(out[r.ParamGrads[p]].Float32, out[r.ParamGrads[idOut[p]]].Float32) < 1e-3 {
			t.Errorf("gradient of %s equals that of %s, which it was deduplicated from", p, idOut[p])
		}
	}

	// The same on a small graph, against finite differences: two BNs whose
	// scales share one initializer through an Identity node.
	n := newNet(5, 3, 2, 3, 3)
	gamma := n.param("bn_a.weight", 0.3, 1, 2)
	n.g.Node = append(n.g.Node, &onnxpb.NodeProto{Name: "dedup", OpType: "Identity", Input: []string{gamma}, Output: []string{"bn_b.weight"}})
	beta := n.param("beta", 0.3, 0, 2)
	mean := n.b.ConstF("mean", []int64{2}, []float32{0.1, -0.2})
	vr := n.b.ConstF("var", []int64{2}, []float32{1.5, 0.7})
	a := n.op("BatchNormalization", []string{n.x, gamma, beta, mean, vr})
	b := n.op("BatchNormalization", []string{n.op("Tanh", []string{a}), "bn_b.weight", beta, mean, vr})
	sm := n.logits(t, n.op("Tanh", []string{b}), 3)
	x := randn(n.rng, 3*2*3*3, 1)
	for _, train := range []bool{false, true} {
		spec := autodiff.Spec{}
		if train {
			spec.TrainBN = autodiff.BatchNorms(sm)
		}
		fdCheck(t, sm, spec, x, []int64{3, 2, 3, 3}, []string{"bn_a.weight", "bn_b.weight", "beta"}, 1e-2, nil)
	}
}

func TestErrors(t *testing.T) {
	t.Run("unsupported op", func(t *testing.T) {
		n := newNet(1, 2, 4)
		m := n.logits(t, n.op("Erf", []string{n.x}), 3)
		_, err := autodiff.Gradient(m, autodiff.Spec{WrtInput: true})
		var e *autodiff.UnsupportedOpError
		if !errors.As(err, &e) || e.Op != "Erf" || e.Node == "" {
			t.Fatalf("err = %v; want *UnsupportedOpError for Erf", err)
		}
		if !strings.Contains(err.Error(), "Erf") || !strings.Contains(err.Error(), e.Node) || strings.Contains(err.Error(), "\n") {
			t.Errorf("message %q should name op and node on one line", err)
		}
		// Without a gradient request through Sin the model is fine.
		if _, err := autodiff.Gradient(m, autodiff.Spec{}); err != nil {
			t.Errorf("loss only: %v", err)
		}
	})
	t.Run("integer-only path", func(t *testing.T) {
		n := newNet(2, 2, 6)
		p := n.param("p", 1, 0, 2, 3)
		s := n.op("Shape", []string{p}) // p only decides a shape
		target := n.op("Concat", []string{n.b.Ints1(-1), n.op("Slice", []string{s, n.b.Ints1(1), n.b.Ints1(2)})}, a1("axis", 0))
		y := n.op("Reshape", []string{n.x, target})
		_, err := autodiff.Gradient(n.logits(t, y, 3), autodiff.Spec{WrtParams: []string{p}})
		var e *autodiff.NoPathError
		if !errors.As(err, &e) || e.Wrt != "p" {
			t.Fatalf("err = %v; want *NoPathError for p", err)
		}
	})
	t.Run("unknown wrt name", func(t *testing.T) {
		n := newNet(3, 2, 4)
		m := n.logits(t, n.op("Tanh", []string{n.x}), 3)
		for _, spec := range []autodiff.Spec{
			{WrtParams: []string{"no.such.weight"}},
			{TrainBN: []string{"no-such-bn"}},
			{Output: "nothing"},
		} {
			_, err := autodiff.Gradient(m, spec)
			var e *autodiff.UnknownTensorError
			if !errors.As(err, &e) {
				t.Errorf("Gradient(%+v) err = %v; want *UnknownTensorError", spec, err)
			}
		}
	})
	t.Run("old opset", func(t *testing.T) {
		n := newNet(4, 2, 4)
		m := n.logits(t, n.op("Tanh", []string{n.x}), 3)
		m.Proto.OpsetImport = []*onnxpb.OperatorSetIdProto{{Version: 11}}
		_, err := autodiff.Gradient(m, autodiff.Spec{WrtInput: true})
		var e *autodiff.OpsetError
		if !errors.As(err, &e) {
			t.Errorf("err = %v; want *OpsetError", err)
		}
	})
}
