//go:build cgo

package diffmodel

import (
	"context"
	"testing"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// TestClassifierMatchesPyTorch checks logits and the input gradient of the
// cross-entropy (per-sample, summed) against PyTorch's golden values.
func TestClassifierMatchesPyTorch(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"resnet10_cifar_eval", "resnet10_cifar_train", "wrn16_1_train", "resnet10_imagenet_eval"} {
		m, err := onnxio.Read("../testdata/models/" + name + ".onnx")
		if err != nil {
			t.Fatal(err)
		}
		base := name[:len(name)-len("_eval")]
		if name[len(name)-6:] == "_train" {
			base = name[:len(name)-len("_train")]
		}
		g, err := npy.ReadNPZ("../testdata/models/" + base + "_golden.npz")
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewClassifier(m, ort.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		x := g["x"].Float32()
		y, _ := g["y"].Int64()
		n := len(y)
		z, err := c.Logits(ctx, x, n)
		if err != nil {
			t.Fatal(err)
		}
		if e := relL2(z, g["logits"].Float32()); e > 1e-5 {
			t.Errorf("%s: logits differ from PyTorch's by %.2g (relative L2)", name, e)
		}
		_, grad, _, err := c.LossGrad(ctx, x, n, attacks.Loss{Kind: attacks.CrossEntropy, Labels: y})
		if err != nil {
			t.Fatal(err)
		}
		// PyTorch's golden gradient is of the batch mean: scale ours by 1/n.
		want := g["grad_input_ce"].Float32()
		for i := range grad {
			grad[i] /= float32(n)
		}
		if e := relL2(grad, want); e > 1e-4 {
			t.Errorf("%s: input gradient differs from PyTorch's by %.2g (relative L2)", name, e)
		}
		c.Close()
		c.Close()
	}
}

// TestClassifierParams checks that SetParams changes what the model
// computes, for logits and gradients, without new sessions.
func TestClassifierParams(t *testing.T) {
	ctx := context.Background()
	m, err := onnxio.Read("../testdata/models/resnet10_cifar_train.onnx")
	if err != nil {
		t.Fatal(err)
	}
	g, _ := npy.ReadNPZ("../testdata/models/resnet10_cifar_golden.npz")
	x := g["x"].Float32()
	y, _ := g["y"].Int64()
	c, err := NewClassifierWithParams(m, ort.Options{Threads: 1}, []string{"linear.weight", "linear.bias"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	z0, err := c.Logits(ctx, x, len(y))
	if err != nil {
		t.Fatal(err)
	}
	if e := relL2(z0, g["logits"].Float32()); e > 1e-5 {
		t.Errorf("default parameters: logits differ from PyTorch's by %.2g", e)
	}
	// Zero weights and a bias of 0..9: every row of logits becomes the bias.
	bias := []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	if err := c.SetParams(map[string][]float32{"linear.weight": make([]float32, 640), "linear.bias": bias}); err != nil {
		t.Fatal(err)
	}
	z, err := c.Logits(ctx, x, len(y))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range z {
		if v != bias[i%10] {
			t.Fatalf("logit %d = %v; want the bias %v", i, v, bias[i%10])
		}
	}
	_, grad, _, err := c.LossGrad(ctx, x, len(y), attacks.Loss{Kind: attacks.CrossEntropy, Labels: y})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range grad {
		if v != 0 {
			t.Fatalf("input gradient %d = %v with a zero last layer; want 0", i, v)
		}
	}
	if err := c.SetParams(map[string][]float32{"conv1.weight": nil}); err == nil {
		t.Errorf("SetParams accepted a parameter that is not overridable")
	}
	if err := c.SetParams(map[string][]float32{"linear.bias": {1}}); err == nil {
		t.Errorf("SetParams accepted a wrongly sized tensor")
	}
}

// TestClassifierFedConvWeights overrides convolution weights, which lowered
// sessions feed to the NCHWc kernels as blocked copies computed once per
// SetParams: a second SetParams with the same slices, changed in place,
// must give the new values' logits and gradients, as a fresh classifier
// does.
func TestClassifierFedConvWeights(t *testing.T) {
	ctx := context.Background()
	m, err := onnxio.Read("../testdata/models/resnet10_cifar_train.onnx")
	if err != nil {
		t.Fatal(err)
	}
	g, _ := npy.ReadNPZ("../testdata/models/resnet10_cifar_golden.npz")
	x := g["x"].Float32()
	y, _ := g["y"].Int64()
	names := []string{"layer3.0.conv2.weight", "layer4.0.conv1.weight", "layer4.0.conv2.weight"}
	c, err := NewClassifierWithParams(m, ort.Options{Threads: 1}, names)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if bs, _ := NCHWcBlockSize(); bs > 0 && len(c.logits.derived) == 0 {
		t.Fatal("no convolution of the logits session was moved to the NCHWc kernels")
	}
	z0, err := c.Logits(ctx, x, len(y))
	if err != nil {
		t.Fatal(err)
	}
	if e := relL2(z0, g["logits"].Float32()); e > 1e-5 {
		t.Errorf("default parameters: logits differ from PyTorch's by %.2g", e)
	}
	params := map[string][]float32{}
	for _, n := range names {
		v, _ := onnxio.Float32s(m.Initializer(n))
		params[n] = append([]float32(nil), v...)
	}
	if err := c.SetParams(params); err != nil {
		t.Fatal(err)
	}
	loss := attacks.Loss{Kind: attacks.CrossEntropy, Labels: y}
	_, g0, _, err := c.LossGrad(ctx, x, len(y), loss)
	if err != nil {
		t.Fatal(err)
	}
	// Change the same slices in place, then SetParams again.
	for _, v := range params {
		for i := range v {
			v[i] *= -0.5
		}
	}
	if err := c.SetParams(params); err != nil {
		t.Fatal(err)
	}
	z1, err := c.Logits(ctx, x, len(y))
	if err != nil {
		t.Fatal(err)
	}
	_, g1, _, err := c.LossGrad(ctx, x, len(y), loss)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := NewClassifierWithParams(m, ort.Options{Threads: 1, StandardOpsOnly: true}, names)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if err := fresh.SetParams(params); err != nil {
		t.Fatal(err)
	}
	zf, err := fresh.Logits(ctx, x, len(y))
	if err != nil {
		t.Fatal(err)
	}
	_, gf, _, err := fresh.LossGrad(ctx, x, len(y), loss)
	if err != nil {
		t.Fatal(err)
	}
	if e := relL2(z1, zf); e > 1e-5 {
		t.Errorf("logits after changing the weights in place: relative L2 %.2g from a fresh standard-op classifier", e)
	}
	if e := relL2(g1, gf); e > 1e-4 {
		t.Errorf("input gradient after changing the weights in place: relative L2 %.2g from a fresh standard-op classifier", e)
	}
	if relL2(z1, z0) < 1e-2 || relL2(g1, g0) < 1e-2 {
		t.Fatal("changing the weights did not change logits and gradients: the test proves nothing")
	}
}
