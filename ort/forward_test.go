//go:build cgo

package ort

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/semirobust/srtool/ort/internal/onnxtest"
)

func TestForward(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	w, b := randFloats(r, 3*4), randFloats(r, 4)
	s := newSession(t, onnxtest.Linear(w, b), Options{Threads: 1})
	const n = 10
	x := randFloats(r, n*3)
	var calls [][2]int
	out, shape, err := Forward(context.Background(), s, "X", "Y", x, []int{3}, 4, func(done, total int) {
		calls = append(calls, [2]int{done, total})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(shape) != 2 || shape[0] != n || shape[1] != 4 {
		t.Errorf("Forward shape = %v; want [10 4]", shape)
	}
	closeTo(t, "Forward", out, linearRef(x, w, b))
	if want := [][2]int{{4, 10}, {8, 10}, {10, 10}}; len(calls) != len(want) || calls[0] != want[0] || calls[1] != want[1] || calls[2] != want[2] {
		t.Errorf("progress calls = %v; want %v (batches 4, 4, 2)", calls, want)
	}
	// nil progress and one batch bigger than n.
	if out2, _, err := Forward(context.Background(), s, "X", "Y", x, []int{3}, 64, nil); err != nil {
		t.Fatal(err)
	} else {
		closeTo(t, "Forward(batch 64)", out2, out)
	}

	for name, f := range map[string]func() error{
		"batch 0": func() error { _, _, err := Forward(context.Background(), s, "X", "Y", x, []int{3}, 0, nil); return err },
		"ragged x": func() error {
			_, _, err := Forward(context.Background(), s, "X", "Y", x[:7], []int{3}, 4, nil)
			return err
		},
		"empty x": func() error {
			_, _, err := Forward(context.Background(), s, "X", "Y", nil, []int{3}, 4, nil)
			return err
		},
		"bad sample dim": func() error { _, _, err := Forward(context.Background(), s, "X", "Y", x, []int{0}, 4, nil); return err },
		"wrong input":    func() error { _, _, err := Forward(context.Background(), s, "Q", "Y", x, []int{3}, 4, nil); return err },
		"model rejects":  func() error { _, _, err := Forward(context.Background(), s, "X", "Y", x, []int{5}, 1, nil); return err },
		"closed session": func() error {
			_, _, err := Forward(context.Background(), &Session{}, "X", "Y", x, []int{3}, 4, nil)
			return err
		},
	} {
		if err := f(); err == nil {
			t.Errorf("Forward(%s) = nil error; want one", name)
		}
	}
}
