package attacks

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// configureBefore and readsBefore are srtool's configureAttack and
// settingFlags as they were before Configure replaced their type switches:
// the reference Configure and Reads must reproduce field by field.
func configureBefore(a Attack, steps int, alpha float32, restarts int, seed uint64, noRandomStart bool) {
	setInt := func(dst *int, v int) {
		if v > 0 {
			*dst = v
		}
	}
	setStep := func(dst *float32) {
		if alpha > 0 {
			*dst = alpha
		}
	}
	switch t := a.(type) {
	case *PGD:
		t.Seed = seed
		setInt(&t.Steps, steps)
		setStep(&t.StepSize)
		setInt(&t.Restarts, restarts)
		t.NoRandomStart = t.NoRandomStart || noRandomStart
	case *FGSM:
		t.Seed = seed
	case *MIFGSM:
		t.Seed = seed
		setInt(&t.Steps, steps)
		setStep(&t.StepSize)
	case *APGD:
		t.Seed = seed
		setInt(&t.Steps, steps)
		setInt(&t.Restarts, restarts)
	case *APGDT:
		t.Seed = seed
		setInt(&t.Steps, steps)
		setInt(&t.Restarts, restarts)
	case *FAB:
		t.Seed = seed
		setInt(&t.Steps, steps)
		setInt(&t.Restarts, restarts)
	case *Square:
		t.Seed = seed
		setInt(&t.Queries, steps)
		setInt(&t.Restarts, restarts)
	case *CW:
		t.Seed = seed
		setInt(&t.Steps, steps)
	case *AutoAttack:
		t.Seed = seed
	}
}

func readsBefore(a Attack) []string {
	switch t := a.(type) {
	case *PGD:
		if t.NoRandomStart {
			return []string{"steps", "alpha", "restarts"}
		}
		return []string{"steps", "alpha", "restarts", "no-random-start"}
	case *MIFGSM:
		return []string{"steps", "alpha"}
	case *CW:
		return []string{"steps"}
	case *APGD, *APGDT, *FAB, *Square:
		return []string{"steps", "restarts"}
	}
	return nil
}

// cliNames is every attack name ByName accepts: Names and the aliases.
func cliNames() []string {
	return append(Names(), "ifgsm", "i-fgsm", "bim", "mi-fgsm", "cw-l2", "carlini-wagner", "apgd", "apgdt", "fabt",
		"aa", "autoattack-standard", "aa-plus", "aa-rand", "autoattack-torchattacks", " PGD ")
}

// TestConfigureMatchesBefore checks, for every attack name and norm ByName
// accepts and a range of settings, that Configure leaves each attack's
// fields exactly as configureAttack did, with its ensemble components, and
// that Reads lists the settings settingFlags listed.
func TestConfigureMatchesBefore(t *testing.T) {
	cfgs := []Config{
		{},
		{Seed: 7},
		{Steps: 3, StepSize: 0.01, Restarts: 2, Seed: 1},
		{Steps: 3, StepSize: 0.01, Restarts: 2, NoRandomStart: true, Seed: 1 << 40},
		{Steps: -1, StepSize: -0.5, Restarts: -3, Seed: 2},
		{NoRandomStart: true},
		{Steps: 5000},
		{StepSize: 2.0 / 255},
		{Restarts: 9},
	}
	n := 0
	for _, name := range cliNames() {
		for _, norm := range []string{"", "linf", "l2", "l1"} {
			for _, cfg := range cfgs {
				got, err := ByName(name, 0.03, norm)
				if err != nil {
					continue // a norm the attack does not take
				}
				want, _ := ByName(name, 0.03, norm)
				if r, rb := Reads(got), readsBefore(want); !slices.Equal(r, rb) {
					t.Errorf("Reads(%s %s) = %v; want %v (settingFlags)", name, norm, r, rb)
				}
				Configure(got, cfg)
				configureBefore(want, cfg.Steps, cfg.StepSize, cfg.Restarts, cfg.Seed, cfg.NoRandomStart)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Configure(%s %s, %+v) = %+v; want %+v (configureAttack)", name, norm, cfg, got, want)
				}
				if aa, ok := got.(*AutoAttack); ok {
					gc, err1 := aa.Components()
					wc, err2 := want.(*AutoAttack).Components()
					if err1 != nil || err2 != nil || !reflect.DeepEqual(gc, wc) {
						t.Errorf("Configure(%s %s, %+v): components %v (%v); want %v (%v)", name, norm, cfg, gc, err1, wc, err2)
					}
					for _, c := range gc {
						if s := SettingOf(c, 10).Seed; s != cfg.Seed {
							t.Errorf("Configure(%s, seed %d): component %s has seed %d", name, cfg.Seed, c.Name(), s)
						}
					}
				}
				n++
			}
		}
	}
	if n < 200 {
		t.Errorf("only %d attack × norm × config cases ran", n)
	}
}

