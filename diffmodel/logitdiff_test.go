//go:build cgo

package diffmodel

import (
	"context"
	"math"
	"testing"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// TestLogitDiffHead checks the LogitDiff head (z_t − z_y, which FAB-T
// follows) against the cross-entropy head: its loss is the difference of the
// logits, and its gradient ∇z_t − ∇z_y equals ∇CE(y) − ∇CE(t).
func TestLogitDiffHead(t *testing.T) {
	m, err := onnxio.Read("../testdata/models/resnet10_cifar_eval.onnx")
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClassifier(m, ort.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 5
	d, k := c.sampleSize(), c.NumClasses()
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32((i*7919)%256) / 255
	}
	y := []int64{0, 3, 9, 4, 4}
	tg := []int64{1, 2, 0, 9, 4} // the last: t = y, loss and gradient 0
	ctx := context.Background()
	ls, g, z, err := c.LossGrad(ctx, x, n, attacks.Loss{Kind: attacks.LogitDiff, Labels: y, Targets: tg})
	if err != nil {
		t.Fatal(err)
	}
	_, gy, _, err := c.LossGrad(ctx, x, n, attacks.Loss{Kind: attacks.CrossEntropy, Labels: y})
	if err != nil {
		t.Fatal(err)
	}
	_, gt, _, err := c.LossGrad(ctx, x, n, attacks.Loss{Kind: attacks.CrossEntropy, Labels: tg})
	if err != nil {
		t.Fatal(err)
	}
	scale := 0.0
	for _, v := range g {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	if scale == 0 {
		t.Fatal("all-zero gradient")
	}
	for j := range n {
		if want := z[j*k+int(tg[j])] - z[j*k+int(y[j])]; math.Abs(float64(ls[j]-want)) > 1e-5 {
			t.Errorf("sample %d: loss %g; want z_t − z_y = %g", j, ls[j], want)
		}
		for i := j * d; i < (j+1)*d; i++ {
			if want := gy[i] - gt[i]; math.Abs(float64(g[i]-want)) > 1e-5*scale {
				t.Fatalf("sample %d, input %d: gradient %g; want ∇CE(y) − ∇CE(t) = %g", j, i-j*d, g[i], want)
			}
		}
	}
	if _, _, _, err := c.LossGrad(ctx, x, n, attacks.Loss{Kind: attacks.LogitDiff, Labels: y}); err == nil {
		t.Error("LogitDiff without targets: no error")
	}
}
