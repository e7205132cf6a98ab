package finetune

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// Schedule sets the learning rate, and for OneCycle the momentum, before
// every optimizer step, exactly as the torch.optim.lr_scheduler class of the
// same name (PyTorch 1.13) does with its chained, step-by-step updates in
// float64. Options.ScheduleEvery says whether a step is an epoch or a
// batch. A nil Schedule keeps the optimizer's own rates (constant).
type Schedule interface {
	// Start returns the schedule positioned before its first step, for an
	// optimizer configured with learning rate lr and momentum.
	Start(lr, momentum float64) Scheduler
	// Validate reports settings PyTorch would reject.
	Validate() error
}

// Scheduler is a Schedule in progress. The loop reads Rates before each
// optimizer step and calls Step once per epoch or batch; a resumed run
// replays the Step calls, so a Scheduler needs no saved state.
type Scheduler interface {
	// Rates returns the learning rate and momentum now in force.
	Rates() (lr, momentum float64)
	// Step advances by one scheduler.step().
	Step()
}

// constant is the Scheduler of a nil Schedule.
type constant struct{ lr, momentum float64 }

func (c constant) Rates() (float64, float64) { return c.lr, c.momentum }
func (constant) Step()                       {}

// MultiStep is MultiStepLR: the learning rate is multiplied by Gamma at
// each milestone step (a milestone listed twice multiplies by Gamma²). The
// paper's pre-training: MultiStep{Milestones: []int{40, 80}, Gamma: 0.1}.
type MultiStep struct {
	Milestones []int   `json:"milestones"`
	Gamma      float64 `json:"gamma"`
}

// MarshalJSON writes s's fields with "kind": "multistep".
func (s MultiStep) MarshalJSON() ([]byte, error) {
	type plain MultiStep
	return json.Marshal(struct {
		Kind string `json:"kind"`
		plain
	}{"multistep", plain(s)})
}

// Validate checks that the milestones are positive and in increasing order.
func (s MultiStep) Validate() error {
	for i, m := range s.Milestones {
		if m <= 0 || i > 0 && m < s.Milestones[i-1] {
			return fmt.Errorf("multistep: milestones %v must be positive and non-decreasing", s.Milestones)
		}
	}
	return nil
}

// Start returns a MultiStep scheduler.
func (s MultiStep) Start(lr, momentum float64) Scheduler {
	return &multiStep{s: s, lr: lr, momentum: momentum}
}

type multiStep struct {
	s            MultiStep
	t            int
	lr, momentum float64
}

func (m *multiStep) Rates() (float64, float64) { return m.lr, m.momentum }

func (m *multiStep) Step() {
	m.t++
	if k := int64(countOf(m.s.Milestones, m.t)); k > 0 {
		m.lr *= powInt(m.s.Gamma, k) // group['lr'] * gamma ** milestones[last_epoch]
	}
}

func countOf(xs []int, x int) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

// Cosine is CosineAnnealingLR: the learning rate follows half a cosine from
// its initial value down to EtaMin over TMax steps, then back up, and so
// on, computed with PyTorch's recursive formula (which equals the closed
// form EtaMin + (lr0−EtaMin)(1+cos(π t/TMax))/2 up to rounding).
type Cosine struct {
	TMax   int     `json:"t_max"`
	EtaMin float64 `json:"eta_min,omitempty"`
}

// MarshalJSON writes s's fields with "kind": "cosine".
func (s Cosine) MarshalJSON() ([]byte, error) {
	type plain Cosine
	return json.Marshal(struct {
		Kind string `json:"kind"`
		plain
	}{"cosine", plain(s)})
}

// Validate checks that TMax is positive.
func (s Cosine) Validate() error {
	if s.TMax <= 0 {
		return fmt.Errorf("cosine: t_max %d must be positive", s.TMax)
	}
	return nil
}

