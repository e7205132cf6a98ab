package attacks

import (
	"context"
	"math"
	"slices"
	"testing"
)

var bg = context.Background()

// fast are every attack with short schedules, so the invariant and
// determinism tests stay quick.
func fast(eps float32, p Norm, seed uint64) []Attack {
	out := []Attack{
		&FGSM{Epsilon: eps, Norm: p},
		&PGD{Epsilon: eps, Norm: p, Seed: seed},
		&PGD{Epsilon: eps, Norm: p, Seed: seed, Best: true, Restarts: 2, Loss: CWMargin},
		&PGD{Epsilon: eps, Norm: p, Seed: seed, Loss: DLR, NoRandomStart: true},
	}
	if p == L1 {
		return out
	}
	out = append(out,
		&APGD{Epsilon: eps, Norm: p, Steps: 20, Restarts: 2, Seed: seed},
		&APGD{Epsilon: eps, Norm: p, Steps: 20, Loss: DLR, EOT: 2, Seed: seed},
		&APGDT{Epsilon: eps, Norm: p, Steps: 10, Targets: 3, Seed: seed},
		&FAB{Epsilon: eps, Norm: p, Steps: 10, Targets: 3, Restarts: 2, Seed: seed},
		&FAB{Epsilon: eps, Norm: p, Steps: 10, Untargeted: true, Seed: seed},
		&Square{Epsilon: eps, Norm: p, Queries: 300, Seed: seed},
		&AutoAttack{Epsilon: eps, Norm: p, Version: "custom", Attacks: []string{"apgd-ce", "square"}, Seed: seed},
	)
	if p == LInf {
		out = append(out, &MIFGSM{Epsilon: eps}, &CW{Steps: 30, Epsilon: 0.8})
	}
	return out
}

func TestInvariants(t *testing.T) {
	m := newMLP(1, 3, 6, 16, 10)
	x, y := data(m, 2, 12, 3)
	x0 := slices.Clone(x)
	d := m.dim()
	for _, tc := range []struct {
		eps float32
		p   Norm
	}{{8.0 / 255, LInf}, {0.05, LInf}, {0.5, L2}, {3, L1}} {
		for _, a := range fast(tc.eps, tc.p, 5) {
			res, err := a.Run(bg, m, x, y)
			if err != nil {
				t.Errorf("%s (%v, ε=%g): %v", a.Name(), tc.p, tc.eps, err)
				continue
			}
			if !slices.Equal(x, x0) {
				t.Fatalf("%s modified its input", a.Name())
			}
			eps, p := a.(Bounded).Threat()
			z, _ := m.Logits(bg, res.Adv, len(y))
			for i := range y {
				row := res.Adv[i*d : (i+1)*d]
				for _, v := range row {
					if !(v >= 0 && v <= 1) {
						t.Fatalf("%s sample %d: value %g outside [0,1]", a.Name(), i, v)
					}
				}
				dist := distance(row, x[i*d:(i+1)*d], p)
				if eps > 0 && dist > float64(eps)+1e-6 {
					t.Errorf("%s sample %d: ‖δ‖ = %.8g; want ≤ ε = %g", a.Name(), i, dist, eps)
				}
				if math.Abs(dist-float64(res.Dist[i])) > 1e-5 {
					t.Errorf("%s sample %d: Dist = %g; want %g", a.Name(), i, res.Dist[i], dist)
				}
				pred := int64(Argmax(z[i*10 : (i+1)*10]))
				if res.Pred[i] != pred || res.Success[i] != (pred != y[i]) {
					t.Errorf("%s sample %d: Pred %d Success %v; want %d %v", a.Name(), i, res.Pred[i], res.Success[i], pred, pred != y[i])
				}
			}
			if !res.Success[3] {
				t.Errorf("%s: misclassified sample 3 reported robust", a.Name())
			}
		}
	}
}

func TestDeterminism(t *testing.T) {
	m := newMLP(3, 3, 4, 8, 6)
	x, y := data(m, 4, 6)
	for _, a := range fast(0.1, LInf, 9) {
		r1, err := a.Run(bg, m, x, y)
		if err != nil {
			t.Fatal(err)
		}
		r2, _ := a.Run(bg, m, x, y)
		if !slices.Equal(r1.Adv, r2.Adv) || r1.Counts != r2.Counts {
			t.Errorf("%s: two runs with seed 9 differ", a.Name())
		}
	}
	// A different seed changes a randomised attack.
	a1, _ := (&PGD{Epsilon: 0.1, Seed: 1}).Run(bg, m, x, y)
	a2, _ := (&PGD{Epsilon: 0.1, Seed: 2}).Run(bg, m, x, y)
	if slices.Equal(a1.Adv, a2.Adv) {
		t.Errorf("PGD with seeds 1 and 2 gave identical results")
	}
}

// TestCallCounts checks the recipe's cost with ε so small that no point
// breaks (every correctly classified point stays in every run).
func TestCallCounts(t *testing.T) {
	m := newMLP(1, 3, 4, 8, 10)
	x, y := data(m, 2, 5, 0) // 4 correctly classified points
	const eps = 1e-5
	const n, nr = 5, 4
	cases := []struct {
		a    Attack
		want Counts
	}{
		{&FGSM{Epsilon: eps}, Counts{1, n, 1, n}},
		{&PGD{Epsilon: eps}, Counts{10, 10 * n, 1, n}},
		{&PGD{Epsilon: eps, Restarts: 3}, Counts{30, 10 * (n + 2*nr), 3, n + nr + n}}, // no forward after the last restart: finish judges it
		// APGD: 1 + 100 gradient calls per restart, clean + final forward.
		{&APGD{Epsilon: eps}, Counts{101, 101 * nr, 2, 2 * n}},
		{&APGD{Epsilon: eps, Restarts: 2, EOT: 2}, Counts{404, 404 * nr, 2, 2 * n}},
		// APGD-T: 9 targets × (1 + 100) gradient calls and one target pass each.
		{&APGDT{Epsilon: eps}, Counts{909, 909 * nr, 11, 2*n + 9*nr}},
		// FAB-T: 9 targets × 100 gradient calls (z_t − z_y); per target: target
		// pass, 100 forward passes, result check.
		{&FAB{Epsilon: eps}, Counts{900, 900 * nr, 2 + 9*102, 2*n + 9*102*nr}},
		// Square: clean, init, 5000 queries, result check, final.
		{&Square{Epsilon: eps}, Counts{0, 0, 5004, 2*n + 5002*nr}},
	}
	for _, c := range cases {
		res, err := c.a.Run(bg, m, x, y)
		if err != nil {
			t.Fatal(err)
		}
		if res.Robust() != nr {
			t.Fatalf("%s: %d robust; want %d", c.a.Name(), res.Robust(), nr)
		}
		if res.Counts != c.want {
			t.Errorf("%s: counts %+v; want %+v", c.a.Name(), res.Counts, c.want)
		}
	}
	// AutoAttack standard per robust point: 101 + 909 APGD gradients, 900 FAB-T
	// gradients, ≤ 5002 Square queries: the official recipe's 1910.
	ev, err := Evaluate(bg, m, x, y, []Attack{&AutoAttack{Epsilon: eps}}, EvalOptions{SkipChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ev.Counts.GradCalls, int64(101+909+900); got != want {
		t.Errorf("AutoAttack standard: %d gradient calls; want %d", got, want)
	}
	if got, want := ev.Counts.GradSamples, int64(nr*(101+909+900)); got != want {
		t.Errorf("AutoAttack standard: %d gradient samples; want %d", got, want)
	}
}
