package estimators

// WithRun gives est a run's seed and units and returns it with the name of
// its units ("bits", "nats", or "unitless" for estimators that measure no
// information). With keepSeed, a nonzero Seed already in est's options (set
// by the user) is kept; otherwise the run's seed replaces it. Estimators
// without a seed or units come back unchanged.
func WithRun(est Estimator, seed uint64, units Units, keepSeed bool) (Estimator, string) {
	setSeed := func(s *uint64) {
		if !keepSeed || *s == 0 {
			*s = seed
		}
	}
	switch e := est.(type) {
	case EDGE:
		setSeed(&e.Seed)
		e.Units = units
		return e, units.String()
	case KSG:
		setSeed(&e.Seed)
		e.Units = units
		return e, units.String()
	case Gaussian:
		e.Units = units
		return e, units.String()
	case CKA:
		setSeed(&e.Seed)
		return e, "unitless"
	case HSIC:
		setSeed(&e.Seed)
		return e, "unitless"
	}
	return est, "unitless"
}