// Start returns a Cosine scheduler.
func (s Cosine) Start(lr, momentum float64) Scheduler {
	return &cosine{s: s, base: lr, lr: lr, momentum: momentum}
}

type cosine struct {
	s                  Cosine
	t                  int
	base, lr, momentum float64
}

func (c *cosine) Rates() (float64, float64) { return c.lr, c.momentum }

func (c *cosine) Step() {
	c.t++
	t, T, eta := float64(c.t), float64(c.s.TMax), c.s.EtaMin
	// Explicit float64 conversions keep Go from fusing a·b+c (Python rounds each step).
	if floorMod(c.t-1-c.s.TMax, 2*c.s.TMax) == 0 {
		c.lr += float64((c.base-eta)*(1-math.Cos(math.Pi/T))) / 2
		return
	}
	c.lr = float64((1+math.Cos(math.Pi*t/T))/(1+math.Cos(math.Pi*(t-1)/T))*(c.lr-eta)) + eta
}

// floorMod is Python's a % b for b > 0.
func floorMod(a, b int) int {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// OneCycle is OneCycleLR: the learning rate rises from MaxLR/DivFactor to
// MaxLR over the first PctStart of TotalSteps and then falls to
// MaxLR/DivFactor/FinalDivFactor, while the momentum (SGD's momentum,
// AdamW's β1) falls from MaxMomentum to BaseMomentum and rises back.
// Zero fields take PyTorch's defaults: PctStart 0.3, DivFactor 25,
// FinalDivFactor 1e4, BaseMomentum 0.85, MaxMomentum 0.95, Anneal "cos";
// TotalSteps 0 means every scheduler step of a trial (Epochs, or Epochs ×
// batches per epoch when the schedule steps every batch). The optimizer's
// own learning rate and momentum are ignored, as in PyTorch.
type OneCycle struct {
	MaxLR          float64 `json:"max_lr"`
	TotalSteps     int     `json:"total_steps,omitempty"`
	PctStart       float64 `json:"pct_start,omitempty"`
	DivFactor      float64 `json:"div_factor,omitempty"`
	FinalDivFactor float64 `json:"final_div_factor,omitempty"`
	// Anneal is AnnealCos ("cos", default) or AnnealLinear ("linear").
	Anneal AnnealStrategy `json:"anneal_strategy,omitempty"`
	// NoCycleMomentum leaves the momentum alone (PyTorch's cycle_momentum=False).
	NoCycleMomentum bool    `json:"no_cycle_momentum,omitempty"`
	BaseMomentum    float64 `json:"base_momentum,omitempty"`
	MaxMomentum     float64 `json:"max_momentum,omitempty"`
	ThreePhase      bool    `json:"three_phase,omitempty"`
}

// AnnealStrategy is how OneCycle moves between its learning rates
// (PyTorch's anneal_strategy); it marshals as its name.
type AnnealStrategy string

const (
	AnnealCos    AnnealStrategy = "cos"
	AnnealLinear AnnealStrategy = "linear"
)

// MarshalJSON writes s's fields, defaults filled in, with "kind": "onecycle".
func (s OneCycle) MarshalJSON() ([]byte, error) {
	type plain OneCycle
	return json.Marshal(struct {
		Kind string `json:"kind"`
		plain
	}{"onecycle", plain(s.withDefaults())})
}

func (s OneCycle) withDefaults() OneCycle {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&s.PctStart, 0.3)
	def(&s.DivFactor, 25)
	def(&s.FinalDivFactor, 1e4)
	def(&s.BaseMomentum, 0.85)
	def(&s.MaxMomentum, 0.95)
	if s.Anneal == "" {
		s.Anneal = AnnealCos
	}
	return s
}

