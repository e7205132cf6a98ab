package attacks

import (
	"fmt"
	"strconv"
	"strings"
)

// Setting is what one attack runs with, every default resolved: the record a
// report keeps, where the options struct keeps 0 for "the default".
type Setting struct {
	Name    string  `json:"name"`
	Epsilon float32 `json:"epsilon"` // 0 only for unbounded C&W
	Norm    Norm    `json:"norm"`
	// Loss is the objective the attack follows: "ce", "dlr", "dlr-t"
	// (targeted DLR), "cw" (C&W margin), "margin" (Square: z_y − max_{j≠y} z_j)
	// or "boundary" (FAB's linearised decision boundary).
	Loss string `json:"loss,omitempty"`
	// Steps is the number of iterations of one run: gradient steps, Adam steps
	// per c for C&W, queries for Square.
	Steps int `json:"steps,omitempty"`
	// StepSize is α for fixed-step attacks (FGSM, PGD, MI-FGSM) and the Adam
	// learning rate for C&W; absent where the step adapts (StepRule says how).
	StepSize float32 `json:"step_size,omitempty"`
	StepRule string  `json:"step_rule,omitempty"`
	// Restarts is the number of runs from fresh starts (per target class for
	// targeted attacks).
	Restarts int `json:"restarts,omitempty"`
	// RandomStart is true when a run starts at a random point of the ε-ball.
	RandomStart bool `json:"random_start"`
	// Targets is the number of target classes (0: untargeted), capped at
	// classes − 1 when the class count is known.
	Targets int    `json:"targets"`
	Seed    uint64 `json:"seed"`
	// Other lists the remaining settings in words ("rho 0.75, eot 1").
	Other string `json:"other,omitempty"`
	// Convention is how the attack's results are counted: "aa" (Evaluate) or
	// "adv-acc" (AdversarialAccuracy); empty for an attack on its own.
	Convention string `json:"convention,omitempty"`
	// Components are the attacks of an ensemble (AutoAttack run as one attack).
	Components []Setting `json:"components,omitempty"`
}

// Describer is implemented by the attacks of this package: Setting returns
// the settings a Run would use on a model with classes classes (0: unknown;
// target counts are then not capped).
type Describer interface {
	Setting(classes int) Setting
}

// SettingOf returns a's settings (Describer), or only its name for an attack
// from elsewhere.
func SettingOf(a Attack, classes int) Setting {
	if d, ok := a.(Describer); ok {
		return d.Setting(classes)
	}
	return Setting{Name: a.Name()}
}

// String is the one-line summary a console report prints, e.g.
// "ε=0.1 Linf; 10 steps, α=0.025, 1 restart, random start, loss ce, seed 1".
func (s Setting) String() string {
	var b strings.Builder
	if s.Epsilon > 0 {
		fmt.Fprintf(&b, "ε=%s %s", fmtFloat(s.Epsilon), s.Norm)
	} else {
		fmt.Fprintf(&b, "unbounded %s", s.Norm)
	}
	var parts []string
	if len(s.Components) > 0 {
		names := make([]string, len(s.Components))
		for i, c := range s.Components {
			names[i] = c.Name
		}
		parts = append(parts, strings.Join(names, " → "))
	}
	if s.Steps > 0 {
		unit, units := "step", "steps"
		if s.StepRule == "square" {
			unit, units = "query", "queries"
		}
		if s.Steps != 1 {
			unit = units
		}
		parts = append(parts, fmt.Sprintf("%d %s", s.Steps, unit))
	}
	switch {
	case s.StepSize > 0 && s.StepRule == "adam":
		parts = append(parts, "Adam lr "+fmtFloat(s.StepSize))
	case s.StepSize > 0:
		parts = append(parts, "α="+fmtFloat(s.StepSize))
	case s.StepRule != "" && s.StepRule != "square":
		parts = append(parts, "α "+s.StepRule)
	}
	if s.Targets > 0 {
		parts = append(parts, fmt.Sprintf("%d targets", s.Targets))
	}
	if s.Restarts > 0 {
		r := fmt.Sprintf("%d restart", s.Restarts)
		if s.Restarts > 1 {
			r += "s"
		}
		if s.Targets > 0 {
			r += " per target"
		}
		parts = append(parts, r)
	}
	if len(s.Components) == 0 {
		if s.RandomStart {
			parts = append(parts, "random start")
		} else {
			parts = append(parts, "clean start")
		}
	}
	if s.Loss != "" {
		parts = append(parts, "loss "+s.Loss)
	}
	if s.Other != "" {
		parts = append(parts, s.Other)
	}
	parts = append(parts, fmt.Sprintf("seed %d", s.Seed))
	b.WriteString("; ")
	b.WriteString(strings.Join(parts, ", "))
	return b.String()
}

