package finetune

import (
	"context"
	"math"
	"math/rand/v2"

	"github.com/semirobust/srtool/dataset"
)

// softmaxModel is a pure-Go stand-in for a train-step graph: softmax
// regression z = W·(s ⊙ x) + b on flattened inputs, with mean
// cross-entropy loss and analytic gradients
//
//	∂L/∂z = (softmax(z) − onehot(y))/n, ∂L/∂W = ∂L/∂zᵀ·(s ⊙ x),
//	∂L/∂b = Σ ∂L/∂z, ∂L/∂s_d = Σ_i x_id Σ_k ∂L/∂z_ik W_kd.
//
// "head.scale" (s) plays a frozen head weight. The state has BatchNorm-like
// running statistics of the inputs, updated by PyTorch's rule
// (momentum 0.1, unbiased variance); they do not enter the logits.
type softmaxModel struct {
	D, K int
}

func (m softmaxModel) init(seed uint64) (trainable, state Params) {
	rng := rand.New(rand.NewPCG(seed, 7))
	w := make([]float32, m.K*m.D)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.01)
	}
	s := make([]float32, m.D)
	for i := range s {
		s[i] = 1
	}
	ones := make([]float32, m.D)
	for i := range ones {
		ones[i] = 1
	}
	return Params{"fc.weight": w, "fc.bias": make([]float32, m.K), "head.scale": s},
		Params{"bn.running_mean": make([]float32, m.D), "bn.running_var": ones, "head_bn.running_mean": make([]float32, m.D)}
}

func (m softmaxModel) logits(p Params, x []float32, i int) []float64 {
	w, b, s := p["fc.weight"], p["fc.bias"], p["head.scale"]
	z := make([]float64, m.K)
	for k := range m.K {
		acc := float64(b[k])
		for d := range m.D {
			acc += float64(w[k*m.D+d]) * float64(s[d]) * float64(x[i*m.D+d])
		}
		z[k] = acc
	}
	return z
}

func argmax(z []float64) int {
	best := 0
	for k := range z {
		if z[k] > z[best] {
			best = k
		}
	}
	return best
}

func (m softmaxModel) Step(ctx context.Context, p, state Params, x []float32, n int, y []int64) (StepResult, error) {
	w, s := p["fc.weight"], p["head.scale"]
	gw := make([]float64, m.K*m.D)
	gb := make([]float64, m.K)
	gs := make([]float64, m.D)
	loss := 0.0
	correct := 0
	for i := range n {
		z := m.logits(p, x, i)
		if argmax(z) == int(y[i]) {
			correct++
		}
		mx := z[argmax(z)]
		sum := 0.0
		for _, v := range z {
			sum += math.Exp(v - mx)
		}
		loss += -(z[y[i]] - mx - math.Log(sum))
		for k := range m.K {
			dz := math.Exp(z[k]-mx) / sum
			if k == int(y[i]) {
				dz--
			}
			dz /= float64(n)
			gb[k] += dz
			for d := range m.D {
				xd := float64(x[i*m.D+d])
				gw[k*m.D+d] += dz * float64(s[d]) * xd
				gs[d] += dz * float64(w[k*m.D+d]) * xd
			}
		}
	}
	f32 := func(v []float64) []float32 {
		o := make([]float32, len(v))
		for i := range v {
			o[i] = float32(v[i])
		}
		return o
	}
	// running_mean = 0.9·running_mean + 0.1·batch mean; running_var with the unbiased batch variance.
	ns := Params{}
	for _, name := range []string{"bn", "head_bn"} {
		rm := append([]float32(nil), state[name+".running_mean"]...)
		var rv []float32
		if v, ok := state[name+".running_var"]; ok {
			rv = append([]float32(nil), v...)
		}
		for d := range m.D {
			mean, sq := 0.0, 0.0
			for i := range n {
				mean += float64(x[i*m.D+d])
			}
			mean /= float64(n)
			for i := range n {
				dv := float64(x[i*m.D+d]) - mean
				sq += dv * dv
			}
			rm[d] = float32(0.9*float64(rm[d]) + 0.1*mean)
			if rv != nil && n > 1 {
				rv[d] = float32(0.9*float64(rv[d]) + 0.1*sq/float64(n-1))
			}
		}
		ns[name+".running_mean"] = rm
		if rv != nil {
			ns[name+".running_var"] = rv
		}
	}
	return StepResult{
		Loss:    float32(loss / float64(n)),
		Grads:   Params{"fc.weight": f32(gw), "fc.bias": f32(gb), "head.scale": f32(gs)},
		State:   ns,
		Correct: correct,
	}, nil
}

// accuracyEvaluator is the clean accuracy of a softmaxModel on a data set.
type accuracyEvaluator struct {
	m    softmaxModel
	data *dataset.Dataset
}

func (e accuracyEvaluator) Evaluate(ctx context.Context, p, state Params) (float64, error) {
	correct := 0
	for i := range e.data.Len() {
		if argmax(e.m.logits(p, e.data.X, i)) == int(e.data.Y[i]) {
			correct++
		}
	}
	return 100 * float64(correct) / float64(e.data.Len()), nil
}

// blobs returns n samples of k well separated Gaussian clusters in a
// 1×2×4 image (8 features), pixels clipped to [0,1].
func blobs(n, k int, seed uint64) *dataset.Dataset {
	const d = 8
	rng := rand.New(rand.NewPCG(seed, 1))
	centers := rand.New(rand.NewPCG(99, 2)) // the same clusters for every seed
	c := make([]float64, k*d)
	for i := range c {
		c[i] = 0.15 + 0.7*centers.Float64()
	}
	ds := &dataset.Dataset{X: make([]float32, n*d), Y: make([]int64, n), C: 1, H: 2, W: 4, Classes: k, Name: "blobs"}
	for i := range n {
		y := rng.IntN(k)
		ds.Y[i] = int64(y)
		for j := range d {
			v := c[y*d+j] + 0.05*rng.NormFloat64()
			ds.X[i*d+j] = float32(min(1, max(0, v)))
		}
	}
	return ds
}

// noiseAdv is a seeded stand-in for PGD: it adds ±0.01 noise drawn from seed.
type noiseAdv struct{}

func (noiseAdv) Perturb(ctx context.Context, p, state Params, x []float32, n int, y []int64, seed uint64) ([]float32, error) {
	rng := rand.New(rand.NewPCG(seed, 3))
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = min(1, max(0, v+float32(0.02*rng.Float64()-0.01)))
	}
	return out, nil
}

var augmentFlip = dataset.Augment{Flip: true}
