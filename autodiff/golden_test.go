package autodiff_test

import (
	"github.com/semirobust/srtool/autodiff"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// Golden values come from PyTorch 1.13 autograd on the same weights
// (testdata/gen_models.py; see testdata/README.md).
const (
	gradTol = 1e-4 // relative L2 error of gradients
	lossTol = 1e-5 // relative error of losses
	statTol = 1e-5 // relative L2 error of BN running statistics
)

var goldenModels = []string{"resnet10_cifar", "wrn16_1", "resnet10_imagenet"}

func modelsDir() string { return filepath.Join("..", "testdata", "models") }

func readGolden(t *testing.T, name string) map[string]*npy.Array {
	t.Helper()
	g, err := npy.ReadNPZ(filepath.Join(modelsDir(), name+"_golden.npz"))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func readModel(t testing.TB, path string) *onnxio.Model {
	t.Helper()
	m, err := onnxio.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func tensorOf(t *testing.T, a *npy.Array) ort.Tensor {
	t.Helper()
	if a.IsFloat() {
		return f32(ints(a.Shape), a.Float32())
	}
	v, err := a.Int64()
	if err != nil {
		t.Fatal(err)
	}
	return i64(ints(a.Shape), v)
}

func relErr(got, want float32) float64 {
	return relL2([]float32{got}, []float32{want})
}

// params returns the golden's parameter names (no BN buffers), sorted.
func params(g map[string]*npy.Array) []string {
	var out []string
	for k := range g {
		if name, ok := strings.CutPrefix(k, "param/"); ok && !strings.HasSuffix(name, ".running_mean") && !strings.HasSuffix(name, ".running_var") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func TestGoldenInputGradient(t *testing.T) {
	for _, name := range goldenModels {
		for _, flavour := range []string{"eval", "train"} {
			t.Run(name+"_"+flavour, func(t *testing.T) {
				g := readGolden(t, name)
				m := readModel(t, filepath.Join(modelsDir(), name+"_"+flavour+".onnx"))
				for _, tc := range []struct {
					spec      autodiff.Spec
					loss, grd string
				}{
					{autodiff.Spec{Loss: autodiff.CrossEntropy, WrtInput: true}, "loss_ce", "grad_input_ce"},
					{autodiff.Spec{Loss: autodiff.CWMargin, Reduction: autodiff.Sum, WrtInput: true}, "loss_cw", "grad_input_cw"},
				} {
					r, err := autodiff.Gradient(m, tc.spec)
					if err != nil {
						t.Fatalf("autodiff.Gradient(%s): %v", tc.spec.Loss, err)
					}
					s := newSession(t, r.Model)
					out := run(t, s, map[string]ort.Tensor{r.Input: tensorOf(t, g["x"]), r.Labels: tensorOf(t, g["y"])},
						r.Loss, r.PerSampleLoss, r.Logits, r.InputGrad)
					if e := relL2(out[r.Logits].Float32, g["logits"].Float32()); e > 1e-5 {
						t.Errorf("%s logits rel err %.2e", tc.spec.Loss, e)
					}
					if e := relErr(out[r.Loss].Float32[0], g[tc.loss].Float32()[0]); e > lossTol {
						t.Errorf("%s loss = %v; want %v (rel err %.2e)", tc.spec.Loss, out[r.Loss].Float32[0], g[tc.loss].Float32()[0], e)
					}
					if tc.spec.Loss == autodiff.CWMargin {
						if e := relL2(out[r.PerSampleLoss].Float32, g["cw_margin"].Float32()); e > lossTol {
							t.Errorf("cw margins %v; want %v", out[r.PerSampleLoss].Float32, g["cw_margin"].Float32())
						}
					}
					e := relL2(out[r.InputGrad].Float32, g[tc.grd].Float32())
					t.Logf("%s: input gradient rel L2 err %.2e", tc.spec.Loss, e)
					if e > gradTol {
						t.Errorf("%s input gradient rel L2 err %.2e > %.0e", tc.spec.Loss, e, gradTol)
					}
				}
			})
		}
	}
}

func TestGoldenParamGradient(t *testing.T) {
	for _, name := range goldenModels {
		t.Run(name, func(t *testing.T) {
			g := readGolden(t, name)
			m := readModel(t, filepath.Join(modelsDir(), name+"_train.onnx"))
			ps := params(g)
			r, err := autodiff.Gradient(m, autodiff.Spec{WrtInput: true, WrtParams: ps})
			if err != nil {
				t.Fatal(err)
			}
			s := newSession(t, r.Model)
			outs := []string{r.Loss, r.InputGrad}
			for _, p := range ps {
				outs = append(outs, r.ParamGrads[p])
			}
			in := map[string]ort.Tensor{r.Input: tensorOf(t, g["x"]), r.Labels: tensorOf(t, g["y"])}
			addFeeds(t, in, r)
			out := run(t, s, in, outs...)
			if e := relErr(out[r.Loss].Float32[0], g["loss_ce"].Float32()[0]); e > lossTol {
				t.Errorf("loss rel err %.2e", e)
			}
			if e := relL2(out[r.InputGrad].Float32, g["grad_input_ce"].Float32()); e > gradTol {
				t.Errorf("input gradient rel L2 err %.2e", e)
			}
			worst, worstName := 0.0, ""
			for _, p := range ps {
				e := relL2(out[r.ParamGrads[p]].Float32, g["grad/"+p].Float32())
				if e > worst {
					worst, worstName = e, p
				}
				if e > gradTol {
					t.Errorf("grad %s rel L2 err %.2e > %.0e", p, e, gradTol)
				}
			}
			t.Logf("%d parameter gradients, worst rel L2 err %.2e (%s)", len(ps), worst, worstName)
		})
	}
}

func TestGoldenTrainStep(t *testing.T) {
	const lr = 0.1
	for _, name := range goldenModels {
		t.Run(name, func(t *testing.T) {
			g := readGolden(t, name)
			m := readModel(t, filepath.Join(modelsDir(), name+"_train.onnx"))
			ps := params(g)
			r, err := autodiff.Gradient(m, autodiff.Spec{WrtParams: ps, TrainBN: autodiff.BatchNorms(m)})
			if err != nil {
				t.Fatal(err)
			}
			s := newSession(t, r.Model)
			outs := []string{r.Loss, r.Logits}
			for _, p := range ps {
				outs = append(outs, r.ParamGrads[p])
			}
			var stats []string
			for k, v := range r.RunningStats {
				stats = append(stats, k)
				outs = append(outs, v)
			}
			in := map[string]ort.Tensor{r.Input: tensorOf(t, g["train_x"]), r.Labels: tensorOf(t, g["train_y"])}
			for _, p := range ps { // feed the parameters from PyTorch, as a training loop would
				in[p] = tensorOf(t, g["param/"+p])
			}
			for _, k := range stats {
				in[k] = tensorOf(t, g["param/"+k])
			}
			out := run(t, s, in, outs...)
			if e := relErr(out[r.Loss].Float32[0], g["train_loss"].Float32()[0]); e > lossTol {
				t.Errorf("train loss = %v; want %v (rel err %.2e)", out[r.Loss].Float32[0], g["train_loss"].Float32()[0], e)
			}
			if e := relL2(out[r.Logits].Float32, g["train_logits"].Float32()); e > 1e-5 {
				t.Errorf("train logits rel err %.2e", e)
			}
			worst := 0.0
			for _, p := range ps {
				w := g["param/"+p].Float32()
				d := out[r.ParamGrads[p]].Float32
				next := make([]float32, len(w))
				for i := range w {
					next[i] = w[i] - lr*d[i]
				}
				e := relL2(next, g["step/"+p].Float32())
				worst = max(worst, e)
				if e > gradTol {
					t.Errorf("step %s rel L2 err %.2e", p, e)
				}
				// The step hides small gradient errors; check the gradient itself too.
				step := g["step/"+p].Float32()
				want := make([]float32, len(w))
				for i := range w {
					want[i] = (w[i] - step[i]) / lr
				}
				if e := relL2(d, want); e > 1e-3 {
					t.Errorf("train grad %s rel L2 err %.2e", p, e)
				}
			}
			worstStat := 0.0
			for _, k := range stats {
				e := relL2(out[r.RunningStats[k]].Float32, g["step_bn/"+k].Float32())
				worstStat = max(worstStat, e)
				if e > statTol {
					t.Errorf("running stat %s rel L2 err %.2e", k, e)
				}
			}
			t.Logf("%d params, worst step rel err %.2e; %d running stats, worst rel err %.2e", len(ps), worst, len(stats), worstStat)
		})
	}
}
