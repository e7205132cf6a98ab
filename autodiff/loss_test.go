package autodiff_test

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/semirobust/srtool/autodiff"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
	"github.com/semirobust/srtool/ort"
)

// logitsModel is the identity on a [batch, k] input, so that the loss head
// can be checked directly on chosen logits.
func logitsModel(k int64) *onnxio.Model {
	g := &onnxpb.GraphProto{
		Name:   "logits",
		Input:  []*onnxpb.ValueInfoProto{onnxio.ValueInfo("x", onnxio.Float, onnxio.Shape{onnxio.Sym("batch"), onnxio.D(k)})},
		Output: []*onnxpb.ValueInfoProto{onnxio.ValueInfo("logits", onnxio.Float, onnxio.Shape{onnxio.Sym("batch"), onnxio.D(k)})},
		Node:   []*onnxpb.NodeProto{{Name: "id", OpType: "Identity", Input: []string{"x"}, Output: []string{"logits"}}},
	}
	return &onnxio.Model{Proto: &onnxpb.ModelProto{IrVersion: 8, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}}, Graph: g}}
}

// refLoss is a float64 Go reference for one sample's loss (formulas as in
// PyTorch's F.cross_entropy, Carlini & Wagner, AutoAttack's dlr_loss and
// dlr_loss_targeted, and torch.nn.KLDivLoss on log-softmax inputs).
func refLoss(spec autodiff.Spec, z []float64, y, tgt int, p []float64) float64 {
	lse := 0.0
	zmax := math.Inf(-1)
	for _, v := range z {
		zmax = math.Max(zmax, v)
	}
	for _, v := range z {
		lse += math.Exp(v - zmax)
	}
	lse = math.Log(lse) + zmax
	sorted := append([]float64(nil), z...)
	sort.Sort(sort.Reverse(sort.Float64Slice(sorted)))
	switch spec.Loss {
	case autodiff.CrossEntropy:
		return lse - z[y]
	case autodiff.CWMargin:
		best := math.Inf(-1)
		for j, v := range z {
			if j != y {
				best = math.Max(best, v)
			}
		}
		m := best - z[y]
		if spec.Clamp {
			m = math.Min(m, float64(spec.Kappa))
		}
		return m
	case autodiff.DLR:
		other := sorted[0]
		if z[y] == sorted[0] {
			other = sorted[1]
		}
		return -(z[y] - other) / (sorted[0] - sorted[2] + 1e-12)
	case autodiff.TargetedDLR:
		return -(z[y] - z[tgt]) / (sorted[0] - 0.5*(sorted[2]+sorted[3]) + 1e-12)
	case autodiff.KL:
		s := 0.0
		for j := range z {
			if p[j] > 0 {
				s += p[j] * (math.Log(p[j]) - (z[j] - lse))
			}
		}
		return s
	}
	panic("loss")
}

func TestLossHeads(t *testing.T) {
	const n, k = 5, 7
	cases := []struct {
		name string
		spec autodiff.Spec
	}{
		{"ce/mean", autodiff.Spec{Loss: autodiff.CrossEntropy}},
		{"ce/sum", autodiff.Spec{Loss: autodiff.CrossEntropy, Reduction: autodiff.Sum}},
		{"ce/none", autodiff.Spec{Loss: autodiff.CrossEntropy, Reduction: autodiff.None}},
		{"cw/sum", autodiff.Spec{Loss: autodiff.CWMargin, Reduction: autodiff.Sum}},
		{"cw/kappa", autodiff.Spec{Loss: autodiff.CWMargin, Clamp: true, Kappa: 0.0125}},
		{"cw/kappa0/none", autodiff.Spec{Loss: autodiff.CWMargin, Clamp: true, Reduction: autodiff.None}},
		{"dlr/mean", autodiff.Spec{Loss: autodiff.DLR}},
		{"dlr/none", autodiff.Spec{Loss: autodiff.DLR, Reduction: autodiff.None}},
		{"targeted-dlr", autodiff.Spec{Loss: autodiff.TargetedDLR, Reduction: autodiff.Sum}},
		{"kl/mean", autodiff.Spec{Loss: autodiff.KL}},
	}
	for ci, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(ci), 11))
			z := distinct(rng, n*k, 0.05) // logits ≥ 0.05 apart: no ties, no kink within the FD step
			y := make([]int64, n)
			tgt := make([]int64, n)
			p := make([]float32, n*k)
			for i := range y {
				y[i] = rng.Int64N(k)
				tgt[i] = (y[i] + 1 + rng.Int64N(k-1)) % k
				if i == 0 { // a sample whose label is the top logit, one where it is not
					best := 0
					for j := 1; j < k; j++ {
						if z[j] > z[best] {
							best = j
						}
					}
					y[0] = int64(best)
				}
				s := float32(0)
				for j := 0; j < k; j++ {
					if j != 2 { // one zero probability per sample
						p[i*k+j] = rng.Float32() + 0.1
						s += p[i*k+j]
					}
				}
				for j := 0; j < k; j++ {
					p[i*k+j] /= s
				}
			}
			extra := map[string]ort.Tensor{}
			if tc.spec.Loss != autodiff.KL {
				extra["labels"] = i64([]int64{n}, y)
			}
			if tc.spec.Loss == autodiff.TargetedDLR {
				extra["targets"] = i64([]int64{n}, tgt)
			}
			if tc.spec.Loss == autodiff.KL {
				extra["target_probs"] = f32([]int64{n, k}, p)
			}
			r := fdCheck(t, logitsModel(k), tc.spec, z, []int64{n, k}, nil, 1e-3, extra)

			// Values against the Go reference.
			s := newSession(t, r.Model)
			in := map[string]ort.Tensor{r.Input: f32([]int64{n, k}, z)}
			for name, v := range extra {
				in[name] = v
			}
			outs := []string{r.PerSampleLoss}
			if r.Loss != r.PerSampleLoss {
				outs = append(outs, r.Loss)
			}
			out := run(t, s, in, outs...)
			total := 0.0
			for i := 0; i < n; i++ {
				zi := make([]float64, k)
				pi := make([]float64, k)
				for j := range zi {
					zi[j] = float64(z[i*k+j])
					pi[j] = float64(p[i*k+j])
				}
				want := refLoss(tc.spec, zi, int(y[i]), int(tgt[i]), pi)
				total += want
				if got := float64(out[r.PerSampleLoss].Float32[i]); math.Abs(got-want) > 1e-5*math.Max(1, math.Abs(want)) {
					t.Errorf("per-sample loss %d = %.7g; want %.7g", i, got, want)
				}
			}
			switch tc.spec.Reduction {
			case autodiff.Mean:
				total /= n
			case autodiff.None:
				if r.Loss != r.PerSampleLoss {
					t.Errorf("reduction none: loss %q; want the per-sample output %q", r.Loss, r.PerSampleLoss)
				}
				return
			}
			if got := float64(out[r.Loss].Float32[0]); math.Abs(got-total) > 1e-5*math.Max(1, math.Abs(total)) {
				t.Errorf("loss = %.7g; want %.7g", got, total)
			}
		})
	}
}
