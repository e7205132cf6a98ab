//go:build cgo

package ort_test

import (
	"context"
	"fmt"

	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/ort/internal/onnxtest"
)

func ExampleNewSession() {
	// Y = Relu(X·W + B) with W = [1, -1]ᵀ and B = 0.5; X has a dynamic batch.
	model := onnxtest.Linear([]float32{1, -1}, []float32{0.5}).Marshal()
	s, err := ort.NewSession(model, ort.Options{Threads: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	out, err := s.Run(context.Background(), map[string]ort.Tensor{
		"X": {Shape: []int64{2, 2}, Float32: []float32{1, 2, 3, 1}},
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.InputNames(), s.OutputNames(), out["Y"].Shape, out["Y"].Float32)
	// Output: [X] [Y] [2 1] [0 2.5]
}

func ExampleForward() {
	model := onnxtest.Linear([]float32{2}, []float32{0}).Marshal() // Y = Relu(2X)
	s, err := ort.NewSession(model, ort.Options{Threads: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	x := []float32{1, -1, 2, 3, 4} // five samples of shape [1]
	y, shape, err := ort.Forward(context.Background(), s, "X", "Y", x, []int{1}, 2, func(done, total int) {
		fmt.Printf("%d/%d ", done, total)
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(shape, y)
	// Output: 2/5 4/5 5/5 [5 1] [2 0 4 6 8]
}
