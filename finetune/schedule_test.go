package finetune

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// scheduleFixture is testdata/schedules.json: the lr (and momentum, or AdamW
// β1) in an optimizer's param group before each of len−1 scheduler steps
// and after the last, written by testdata/gen_fixtures.py with PyTorch 1.13.
type scheduleFixture struct {
	Torch     string `json:"torch"`
	Schedules []struct {
		Name      string    `json:"name"`
		BaseLR    float64   `json:"base_lr"`
		Optimizer string    `json:"optimizer"`
		LR        []float64 `json:"lr"`
		Momentum  []float64 `json:"momentum"`
	} `json:"schedules"`
}

// The schedules of the fixture, with the arguments of gen_fixtures.py.
var fixtureSchedules = map[string]Schedule{
	"multistep paper":             MultiStep{Milestones: []int{40, 80}, Gamma: 0.1},
	"multistep repeated":          MultiStep{Milestones: []int{3, 3, 7}, Gamma: 0.5},
	"cosine":                      Cosine{TMax: 10},
	"cosine eta_min":              Cosine{TMax: 7, EtaMin: 0.001},
	"onecycle sgd":                OneCycle{MaxLR: 0.2, TotalSteps: 50},
	"onecycle adamw":              OneCycle{MaxLR: 0.01, TotalSteps: 4 * 9},
	"onecycle options":            OneCycle{MaxLR: 0.1, TotalSteps: 23, PctStart: 0.25, DivFactor: 10, FinalDivFactor: 100, NoCycleMomentum: true},
	"onecycle three phase linear": OneCycle{MaxLR: 0.3, TotalSteps: 40, ThreePhase: true, Anneal: "linear", BaseMomentum: 0.8, MaxMomentum: 0.9},
}

// TestSchedulesMatchPyTorch compares every step with torch.optim.lr_scheduler.
// Go's math.Cos may differ from glibc's cos in the last bit (cos(π/10) does)
// and the recursive forms carry that on, so float64 rates agree to 1e-13
// relative; the float32 learning rates and momenta that the optimizer
// kernels actually use must be identical.
func TestSchedulesMatchPyTorch(t *testing.T) {
	var fx scheduleFixture
	readJSON(t, "testdata/schedules.json", &fx)
	if len(fx.Schedules) != len(fixtureSchedules) {
		t.Fatalf("fixture has %d schedules; the test knows %d", len(fx.Schedules), len(fixtureSchedules))
	}
	for _, c := range fx.Schedules {
		t.Run(c.Name, func(t *testing.T) {
			s := fixtureSchedules[c.Name]
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			mom := 0.9
			sc := s.Start(c.BaseLR, mom)
			for i := range c.LR {
				if i > 0 {
					sc.Step()
				}
				lr, m := sc.Rates()
				check := func(what string, got, want float64) {
					if math.Abs(got-want) > 1e-13*math.Abs(want) || float32(got) != float32(want) {
						t.Errorf("%s after %d steps = %.17g; want %.17g (torch %s)", what, i, got, want, fx.Torch)
					}
				}
				check("lr", lr, c.LR[i])
				check("momentum", m, c.Momentum[i])
			}
		})
	}
}

// TestSchedulesClosedForm checks the chained updates against PyTorch's
// closed forms (_get_closed_form_lr) at several steps.
func TestSchedulesClosedForm(t *testing.T) {
	const lr0 = 0.1
	cases := []struct {
		name  string
		s     Schedule
		steps []int
		want  func(t int) float64
	}{
		{"multistep", MultiStep{Milestones: []int{2, 5, 5}, Gamma: 0.3}, []int{0, 1, 2, 4, 5, 9},
			func(t int) float64 {
				k := 0
				for _, m := range []int{2, 5, 5} {
					if m <= t {
						k++
					}
				}
				return lr0 * math.Pow(0.3, float64(k)) // base_lr * gamma ** bisect_right(milestones, last_epoch)
			}},
		{"cosine", Cosine{TMax: 8, EtaMin: 0.002}, []int{0, 1, 3, 4, 8, 9, 13, 16, 17, 30},
			func(t int) float64 { // eta_min + (base_lr - eta_min) * (1 + cos(pi * last_epoch / T_max)) / 2
				return 0.002 + (lr0-0.002)*(1+math.Cos(math.Pi*float64(t)/8))/2
			}},
		{"onecycle", OneCycle{MaxLR: 1, TotalSteps: 100}, []int{0, 10, 29, 30, 64, 99},
			func(t int) float64 { // phase 1 ends at step 29, phase 2 at 99
				anneal := func(a, b, pct float64) float64 { return b + (a-b)/2*(math.Cos(math.Pi*pct)+1) }
				if t <= 29 {
					return anneal(1.0/25, 1, float64(t)/29)
				}
				return anneal(1, 1.0/25/1e4, float64(t-29)/70)
			}},
	}
	for _, c := range cases {
		sc := c.s.Start(lr0, 0.9)
		done := 0
		for _, step := range c.steps {
			for ; done < step; done++ {
				sc.Step()
			}
			got, _ := sc.Rates()
			if want := c.want(step); math.Abs(got-want) > 1e-12 {
				t.Errorf("%s: lr after %d steps = %.15g; want %.15g (closed form)", c.name, step, got, want)
			}
		}
	}
}

// TestAnnealStrategyJSON checks that the typed strategy keeps the JSON of
// the string it replaced ("cos" by default) and that a bad one is refused.
func TestAnnealStrategyJSON(t *testing.T) {
	for _, c := range []struct {
		s    OneCycle
		want string
	}{
		{OneCycle{MaxLR: 1}, `"anneal_strategy":"cos"`},
		{OneCycle{MaxLR: 1, Anneal: AnnealLinear}, `"anneal_strategy":"linear"`},
	} {
		b, err := json.Marshal(c.s)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), c.want) {
			t.Errorf("OneCycle JSON %s; want it to contain %s", b, c.want)
		}
	}
	if err := (OneCycle{MaxLR: 1, Anneal: "cosine"}).Validate(); err == nil || !strings.Contains(err.Error(), `anneal strategy "cosine"; want cos or linear`) {
		t.Errorf("OneCycle with anneal strategy cosine: %v; want refused", err)
	}
}
