package attacks

// Config holds the settings every attack of this package may share: what
// srtool's --steps, --alpha, --restarts, --no-random-start and --seed set.
// Zero (or false) leaves an attack's own value, so an attack keeps its
// documented default unless a setting is given; only Seed always applies.
type Config struct {
	// Steps is the number of iterations of one run (queries for Square);
	// 0 (or less): the attack's own.
	Steps int
	// StepSize is α of the fixed-step attacks (PGD, MI-FGSM); 0 (or less):
	// the attack's own.
	StepSize float32
	// Restarts is the number of runs from fresh starts; 0 (or less): the
	// attack's own.
	Restarts int
	// NoRandomStart starts PGD at the clean input; false keeps the attack's
	// own start (I-FGSM/BIM never starts at random).
	NoRandomStart bool
	// Seed is every attack's seed, also where the attack is deterministic
	// and only records it, and an ensemble's components' seed.
	Seed uint64
}

// The names of Config's settings in a Configurable's Reads, the same as
// srtool's flags for them. The seed is read by every attack and not listed.
const (
	ConfigSteps         = "steps"
	ConfigStepSize      = "alpha"
	ConfigRestarts      = "restarts"
	ConfigNoRandomStart = "no-random-start"
)

// Configurable is implemented by the attacks of this package. Configure
// applies the settings of a Config the attack has; Reads lists them (of
// ConfigSteps, ConfigStepSize, ConfigRestarts, ConfigNoRandomStart) as the
// attack is now.
type Configurable interface {
	Configure(Config)
	Reads() []string
}

var (
	_ Configurable = (*PGD)(nil)
	_ Configurable = (*FGSM)(nil)
	_ Configurable = (*MIFGSM)(nil)
	_ Configurable = (*CW)(nil)
	_ Configurable = (*APGD)(nil)
	_ Configurable = (*APGDT)(nil)
	_ Configurable = (*FAB)(nil)
	_ Configurable = (*Square)(nil)
	_ Configurable = (*AutoAttack)(nil)
)

// Configure applies cfg to a (Configurable); an attack from elsewhere is
// left as it is.
func Configure(a Attack, cfg Config) {
	if c, ok := a.(Configurable); ok {
		c.Configure(cfg)
	}
}

// Reads lists the settings Configure would apply to a (Configurable); nil
// for an attack from elsewhere and for attacks that read only the seed.
func Reads(a Attack) []string {
	if c, ok := a.(Configurable); ok {
		return c.Reads()
	}
	return nil
}

// setPositive sets *dst to v when v is given (> 0).
func setPositive[T int | float32](dst *T, v T) {
	if v > 0 {
		*dst = v
	}
}

// Configure sets the seed, Steps, StepSize and Restarts where given, and
// NoRandomStart when cfg asks for it (it never turns a clean start random).
func (a *PGD) Configure(cfg Config) {
	a.Seed = cfg.Seed
	setPositive(&a.Steps, cfg.Steps)
	setPositive(&a.StepSize, cfg.StepSize)
	setPositive(&a.Restarts, cfg.Restarts)
	a.NoRandomStart = a.NoRandomStart || cfg.NoRandomStart
}

// Reads lists steps, alpha and restarts, and no-random-start unless the
// start is already clean (I-FGSM/BIM).
func (a *PGD) Reads() []string {
	if a.NoRandomStart {
		return []string{ConfigSteps, ConfigStepSize, ConfigRestarts}
	}
	return []string{ConfigSteps, ConfigStepSize, ConfigRestarts, ConfigNoRandomStart}
}

// Configure sets the seed: FGSM is one step of size ε.
func (a *FGSM) Configure(cfg Config) { a.Seed = cfg.Seed }

// Reads lists nothing: FGSM reads only the seed.
func (a *FGSM) Reads() []string { return nil }

// Configure sets the seed, and Steps and StepSize where given.
func (a *MIFGSM) Configure(cfg Config) {
	a.Seed = cfg.Seed
	setPositive(&a.Steps, cfg.Steps)
	setPositive(&a.StepSize, cfg.StepSize)
}

// Reads lists steps and alpha.
func (a *MIFGSM) Reads() []string { return []string{ConfigSteps, ConfigStepSize} }

// Configure sets the seed, and Steps (Adam steps per c) where given.
func (a *CW) Configure(cfg Config) {
	a.Seed = cfg.Seed
	setPositive(&a.Steps, cfg.Steps)
}

// Reads lists steps.
func (a *CW) Reads() []string { return []string{ConfigSteps} }

// Configure sets the seed, and Steps and Restarts where given.
func (a *APGD) Configure(cfg Config) {
	a.Seed = cfg.Seed
	setPositive(&a.Steps, cfg.Steps)
	setPositive(&a.Restarts, cfg.Restarts)
}

// Reads lists steps and restarts.
func (a *APGD) Reads() []string { return []string{ConfigSteps, ConfigRestarts} }

// Configure sets the seed, and Steps and Restarts (per target) where given.
func (a *APGDT) Configure(cfg Config) {
	a.Seed = cfg.Seed
	setPositive(&a.Steps, cfg.Steps)
	setPositive(&a.Restarts, cfg.Restarts)
}

// Reads lists steps and restarts.
func (a *APGDT) Reads() []string { return []string{ConfigSteps, ConfigRestarts} }

// Configure sets the seed, and Steps and Restarts where given.
func (a *FAB) Configure(cfg Config) {
	a.Seed = cfg.Seed
	setPositive(&a.Steps, cfg.Steps)
	setPositive(&a.Restarts, cfg.Restarts)
}

// Reads lists steps and restarts.
func (a *FAB) Reads() []string { return []string{ConfigSteps, ConfigRestarts} }

// Configure sets the seed, and Queries (from Steps) and Restarts where given.
func (a *Square) Configure(cfg Config) {
	a.Seed = cfg.Seed
	setPositive(&a.Queries, cfg.Steps)
	setPositive(&a.Restarts, cfg.Restarts)
}

// Reads lists steps (queries) and restarts.
func (a *Square) Reads() []string { return []string{ConfigSteps, ConfigRestarts} }

// Configure sets the seed, which Components hands to every component; the
// components keep their recipe's steps, restarts and starts.
func (a *AutoAttack) Configure(cfg Config) { a.Seed = cfg.Seed }

// Reads lists nothing: an ensemble reads only the seed.
func (a *AutoAttack) Reads() []string { return nil }
