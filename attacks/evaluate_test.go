package attacks

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestAutoAttackBeatsPGD: AutoAttack standard's robust accuracy on the MLP is
// at most PGD's, and a point PGD breaks is broken by AutoAttack too on this model.
func TestAutoAttackBeatsPGD(t *testing.T) {
	m := newMLP(4, 3, 6, 16, 10)
	x, y := data(m, 5, 40, 0, 1)
	const eps = 0.03
	pgd, err := Evaluate(bg, m, x, y, []Attack{&PGD{Epsilon: eps, Seed: 1}}, EvalOptions{BatchSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	aa, err := Evaluate(bg, m, x, y, []Attack{&AutoAttack{Epsilon: eps, Seed: 1}}, EvalOptions{BatchSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	if pgd.CleanAccuracy != 95 || aa.CleanAccuracy != 95 {
		t.Errorf("clean accuracy %g, %g; want 95", pgd.CleanAccuracy, aa.CleanAccuracy)
	}
	if aa.RobustAccuracy > pgd.RobustAccuracy {
		t.Errorf("AutoAttack robust accuracy %.1f%%; want ≤ PGD's %.1f%%", aa.RobustAccuracy, pgd.RobustAccuracy)
	}
	if pgd.RobustAccuracy == 95 || aa.RobustAccuracy == 0 {
		t.Errorf("test is uninformative: PGD %.1f%%, AutoAttack %.1f%%", pgd.RobustAccuracy, aa.RobustAccuracy)
	}
	names := []string{}
	for _, r := range aa.Attacks {
		names = append(names, r.Name)
	}
	if want := []string{"apgd-ce", "apgd-t", "fab-t", "square"}; !slices.Equal(names, want) {
		t.Errorf("AutoAttack standard ran %v; want %v", names, want)
	}
	// Per-attack accuracies are cumulative and end at the overall one.
	prev := aa.CleanAccuracy
	for _, r := range aa.Attacks {
		if r.RobustAccuracy > prev {
			t.Errorf("%s: cumulative robust accuracy rose from %.1f to %.1f", r.Name, prev, r.RobustAccuracy)
		}
		prev = r.RobustAccuracy
	}
	if prev != aa.RobustAccuracy {
		t.Errorf("last attack's accuracy %.1f; want overall %.1f", prev, aa.RobustAccuracy)
	}
	d := m.dim()
	z, _ := m.Logits(bg, aa.Adv, len(y))
	for i, s := range aa.Samples {
		p := int64(Argmax(z[i*10 : (i+1)*10]))
		if s.Robust != (p == y[i]) || s.AdvPred != p {
			t.Errorf("sample %d: robust %v pred %d; re-prediction of Adv gives %d (label %d)", i, s.Robust, s.AdvPred, p, y[i])
		}
		if dist := distance(aa.Adv[i*d:(i+1)*d], x[i*d:(i+1)*d], LInf); dist > eps+1e-6 {
			t.Errorf("sample %d: ‖δ‖∞ = %g > ε", i, dist)
		}
		if pgd.Samples[i].BrokenBy != "" && s.Robust {
			t.Errorf("sample %d: PGD broke it, AutoAttack did not", i)
		}
	}
	if aa.Samples[0].BrokenBy != "clean" || aa.Samples[0].Robust {
		t.Errorf("sample 0 (wrong label): %+v; want broken by clean", aa.Samples[0])
	}
}

// TestEvaluateResume interrupts an evaluation after a few batches, round-trips
// the state through JSON, resumes, and must end exactly where an
// uninterrupted run ends.
func TestEvaluateResume(t *testing.T) {
	m := newMLP(6, 3, 4, 8, 10)
	x, y := data(m, 7, 30, 2)
	attacks := []Attack{&PGD{Epsilon: 0.04, Seed: 3}, &APGD{Epsilon: 0.06, Steps: 20, Seed: 3}, &Square{Epsilon: 0.08, Queries: 200, Seed: 3}}
	opts := EvalOptions{BatchSize: 7}
	full, err := Evaluate(bg, m, x, y, attacks, opts)
	if err != nil {
		t.Fatal(err)
	}
	for stopAfter := 1; stopAfter <= 6; stopAfter++ {
		ctx, cancel := context.WithCancel(bg)
		calls := 0
		o := opts
		o.Progress = func(p Progress) {
			calls++
			if calls == stopAfter {
				cancel()
			}
		}
		part, err := Evaluate(ctx, m, x, y, attacks, o)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("stop after %d: err = %v; want context.Canceled", stopAfter, err)
		}
		js, err := json.Marshal(part.State)
		if err != nil {
			t.Fatal(err)
		}
		var st EvalState
		if err := json.Unmarshal(js, &st); err != nil {
			t.Fatal(err)
		}
		o = opts
		o.Resume = &st
		res, err := Evaluate(bg, m, x, y, attacks, o)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.Samples, full.Samples) || !slices.Equal(res.Adv, full.Adv) || res.Counts != full.Counts ||
			res.RobustAccuracy != full.RobustAccuracy {
			t.Errorf("stop after %d progress calls: resumed result differs from the uninterrupted run (robust %.1f vs %.1f, counts %+v vs %+v)",
				stopAfter, res.RobustAccuracy, full.RobustAccuracy, res.Counts, full.Counts)
		}
	}
	// A state from other data or other attacks is refused.
	st := *full.State
	if _, err := Evaluate(bg, m, x, slices.Concat(y[:29], []int64{(y[29] + 1) % 10}), attacks, EvalOptions{Resume: &st}); err == nil {
		t.Errorf("resume on different labels: no error")
	}
	if _, err := Evaluate(bg, m, x, y, attacks[:2], EvalOptions{Resume: &st}); err == nil {
		t.Errorf("resume with different attacks: no error")
	}
}

func TestFlags(t *testing.T) {
	mlp := newMLP(8, 3, 4, 8, 10)
	x, y := data(mlp, 9, 10)
	q := quantized{randomLinear(2, 10, 48)}
	xq, yq := data(q, 3, 40)
	cases := []struct {
		name  string
		m     Model
		x     []float32
		y     []int64
		a     []Attack
		flags []string
	}{
		{"clean model", mlp, x, y, []Attack{&PGD{Epsilon: 0.03}}, nil},
		{"noisy logits", noisy{mlp, rand.New(rand.NewPCG(1, 1))}, x, y, []Attack{&PGD{Epsilon: 0.03}}, []string{"randomized"}},
		{"probabilities", softmaxed{mlp}, x, y, []Attack{&PGD{Epsilon: 0.03}}, []string{"softmax-output"}},
		{"masked gradient", q, xq, yq, []Attack{&APGD{Epsilon: 0.1, Steps: 10}, &Square{Epsilon: 0.1, Queries: 500}},
			[]string{"zero-gradient", "square-beats-white-box"}},
		{"too many targets", mlp, x, y, []Attack{&APGDT{Epsilon: 0.01, Steps: 5, Targets: 12}}, []string{"targets-capped"}},
	}
	for _, c := range cases {
		res, err := Evaluate(bg, c.m, c.x, c.y, c.a, EvalOptions{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var got []string
		for _, f := range res.Flags {
			got = append(got, f.Check)
		}
		if !slices.Equal(got, c.flags) {
			t.Errorf("%s: flags %v; want %v", c.name, got, c.flags)
		}
	}
}
