package attacks

import (
	"fmt"
	"strings"
)

// Names lists the attack names ByName accepts.
func Names() []string {
	return []string{"fgsm", "pgd", "mifgsm", "cw", "apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square",
		"autoattack", "autoattack-plus", "autoattack-rand"}
}

// ByName returns an attack with its default settings for the command line:
// eps is the radius in pixel units (0: the attack's default, see each type),
// norm is "linf", "l2" or "l1" ("" for L∞). C&W is an L2 minimum-norm attack:
// eps bounds the adversarials it counts (0: unbounded) and norm must be "" or
// "l2". "apgd" means "apgd-ce", "aa" and "autoattack-standard" mean
// "autoattack", "autoattack-torchattacks" is the torchattacks port.
func ByName(name string, eps float32, norm string) (Attack, error) {
	p, err := ParseNorm(norm)
	if err != nil {
		return nil, err
	}
	n := strings.ToLower(strings.TrimSpace(name))
	var a Attack
	switch n {
	case "fgsm":
		a = &FGSM{Epsilon: eps, Norm: p}
	case "pgd", "ifgsm", "i-fgsm", "bim":
		a = &PGD{Epsilon: eps, Norm: p}
		if n != "pgd" {
			a = &PGD{Epsilon: eps, Norm: p, NoRandomStart: true}
		}
	case "mifgsm", "mi-fgsm":
		if p != LInf {
			return nil, fmt.Errorf("%s is an L∞ attack; got norm %s", n, p)
		}
		a = &MIFGSM{Epsilon: eps}
	case "cw", "cw-l2", "carlini-wagner":
		if strings.TrimSpace(norm) != "" && p != L2 {
			return nil, fmt.Errorf("cw is an L2 attack; got norm %s", p)
		}
		if eps < 0 {
			return nil, fmt.Errorf("cw: epsilon %g < 0", eps)
		}
		a = &CW{Epsilon: eps}
	case "apgd", "apgd-ce":
		a = &APGD{Epsilon: eps, Norm: p}
	case "apgd-dlr":
		a = &APGD{Epsilon: eps, Norm: p, Loss: DLR}
	case "apgd-t", "apgdt":
		a = &APGDT{Epsilon: eps, Norm: p}
	case "fab":
		a = &FAB{Epsilon: eps, Norm: p, Untargeted: true}
	case "fab-t", "fabt":
		a = &FAB{Epsilon: eps, Norm: p}
	case "square":
		a = &Square{Epsilon: eps, Norm: p}
	case "autoattack", "aa", "autoattack-standard":
		a = &AutoAttack{Epsilon: eps, Norm: p}
	case "autoattack-plus", "aa-plus":
		a = &AutoAttack{Epsilon: eps, Norm: p, Version: AutoAttackPlus}
	case "autoattack-rand", "aa-rand":
		a = &AutoAttack{Epsilon: eps, Norm: p, Version: AutoAttackRand}
	case "autoattack-torchattacks":
		a = &AutoAttack{Epsilon: eps, Norm: p, Torchattacks: true}
	default:
		return nil, fmt.Errorf("unknown attack %q (want one of %s)", name, strings.Join(Names(), ", "))
	}
	if _, ok := a.(*CW); !ok {
		if _, _, err := resolveEps(a.Name(), eps, p); err != nil {
			return nil, err
		}
	}
	if aa, ok := a.(*AutoAttack); ok {
		if _, err := aa.Components(); err != nil {
			return nil, err
		}
	}
	switch a.(type) {
	case *APGD, *APGDT, *FAB, *Square:
		if p == L1 {
			return nil, fmt.Errorf("%s: the L1 version is not implemented (use linf or l2)", a.Name())
		}
	}
	return a, nil
}
