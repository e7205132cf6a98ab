package attacks

import (
	"context"
	"math/rand/v2"
)

// Attack is one adversarial attack with its settings. Run attacks the batch
// x (len(y) samples, row-major, values in [0,1]) with true labels y and
// returns a new slice of adversarial inputs; it never modifies x or y.
// Run needs a Gradienter except for black-box attacks (Square).
type Attack interface {
	Name() string
	Run(ctx context.Context, m Model, x []float32, y []int64) (*Result, error)
}

// Bounded is implemented by attacks with a fixed threat model; C&W without
// Epsilon is unbounded and reports 0.
type Bounded interface {
	Threat() (eps float32, norm Norm)
}

// Result is what an attack returns for a batch of N samples.
type Result struct {
	// Adv holds N×d adversarial inputs, owned by the caller. Where an attack
	// keeps only successes (APGD, FAB, Square, AutoAttack, C&W) a failed
	// sample's row is its clean input; PGD, FGSM and MI-FGSM return their
	// iterate for every sample.
	Adv []float32 `json:"-"`
	// Pred is the model's prediction at Adv (one forward pass after the attack).
	Pred []int64 `json:"pred"`
	// Success[i] is Pred[i] ≠ y[i]; samples the model already got wrong count
	// as successes.
	Success []bool `json:"success"`
	// Dist[i] is ‖Adv_i − x_i‖ in the attack's norm (L2 for C&W).
	Dist []float32 `json:"dist"`
	// Counts are the model calls this run made, including the final forward pass.
	Counts Counts `json:"counts"`
	// ZeroGrad counts samples whose first loss gradient was exactly zero
	// (AutoAttack's zero-gradient check; gradient attacks only).
	ZeroGrad int `json:"zero_grad,omitempty"`
}

// Robust returns the number of samples where the attack failed.
func (r *Result) Robust() int {
	c := 0
	for _, s := range r.Success {
		if !s {
			c++
		}
	}
	return c
}

// finish verifies the invariants, predicts at adv and fills a Result.
func (e *engine) finish(ctx context.Context, x, adv []float32, y []int64, eps float32, p Norm, zeroGrad int) (*Result, error) {
	n := len(y)
	if err := verify(e.name, x, adv, n, e.d, eps, p); err != nil {
		return nil, err
	}
	res := &Result{Adv: adv, Pred: make([]int64, n), Success: make([]bool, n), Dist: make([]float32, n)}
	if n > 0 {
		z, err := e.logits(ctx, adv, n)
		if err != nil {
			return nil, err
		}
		res.Pred = argmaxRows(z, e.k)
	}
	for i := range n {
		res.Success[i] = res.Pred[i] != y[i]
		res.Dist[i] = float32(distance(adv[i*e.d:(i+1)*e.d], x[i*e.d:(i+1)*e.d], p))
	}
	res.Counts = e.counts
	res.ZeroGrad = zeroGrad
	return res, nil
}

// newRand returns the random source of one attack run. Each attack uses its
// own stream constant, so two attacks with the same Seed draw different numbers.
func newRand(seed uint64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream^0x9e3779b97f4a7c15))
}

// Stream constants for newRand, one per attack.
const (
	streamPGD uint64 = iota + 1
	streamMIFGSM
	streamAPGD
	streamAPGDT
	streamFAB
	streamSquare
	streamCW
	streamFGSM
)

// gather copies rows idx of x (d values each) into a new slice.
func gather(x []float32, idx []int, d int) []float32 {
	out := make([]float32, len(idx)*d)
	for j, i := range idx {
		copy(out[j*d:(j+1)*d], x[i*d:(i+1)*d])
	}
	return out
}

func gatherLabels(y []int64, idx []int) []int64 {
	out := make([]int64, len(idx))
	for j, i := range idx {
		out[j] = y[i]
	}
	return out
}

func sign(v float32) float32 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}
