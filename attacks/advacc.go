package attacks

import (
	"context"
	"fmt"
)

// AdvAccuracy is the result of AdversarialAccuracy.
type AdvAccuracy struct {
	Name string `json:"name"`
	// Setting is what the attack ran with, every default resolved.
	Setting Setting `json:"settings"`
	// Accuracy is the percentage of all points the model classifies
	// correctly at the attack's output.
	Accuracy float64 `json:"accuracy"`
	Correct  int     `json:"correct"`
	N        int     `json:"n"`
	Counts   Counts  `json:"counts"`
	// Adv holds the attack's output for every point (N×d).
	Adv []float32 `json:"-"`
	// Pred holds the model's prediction at Adv.
	Pred []int64 `json:"-"`
}

// AdversarialAccuracy runs one attack on every point, including those the
// model already misclassifies, and reports the accuracy on the adversarial
// examples — the convention of torchattacks and of hand-written PyTorch
// evaluation loops (`(model(atk(x, y)).argmax(1) == y).mean()`). Unlike
// Evaluate's AutoAttack convention, a misclassified point that the attack
// happens to move back across the boundary counts as correct. batchSize ≤ 0
// means 250; progress (may be nil) gets finished and total points.
func AdversarialAccuracy(ctx context.Context, m Model, x []float32, y []int64, a Attack, batchSize int, progress func(done, total int)) (*AdvAccuracy, error) {
	if a == nil {
		return nil, fmt.Errorf("adversarial accuracy: nil attack")
	}
	e, n, err := begin("adversarial accuracy", m, false, x, y)
	if err != nil {
		return nil, err
	}
	if batchSize <= 0 {
		batchSize = 250
	}
	d := e.d
	out := &AdvAccuracy{Name: a.Name(), Setting: SettingOf(a, e.k), N: n, Adv: make([]float32, 0, len(x)), Pred: make([]int64, 0, n)}
	out.Setting.Convention = "adv-acc"
	for lo := 0; lo < n; lo += batchSize {
		hi := min(lo+batchSize, n)
		r, err := runSplit(ctx, a, m, x[lo*d:hi*d], y[lo:hi])
		if err != nil {
			return nil, fmt.Errorf("adversarial accuracy: %s: %w", a.Name(), err)
		}
		for j, p := range r.Pred {
			if p == y[lo+j] {
				out.Correct++
			}
		}
		out.Adv = append(out.Adv, r.Adv...)
		out.Pred = append(out.Pred, r.Pred...)
		out.Counts.Add(r.Counts)
		if progress != nil {
			progress(hi, n)
		}
	}
	out.Accuracy = percent(out.Correct, n)
	return out, nil
}
