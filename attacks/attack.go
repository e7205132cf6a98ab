package attacks

import (
	"context"
	"math"
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

// sampleRands returns one random source per sample of xs (d values each)
// with labels ys. A sample's draws depend only on the seed, the attack's
// stream, run (which restart, or which target and restart) and the sample
// itself — its values and label — never on the other samples of the batch,
// so an attack's result for a point does not depend on how the points were
// batched (Evaluate sizes its work units by time). Each attack uses its own
// stream constant, so two attacks with the same Seed draw different numbers.
func sampleRands(seed, stream, run uint64, xs []float32, ys []int64, d int) []*rand.Rand {
	out := make([]*rand.Rand, len(ys))
	for j := range ys {
		h := uint64(14695981039346656037) // FNV-1a over the sample's bits and label
		mix := func(v uint64) {
			for range 8 {
				h ^= v & 0xff
				h *= 1099511628211
				v >>= 8
			}
		}
		for _, v := range xs[j*d : (j+1)*d] {
			mix(uint64(math.Float32bits(v)))
		}
		mix(uint64(ys[j]))
		out[j] = rand.New(rand.NewPCG(splitmix(seed^splitmix(h)), splitmix(stream^0x9e3779b97f4a7c15)+run))
	}
	return out
}

// splitmix is SplitMix64's finaliser, a bijective mix of 64 bits.
func splitmix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// runKey numbers the runs of one attack call for sampleRands: target rank
// (0 when untargeted) and restart.
func runKey(rank, restart int) uint64 { return uint64(rank)<<32 | uint64(restart) }

// Stream constants for sampleRands, one per attack.
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
