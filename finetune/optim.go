package finetune

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/semirobust/srtool/internal/parallel"
)

// Optimizer updates parameters from their gradients. SGD and AdamW are
// plain values (their fields are the hyper-parameters and they marshal to
// JSON); everything that changes from step to step lives in an
// OptimizerState, so a run can be saved and resumed.
type Optimizer interface {
	// Update applies one optimizer step to params in place, using grads
	// (the same names and lengths), the learning rate lr and momentum
	// (SGD's momentum, AdamW's β1) in force for this step, as a schedule
	// sets them. It creates st's buffers on first use and updates them.
	Update(st *OptimizerState, params, grads Params, lr, momentum float64) error
	// Rates returns the learning rate and momentum the optimizer was
	// configured with, in force when no schedule overrides them.
	Rates() (lr, momentum float64)
	// Validate reports hyper-parameters PyTorch would reject.
	Validate() error
}

// OptimizerState is an optimizer's state between steps: the number of
// steps taken and, per kind of buffer, one tensor per parameter. Buffer
// kinds carry PyTorch's state_dict names: "momentum_buffer" (SGD);
// "exp_avg" and "exp_avg_sq" (AdamW). The zero value is the state before
// the first step.
type OptimizerState struct {
	Steps   int64
	Buffers map[string]Params
}

// Clone returns a deep copy of s.
func (s OptimizerState) Clone() OptimizerState {
	c := OptimizerState{Steps: s.Steps}
	if s.Buffers != nil {
		c.Buffers = make(map[string]Params, len(s.Buffers))
		for k, v := range s.Buffers {
			c.Buffers[k] = v.Clone()
		}
	}
	return c
}

// buffer returns s's tensors of the given kind, creating the set.
func (s *OptimizerState) buffer(kind string) Params {
	if s.Buffers == nil {
		s.Buffers = map[string]Params{}
	}
	b := s.Buffers[kind]
	if b == nil {
		b = Params{}
		s.Buffers[kind] = b
	}
	return b
}

// SGD is torch.optim.SGD (PyTorch 1.13, single-tensor path, maximize off):
// for each value, in float32 and in this order,
//
//	d = g + WeightDecay·p                      (fused multiply-add)
//	b = d on the first step, else Momentum·b + (1−Dampening)·d
//	d = d + Momentum·b if Nesterov, else b      (only when Momentum ≠ 0)
//	p = p − lr·d                                (fused multiply-add)
//
// where the float64 hyper-parameters are rounded to float32 first, as
// PyTorch's kernels do (its AVX2 add kernel is an FMA, reproduced exactly
// here). The zero value is plain gradient descent with learning rate 0;
// the paper's fine-tuning is SGD{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4}.
type SGD struct {
	LR          float64 `json:"lr"`
	Momentum    float64 `json:"momentum"`
	Dampening   float64 `json:"dampening,omitempty"`
	WeightDecay float64 `json:"weight_decay"`
	Nesterov    bool    `json:"nesterov,omitempty"`
}

// MarshalJSON writes o's fields with "kind": "sgd".
func (o SGD) MarshalJSON() ([]byte, error) {
	type plain SGD
	return json.Marshal(struct {
		Kind string `json:"kind"`
		plain
	}{"sgd", plain(o)})
}

// Rates returns o.LR and o.Momentum.
func (o SGD) Rates() (lr, momentum float64) { return o.LR, o.Momentum }

// Validate applies torch.optim.SGD's checks.
func (o SGD) Validate() error {
	switch {
	case !(o.LR >= 0):
		return fmt.Errorf("sgd: invalid learning rate %v", o.LR)
	case !(o.Momentum >= 0):
		return fmt.Errorf("sgd: invalid momentum %v", o.Momentum)
	case !(o.WeightDecay >= 0):
		return fmt.Errorf("sgd: invalid weight decay %v", o.WeightDecay)
	case o.Nesterov && (o.Momentum <= 0 || o.Dampening != 0):
		return errors.New("sgd: Nesterov momentum requires a momentum and zero dampening")
	}
	return nil
}

