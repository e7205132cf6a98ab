//go:build cgo

package diffmodel

import (
	"context"
	"math"
	"testing"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// TestAttacksMatchPyTorch runs srtool's FGSM and PGD (no random start)
// through the ONNX Runtime classifier and compares the adversarial examples
// with PyTorch's (testdata/gen_attacks.py), in both export flavours.
// A coordinate can differ by a whole step where the gradient is within
// float rounding of zero (its sign flips); those must be rare.
func TestAttacksMatchPyTorch(t *testing.T) {
	ref, err := npy.ReadNPZ("../testdata/models/resnet10_cifar_attacks.npz")
	if err != nil {
		t.Fatal(err)
	}
	x := ref["x"].Float32()
	y, _ := ref["y"].Int64()
	for _, flavour := range []string{"eval", "train"} {
		m, err := onnxio.Read("../testdata/models/resnet10_cifar_" + flavour + ".onnx")
		if err != nil {
			t.Fatal(err)
		}
		c, err := NewClassifier(m, ort.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			a    attacks.Attack
		}{
			{"fgsm", &attacks.FGSM{Epsilon: 8.0 / 255}},
			{"pgd", &attacks.PGD{Epsilon: 8.0 / 255, StepSize: 2.0 / 255, Steps: 10, NoRandomStart: true}},
		} {
			r, err := tc.a.Run(context.Background(), c, x, y)
			if err != nil {
				t.Fatal(err)
			}
			want := ref[tc.name].Float32()
			flipped := 0
			for i := range want {
				if math.Abs(float64(r.Adv[i]-want[i])) > 1e-6 {
					flipped++
				}
			}
			if frac := float64(flipped) / float64(len(want)); frac > 1e-3 {
				t.Errorf("%s (%s export): %d of %d coordinates differ from PyTorch's by more than 1e-6", tc.name, flavour, flipped, len(want))
			} else {
				t.Logf("%s (%s export): %d of %d coordinates differ from PyTorch's", tc.name, flavour, flipped, len(want))
			}
		}
		c.Close()
	}
}
