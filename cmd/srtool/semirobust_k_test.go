package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseKList(t *testing.T) {
	for in, want := range map[string][]int{
		"4":        {4},
		"1-3":      {1, 2, 3},
		"2,4,6-8":  {2, 4, 6, 7, 8},
		" 3 , 1-2": {3, 1, 2},
		"5-5":      {5},
	} {
		got, err := parseKList(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("parseKList(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "3-1", "1-3,2", "a", "1-", "-2", "1,,2"} {
		if got, err := parseKList(in); err == nil {
			t.Errorf("parseKList(%q) = %v; want an error", in, got)
		}
	}
}

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
