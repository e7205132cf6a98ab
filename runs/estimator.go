package runs

import "github.com/semirobust/srtool/estimators"

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
