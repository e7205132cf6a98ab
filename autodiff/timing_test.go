package autodiff_test

import (
	"github.com/semirobust/srtool/autodiff"
	"path/filepath"
	"testing"
	"time"

	"github.com/semirobust/srtool/ort"
)

func TestTimingTmp(t *testing.T) {
	g := readGolden(t, "resnet10_cifar")
	m := readModel(t, filepath.Join(modelsDir(), "resnet10_cifar_train.onnx"))
	ps := params(g)
	t0 := time.Now()
	r, err := autodiff.Gradient(m, autodiff.Spec{WrtParams: ps, TrainBN: autodiff.BatchNorms(m)})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("gradient", time.Since(t0), len(r.Model.Graph().GetNode()))
	t0 = time.Now()
	s := newSession(t, r.Model)
	t.Log("session", time.Since(t0))
	in := map[string]ort.Tensor{r.Input: tensorOf(t, g["train_x"]), r.Labels: tensorOf(t, g["train_y"])}
	addFeeds(t, in, r)
	for i := 0; i < 3; i++ {
		t0 = time.Now()
		run(t, s, in, r.Loss)
		t.Log("run", time.Since(t0))
	}
}
