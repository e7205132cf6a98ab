package runs

import "github.com/semirobust/srtool/attacks"

// Settings are the generic attack settings of the command line, applied to
// every listed attack by Configure. Zero Steps, Alpha or Restarts keep each
// attack's default.
type Settings struct {
	Steps         int     // iterations (Square: queries)
	Alpha         float32 // step size of PGD and MI-FGSM
	Restarts      int
	Seed          uint64
	NoRandomStart bool // PGD starts from the clean input
}

// Configure applies s to a: the seed always, steps/alpha/restarts where the
// attack has them and they are set (> 0), and NoRandomStart for PGD.
func Configure(a attacks.Attack, s Settings) {
	setInt := func(dst *int, v int) {
		if v > 0 {
			*dst = v
		}
	}
	setStep := func(dst *float32) {
		if s.Alpha > 0 {
			*dst = s.Alpha
		}
	}
	switch t := a.(type) {
	case *attacks.PGD:
		t.Seed = s.Seed
		setInt(&t.Steps, s.Steps)
		setStep(&t.StepSize)
		setInt(&t.Restarts, s.Restarts)
		t.NoRandomStart = t.NoRandomStart || s.NoRandomStart
	case *attacks.FGSM:
		t.Seed = s.Seed
	case *attacks.MIFGSM:
		t.Seed = s.Seed
		setInt(&t.Steps, s.Steps)
		setStep(&t.StepSize)
	case *attacks.APGD:
		t.Seed = s.Seed
		setInt(&t.Steps, s.Steps)
		setInt(&t.Restarts, s.Restarts)
	case *attacks.APGDT:
		t.Seed = s.Seed
		setInt(&t.Steps, s.Steps)
		setInt(&t.Restarts, s.Restarts)
	case *attacks.FAB:
		t.Seed = s.Seed
		setInt(&t.Steps, s.Steps)
		setInt(&t.Restarts, s.Restarts)
	case *attacks.Square:
		t.Seed = s.Seed
		setInt(&t.Queries, s.Steps)
		setInt(&t.Restarts, s.Restarts)
	case *attacks.CW:
		t.Seed = s.Seed
		setInt(&t.Steps, s.Steps)
	case *attacks.AutoAttack:
		t.Seed = s.Seed
	}
}

// SettingsRead lists the Settings fields Configure applies to a, by their
// command-line names (steps, alpha, restarts, no-random-start): a setting
// that no listed attack reads is a mistake worth refusing.
func SettingsRead(a attacks.Attack) []string {
	switch t := a.(type) {
	case *attacks.PGD:
		if t.NoRandomStart { // I-FGSM/BIM: no random start to turn off
			return []string{"steps", "alpha", "restarts"}
		}
		return []string{"steps", "alpha", "restarts", "no-random-start"}
	case *attacks.MIFGSM:
		return []string{"steps", "alpha"}
	case *attacks.CW:
		return []string{"steps"}
	case *attacks.APGD, *attacks.APGDT, *attacks.FAB, *attacks.Square:
		return []string{"steps", "restarts"}
	}
	return nil
}