// entries lists the settings as fingerprint entries named "<prefix> <field>".
func (s Setting) entries(prefix string) []FingerprintEntry {
	e := []FingerprintEntry{
		{prefix + " epsilon", fmtFloat(s.Epsilon)},
		{prefix + " norm", string(s.Norm)},
		{prefix + " loss", s.Loss},
		{prefix + " steps", strconv.Itoa(s.Steps)},
		{prefix + " step size", fmtFloat(s.StepSize)},
		{prefix + " step rule", s.StepRule},
		{prefix + " restarts", strconv.Itoa(s.Restarts)},
		{prefix + " random start", strconv.FormatBool(s.RandomStart)},
		{prefix + " targets", strconv.Itoa(s.Targets)},
		{prefix + " seed", strconv.FormatUint(s.Seed, 10)},
		{prefix + " other settings", s.Other},
	}
	for i, c := range s.Components {
		e = append(e, c.entries(fmt.Sprintf("%s component %d (%s)", prefix, i+1, c.Name))...)
	}
	return e
}

// fmtFloat writes v in the shortest form that reads back as the same float32.
func fmtFloat(v float32) string { return strconv.FormatFloat(float64(v), 'g', -1, 32) }

// capTargets is the number of target classes a targeted attack runs with.
func capTargets(t, classes int) int {
	if t == 0 {
		t = 9
	}
	if classes > 1 {
		t = min(t, classes-1)
	}
	return t
}

// Setting returns the settings Run uses.
func (a *PGD) Setting(classes int) Setting {
	eps, step, p, steps, restarts, _ := a.settings()
	other := "last iterate"
	if a.Best {
		other = "best iterate"
	}
	if a.Loss == CWMargin {
		other += ", kappa " + fmtFloat(a.Kappa)
	}
	return Setting{Name: a.Name(), Epsilon: eps, Norm: p, Loss: a.Loss.String(), Steps: steps, StepSize: step, StepRule: "fixed",
		Restarts: restarts, RandomStart: !a.NoRandomStart, Seed: a.Seed, Other: other}
}

// Setting returns the settings Run uses: one step of size ε from the clean input.
func (a *FGSM) Setting(classes int) Setting {
	s := a.pgd().Setting(classes)
	s.Name, s.Other = a.Name(), ""
	return s
}

// Setting returns the settings Run uses.
func (a *MIFGSM) Setting(classes int) Setting {
	eps, _ := a.Threat()
	step, steps, decay := a.StepSize, a.Steps, a.Decay
	if step == 0 {
		step = eps / 4
	}
	if steps == 0 {
		steps = 10
	}
	if decay == 0 {
		decay = 1
	}
	return Setting{Name: a.Name(), Epsilon: eps, Norm: LInf, Loss: CrossEntropy.String(), Steps: steps, StepSize: step, StepRule: "fixed",
		Restarts: 1, Seed: a.Seed, Other: "momentum decay " + fmtFloat(decay)}
}

