package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestSemirobustCost runs a tiny K sweep with --cost and the reference
// adversarial training, and checks the cost columns of report.json and
// report.md and the plots.
func TestSemirobustCost(t *testing.T) {
	D, p := tinyModelPair(t, 192)
	args := []string{"semirobust", "--normal", p("f.onnx"), "--robust", p("fstar.onnx"), "--data", D, "--eval-data", D, "--n", "96",
		"--eval-n", "192", "--rho-n", "192", "--attacks", "pgd", "--eps", "0.05", "--steps", "1", "--fb-layers", "1-2", "--trials", "1",
		"--epochs", "1", "--train-batch", "32", "--adv-eps", "0.05", "--adv-steps", "1", "--seed", "5", "--threads", "1",
		"--cost", "--reference-adv-training", "-o", p("run")}
	if code, _, errs := srtool(t, args...); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	m := readJSONMap(t, p("run/report.json"))
	rows := m["rows"].([]any)
	if len(rows) != 2 {
		t.Fatalf("%d rows; want K = 1, 2", len(rows))
	}
	prev := 0.0
	for _, r := range rows {
		c, ok := r.(map[string]any)["cost"].(map[string]any)
		if !ok {
			t.Fatalf("row without cost: %v", r)
		}
		n := c["trainable_params"].(float64)
		if n <= prev || c["epochs_run"].(float64) != 1 || !(c["epoch_seconds"].(float64) > 0) {
			t.Errorf("cost %v: want more trainable parameters for a larger K, 1 epoch, positive time", c)
		}
		prev = n
	}
	ref, ok := m["reference_adv_training"].(map[string]any)
	if !ok || ref["cost"].(map[string]any)["trainable_params"].(float64) <= prev {
		t.Errorf("reference %v: want one with more trainable parameters than the largest tail", ref)
	}
	if m["memory_note"] == nil || m["run"].(map[string]any)["flags"].(map[string]any)["cost"] != true {
		t.Errorf("memory note or --cost not recorded")
	}
	md, _ := os.ReadFile(p("run/report.md"))
	if !strings.Contains(string(md), "## Cost per K") || !strings.Contains(string(md), "reference: full adversarial training") {
		t.Errorf("report.md has no cost table:\n%s", md)
	}
	for _, f := range []string{"cost_K.png", "acc_K.png"} {
		if _, err := os.Stat(filepath.Join(p("run"), f)); err != nil {
			t.Error(err)
		}
	}
}

func TestSemirobustCostRefusals(t *testing.T) {
	D, p := "npz:x.npz", func(s string) string { return s }
	base := []string{"semirobust", "--normal", p("f.onnx"), "--robust", p("fstar.onnx"), "--data", D, "-o", "out"}
	for _, tc := range []struct {
		extra []string
		want  string
	}{
		{[]string{"--fb-layers", "3-1"}, "--fb-layers"},
		{[]string{"--fb-layers", "1-2,2"}, "twice"},
		{[]string{"--reference-adv-training"}, "needs --cost"},
		{[]string{"--cost", "--reference-adv-training", "--adv", "none"}, "needs --adv pgd"},
		{[]string{"--cost", "--reference-adv-training", "--shard", "0/2"}, "--shard"},
	} {
		code, _, errs := srtool(t, append(slices.Clone(base), tc.extra...)...)
		if code != exitUsage || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("%v: exit %d, stderr %q; want a one-line usage error with %q", tc.extra, code, errs, tc.want)
		}
	}
}

