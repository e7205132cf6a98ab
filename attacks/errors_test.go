package attacks

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestErrors(t *testing.T) {
	mlp := newMLP(1, 1, 3, 4, 10)
	x, y := data(mlp, 1, 2)
	bin, xb := binaryLinear(1, 1)
	three := newMLP(1, 1, 3, 4, 3)
	x3, y3 := data(three, 1, 2)
	cases := []struct {
		name string
		m    Model
		a    Attack
		x    []float32
		y    []int64
		want string
	}{
		{"negative eps", mlp, &PGD{Epsilon: -0.1}, x, y, "epsilon"},
		{"Linf eps > 1", mlp, &APGD{Epsilon: 8}, x, y, "larger than 1"},
		{"label out of range", mlp, &FGSM{}, x, []int64{0, 10}, "out of range"},
		{"negative label", mlp, &Square{Queries: 5}, x, []int64{-1, 0}, "out of range"},
		{"input outside box", mlp, &FGSM{}, append([]float32{2}, x[1:]...), y, "outside [0,1]"},
		{"length mismatch", mlp, &FGSM{}, x[:5], y, "values"},
		{"DLR on 2 classes", bin, &APGD{Loss: DLR}, xb, []int64{0}, "at least 3 classes"},
		{"targeted DLR on 3 classes", three, &APGDT{}, x3, y3, "at least 4 classes"},
		{"AutoAttack on 3 classes", three, &AutoAttack{}, x3, y3, "at least 4 classes"},
		{"no gradients", logitsOnly{mlp}, &PGD{}, x, y, "no gradients"},
		{"APGD L1", mlp, &APGD{Norm: L1}, x, y, "not implemented"},
		{"unknown AutoAttack version", mlp, &AutoAttack{Version: "turbo"}, x, y, "unknown version"},
		{"unknown custom attack", mlp, &AutoAttack{Version: "custom", Attacks: []string{"deepfool"}}, x, y, "unknown attack"},
		{"unknown norm", mlp, &PGD{Norm: "L7"}, x, y, "unknown norm"},
		{"NaN gradient breaks the box", nanGrad{mlp}, &PGD{Norm: L2}, x, y, "invariant violated"},
	}
	for _, c := range cases {
		_, err := c.a.Run(bg, c.m, c.x, c.y)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v; want an error containing %q", c.name, err, c.want)
		}
	}
	if _, err := Evaluate(bg, three, x3, y3, []Attack{&AutoAttack{}}, EvalOptions{}); err == nil || !strings.Contains(err.Error(), "at least 4") {
		t.Errorf("Evaluate AutoAttack on 3 classes: err = %v; want a class-count error before any attack runs", err)
	}
	// Logits-only models still work with the black-box attack.
	if _, err := (&Square{Queries: 10}).Run(bg, logitsOnly{mlp}, x, y); err != nil {
		t.Errorf("Square on a logits-only model: %v", err)
	}
	// A cancelled context stops an attack.
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := (&APGD{}).Run(ctx, mlp, x, y); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled APGD: err = %v; want context.Canceled", err)
	}
}

func TestOptionsJSON(t *testing.T) {
	in := []Attack{&PGD{Epsilon: 0.5, Norm: L2, Loss: CWMargin, Kappa: 5, Best: true, Seed: 3},
		&APGD{Loss: DLR, Restarts: 5}, &AutoAttack{Version: "custom", Attacks: []string{"square"}}, &CW{BinarySearchSteps: 9}}
	for _, a := range in {
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		out := reflect.New(reflect.TypeOf(a).Elem()).Interface().(Attack)
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(a, out) {
			t.Errorf("JSON round trip of %s: got %+v; want %+v", b, out, a)
		}
	}
	var k LossKind
	if err := k.UnmarshalText([]byte("hinge")); err == nil {
		t.Errorf("LossKind.UnmarshalText(hinge): no error")
	}
}