// Update applies one SGD step; see SGD.
func (o SGD) Update(st *OptimizerState, params, grads Params, lr, momentum float64) error {
	if err := sameShape("gradients", grads, params); err != nil {
		return err
	}
	wd := float32(o.WeightDecay)
	mom := float32(momentum)
	damp := float32(1 - o.Dampening)
	negLR := float32(-lr)
	var bufs Params
	if momentum != 0 {
		bufs = st.buffer("momentum_buffer")
	}
	type tensor struct {
		p, g, b []float32
		first   bool
	}
	ts := make([]tensor, 0, len(params))
	for name, p := range params {
		t := tensor{p: p, g: grads[name]}
		if momentum != 0 {
			t.b = bufs[name]
			if t.b == nil {
				t.b = make([]float32, len(p))
				bufs[name] = t.b
				t.first = true
			} else if len(t.b) != len(p) {
				return fmt.Errorf("sgd: momentum buffer of %q has %d values; want %d", name, len(t.b), len(p))
			}
		}
		ts = append(ts, t)
	}
	forChunks(len(ts), func(i int) int { return len(ts[i].p) }, func(t, lo, hi int) {
		p, g, b, first := ts[t].p, ts[t].g, ts[t].b, ts[t].first
		for i := lo; i < hi; i++ {
			d := g[i]
			if wd != 0 {
				d = fma32(p[i], wd, d)
			}
			if momentum != 0 {
				if first {
					b[i] = d
				} else {
					b[i] = fma32(d, damp, float32(b[i]*mom))
				}
				if o.Nesterov {
					d = fma32(b[i], mom, d)
				} else {
					d = b[i]
				}
			}
			p[i] = fma32(d, negLR, p[i])
		}
	})
	st.Steps++
	return nil
}

// AdamW is torch.optim.AdamW (PyTorch 1.13, single-tensor path, amsgrad and
// maximize off): with t the step number from 1 and the float64 factors
// computed as in Python, then rounded to float32,
//
//	p = p·(1 − lr·WeightDecay)
//	m = β1·m + (1−β1)·g                         (FMA)
//	v = β2·v + ((1−β2)·g)·g                     (FMA of the last product)
//	p = p + (−lr/(1−β1^t))·m / (√v / √(1−β2^t) + Eps)
//
// Beta1, Beta2 and Eps of zero mean PyTorch's defaults 0.9, 0.999 and 1e-8;
// LR and WeightDecay are used as given (PyTorch's defaults are 1e-3 and 1e-2).
type AdamW struct {
	LR          float64 `json:"lr"`
	Beta1       float64 `json:"beta1,omitempty"`
	Beta2       float64 `json:"beta2,omitempty"`
	Eps         float64 `json:"eps,omitempty"`
	WeightDecay float64 `json:"weight_decay"`
}

// MarshalJSON writes o's fields, defaults filled in, with "kind": "adamw".
func (o AdamW) MarshalJSON() ([]byte, error) {
	type plain AdamW
	return json.Marshal(struct {
		Kind string `json:"kind"`
		plain
	}{"adamw", plain(o.withDefaults())})
}

func (o AdamW) withDefaults() AdamW {
	if o.Beta1 == 0 {
		o.Beta1 = 0.9
	}
	if o.Beta2 == 0 {
		o.Beta2 = 0.999
	}
	if o.Eps == 0 {
		o.Eps = 1e-8
	}
	return o
}

// Rates returns o.LR and β1.
func (o AdamW) Rates() (lr, momentum float64) { return o.LR, o.withDefaults().Beta1 }

// Validate applies torch.optim.AdamW's checks.
func (o AdamW) Validate() error {
	o = o.withDefaults()
	switch {
	case !(o.LR >= 0):
		return fmt.Errorf("adamw: invalid learning rate %v", o.LR)
	case !(o.Eps >= 0):
		return fmt.Errorf("adamw: invalid epsilon %v", o.Eps)
	case !(o.Beta1 >= 0 && o.Beta1 < 1):
		return fmt.Errorf("adamw: invalid beta1 %v", o.Beta1)
	case !(o.Beta2 >= 0 && o.Beta2 < 1):
		return fmt.Errorf("adamw: invalid beta2 %v", o.Beta2)
	case !(o.WeightDecay >= 0):
		return fmt.Errorf("adamw: invalid weight decay %v", o.WeightDecay)
	}
	return nil
}