// TestSemirobustDependence runs a tiny sweep with --dependence and checks
// every measure of the three tails is there per trial, and the rank
// correlations (over 2 K × 2 trials = 4 points) and plots.
func TestSemirobustDependence(t *testing.T) {
	D, p := tinyModelPair(t, 192)
	args := []string{"semirobust", "--normal", p("f.onnx"), "--robust", p("fstar.onnx"), "--data", D, "--eval-data", D, "--n", "96",
		"--eval-n", "192", "--rho-n", "192", "--attacks", "pgd", "--eps", "0.05", "--steps", "1", "--fb-layers", "1-2", "--trials", "2",
		"--epochs", "1", "--train-batch", "32", "--adv", "none", "--seed", "5", "--threads", "1",
		"--untrained-fb", "--dependence", "gauss,corr,sensitivity", "-o", p("run")}
	if code, _, errs := srtool(t, args...); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	m := readJSONMap(t, p("run/report.json"))
	for _, r := range m["rows"].([]any) {
		if a, ok := r.(map[string]any)["acc_untrained"].(float64); !ok || a < 0 || a > 100 {
			t.Errorf("row %v: no zero-shot accuracy of an untrained tail", r.(map[string]any)["fb_layers"])
		}
		deps := r.(map[string]any)["dependence"].([]any)
		if len(deps) != 2 {
			t.Fatalf("%d trials with dependence; want 2", len(deps))
		}
		// gauss and corr: 3 tails × clean, attacked; sensitivity: 3 tails.
		if vals := deps[0].(map[string]any)["values"].([]any); len(vals) != 15 {
			t.Errorf("%d values per trial; want 15: %v", len(vals), vals)
		}
	}
	corrs := m["dependence_correlations"].([]any)
	if len(corrs) != 15*2 {
		t.Errorf("%d rank correlations; want 30 (15 series × 2 outcomes)", len(corrs))
	}
	for _, c := range corrs {
		if c.(map[string]any)["n"].(float64) != 4 {
			t.Errorf("rank correlation over %v points; want 4", c.(map[string]any)["n"])
		}
	}
	md, _ := os.ReadFile(p("run/report.md"))
	if !strings.Contains(string(md), "## Which dependence measure predicts semirobustness") {
		t.Errorf("report.md has no dependence section")
	}
	for _, f := range []string{"dependence_gauss.png", "dependence_corr.png", "dependence_sensitivity.png"} {
		if _, err := os.Stat(filepath.Join(p("run"), f)); err != nil {
			t.Error(err)
		}
	}
	code, _, errs := srtool(t, append(slices.Clone(args[:len(args)-5]), "--dependence", "edge,bogus", "-o", p("x"))...)
	if code != exitUsage || !strings.Contains(errs, "bogus") {
		t.Errorf("--dependence bogus: exit %d, %q; want a usage error", code, errs)
	}
}

// TestSemirobustDependenceShards: the measures travel in the work units,
// so two shards merged give the unsharded run's measures and rank
// correlations.
func TestSemirobustDependenceShards(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 3 semirobust runs")
	}
	D, p := tinyModelPair(t, 192)
	base := []string{"semirobust", "--normal", p("f.onnx"), "--robust", p("fstar.onnx"), "--data", D, "--eval-data", D, "--n", "96",
		"--eval-n", "192", "--rho-n", "192", "--attacks", "pgd", "--eps", "0.05", "--steps", "1", "--fb-layers", "1-2", "--trials", "2",
		"--epochs", "1", "--train-batch", "32", "--adv", "none", "--seed", "5", "--threads", "1", "--dependence", "corr,sensitivity"}
	if code, _, errs := srtool(t, append(slices.Clone(base), "-o", p("whole"))...); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var shards []string
	for i := 0; i < 2; i++ {
		js := p(fmt.Sprintf("s%d.json", i))
		if code, _, errs := srtool(t, append(slices.Clone(base), "--shard", fmt.Sprintf("%d/2", i), "-o", p(fmt.Sprintf("s%d", i)), "--json", js)...); code != 0 {
			t.Fatalf("shard %d: exit %d: %s", i, code, errs)
		}
		shards = append(shards, js)
	}
	os.MkdirAll(p("merged"), 0o755)
	if code, _, errs := srtool(t, append([]string{"merge", p("merged/report.json")}, shards...)...); code != 0 {
		t.Fatalf("merge: exit %d: %s", code, errs)
	}
	want, got := readJSONMap(t, p("whole/report.json")), readJSONMap(t, p("merged/report.json"))
	if !reflect.DeepEqual(got["dependence_correlations"], want["dependence_correlations"]) || want["dependence_correlations"] == nil {
		t.Errorf("merged correlations\n%v\nunsharded\n%v", got["dependence_correlations"], want["dependence_correlations"])
	}
	for i, r := range want["rows"].([]any) {
		if g := got["rows"].([]any)[i].(map[string]any)["dependence"]; !reflect.DeepEqual(g, r.(map[string]any)["dependence"]) {
			t.Errorf("row %d: merged dependence differs", i)
		}
	}
}
