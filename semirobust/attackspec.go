package semirobust

import (
	"slices"
	"strings"

	"github.com/semirobust/srtool/attacks"
)

// EvalAttack is the attack of the per-epoch evaluation called name, at the
// threat model and settings of spec (attacks.Spec): nil for "", "none" and
// "clean" (clean accuracy). Errors wrap ErrOption.
func EvalAttack(name string, spec attacks.Spec) (attacks.Attack, error) {
	if name == "" || name == "none" || name == "clean" {
		return nil, nil
	}
	p, err := spec.Parse()
	if err != nil {
		return nil, err
	}
	a, err := p.Attack(name)
	if err != nil {
		return nil, optionf("--eval-attack %s: %v", name, err)
	}
	return a, nil
}

// ParseAttacks reads semirobust's evaluation attacks A: a comma-separated
// list of EvalAttack's names, none (or clean) named "clean"; a name given
// twice is refused. Errors wrap ErrOption.
func ParseAttacks(list string, spec attacks.Spec) ([]NamedAttack, error) {
	var out []NamedAttack
	var names []string
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		a, err := EvalAttack(name, spec)
		if err != nil {
			return nil, err
		}
		if a == nil {
			name = "clean"
		}
		if slices.Contains(names, name) {
			return nil, optionf("--attacks %q names %s twice", list, name)
		}
		out = append(out, NamedAttack{Name: name, Attack: a})
		names = append(names, name)
	}
	return out, nil
}