// TestConfigureFields spells out what Configure sets on each attack type.
func TestConfigureFields(t *testing.T) {
	cfg := Config{Steps: 3, StepSize: 0.01, Restarts: 2, NoRandomStart: true, Seed: 5}
	cases := []struct {
		in, want Attack
		reads    []string
	}{
		{&PGD{Epsilon: 0.1}, &PGD{Epsilon: 0.1, Steps: 3, StepSize: 0.01, Restarts: 2, NoRandomStart: true, Seed: 5},
			[]string{"steps", "alpha", "restarts", "no-random-start"}},
		{&PGD{NoRandomStart: true}, &PGD{Steps: 3, StepSize: 0.01, Restarts: 2, NoRandomStart: true, Seed: 5},
			[]string{"steps", "alpha", "restarts"}},
		{&FGSM{Epsilon: 0.1}, &FGSM{Epsilon: 0.1, Seed: 5}, nil},
		{&MIFGSM{}, &MIFGSM{Steps: 3, StepSize: 0.01, Seed: 5}, []string{"steps", "alpha"}},
		{&CW{}, &CW{Steps: 3, Seed: 5}, []string{"steps"}},
		{&APGD{Loss: DLR}, &APGD{Loss: DLR, Steps: 3, Restarts: 2, Seed: 5}, []string{"steps", "restarts"}},
		{&APGDT{}, &APGDT{Steps: 3, Restarts: 2, Seed: 5}, []string{"steps", "restarts"}},
		{&FAB{Untargeted: true}, &FAB{Untargeted: true, Steps: 3, Restarts: 2, Seed: 5}, []string{"steps", "restarts"}},
		{&Square{}, &Square{Queries: 3, Restarts: 2, Seed: 5}, []string{"steps", "restarts"}},
		{&AutoAttack{Version: "plus"}, &AutoAttack{Version: "plus", Seed: 5}, nil},
		{otherAttack{}, otherAttack{}, nil},
	}
	for _, c := range cases {
		if got := Reads(c.in); !slices.Equal(got, c.reads) {
			t.Errorf("Reads(%T) = %v; want %v", c.in, got, c.reads)
		}
		Configure(c.in, cfg)
		if !reflect.DeepEqual(c.in, c.want) {
			t.Errorf("Configure(%T) = %+v; want %+v", c.in, c.in, c.want)
		}
	}
	// Unset settings keep the attack's own values.
	p := &PGD{Steps: 20, StepSize: 0.5, Restarts: 4}
	Configure(p, Config{Seed: 1})
	if want := (&PGD{Steps: 20, StepSize: 0.5, Restarts: 4, Seed: 1}); !reflect.DeepEqual(p, want) {
		t.Errorf("Configure(PGD, seed only) = %+v; want %+v", p, want)
	}
}

// otherAttack is an attack from elsewhere: Configure leaves it alone.
type otherAttack struct{}

func (otherAttack) Name() string { return "other" }
func (otherAttack) Run(context.Context, Model, []float32, []int64) (*Result, error) {
	return nil, fmt.Errorf("not run")
}
