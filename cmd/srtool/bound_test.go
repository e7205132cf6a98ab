//go:build cgo

package main

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/progress"
	"github.com/semirobust/srtool/semirobust"
)

const (
	demoRobust    = "../../testdata/demo/fmnist_robust.onnx"
	hessianGolden = "../../testdata/hessian/fmnist_robust_hvp.npz"
)

// perturbedTail writes f* with every parameter of its tail of 4 weight
// layers moved by scale·N(0,1) (BN statistics and head untouched) and
// returns the path and ‖Δω_b‖².
func perturbedTail(t *testing.T, scale float64) (string, float64) {
	t.Helper()
	m, err := onnxio.Read(demoRobust)
	if err != nil {
		t.Fatal(err)
	}
	an, err := analyzer.Analyze(m)
	if err != nil {
		t.Fatal(err)
	}
	cut, err := an.CutTail(4)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := checkpoint.Export(m)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	p := finetune.Params{}
	var sq float64
	for _, n := range an.Partition(cut).TailParams {
		v, err := ts[n].Float32s()
		if err != nil {
			t.Fatal(err)
		}
		for i := range v {
			old := v[i]
			v[i] += float32(scale * rng.NormFloat64())
			d := float64(v[i]) - float64(old)
			sq += d * d
		}
		p[n] = v
	}
	out, err := semirobust.WithParams(m, p)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ftilde.onnx")
	if err := onnxio.Write(path, out); err != nil {
		t.Fatal(err)
	}
	return path, sq
}

func TestBoundCommand(t *testing.T) {
	g, err := npy.ReadNPZ(hessianGolden)
	if err != nil {
		t.Fatal(err)
	}
	ft, sq := perturbedTail(t, 2e-3)
	js := filepath.Join(t.TempDir(), "bound.json")
	code, out, errs := srtool(t, "bound", "--robust", demoRobust, "--finetuned", ft, "--fb-layers", "4",
		"--data", demoTest, "--n", "64", "--batch", "64", "--tol", "1e-3", "--json", js)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if strings.Contains(errs, "warning") {
		t.Errorf("stderr warns: %s", errs)
	}
	var rep map[string]any
	readJSON(t, js, &rep)
	num := func(key string) float64 {
		v, ok := rep[key].(float64)
		if !ok {
			t.Fatalf("report key %q = %v; want a number", key, rep[key])
		}
		return v
	}
	if rep["complete"] != true || rep["run"] == nil {
		t.Errorf("report: complete %v, run %v", rep["complete"], rep["run"])
	}
	for _, k := range []struct{ key, golden string }{{"lambda_max_tail", "lambda_tail"}, {"lambda_max_all", "lambda_all"}} {
		got, want := num(k.key), g[k.golden].Float64()[0]
		if math.Abs(got-want)/want > 0.02 {
			t.Errorf("%s = %.5g; PyTorch (Lanczos, float64) %.5g; want within 2 %%", k.key, got, want)
		} else {
			t.Logf("%s = %.5g; PyTorch %.5g (%.2g %%)", k.key, got, want, 100*(got-want)/want)
		}
	}
	for _, key := range []string{"power_tail", "power_all"} {
		pw, _ := rep[key].(map[string]any)
		if pw == nil || pw["converged"] != true || pw["iterations"].(float64) < 2 {
			t.Errorf("%s = %v; want a converged power iteration", key, rep[key])
		}
	}
	if wds := num("weight_diff_sq"); math.Abs(wds-sq)/sq > 1e-9 {
		t.Errorf("weight_diff_sq = %.9g; want %.9g", wds, sq)
	}
	if b, want := num("bound"), 0.5*num("lambda_max_tail")*num("weight_diff_sq"); math.Abs(b-want) > 1e-12*want {
		t.Errorf("bound = %g; want ½ λmax_tail ‖Δω_b‖² = %g", b, want)
	}
	if q, b := num("quadratic_form"), num("bound"); !(q <= b) || q <= 0 {
		t.Errorf("quadratic form %g; want in (0, bound %g]", q, b)
	}
	if num("head_diff_norm") != 0 || num("tail_stats_diff_norm") != 0 {
		t.Errorf("head_diff_norm %v, tail_stats_diff_norm %v; want 0 (only tail parameters moved)", rep["head_diff_norm"], rep["tail_stats_diff_norm"])
	}
	// Only trainable tail parameters moved, so the two measured gaps agree.
	// With the gates frozen the loss is smooth and the second-order
	// expansion predicts its gap; the real network's gap differs by what
	// the ReLUs that switch add.
	gap, same, frozen, t2 := num("loss_gap"), num("loss_gap_same_stats"), num("loss_gap_frozen_gates"), num("taylor2")
	if math.Abs(gap-same) > 1e-6 {
		t.Errorf("loss_gap %g and loss_gap_same_stats %g differ", gap, same)
	}
	if math.Abs(t2-frozen) > 0.02*num("quadratic_form") {
		t.Errorf("second-order prediction %g (linear %g + quadratic %g) vs the frozen-gate gap %g; want within 2 %% of the quadratic term", t2, num("linear_term"), num("quadratic_form"), frozen)
	}
	t.Logf("gap %.4g (frozen gates %.4g), linear %.4g, quadratic %.4g, bound %.4g", gap, frozen, num("linear_term"), num("quadratic_form"), num("bound"))
	for _, want := range []string{"λmax tail", "λmax all", "bound", "loss gap"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}

	// Attacked inputs, one product per power iteration: not converged.
	code, _, errs = srtool(t, "bound", "--robust", demoRobust, "--finetuned", ft, "--fb-layers", "4",
		"--data", demoTest, "--n", "16", "--adv", "pgd", "--eps", "0.1", "--steps", "2", "--max-iter", "1", "--json", js)
	if code != 0 {
		t.Fatalf("--adv pgd: exit %d: %s", code, errs)
	}
	rep = nil
	readJSON(t, js, &rep)
	if rep["inputs"] != "pgd" || rep["adv_accuracy"] == nil {
		t.Errorf("--adv pgd: inputs %v, adv_accuracy %v", rep["inputs"], rep["adv_accuracy"])
	}
	if pw, _ := rep["power_all"].(map[string]any); pw == nil || pw["converged"] != false || pw["iterations"] != 1.0 {
		t.Errorf("--max-iter 1: power_all = %v; want 1 iteration, not converged", rep["power_all"])
	}
}

