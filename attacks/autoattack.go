package attacks

import (
	"context"
	"fmt"
	"math"
	"strings"
)

// AutoAttack is the parameter-free ensemble of Croce & Hein 2020
// (fra31/auto-attack autoattack.py). The attacks run in order; each attacks
// only the points that are classified correctly and that no earlier attack
// broke, always starting from the clean point, and a point's verdict is the
// worst case over the attacks. Every component gets the same Seed, as in the
// official code with a fixed seed.
//
// Versions (official settings; Linf or L2):
//   - "standard" (default): APGD-CE (100 iterations, 1 restart) → APGD-T (9
//     targets × 1 restart) → FAB-T (9 targets × 1 restart) → Square (5000 queries).
//   - "plus": APGD-CE (5 restarts) → APGD-DLR (5 restarts) → FAB (5 restarts)
//     → Square (5000) → APGD-T (9 targets) → FAB-T (9 targets).
//   - "rand": APGD-CE and APGD-DLR with EOT 20, 1 restart, for randomised models.
//   - "custom": the names in Attacks (apgd-ce, apgd-dlr, apgd-t, fab, fab-t,
//     square) with the settings of the official constructor (APGD and FAB 5
//     restarts, targeted attacks 9 targets × 1 restart, Square 5000 queries).
//
// Torchattacks mimics torchattacks.AutoAttack instead (its deviations from the
// official recipe, documented in docs/attacks.md §8.4): 10 instead of 100
// iterations for APGD, APGD-T and FAB, classes − 1 targets, untargeted FAB in
// place of FAB-T in "standard", and Square with the rescaled schedule.
//
// Run attacks one batch and returns a Result; use Evaluate for batching,
// per-attack accuracies, sanity flags and resumable state.
type AutoAttack struct {
	Epsilon      float32           `json:"epsilon"`           // 0: 8/255 (L∞), 0.5 (L2)
	Norm         Norm              `json:"norm"`              // "": L∞; L1 is not implemented
	Version      AutoAttackVersion `json:"version"`           // "": AutoAttackStandard
	Attacks      []string          `json:"attacks,omitempty"` // for Version "custom"
	Torchattacks bool              `json:"torchattacks"`
	Seed         uint64            `json:"seed"`
}

// AutoAttackVersion names one of AutoAttack's recipes (see AutoAttack); it
// marshals as its name and is read in any case. "" means AutoAttackStandard.
type AutoAttackVersion string

const (
	AutoAttackStandard AutoAttackVersion = "standard"
	AutoAttackPlus     AutoAttackVersion = "plus"
	AutoAttackRand     AutoAttackVersion = "rand"
	AutoAttackCustom   AutoAttackVersion = "custom"
)

// allTargets asks for every other class (capped at classes − 1).
const allTargets = math.MaxInt32

// Name returns "autoattack" for the standard version, else "autoattack-<version>".
func (a *AutoAttack) Name() string {
	v := a.version()
	if v == AutoAttackStandard {
		return "autoattack"
	}
	return "autoattack-" + string(v)
}

func (a *AutoAttack) version() AutoAttackVersion {
	if a.Version == "" {
		return AutoAttackStandard
	}
	return AutoAttackVersion(strings.ToLower(string(a.Version)))
}

// Threat returns the resolved ε and norm.
func (a *AutoAttack) Threat() (float32, Norm) {
	eps, p, _ := resolveEps(a.Name(), a.Epsilon, a.Norm)
	return eps, p
}

// Components returns the attacks of the ensemble, in order, with their settings.
func (a *AutoAttack) Components() ([]Attack, error) {
	name := a.Name()
	eps, p, err := resolveEps(name, a.Epsilon, a.Norm)
	if err != nil {
		return nil, err
	}
	if p == L1 {
		return nil, fmt.Errorf("%s: the L1 version of AutoAttack is not implemented (use Linf or L2)", name)
	}
	steps, targets, rescale := 100, 9, false
	if a.Torchattacks {
		steps, targets, rescale = 10, allTargets, true
	}
	seed := a.Seed
	apgd := func(loss LossKind, restarts, eot int) Attack {
		return &APGD{Epsilon: eps, Norm: p, Loss: loss, Steps: steps, Restarts: restarts, EOT: eot, Seed: seed}
	}
	apgdt := func() Attack {
		return &APGDT{Epsilon: eps, Norm: p, Steps: steps, Restarts: 1, Targets: targets, Seed: seed}
	}
	fab := func(untargeted bool, restarts int) Attack {
		return &FAB{Epsilon: eps, Norm: p, Untargeted: untargeted, Targets: targets, Steps: steps, Restarts: restarts, Seed: seed}
	}
	square := func() Attack {
		return &Square{Epsilon: eps, Norm: p, Queries: 5000, PInit: 0.8, Restarts: 1, RescaleSchedule: rescale, Seed: seed}
	}
	switch v := a.version(); v {
	case AutoAttackStandard:
		if len(a.Attacks) > 0 {
			return nil, fmt.Errorf("%s: Attacks is only read with Version \"custom\"", name)
		}
		return []Attack{apgd(CrossEntropy, 1, 1), apgdt(), fab(a.Torchattacks, 1), square()}, nil
	case AutoAttackPlus:
		return []Attack{apgd(CrossEntropy, 5, 1), apgd(DLR, 5, 1), fab(true, 5), square(), apgdt(), fab(false, 1)}, nil
	case AutoAttackRand:
		return []Attack{apgd(CrossEntropy, 1, 20), apgd(DLR, 1, 20)}, nil
	case AutoAttackCustom:
		if len(a.Attacks) == 0 {
			return nil, fmt.Errorf("%s: Version \"custom\" needs a list of Attacks", name)
		}
		var out []Attack
		for _, n := range a.Attacks {
			switch strings.ToLower(n) {
			case "apgd-ce":
				out = append(out, apgd(CrossEntropy, 5, 1))
			case "apgd-dlr":
				out = append(out, apgd(DLR, 5, 1))
			case "apgd-t":
				out = append(out, apgdt())
			case "fab":
				out = append(out, fab(true, 5))
			case "fab-t":
				out = append(out, fab(false, 1))
			case "square":
				out = append(out, square())
			default:
				return nil, fmt.Errorf("%s: unknown attack %q (want apgd-ce, apgd-dlr, apgd-t, fab, fab-t or square)", name, n)
			}
		}
		return out, nil
	default:
		return nil, fmt.Errorf("autoattack: unknown version %q (want standard, plus, rand or custom)", a.Version)
	}
}

// Run runs the ensemble on one batch (see Evaluate for the details).
func (a *AutoAttack) Run(ctx context.Context, m Model, x []float32, y []int64) (*Result, error) {
	eps, p, err := resolveEps(a.Name(), a.Epsilon, a.Norm)
	if err != nil {
		return nil, err
	}
	ev, err := Evaluate(ctx, m, x, y, []Attack{a}, EvalOptions{BatchSize: max(len(y), 1), SkipChecks: true})
	if err != nil {
		return nil, err
	}
	res := &Result{Adv: ev.Adv, Pred: make([]int64, len(y)), Success: make([]bool, len(y)), Dist: make([]float32, len(y)), Counts: ev.Counts}
	for i, s := range ev.Samples {
		res.Pred[i], res.Success[i], res.Dist[i] = s.AdvPred, !s.Robust, s.Dist
	}
	for _, r := range ev.Attacks {
		res.ZeroGrad += r.ZeroGrad
	}
	d := len(x) / max(len(y), 1)
	if err := verify(a.Name(), x, res.Adv, len(y), d, eps, p); err != nil {
		return nil, err
	}
	return res, nil
}
