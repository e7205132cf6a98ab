package estimators

import (
	"fmt"
	"math"
)

// Upper bounds on the counts in options: far above any useful setting and
// low enough that a typo (or a hostile options file) cannot make a run
// allocate or loop without end.
const (
	// MaxEDGEL bounds EDGE.L, the number of base estimators (the
	// reference's default is 10).
	MaxEDGEL = 1000
	// MaxKSGK bounds KSG.K, the neighbour order (3 to 10 in practice).
	MaxKSGK = 10000
	// MaxReps bounds the repetitions of PermutationNull (P) and
	// BootstrapCI (B).
	MaxReps = 100000
)

// Validate reports whether est's options are in range, with one error that
// names the first bad option and wraps ErrOption: negative, zero where a
// positive value is needed, non-finite, absurdly large, or a string that
// is not one of the choices. New validates what it decodes and every
// Estimate checks the same, so an out-of-range option never reaches the
// computation.
func Validate(est Estimator) error {
	if v, ok := est.(interface{ validate() error }); ok {
		return v.validate()
	}
	return nil
}

// finite reports a NaN or ±Inf option value.
func finite(est, name string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%s: %s = %v must be finite: %w", est, name, v, ErrOption)
	}
	return nil
}

func (e EDGE) validate() error {
	_, err := e.withDefaults()
	return err
}

func (o KSG) validate() error {
	if o.K < 0 || o.K > MaxKSGK {
		return fmt.Errorf("ksg: K = %d outside 1..%d (0 means 5): %w", o.K, MaxKSGK, ErrOption)
	}
	if err := finite("ksg", "Jitter", o.Jitter); err != nil {
		return err
	}
	return o.Units.check()
}

func (o Gaussian) validate() error {
	if o.Shrinkage < 0 || o.Shrinkage > 1 || math.IsNaN(o.Shrinkage) {
		return fmt.Errorf("gauss: Shrinkage = %v outside [0, 1]: %w", o.Shrinkage, ErrOption)
	}
	return o.Units.check()
}

// validateKernel checks the options CKA and HSIC share.
func validateKernel(est, kernel string, sigma float64) error {
	switch kernel {
	case "", "linear", "rbf":
	default:
		return fmt.Errorf("%s: Kernel %q (want linear or rbf): %w", est, kernel, ErrOption)
	}
	if sigma < 0 || math.IsNaN(sigma) || math.IsInf(sigma, 0) {
		return fmt.Errorf("%s: Sigma = %v must be finite and ≥ 0 (0 = median heuristic): %w", est, sigma, ErrOption)
	}
	return nil
}

func (o CKA) validate() error  { return validateKernel("cka", o.Kernel, o.Sigma) }
func (o HSIC) validate() error { return validateKernel("hsic", o.Kernel, o.Sigma) }

func (o NOCCO) validate() error {
	if o.Sigma < 0 || math.IsNaN(o.Sigma) || math.IsInf(o.Sigma, 0) {
		return fmt.Errorf("nocco: Sigma = %v must be finite and ≥ 0 (0 = the authors' median path): %w", o.Sigma, ErrOption)
	}
	if o.Epsilon < 0 || math.IsNaN(o.Epsilon) || math.IsInf(o.Epsilon, 0) {
		return fmt.Errorf("nocco: Epsilon = %v must be finite and ≥ 0 (0 means 1e-5): %w", o.Epsilon, ErrOption)
	}
	return nil
}

// checkReps checks a repetition count (P or B) after its default applies.
func checkReps(what string, n int) error {
	if n < 2 || n > MaxReps {
		return fmt.Errorf("%s = %d outside 2..%d: %w", what, n, MaxReps, ErrOption)
	}
	return nil
}
