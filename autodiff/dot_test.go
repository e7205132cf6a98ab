package autodiff_test

import (
	"math"
	"testing"

	"github.com/semirobust/srtool/autodiff"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// TestDotHeadIsAVJP: with the upstream gradient g = softmax(z) − onehot(y),
// the Dot head's input and parameter gradients (sum reduction) equal the
// summed cross-entropy's.
func TestDotHeadIsAVJP(t *testing.T) {
	needORT(t)
	m, err := onnxio.Read("../testdata/models/resnet10_cifar_train.onnx")
	if err != nil {
		t.Fatal(err)
	}
	gold, err := npy.ReadNPZ("../testdata/models/resnet10_cifar_golden.npz")
	if err != nil {
		t.Fatal(err)
	}
	x := gold["x"].Float32()
	y, _ := gold["y"].Int64()
	n := int64(len(y))
	shape := []int64{n, 3, 32, 32}
	params := []string{"conv1.weight", "layer4.0.conv2.weight", "linear.weight"}
	ce, err := autodiff.Gradient(m, autodiff.Spec{Reduction: autodiff.Sum, WrtInput: true, WrtParams: params})
	if err != nil {
		t.Fatal(err)
	}
	dot, err := autodiff.Gradient(m, autodiff.Spec{Loss: autodiff.Dot, Reduction: autodiff.Sum, WrtInput: true, WrtParams: params})
	if err != nil {
		t.Fatal(err)
	}
	if dot.TargetProbs == "" || dot.Labels != "" {
		t.Fatalf("Dot head inputs: upstream %q, labels %q", dot.TargetProbs, dot.Labels)
	}
	in := map[string]ort.Tensor{ce.Input: f32(shape, x), ce.Labels: i64([]int64{n}, y)}
	addFeeds(t, in, ce)
	outs := []string{ce.Logits, ce.InputGrad}
	for _, p := range params {
		outs = append(outs, ce.ParamGrads[p])
	}
	want := run(t, newSession(t, ce.Model), in, outs...)
	z := want[ce.Logits].Float32
	k := len(z) / int(n)
	g := make([]float32, len(z))
	for i := 0; i < int(n); i++ {
		row := z[i*k : (i+1)*k]
		mx := row[0]
		for _, v := range row {
			mx = max(mx, v)
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v - mx))
		}
		for j, v := range row {
			g[i*k+j] = float32(math.Exp(float64(v-mx)) / sum)
		}
		g[i*k+int(y[i])] -= 1
	}
	din := map[string]ort.Tensor{dot.Input: f32(shape, x), dot.TargetProbs: f32([]int64{n, int64(k)}, g)}
	addFeeds(t, din, dot)
	douts := []string{dot.InputGrad}
	for _, p := range params {
		douts = append(douts, dot.ParamGrads[p])
	}
	got := run(t, newSession(t, dot.Model), din, douts...)
	if e := relL2(got[dot.InputGrad].Float32, want[ce.InputGrad].Float32); e > 1e-5 {
		t.Errorf("input gradient: relative L2 error %.2g between the Dot head and cross-entropy", e)
	}
	for _, p := range params {
		if e := relL2(got[dot.ParamGrads[p]].Float32, want[ce.ParamGrads[p]].Float32); e > 1e-5 {
			t.Errorf("%s gradient: relative L2 error %.2g between the Dot head and cross-entropy", p, e)
		}
	}
}
