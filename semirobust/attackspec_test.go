package semirobust

import (
	"errors"
	"testing"

	"github.com/semirobust/srtool/attacks"
)

func TestParseAttacks(t *testing.T) {
	spec := attacks.Spec{Eps: "8/255", Norm: "linf", Seed: 3}
	atks, err := ParseAttacks("none, pgd", spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(atks) != 2 || atks[0].Name != "clean" || atks[0].Attack != nil || atks[1].Name != "pgd" {
		t.Fatalf("ParseAttacks(none, pgd) = %+v; want clean and pgd", atks)
	}
	if pgd, ok := atks[1].Attack.(*attacks.PGD); !ok || pgd.Epsilon != float32(8.0/255) || pgd.Seed != 3 {
		t.Errorf("pgd = %+v; want ε 8/255, seed 3", atks[1].Attack)
	}
	for _, tc := range []struct {
		list string
		spec attacks.Spec
		want string
	}{
		{"pgd,clean,none", spec, `--attacks "pgd,clean,none" names clean twice`},
		{"nope", spec, "--eval-attack nope: "},
		{"pgd", attacks.Spec{Eps: "0"}, "--eps 0: ε must be greater than 0"},
	} {
		_, err := ParseAttacks(tc.list, tc.spec)
		if err == nil || len(err.Error()) < len(tc.want) || err.Error()[:len(tc.want)] != tc.want || !errors.Is(err, ErrOption) {
			t.Errorf("ParseAttacks(%q) = %v; want an error starting %q wrapping ErrOption", tc.list, err, tc.want)
		}
	}
	if a, err := EvalAttack("", attacks.Spec{Eps: "junk"}); a != nil || err != nil {
		t.Errorf("EvalAttack(\"\") = %v, %v; want no attack and no check of the settings", a, err)
	}
}
