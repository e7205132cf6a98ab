package diffmodel

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/ort"
)

// tradesStep is one TRADES step (Zhang et al. 2019, the official
// train_trades loop): adversarial inputs maximise KL(p(x) ‖ p(x′)) from
// x + 0.001·N(0, 1) by signed-gradient steps inside the ε-ball, with
// BatchNorm in inference mode; the loss is
// (1/N) Σ CE(f(x), y) + β (1/N) Σ KL(p(x) ‖ p(x′)) with training-mode
// BatchNorm, differentiated through both the clean and the adversarial pass.
// The noise is seeded from the batch's contents, so a resumed run repeats it.
func (t *Trainer) tradesStep(ctx context.Context, trainable, state finetune.Params, x []float32, n int, y []int64, shape []int64) (finetune.StepResult, error) {
	tr := *t.trades
	k := t.k
	if err := t.clf.SetParams(finetune.Merge(trainable, state)); err != nil {
		return finetune.StepResult{}, err
	}
	z0, err := t.clf.Logits(ctx, x, n)
	if err != nil {
		return finetune.StepResult{}, fmt.Errorf("trades: %w", err)
	}
	pNat0 := softmaxRows(z0, k)
	rng := rand.New(rand.NewPCG(batchSeed(x), 0x7ade5))
	adv := make([]float32, len(x))
	for i := range adv {
		adv[i] = x[i] + 0.001*float32(rng.NormFloat64())
	}
	for range tr.Steps {
		_, g, err := t.clf.KLGrad(ctx, adv, n, pNat0)
		if err != nil {
			return finetune.StepResult{}, fmt.Errorf("trades: %w", err)
		}
		for i := range adv {
			switch {
			case g[i] > 0:
				adv[i] += tr.StepSize
			case g[i] < 0:
				adv[i] -= tr.StepSize
			}
			adv[i] = min(max(adv[i], x[i]-tr.Epsilon), x[i]+tr.Epsilon)
			adv[i] = min(max(adv[i], 0), 1)
		}
	}
	run := func(in, up []float32, st finetune.Params) (map[string]ort.Tensor, error) {
		feeds := map[string]ort.Tensor{
			t.res.Input:       {Shape: shape, Float32: in},
			t.res.TargetProbs: {Shape: []int64{int64(n), int64(k)}, Float32: up},
		}
		if err := t.feedParams(feeds, trainable, st); err != nil {
			return nil, err
		}
		out, err := t.sess.Run(ctx, feeds, t.outputs())
		if err != nil {
			return nil, fmt.Errorf("trades: %w", err)
		}
		return out, nil
	}
	// Logits of both passes with training-mode BN, forward only.
	logits := func(in []float32) ([]float32, error) {
		feeds := map[string]ort.Tensor{}
		if err := t.feedParams(feeds, trainable, state); err != nil {
			return nil, err
		}
		for name := range feeds {
			if !t.fwdTakes[name] {
				delete(feeds, name) // e.g. running statistics: the logits do not read them
			}
		}
		feeds[t.res.Input] = ort.Tensor{Shape: shape, Float32: in}
		out, err := t.fwd.Run(ctx, feeds, []string{t.res.Logits})
		if err != nil {
			return nil, fmt.Errorf("trades: %w", err)
		}
		return out[t.res.Logits].Float32, nil
	}
	zNat, err := logits(x)
	if err != nil {
		return finetune.StepResult{}, err
	}
	zAdv, err := logits(adv)
	if err != nil {
		return finetune.StepResult{}, err
	}
	gNat, gAdv, loss := tradesLogitGrads(zNat, zAdv, y, k, float64(tr.Beta))
	// Vector-Jacobian products; running statistics updated by the clean pass,
	// then by the adversarial one.
	ra, err := run(x, gNat, state)
	if err != nil {
		return finetune.StepResult{}, err
	}
	r := t.collect(ra)
	st := state
	if r.State != nil {
		st = finetune.Merge(state, r.State)
	}
	rb, err := run(adv, gAdv, st)
	if err != nil {
		return finetune.StepResult{}, err
	}
	rAdv := t.collect(rb)
	for name, g := range r.Grads {
		ga := rAdv.Grads[name]
		for i := range g {
			g[i] += ga[i]
		}
	}
	if rAdv.State != nil {
		r.State = rAdv.State
	}
	r.Loss = float32(loss)
	r.Correct = countCorrect(zNat, y, k)
	return r, nil
}

// tradesLogitGrads returns d L / d z for the clean and adversarial logits of
// L = (1/N) Σ_i [CE(z_i, y_i) + β KL(p(z_i) ‖ p(z′_i))], and L.
func tradesLogitGrads(zNat, zAdv []float32, y []int64, k int, beta float64) (gNat, gAdv []float32, loss float64) {
	n := len(y)
	gNat, gAdv = make([]float32, n*k), make([]float32, n*k)
	lpN, lpA := make([]float64, k), make([]float64, k)
	for i := 0; i < n; i++ {
		logSoftmax(zNat[i*k:(i+1)*k], lpN)
		logSoftmax(zAdv[i*k:(i+1)*k], lpA)
		kl, mean := 0.0, 0.0
		for j := 0; j < k; j++ {
			p := math.Exp(lpN[j])
			d := lpN[j] - lpA[j]
			kl += p * d
			mean += p * d
		}
		loss += -lpN[y[i]] + beta*kl
		for j := 0; j < k; j++ {
			p, q := math.Exp(lpN[j]), math.Exp(lpA[j])
			ce := p
			if int64(j) == y[i] {
				ce -= 1
			}
			gNat[i*k+j] = float32((ce + beta*p*(lpN[j]-lpA[j]-mean)) / float64(n))
			gAdv[i*k+j] = float32(beta * (q - p) / float64(n))
		}
	}
	return gNat, gAdv, loss / float64(n)
}

func logSoftmax(z []float32, out []float64) {
	mx := float64(z[0])
	for _, v := range z {
		mx = math.Max(mx, float64(v))
	}
	sum := 0.0
	for _, v := range z {
		sum += math.Exp(float64(v) - mx)
	}
	lse := mx + math.Log(sum)
	for j, v := range z {
		out[j] = float64(v) - lse
	}
}

func softmaxRows(z []float32, k int) []float32 {
	out := make([]float32, len(z))
	lp := make([]float64, k)
	for i := 0; i < len(z)/k; i++ {
		logSoftmax(z[i*k:(i+1)*k], lp)
		for j := range lp {
			out[i*k+j] = float32(math.Exp(lp[j]))
		}
	}
	return out
}

// batchSeed derives a seed from a batch's contents.
func batchSeed(x []float32) uint64 {
	h := fnv.New64a()
	var b [4]byte
	for _, v := range x {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		h.Write(b[:])
	}
	return h.Sum64()
}
