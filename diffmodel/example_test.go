//go:build cgo

package diffmodel_test

import (
	"context"
	"fmt"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// A Classifier gives an attack the per-sample loss and its input gradient.
func ExampleClassifier() {
	m, err := onnxio.Read("../testdata/models/resnet10_cifar_eval.onnx")
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := diffmodel.NewClassifier(m, ort.Options{Threads: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	const n = 2
	x := make([]float32, n*3*32*32) // two black images, pixels in [0,1]
	loss, grad, logits, err := c.LossGrad(context.Background(), x, n, attacks.Loss{Kind: attacks.CrossEntropy, Labels: []int64{3, 5}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.InputShape(), c.NumClasses(), len(loss), len(grad), len(logits))
	// Output: [3 32 32] 10 2 6144 20
}
