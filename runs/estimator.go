package runs

import (
	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/internal/option"
)

// ConfigureEstimator gives est the run's seed and units and returns it with
// the name of its units ("bits", "nats", or "unitless" for estimators that
// measure no information). A seed set in est's own options (keepSeed and a
// nonzero Seed) is kept.
func ConfigureEstimator(est estimators.Estimator, seed uint64, units estimators.Units, keepSeed bool) (estimators.Estimator, string) {
	setSeed := func(s *uint64) {
		if !keepSeed || *s == 0 {
			*s = seed
		}
	}
	switch e := est.(type) {
	case estimators.EDGE:
		setSeed(&e.Seed)
		e.Units = units
		return e, units.String()
	case estimators.KSG:
		setSeed(&e.Seed)
		e.Units = units
		return e, units.String()
	case estimators.Gaussian:
		e.Units = units
		return e, units.String()
	case estimators.CKA:
		setSeed(&e.Seed)
		return e, "unitless"
	case estimators.HSIC:
		setSeed(&e.Seed)
		return e, "unitless"
	}
	return est, "unitless"
}

// EstimatorSpec is an estimator as the command line writes it: its Name
// and Options (JSON, "" for its defaults; OptionsGiven when --options was
// given, whose seed is then kept), the run's Seed, Nats for nats instead of
// bits, and the repetition counts Permutations and Bootstrap, each 0
// (none) or 2 to estimators.MaxReps.
type EstimatorSpec struct {
	Name, Options           string
	OptionsGiven            bool
	Seed                    uint64
	Nats                    bool
	Permutations, Bootstrap int
}

// New checks s and builds its estimator (estimators.New), configured by
// ConfigureEstimator; it returns the name of its units. Errors wrap
// option.Err.
func (s EstimatorSpec) New() (estimators.Estimator, string, error) {
	for _, r := range []struct {
		flag string
		n    int
	}{{"permutations", s.Permutations}, {"bootstrap", s.Bootstrap}} {
		if r.n < 0 || r.n == 1 || r.n > estimators.MaxReps {
			return nil, "", option.Errorf("--%s %d: want 0 (none) or 2 to %d", r.flag, r.n, estimators.MaxReps)
		}
	}
	est, err := estimators.New(s.Name, []byte(s.Options))
	if err != nil {
		return nil, "", option.Errorf("--options: %v", err)
	}
	units := estimators.Bits
	if s.Nats {
		units = estimators.Nats
	}
	est, unitName := ConfigureEstimator(est, s.Seed, units, s.OptionsGiven)
	return est, unitName, nil
}