// Update applies one AdamW step; see AdamW. momentum is β1 for this step.
func (o AdamW) Update(st *OptimizerState, params, grads Params, lr, momentum float64) error {
	if err := sameShape("gradients", grads, params); err != nil {
		return err
	}
	o = o.withDefaults()
	beta1 := momentum
	t := st.Steps + 1
	decay := float32(1 - lr*o.WeightDecay)
	b1 := float32(beta1)
	a1 := float32(1 - beta1)
	b2 := float32(o.Beta2)
	a2 := float32(1 - o.Beta2)
	bc1 := 1 - powInt(beta1, t)
	bc2Sqrt := float32(math.Sqrt(1 - powInt(o.Beta2, t)))
	negStep := float32(-(lr / bc1))
	eps := float32(o.Eps)
	ms, vs := st.buffer("exp_avg"), st.buffer("exp_avg_sq")
	type tensor struct{ p, g, m, v []float32 }
	ts := make([]tensor, 0, len(params))
	for name, p := range params {
		m, v := ms[name], vs[name]
		if m == nil || v == nil {
			m, v = make([]float32, len(p)), make([]float32, len(p))
			ms[name], vs[name] = m, v
		} else if len(m) != len(p) || len(v) != len(p) {
			return fmt.Errorf("adamw: moments of %q have %d and %d values; want %d", name, len(m), len(v), len(p))
		}
		ts = append(ts, tensor{p, grads[name], m, v})
	}
	forChunks(len(ts), func(i int) int { return len(ts[i].p) }, func(t, lo, hi int) {
		p, g, m, v := ts[t].p, ts[t].g, ts[t].m, ts[t].v
		for i := lo; i < hi; i++ {
			// Explicit conversions stop the compiler from fusing a·b+c
			// into an FMA (Go may, e.g. on arm64); PyTorch rounds each step.
			p[i] *= decay
			m[i] = fma32(g[i], a1, float32(m[i]*b1))
			v[i] = fma32(float32(a2*g[i]), g[i], float32(v[i]*b2))
			denom := float32(math.Sqrt(float64(v[i])))/bc2Sqrt + eps
			p[i] += float32(float32(negStep*m[i]) / denom)
		}
	})
	st.Steps = t
	return nil
}

// fma32 returns a·b+c rounded once to float32, as a hardware FMA does.
// a·b is exact in float64; the float64 sum is rounded to odd (TwoSum gives
// its error) so that the final rounding to float32 is correct.
func fma32(a, b, c float32) float32 {
	p := float64(float64(a) * float64(b)) // exact
	s := p + float64(c)
	bb := s - p
	e := (p - (s - bb)) + (float64(c) - bb)
	if e != 0 {
		if bits := math.Float64bits(s); bits&1 == 0 {
			if (e > 0) == (s > 0) {
				bits++
			} else {
				bits--
			}
			s = math.Float64frombits(bits)
		}
	}
	return float32(s)
}

// powInt returns x**n for n ≥ 0, correctly rounded in all but
// astronomically rare cases (double-double square-and-multiply), like
// Python's float power on glibc.
func powInt(x float64, n int64) float64 {
	rh, rl := 1.0, 0.0 // result
	bh, bl := x, 0.0   // x^(2^k)
	for ; n > 0; n >>= 1 {
		if n&1 == 1 {
			rh, rl = ddMul(rh, rl, bh, bl)
		}
		bh, bl = ddMul(bh, bl, bh, bl)
	}
	return rh + rl
}

// ddMul multiplies two double-double numbers.
func ddMul(ah, al, bh, bl float64) (float64, float64) {
	p := float64(ah * bh)
	e := math.FMA(ah, bh, -p) + (ah*bl + al*bh)
	h := p + e
	return h, e - (h - p)
}

// chunkSize is the number of elements one forChunks job updates.
const chunkSize = 1 << 15

// forChunks calls fn(t, lo, hi) for disjoint ranges [lo, hi) that together
// cover [0, size(t)) for every tensor t < n, on up to GOMAXPROCS goroutines.
// Elementwise optimizer updates give the same bits however they are split.
func forChunks(n int, size func(t int) int, fn func(t, lo, hi int)) {
	type job struct{ t, lo, hi int }
	var jobs []job
	for t := range n {
		for lo, sz := 0, size(t); lo < sz; lo += chunkSize {
			jobs = append(jobs, job{t, lo, min(lo+chunkSize, sz)})
		}
	}
	parallel.For(len(jobs), 0, func(k int) { fn(jobs[k].t, jobs[k].lo, jobs[k].hi) })
}