// Validate applies OneCycleLR's checks.
func (s OneCycle) Validate() error {
	s = s.withDefaults()
	switch {
	case !(s.MaxLR > 0):
		return fmt.Errorf("onecycle: max_lr %v must be positive", s.MaxLR)
	case s.TotalSteps < 0:
		return fmt.Errorf("onecycle: total_steps %d must be positive", s.TotalSteps)
	case !(s.PctStart >= 0 && s.PctStart <= 1):
		return fmt.Errorf("onecycle: pct_start %v must be in [0,1]", s.PctStart)
	case s.Anneal != AnnealCos && s.Anneal != AnnealLinear:
		return fmt.Errorf("onecycle: anneal strategy %q; want cos or linear", s.Anneal)
	}
	return nil
}

// Start returns a OneCycle scheduler; lr is ignored and momentum is kept
// only when NoCycleMomentum is set. TotalSteps must be set by now.
func (s OneCycle) Start(lr, momentum float64) Scheduler {
	s = s.withDefaults()
	initial := s.MaxLR / s.DivFactor
	o := &oneCycle{s: s, momentum: momentum}
	o.lrs = map[string]float64{"initial": initial, "max": s.MaxLR, "min": initial / s.FinalDivFactor}
	T := float64(s.TotalSteps)
	if s.ThreePhase {
		o.phases = []phase{
			{float64(s.PctStart*T) - 1, "initial", "max", s.MaxMomentum, s.BaseMomentum},
			{float64(2*s.PctStart*T) - 2, "max", "initial", s.BaseMomentum, s.MaxMomentum},
			{T - 1, "initial", "min", s.MaxMomentum, s.MaxMomentum},
		}
	} else {
		o.phases = []phase{
			{float64(s.PctStart*T) - 1, "initial", "max", s.MaxMomentum, s.BaseMomentum},
			{T - 1, "max", "min", s.BaseMomentum, s.MaxMomentum},
		}
	}
	o.set()
	return o
}

type phase struct {
	end              float64
	startLR, endLR   string
	startMom, endMom float64
}

type oneCycle struct {
	s            OneCycle
	phases       []phase
	lrs          map[string]float64
	t            int
	lr, momentum float64
}

func (o *oneCycle) Rates() (float64, float64) { return o.lr, o.momentum }

func (o *oneCycle) Step() {
	o.t++
	o.set()
}

// set computes the rates at step o.t (OneCycleLR.get_lr).
func (o *oneCycle) set() {
	step := float64(o.t)
	start := 0.0
	for i, p := range o.phases {
		if step <= p.end || i == len(o.phases)-1 {
			pct := (step - start) / (p.end - start)
			o.lr = o.anneal(o.lrs[p.startLR], o.lrs[p.endLR], pct)
			if !o.s.NoCycleMomentum {
				o.momentum = o.anneal(p.startMom, p.endMom, pct)
			}
			return
		}
		start = p.end
	}
}

func (o *oneCycle) anneal(start, end, pct float64) float64 {
	if o.s.Anneal == AnnealLinear {
		return float64((end-start)*pct) + start
	}
	cosOut := math.Cos(math.Pi*pct) + 1
	return end + float64((start-end)/2.0*cosOut)
}

// scheduleSteps returns how many scheduler steps one trial takes.
func scheduleSteps(epochs, batches int, everyBatch bool) int {
	if everyBatch {
		return epochs * batches
	}
	return epochs
}

// resolveSchedule fills in OneCycle.TotalSteps and checks that the
// schedule covers a trial of steps scheduler steps.
func resolveSchedule(s Schedule, steps int) (Schedule, error) {
	if s == nil {
		return nil, nil
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	switch oc := s.(type) {
	case OneCycle:
		if oc.TotalSteps == 0 {
			oc.TotalSteps = steps
		}
		if oc.TotalSteps < steps {
			return nil, fmt.Errorf("onecycle: total_steps %d is less than the %d steps of a trial", oc.TotalSteps, steps)
		}
		return oc, nil
	case MultiStep:
		oc.Milestones = slices.Clone(oc.Milestones)
		return oc, nil
	}
	return s, nil
}
