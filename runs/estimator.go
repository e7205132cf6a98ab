package runs

import (
	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/internal/option"
)

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
// estimators.WithRun; it returns the name of its units. Errors wrap
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
	est, unitName := estimators.WithRun(est, s.Seed, units, s.OptionsGiven)
	return est, unitName, nil
}
