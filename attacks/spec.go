package attacks

import (
	"math"
	"strings"

	"github.com/semirobust/srtool/internal/number"
	"github.com/semirobust/srtool/internal/option"
)

// ErrOption marks an error in attack settings as the command line gives
// them (a Spec): srtool reports such errors as usage errors, in words that
// name its flags. Test with errors.Is. It is option.Err, the ErrOption of
// every package that checks settings.
var ErrOption = option.Err

func optionf(format string, a ...any) error { return option.Errorf(format, a...) }

// Spec is the threat model and the generic attack settings as written on
// srtool's command line (--eps, --norm, --alpha, --steps, --restarts,
// --no-random-start, --seed): ε and α are numbers or fractions such as
// 8/255, in pixel units of inputs in [0,1].
type Spec struct {
	Eps   string // the radius ε
	Norm  string // linf, l2 or l1 (ParseNorm)
	Alpha string // α; "" = each attack's own
	// Steps and Restarts count only when Given names them ("steps",
	// "restarts"); then they must be at least 1.
	Steps, Restarts int
	NoRandomStart   bool
	Seed            uint64
	// Given holds the names of the settings given explicitly, of
	// ConfigSteps, ConfigStepSize, ConfigRestarts and ConfigNoRandomStart:
	// Build refuses one that no attack of its list reads.
	Given map[string]bool
}

// Params are a Spec read and checked; zero Alpha, Steps and Restarts leave
// each attack's own.
type Params struct {
	Spec     Spec // as written, for messages
	Eps      float64
	Norm     Norm
	Alpha    float64
	Steps    int
	Restarts int
}

// Parse reads and checks s: ε > 0 (at most 1 for L∞; CheckEps bounds L2
// and L1 by the input size), α > 0, Steps and Restarts at least 1 where
// given. Errors wrap ErrOption.
func (s Spec) Parse() (Params, error) {
	p := Params{Spec: s}
	var err error
	if p.Norm, err = ParseNorm(s.Norm); err != nil {
		return p, optionf("--norm: %v", err)
	}
	if p.Eps, err = number.Parse(s.Eps); err != nil {
		return p, optionf("--eps: %v", err)
	}
	if p.Eps <= 0 {
		return p, optionf("--eps %s: ε must be greater than 0 (pixel units of inputs in [0,1], e.g. 8/255)", s.Eps)
	}
	if p.Norm == LInf && p.Eps > 1 {
		return p, optionf("--eps %s is above 1, the whole [0,1] pixel range (pass 8/255, not 8)", s.Eps)
	}
	if s.Alpha != "" {
		if p.Alpha, err = number.Parse(s.Alpha); err != nil || p.Alpha <= 0 {
			return p, optionf("--alpha must be a positive number, got %q", s.Alpha)
		}
	}
	if s.Given[ConfigSteps] {
		if p.Steps = s.Steps; p.Steps < 1 {
			return p, optionf("--steps %d: must be at least 1 (leave it out for each attack's default)", p.Steps)
		}
	}
	if s.Given[ConfigRestarts] {
		if p.Restarts = s.Restarts; p.Restarts < 1 {
			return p, optionf("--restarts %d: must be at least 1 (leave it out for each attack's default)", p.Restarts)
		}
	}
	return p, nil
}

// CheckEps refuses an ε above the largest distance between two inputs of d
// values in [0,1]: 1 (L∞, checked by Parse), √d (L2), d (L1). The error
// wraps ErrOption.
func (p Params) CheckEps(d int) error {
	switch p.Norm {
	case L2:
		if limit := math.Sqrt(float64(d)); p.Eps > limit {
			return optionf("--eps %s is above √%d = %.4g, the largest L2 distance between two inputs in [0,1]^%d", p.Spec.Eps, d, limit, d)
		}
	case L1:
		if p.Eps > float64(d) {
			return optionf("--eps %s is above %d, the largest L1 distance between two inputs in [0,1]^%d", p.Spec.Eps, d, d)
		}
	}
	return nil
}

// Config is the Config that p and its Spec set.
func (p Params) Config() Config {
	return Config{Steps: p.Steps, StepSize: float32(p.Alpha), Restarts: p.Restarts, Seed: p.Spec.Seed, NoRandomStart: p.Spec.NoRandomStart}
}

// Attack is the attack called name (ByName) at p's ε and norm, configured
// with p.Config. The error is ByName's.
func (p Params) Attack(name string) (Attack, error) {
	a, err := ByName(name, float32(p.Eps), p.Spec.Norm)
	if err != nil {
		return nil, err
	}
	Configure(a, p.Config())
	return a, nil
}

// Build parses s and returns the configured attacks of list, a
// comma-separated list of names (Names). An unknown name, an empty list and
// a setting of s.Given that no listed attack reads are errors that wrap
// ErrOption, as are Parse's.
func Build(list string, s Spec) ([]Attack, error) {
	p, err := s.Parse()
	if err != nil {
		return nil, err
	}
	var out []Attack
	reads := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		a, err := ByName(name, float32(p.Eps), s.Norm)
		if err != nil {
			return nil, optionf("--attack %s: %v", name, err)
		}
		for _, f := range Reads(a) { // before Configure: what the attack reads by default
			reads[f] = true
		}
		Configure(a, p.Config())
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, optionf("--attack names no attack; choose from %s", strings.Join(Names(), ", "))
	}
	for _, f := range []string{ConfigSteps, ConfigStepSize, ConfigRestarts, ConfigNoRandomStart} {
		if s.Given[f] && !reads[f] {
			return nil, optionf("--%s applies to none of --attack %s (see `srtool attack --help` for which attacks read it)", f, list)
		}
	}
	return out, nil
}
