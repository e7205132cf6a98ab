package finetune

import (
	"encoding/json"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
)

// optimFixture is testdata/optim.json, written by testdata/gen_fixtures.py
// with PyTorch 1.13 (torch.optim.SGD and AdamW, CPU, float32).
type optimFixture struct {
	Torch string `json:"torch"`
	Cases []struct {
		Name    string      `json:"name"`
		Param   []float32   `json:"param"`
		Grads   [][]float32 `json:"grads"`
		After   [][]float32 `json:"after"`
		LRs     []float64   `json:"lrs"`
		Momenta []float64   `json:"momenta"`
	} `json:"cases"`
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The optimizers in the fixture, built with the same arguments as in
// gen_fixtures.py.
var fixtureOptimizers = map[string]Optimizer{
	"sgd plain":                    SGD{LR: 0.1},
	"sgd wd":                       SGD{LR: 0.01, WeightDecay: 5e-4},
	"sgd momentum wd (paper)":      SGD{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4},
	"sgd momentum dampening":       SGD{LR: 0.05, Momentum: 0.8, Dampening: 0.3},
	"sgd nesterov wd":              SGD{LR: 0.03, Momentum: 0.9, WeightDecay: 1e-3, Nesterov: true},
	"sgd changing lr and momentum": SGD{LR: 0.1, Momentum: 0.9, WeightDecay: 5e-4},
	"adamw defaults":               AdamW{LR: 1e-3, WeightDecay: 1e-2},
	"adamw lr wd eps":              AdamW{LR: 0.01, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, WeightDecay: 0.05},
	"adamw no wd":                  AdamW{LR: 3e-3},
	"adamw changing lr and beta1":  AdamW{LR: 1e-3, WeightDecay: 0.01},
}

// TestOptimizersMatchPyTorch checks every value after every step bit for
// bit against torch.optim on CPU.
func TestOptimizersMatchPyTorch(t *testing.T) {
	var fx optimFixture
	readJSON(t, "testdata/optim.json", &fx)
	if len(fx.Cases) != len(fixtureOptimizers) {
		t.Fatalf("fixture has %d cases; the test knows %d", len(fx.Cases), len(fixtureOptimizers))
	}
	for _, c := range fx.Cases {
		t.Run(c.Name, func(t *testing.T) {
			opt, ok := fixtureOptimizers[c.Name]
			if !ok {
				t.Fatalf("no optimizer for fixture case %q", c.Name)
			}
			if err := opt.Validate(); err != nil {
				t.Fatal(err)
			}
			p := Params{"w": append([]float32(nil), c.Param...)}
			var st OptimizerState
			lr, mom := opt.Rates()
			mismatches := 0
			for s, g := range c.Grads {
				if c.LRs != nil {
					lr, mom = c.LRs[s], c.Momenta[s]
				}
				if err := opt.Update(&st, p, Params{"w": g}, lr, mom); err != nil {
					t.Fatal(err)
				}
				for i, got := range p["w"] {
					want := c.After[s][i]
					if math.Float32bits(got) != math.Float32bits(want) && mismatches < 5 {
						mismatches++
						t.Errorf("step %d value %d = %.9g (%#08x); want %.9g (%#08x) (torch %s)", s+1, i, got, math.Float32bits(got), want, math.Float32bits(want), fx.Torch)
					}
				}
			}
			if st.Steps != int64(len(c.Grads)) {
				t.Errorf("Steps = %d; want %d", st.Steps, len(c.Grads))
			}
		})
	}
}

// TestFMA32 checks fma32 against a·b+c computed exactly with math/big and
// rounded once to float32 (ties to even), on random operands of mixed
// exponents and on sums that cancel or lie on float32 midpoints.
func TestFMA32(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rnd := func() float32 {
		return float32(rng.NormFloat64() * math.Ldexp(1, rng.IntN(40)-20))
	}
	cases := [][3]float32{
		{1 + 1.0/(1<<12), 1 + 1.0/(1<<12), -1},                             // a·b needs 25 bits
		{1 + 1.0/(1<<23), 1 - 1.0/(1<<23), -1},                             // cancels to −2⁻⁴⁶
		{1, 1, 1.0 / (1 << 24)},                                            // a tie: 1 + 2⁻²⁴ rounds to 1
		{1, 1 + 1.0/(1<<23), 1.0 / (1 << 24)},                              // a tie that rounds up to even
		{3, 1.0 / (1 << 25), 1},                                            // 1 + 3·2⁻²⁵, just below a tie
		{1 + 1.0/(1<<23), -(1 - 1.0/(1<<23)) / (1 << 24), 1 + 1.0/(1<<23)}, // 1 + 2⁻²⁴ + 2⁻⁷⁰: float64 would round onto the tie first
		{0.1, -10, 1},                // c ≈ −a·b
		{float32(math.Inf(1)), 1, 1}, // infinities pass through
		{1e-20, 1e-20, 1e-45},        // float32 subnormal results
		{-3e-39, 1, 1.5e-45},
		{1.5e-45, 0.5, 0}, // half the smallest subnormal: a tie at zero
	}
	for range 20000 { // random subnormal sums
		cases = append(cases, [3]float32{rnd() * 1e-20, rnd() * 1e-20, rnd() * 1e-40})
	}
	for range 100000 {
		cases = append(cases, [3]float32{rnd(), rnd(), rnd()})
	}
	for _, c := range cases {
		a, b, cc := c[0], c[1], c[2]
		got := fma32(a, b, cc)
		var want float32
		if math.IsInf(float64(a), 0) {
			want = a
		} else {
			x := new(big.Float).SetPrec(300).SetFloat64(float64(a))
			x.Mul(x, new(big.Float).SetFloat64(float64(b)))
			x.Add(x, new(big.Float).SetFloat64(float64(cc)))
			want, _ = x.Float32()
		}
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Errorf("fma32(%g, %g, %g) = %g; want %g (exact, rounded once)", a, b, cc, got, want)
		}
	}
}

// TestUpdateSameBitsInParallel checks that splitting large tensors across
// goroutines changes nothing: one step of each optimizer on tensors larger
// than a chunk gives the same bits with GOMAXPROCS 1 and 4.
func TestUpdateSameBitsInParallel(t *testing.T) {
	sizes := map[string]int{"a": 3*chunkSize + 17, "b": chunkSize, "c": 5}
	mk := func(seed uint64) Params {
		r := rand.New(rand.NewPCG(seed, 7))
		p := Params{}
		for _, name := range []string{"a", "b", "c"} {
			v := make([]float32, sizes[name])
			for i := range v {
				v[i] = float32(r.NormFloat64())
			}
			p[name] = v
		}
		return p
	}
	for _, opt := range []Optimizer{SGD{LR: 0.1, Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true}, AdamW{LR: 1e-3, WeightDecay: 0.01}} {
		run := func(procs int) Params {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			params, st := mk(1), &OptimizerState{}
			lr, mom := opt.Rates()
			for step := range 2 {
				if err := opt.Update(st, params, mk(uint64(2+step)), lr, mom); err != nil {
					t.Fatal(err)
				}
			}
			return params
		}
		serial, parallel := run(1), run(4)
		for name := range sizes {
			for i := range serial[name] {
				if math.Float32bits(serial[name][i]) != math.Float32bits(parallel[name][i]) {
					t.Fatalf("%T: %s[%d] = %v in parallel, %v serially", opt, name, i, parallel[name][i], serial[name][i])
				}
			}
		}
	}
}