func TestBoundUsageErrors(t *testing.T) {
	base := []string{"bound", "--robust", demoRobust, "--finetuned", demoRobust, "--data", demoTest}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no split", nil, "exactly one of --fb-layers K and --at A"},
		{"both splits", []string{"--fb-layers", "4", "--at", "3"}, "exactly one of"},
		{"K out of range", []string{"--fb-layers", "13"}, "K must be in 1..12"},
		{"negative K", []string{"--fb-layers", "-1"}, "must be positive"},
		{"A out of range", []string{"--at", "13"}, "a must be in 1..12"},
		{"tolerance 0", []string{"--fb-layers", "4", "--tol", "0"}, "--tol must be a positive number"},
		{"negative tolerance", []string{"--fb-layers", "4", "--tol", "-1e-4"}, "--tol must be a positive number"},
		{"no iterations", []string{"--fb-layers", "4", "--max-iter", "0"}, "--max-iter must be at least 1"},
		{"step 0", []string{"--fb-layers", "4", "--fd-step", "0"}, "--fd-step must be in (0, 1)"},
		{"step 1", []string{"--fb-layers", "4", "--fd-step", "1"}, "--fd-step must be in (0, 1)"},
		{"eps above 1", []string{"--fb-layers", "4", "--adv", "pgd", "--eps", "2"}, "--eps 2"},
		{"unknown attack", []string{"--fb-layers", "4", "--adv", "nosuch"}, "nosuch"},
		{"negative steps", []string{"--fb-layers", "4", "--adv", "pgd", "--steps", "-1"}, "--steps and --restarts must not be negative"},
		{"n above the data", []string{"--fb-layers", "4", "--n", "5000"}, "has only 1000 samples"},
		{"negative n", []string{"--fb-layers", "4", "--n", "-3"}, "must not be negative"},
		{"an argument", []string{"--fb-layers", "4", "extra"}, "bound takes no arguments"},
	} {
		code, _, errs := srtool(t, append(slices.Clone(base), tc.args...)...)
		if code != exitUsage || !strings.Contains(errs, tc.want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q; want 2 and one line with %q", tc.name, code, errs, tc.want)
		}
	}
	code, _, errs := srtool(t, "bound", "--finetuned", demoRobust, "--data", demoTest, "--fb-layers", "4")
	if code != exitUsage || !strings.Contains(errs, "robust") {
		t.Errorf("missing --robust: exit %d, %q", code, errs)
	}
}

