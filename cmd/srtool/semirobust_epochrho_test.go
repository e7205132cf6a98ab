package main

import (
	"os"
	"strings"
	"testing"
)

// TestSemirobustRhoEveryEpoch: --rho-every-epoch records ρ of the tail's
// pairs in every epoch of every trial, ρ_n at each stopping threshold, the
// report.md section and rho_epoch.png, and records the flag; without it the
// flags hold no "rho-every-epoch" and a run with it does not take over the
// folder of a run without it.
func TestSemirobustRhoEveryEpoch(t *testing.T) {
	D, p := tinyModelPair(t, 192)
	args := func(dir string, extra ...string) []string {
		return append([]string{"semirobust", "--normal", p("f.onnx"), "--robust", p("fstar.onnx"), "--data", D, "--eval-data", D, "--n", "96",
			"--eval-n", "192", "--rho-n", "192", "--attacks", "none", "--fb-layers", "2", "--trials", "2",
			"--epochs", "2", "--train-batch", "32", "--adv", "none", "--seed", "5", "--threads", "1", "-o", p(dir)}, extra...)
	}
	if code, _, errs := srtool(t, args("plain")...); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	m := readJSONMap(t, p("plain/report.json"))
	if _, ok := m["run"].(map[string]any)["flags"].(map[string]any)["rho-every-epoch"]; ok {
		t.Error("a run without --rho-every-epoch records the flag")
	}
	if _, ok := m["rows"].([]any)[0].(map[string]any)["rho_at_threshold"]; ok {
		t.Error("a run without --rho-every-epoch has rho_at_threshold")
	}
	if code, _, errs := srtool(t, args("plain", "--rho-every-epoch", "--skip-done")...); code == 0 || !strings.Contains(errs, "belongs to another run") {
		t.Errorf("--rho-every-epoch --skip-done on a run without it: exit %d, %s; want a refusal", code, errs)
	}

	if code, _, errs := srtool(t, args("epochs", "--rho-every-epoch")...); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	m = readJSONMap(t, p("epochs/report.json"))
	if m["run"].(map[string]any)["flags"].(map[string]any)["rho-every-epoch"] != true {
		t.Error("--rho-every-epoch not recorded")
	}
	row := m["rows"].([]any)[0].(map[string]any)
	for _, tr := range row["finetune"].([]any) {
		for _, e := range tr.(map[string]any)["epochs"].([]any) {
			extra, _ := e.(map[string]any)["extra"].(map[string]any)
			if len(extra) != 2 { // K = 2: two pairs
				t.Errorf("trial %v epoch %v: extra %v, want ρ of the 2 tail pairs", tr.(map[string]any)["trial"], e.(map[string]any)["epoch"], extra)
			}
		}
	}
	ts, ok := row["rho_at_threshold"].([]any)
	if !ok || len(ts) != 6 {
		t.Fatalf("rho_at_threshold %v; want 6 thresholds", row["rho_at_threshold"])
	}
	for _, x := range ts {
		th := x.(map[string]any)
		if n := th["trials_reached"].(float64) + th["trials_censored"].(float64) + th["trials_not_reached"].(float64); n != 2 {
			t.Errorf("threshold %v: %v trials accounted for, want 2", th["k"], n)
		}
	}
	md, _ := os.ReadFile(p("epochs/report.md"))
	for _, want := range []string{"## ρ after every epoch", "### ρ_n at the stopping threshold k", "(rho_epoch.png)"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	if _, err := os.Stat(p("epochs/rho_epoch.png")); err != nil {
		t.Error(err)
	}
}