// Setting returns the settings Run uses.
func (a *CW) Setting(classes int) Setting {
	c0, steps, lr := a.C, a.Steps, a.LR
	if c0 == 0 {
		c0 = 1
		if a.BinarySearchSteps > 0 {
			c0 = 1e-3
		}
	}
	if steps == 0 {
		steps = 50
	}
	if lr == 0 {
		lr = 0.01
	}
	other := fmt.Sprintf("c %s, kappa %s, no binary search", fmtFloat(c0), fmtFloat(a.Kappa))
	if a.BinarySearchSteps > 0 {
		other = fmt.Sprintf("c from %s, kappa %s, %d binary search steps", fmtFloat(c0), fmtFloat(a.Kappa), a.BinarySearchSteps)
	}
	return Setting{Name: a.Name(), Epsilon: a.Epsilon, Norm: L2, Loss: CWMargin.String(), Steps: steps, StepSize: lr, StepRule: "adam",
		Restarts: 1, Seed: a.Seed, Other: other}
}

const apgdStepRule = "adaptive (APGD: 2ε, halved at checkpoints)"

// Setting returns the settings Run uses.
func (a *APGD) Setting(classes int) Setting {
	pr, restarts, _ := resolveAPGD(a.Name(), a.Epsilon, a.Norm, a.Steps, a.Restarts, a.Rho, a.EOT)
	return Setting{Name: a.Name(), Epsilon: pr.eps, Norm: pr.p, Loss: a.Loss.String(), Steps: pr.steps, StepRule: apgdStepRule,
		Restarts: restarts, RandomStart: true, Seed: a.Seed, Other: fmt.Sprintf("rho %s, eot %d", fmtFloat(pr.rho), pr.eot)}
}

// Setting returns the settings Run uses.
func (a *APGDT) Setting(classes int) Setting {
	pr, restarts, _ := resolveAPGD(a.Name(), a.Epsilon, a.Norm, a.Steps, a.Restarts, a.Rho, a.EOT)
	return Setting{Name: a.Name(), Epsilon: pr.eps, Norm: pr.p, Loss: TargetedDLR.String(), Steps: pr.steps, StepRule: apgdStepRule,
		Restarts: restarts, RandomStart: true, Targets: capTargets(a.Targets, classes), Seed: a.Seed,
		Other: fmt.Sprintf("rho %s, eot %d", fmtFloat(pr.rho), pr.eot)}
}

// Setting returns the settings Run uses.
func (a *FAB) Setting(classes int) Setting {
	pr, restarts, _ := a.settings()
	s := Setting{Name: a.Name(), Epsilon: pr.eps, Norm: pr.p, Loss: "boundary", Steps: pr.steps, StepRule: "adaptive (FAB projection)",
		Restarts: restarts, Seed: a.Seed,
		Other: fmt.Sprintf("alpha_max %g, eta %g, beta %g", pr.alphaMax, pr.eta, pr.beta)}
	if restarts > 1 {
		s.Other += ", restarts after the first start at random within ε/2"
	}
	if !a.Untargeted {
		s.Targets = capTargets(a.Targets, classes)
	}
	return s
}

// Setting returns the settings Run uses.
func (a *Square) Setting(classes int) Setting {
	eps, p, queries, restarts, pInit, _ := a.settings()
	other := fmt.Sprintf("p_init %g", pInit)
	if a.RescaleSchedule {
		other += ", rescaled schedule"
	}
	return Setting{Name: a.Name(), Epsilon: eps, Norm: p, Loss: "margin", Steps: queries, StepRule: "square",
		Restarts: restarts, RandomStart: true, Seed: a.Seed, Other: other}
}

// Setting returns the ensemble's settings with those of its components.
func (a *AutoAttack) Setting(classes int) Setting {
	eps, p := a.Threat()
	s := Setting{Name: a.Name(), Epsilon: eps, Norm: p, Seed: a.Seed, Other: "version " + string(a.version())}
	if a.Torchattacks {
		s.Other += ", torchattacks port"
	}
	cs, _ := a.Components()
	for _, c := range cs {
		s.Components = append(s.Components, SettingOf(c, classes))
	}
	return s
}