// cancelOn cancels when a progress line containing marker is written.
type cancelOn struct {
	marker string
	cancel context.CancelFunc
	buf    strings.Builder
}

func (w *cancelOn) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.marker) {
		w.cancel()
	}
	return len(p), nil
}

func TestBoundInterrupted(t *testing.T) {
	defer func(d time.Duration) { progress.LogInterval = d }(progress.LogInterval)
	progress.LogInterval = 0 // a progress line after every product
	js := filepath.Join(t.TempDir(), "bound.json")
	args := []string{"srtool", "bound", "--robust", demoRobust, "--finetuned", demoRobust, "--fb-layers", "4",
		"--data", demoTest, "--n", "16", "--max-iter", "2", "--json", js}
	for _, tc := range []struct {
		name     string
		marker   string // "" = cancelled before the start
		have     []string
		not      []string
		stdoutNF bool
	}{
		{"before the start", "", []string{"weight_diff_sq"}, []string{"loss_gap", "quadratic_form", "lambda_max_tail", "bound", "lambda_max_all", "power_tail"}, true},
		{"in the power iteration over all parameters", "power iteration, all parameters: 1/", []string{"loss_gap", "quadratic_form", "lambda_max_tail", "bound", "power_tail"}, []string{"lambda_max_all", "power_all"}, true},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		errw := &cancelOn{marker: tc.marker, cancel: cancel}
		if tc.marker == "" {
			cancel()
		}
		var out strings.Builder
		code := run(ctx, args, &out, errw)
		cancel()
		if code != exitInterrupted {
			t.Fatalf("%s: exit %d; want 130: %s", tc.name, code, errw.buf.String())
		}
		lines := strings.Split(strings.TrimSpace(errw.buf.String()), "\n")
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "interrupted: ") || !strings.Contains(last, "complete: false") {
			t.Errorf("%s: last stderr line %q; want interrupted: … complete: false", tc.name, last)
		}
		if tc.stdoutNF && !strings.Contains(out.String(), "not finished") {
			t.Errorf("%s: stdout %q lacks not finished", tc.name, out.String())
		}
		var rep map[string]any
		readJSON(t, js, &rep)
		if rep["complete"] != false || rep["incomplete_reason"] != "interrupted" {
			t.Errorf("%s: complete %v (%v); want false, interrupted", tc.name, rep["complete"], rep["incomplete_reason"])
		}
		for _, k := range tc.have {
			if rep[k] == nil {
				t.Errorf("%s: %s missing from the report; it finished", tc.name, k)
			}
		}
		for _, k := range tc.not {
			if rep[k] != nil {
				t.Errorf("%s: %s = %v in the report; it did not finish", tc.name, k, rep[k])
			}
		}
	}
}

func TestBoundRefusesAndWarns(t *testing.T) {
	// Data of another shape: one line, exit 1, nothing written.
	js := filepath.Join(t.TempDir(), "bound.json")
	code, out, errs := srtool(t, "bound", "--robust", demoRobust, "--finetuned", demoRobust, "--fb-layers", "4",
		"--data", writeNPZ(t, 3, []int64{0, 1}, 1), "--json", js)
	if code != exitFailed || strings.Count(errs, "\n") != 1 || out != "" || exists(js) {
		t.Errorf("3-channel data: exit %d, stdout %q, stderr %q, report written %v; want 1, one line, nothing", code, out, errs, exists(js))
	}
	// A "fine-tuned" model whose head is not f*'s: the bound runs and warns.
	code, _, errs = srtool(t, "bound", "--robust", demoRobust, "--finetuned", "../../testdata/demo/fmnist_normal.onnx", "--fb-layers", "4",
		"--data", demoTest, "--n", "8", "--max-iter", "1", "--json", js)
	if code != 0 || !strings.Contains(errs, "warning: the heads differ") {
		t.Fatalf("normal model as ω~: exit %d, stderr %q; want 0 and a warning", code, errs)
	}
	var rep map[string]any
	readJSON(t, js, &rep)
	if h, _ := rep["head_diff_norm"].(float64); !(h > 0) {
		t.Errorf("head_diff_norm = %v; want > 0", rep["head_diff_norm"])
	}
}
