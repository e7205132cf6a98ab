package attacks

import (
	"context"
	"testing"
)

func TestAdversarialAccuracy(t *testing.T) {
	ctx := context.Background()
	m := newMLP(3, 1, 4, 16, 4)
	x, y := data(m, 5, 40, 0, 1, 2, 3) // four points labelled wrong
	fgsm := &FGSM{Epsilon: 0.05}
	got, err := AdversarialAccuracy(ctx, m, x, y, fgsm, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Accuracy is exactly the model's accuracy on the returned examples.
	z, _ := m.Logits(ctx, got.Adv, len(y))
	correct := 0
	for i, p := range argmaxRows(z, m.NumClasses()) {
		if p == y[i] {
			correct++
		}
		if p != got.Pred[i] {
			t.Errorf("point %d: Pred %d, model says %d", i, got.Pred[i], p)
		}
	}
	if got.Correct != correct || got.N != 40 || got.Accuracy != percent(correct, 40) {
		t.Errorf("AdversarialAccuracy = %d/%d (%.2f%%); recount gives %d", got.Correct, got.N, got.Accuracy, correct)
	}
	// Every point the AutoAttack-style evaluation keeps robust is also
	// correct here (FGSM is deterministic), so this accuracy is never lower.
	ev, err := Evaluate(ctx, m, x, y, []Attack{fgsm}, EvalOptions{BatchSize: 16, SkipChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.Accuracy < ev.RobustAccuracy {
		t.Errorf("adversarial accuracy %.2f%% < Evaluate's robust accuracy %.2f%%", got.Accuracy, ev.RobustAccuracy)
	}
	if got.Counts.GradCalls != 3 { // 40 points in batches of 16: one gradient call per batch
		t.Errorf("gradient calls = %d; want 3", got.Counts.GradCalls)
	}
	if _, err := AdversarialAccuracy(ctx, m, x, y, nil, 0, nil); err == nil {
		t.Errorf("nil attack accepted")
	}
}
