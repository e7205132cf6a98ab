package main

import (
	"os"
	"strings"
	"testing"
)

// TestSemirobustBound: --bound adds bound_per_trial, the report.md section
// and bound_K.png, and records the flag; without it the flags hold no
// "bound" (the reports of runs without it are unchanged), and a run with
// --bound does not take over the folder of a run without it.
func TestSemirobustBound(t *testing.T) {
	D, p := tinyModelPair(t, 192)
	args := func(dir string, extra ...string) []string {
		return append([]string{"semirobust", "--normal", p("f.onnx"), "--robust", p("fstar.onnx"), "--data", D, "--eval-data", D, "--n", "96",
			"--eval-n", "192", "--rho-n", "192", "--attacks", "none", "--fb-layers", "2", "--trials", "1",
			"--epochs", "1", "--train-batch", "32", "--adv", "none", "--seed", "5", "--threads", "1", "-o", p(dir)}, extra...)
	}
	if code, _, errs := srtool(t, args("plain")...); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	m := readJSONMap(t, p("plain/report.json"))
	if _, ok := m["run"].(map[string]any)["flags"].(map[string]any)["bound"]; ok {
		t.Error("a run without --bound records a bound flag")
	}
	if _, ok := m["rows"].([]any)[0].(map[string]any)["bound_per_trial"]; ok {
		t.Error("a run without --bound has bound_per_trial")
	}
	if code, _, errs := srtool(t, args("plain", "--bound", "--skip-done")...); code == 0 || !strings.Contains(errs, "belongs to another run") {
		t.Errorf("--bound --skip-done on a run without --bound: exit %d, %s; want a refusal", code, errs)
	}

	if code, _, errs := srtool(t, args("bound", "--bound")...); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	m = readJSONMap(t, p("bound/report.json"))
	if m["run"].(map[string]any)["flags"].(map[string]any)["bound"] != true {
		t.Error("--bound not recorded")
	}
	bs, ok := m["rows"].([]any)[0].(map[string]any)["bound_per_trial"].([]any)
	if !ok || len(bs) != 1 {
		t.Fatalf("bound_per_trial %v; want one trial's", bs)
	}
	b := bs[0].(map[string]any)
	if b["trial"].(float64) != 1 || !(b["bound"].(float64) >= 0) || b["lambda_max_tail"].(float64) > b["lambda_max_all"].(float64)*(1+1e-3) {
		t.Errorf("bound %v: want trial 1, bound ≥ 0, λmax tail ≤ λmax all", b)
	}
	md, _ := os.ReadFile(p("bound/report.md"))
	if !strings.Contains(string(md), "## Weight-difference bound") {
		t.Error("report.md lacks the bound section")
	}
	if _, err := os.Stat(p("bound/bound_K.png")); err != nil {
		t.Error(err)
	}
}
