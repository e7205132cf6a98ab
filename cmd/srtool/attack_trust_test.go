//go:build cgo

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/runs"
)

// Issue 11: `srtool attack` prints a robustness number only if it was
// measured: interrupted runs never look finished, resume states belong to
// one run, settings are checked and recorded.

const (
	attackDemoRobust = "../../testdata/demo/fmnist_robust.onnx"
	attackDemoNormal = "../../testdata/demo/fmnist_normal.onnx"
)

// srtoolCancelAt runs the command line and cancels its context at the first
// progress report for which stop returns true.
func srtoolCancelAt(t *testing.T, stop func(attacks.Progress) bool, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	onAttackProgress = func(p attacks.Progress) {
		if stop(p) {
			cancel()
		}
	}
	defer func() { onAttackProgress = nil }()
	var out, errb bytes.Buffer
	code := run(ctx, append([]string{"srtool"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// attackJSON is what the tests read of an attack report.
type attackJSON struct {
	Complete  bool     `json:"complete"`
	Reason    string   `json:"incomplete_reason"`
	Clean     *float64 `json:"clean_accuracy"`
	Robust    *float64 `json:"robust_accuracy"`
	PerAttack []struct {
		Name     string          `json:"name"`
		Accuracy float64         `json:"accuracy"`
		Settings attacks.Setting `json:"settings"`
	} `json:"per_attack"`
	Pending json.RawMessage    `json:"pending"`
	Outputs runs.AttackOutputs `json:"outputs"`
}

func readSamples(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	return rows
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestAttackInterrupted: an attack interrupted in its second attack exits
// 130 with one interrupted: line, writes a report with complete: false, no
// robust accuracy and only the finished attack, writes its per-sample
// verdicts and adversarial inputs only as .partial files that say what is
// unfinished, and resumes to exactly what an uninterrupted run gives.
func TestAttackInterrupted(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	args := func(batch, tag string) []string {
		return []string{"attack", sharedModel, "--data", "npz:../../testdata/fixtures/attacks/fmnist_test_5000_5300.npz", "--n", "60",
			"--attack", "fgsm,pgd", "--eps", "0.1", "--steps", "3", "--batch", batch, "--threads", "1",
			"--json", p(tag + ".json"), "--per-sample", p(tag + ".jsonl"), "--save-adv", p(tag + ".npy"), "--resume", p(tag + ".state")}
	}
	code, out, errs := srtoolCancelAt(t, func(pr attacks.Progress) bool { return pr.Attack == "pgd" && pr.Done > 0 }, args("16", "cut")...)
	if code != exitInterrupted {
		t.Fatalf("exit %d; want %d\n%s", code, exitInterrupted, errs)
	}
	line := strings.TrimSpace(errs[strings.LastIndex(strings.TrimSpace(errs), "\n")+1:])
	if !regexp.MustCompile(`^interrupted: the clean pass and fgsm finished, pgd stopped at [1-9][0-9]* of [1-9][0-9]* points; `).MatchString(line) || !strings.Contains(line, "--resume "+p("cut.state")) ||
		!strings.Contains(line, "complete: false") || !strings.Contains(line, p("cut.jsonl.partial")) {
		t.Errorf("last stderr line %q; want what finished, the files and how to resume", line)
	}
	if strings.Contains(out, "robust accuracy: ") && !strings.Contains(out, "robust accuracy: not finished") || strings.Contains(out, "after pgd") {
		t.Errorf("stdout reports unfinished numbers:\n%s", out)
	}
	var rep attackJSON
	readJSON(t, p("cut.json"), &rep)
	if rep.Complete || rep.Reason != "interrupted" || rep.Robust != nil || rep.Clean == nil || len(rep.PerAttack) != 1 || rep.PerAttack[0].Name != "fgsm" ||
		!strings.Contains(string(rep.Pending), `"pgd"`) {
		t.Errorf("interrupted report: complete %v (%q), robust %v, clean %v, per_attack %+v, pending %s; want complete false, robust null, fgsm only",
			rep.Complete, rep.Reason, rep.Robust, rep.Clean, rep.PerAttack, rep.Pending)
	}
	if exists(p("cut.jsonl")) || exists(p("cut.npy")) || !exists(p("cut.npy.partial")) {
		t.Errorf("unfinished run: %s %v, %s %v, %s %v; want only the .partial files", "cut.jsonl", exists(p("cut.jsonl")), "cut.npy", exists(p("cut.npy")), "cut.npy.partial", exists(p("cut.npy.partial")))
	}
	undecided := 0
	for _, r := range readSamples(t, p("cut.jsonl.partial")) {
		if r["robust"] == true {
			t.Errorf("unfinished run marks sample %v robust", r["index"])
		}
		if r["complete"] == false {
			undecided++
			if r["robust"] != nil || r["adv_pred"] != nil || r["dist"] != nil {
				t.Errorf("undecided sample %v has a verdict: %v", r["index"], r)
			}
		} else if r["robust"] != false || r["broken_by"] == "" {
			t.Errorf("decided sample of an unfinished run: %v; want broken", r)
		}
	}
	if undecided == 0 {
		t.Errorf("no undecided sample in the partial per-sample file")
	}

	// Resume with another batch size; compare with one uninterrupted run.
	if code, _, errs := srtool(t, args("7", "cut")...); code != 0 {
		t.Fatalf("resume: exit %d: %s", code, errs)
	}
	if code, _, errs := srtool(t, args("300", "whole")...); code != 0 {
		t.Fatalf("uninterrupted: exit %d: %s", code, errs)
	}
	var a, b attackJSON
	readJSON(t, p("cut.json"), &a)
	readJSON(t, p("whole.json"), &b)
	if !a.Complete || a.Robust == nil || b.Robust == nil || *a.Robust != *b.Robust || len(a.PerAttack) != 2 {
		t.Fatalf("resumed report: complete %v, robust %v, %d attacks; uninterrupted robust %v", a.Complete, a.Robust, len(a.PerAttack), b.Robust)
	}
	if exists(p("cut.jsonl.partial")) || exists(p("cut.npy.partial")) {
		t.Errorf("the finished run left its .partial files behind")
	}
	x, _ := os.ReadFile(p("cut.jsonl"))
	y, _ := os.ReadFile(p("whole.jsonl"))
	if len(x) == 0 || !bytes.Equal(x, y) {
		t.Errorf("per-sample verdicts after resume (batch 16, then 7) differ from an uninterrupted run's (batch 300)")
	}
	u, err1 := npy.ReadFile(p("cut.npy"))
	v, err2 := npy.ReadFile(p("whole.npy"))
	if err1 != nil || err2 != nil || !bytes.Equal(u.Data, v.Data) {
		t.Errorf("adversarial inputs after resume differ from an uninterrupted run's (%v, %v)", err1, err2)
	}
}

// TestAttackInterruptedAdvAcc: the adv-acc convention reports only the
// attacks that finished and writes no --save-adv file when interrupted.
func TestAttackInterruptedAdvAcc(t *testing.T) {
	dir := t.TempDir()
	js, adv := filepath.Join(dir, "r.json"), filepath.Join(dir, "x.npy")
	code, out, errs := srtoolCancelAt(t, func(p attacks.Progress) bool { return p.Attack == "pgd" }, "attack", attackDemoRobust, "--data", demoTest,
		"--n", "64", "--batch", "16", "--attack", "fgsm,pgd", "--eps", "0.1", "--steps", "2", "--convention", "adv-acc", "--json", js, "--save-adv", adv)
	if code != exitInterrupted || !strings.Contains(errs, "interrupted: the clean pass and fgsm finished, pgd did not") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	var rep attackJSON
	readJSON(t, js, &rep)
	if rep.Complete || rep.Robust != nil || len(rep.PerAttack) != 1 || rep.PerAttack[0].Name != "fgsm" || !strings.Contains(out, "robust accuracy: not finished") {
		t.Errorf("interrupted adv-acc report: complete %v, robust %v, per_attack %+v\n%s", rep.Complete, rep.Robust, rep.PerAttack, out)
	}
	if exists(adv) || exists(adv+".partial") {
		t.Errorf("interrupted adv-acc run wrote --save-adv")
	}
}

// TestAttackResumeRefused: a state saved for the robust model is refused
// for the normal model, for another ε and when edited, with exit code 1 and
// one clear line; nothing runs and nothing is written.
func TestAttackResumeRefused(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "s.json")
	base := func(model string, extra ...string) []string {
		return append([]string{"attack", model, "--data", demoTest, "--n", "40", "--attack", "pgd", "--eps", "0.1", "--steps", "2", "--resume", state}, extra...)
	}
	if code, _, errs := srtool(t, base(attackDemoRobust)...); code != 0 {
		t.Fatalf("saving a state: %s", errs)
	}
	saved, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(saved, &st); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(saved, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	cases := []struct {
		name  string
		state []byte
		args  []string
		want  string
	}{
		{"another model", saved, base(attackDemoNormal), "its model sha256 is "},
		{"another ε", saved, base(attackDemoRobust, "--eps", "0.3"), "its attack 1 (pgd) epsilon is 0.1, this run's is 0.3"},
		{"another step count", saved, base(attackDemoRobust, "--steps", "3"), "its attack 1 (pgd) steps is 2, this run's is 3"},
		{"other data", saved, base(attackDemoRobust, "--offset", "1"), "data offset"},
		{"all points robust", edit(func(m map[string]any) {
			bb := m["broken_by"].([]any)
			for i := range bb {
				bb[i] = -1
			}
			m["adv"] = map[string]any{}
		}), base(attackDemoRobust), "modified after srtool wrote it"},
		{"queue out of range", edit(func(m map[string]any) { m["step"], m["queue"], m["done"] = 0, []int{0, 1 << 30}, 1 }), base(attackDemoRobust), "modified after srtool wrote it"},
		{"short lists", edit(func(m map[string]any) { m["broken_by"] = []int{1} }), base(attackDemoRobust), "modified after srtool wrote it"},
		{"not a state", []byte(`{"format":2,"n":`), base(attackDemoRobust), "not an attack resume state"},
		{"old format", []byte(`{"format":1,"attacks":["pgd"],"n":40,"step":7,"queue":[99]}`), base(attackDemoRobust), "format 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(state, c.state, 0o644); err != nil {
				t.Fatal(err)
			}
			js := filepath.Join(dir, "r.json")
			os.Remove(js)
			code, out, errs := srtool(t, append(c.args, "--json", js)...)
			if code != exitFailed || !strings.Contains(errs, c.want) || !strings.Contains(errs, "nothing was run") || strings.Contains(errs, "internal error") {
				t.Errorf("exit %d, stderr %q; want exit 1 naming %q", code, errs, c.want)
			}
			if n := strings.Count(strings.TrimSpace(errs), "\n"); n != 0 || out != "" {
				t.Errorf("stderr has %d lines, stdout %q; want one line and no results", n+1, out)
			}
			if exists(js) {
				t.Errorf("a refused resume wrote a report")
			}
			if b, _ := os.ReadFile(state); !bytes.Equal(b, c.state) {
				t.Errorf("a refused resume changed the state file")
			}
		})
	}
}

// TestAttackUsageErrors: settings out of range are usage errors (exit 2,
// one line) before anything runs.
func TestAttackUsageErrors(t *testing.T) {
	base := []string{"attack", attackDemoRobust, "--data", demoTest, "--n", "8"}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--eps", "0"}, "greater than 0"},
		{[]string{"--eps", "-0.1"}, "greater than 0"},
		{[]string{"--eps", "8"}, "above 1"},
		{[]string{"--norm", "l2", "--eps", "29"}, "above √784 = 28"},
		{[]string{"--norm", "l1", "--eps", "785"}, "above 784"},
		{[]string{"--norm", "l3"}, "--norm"},
		{[]string{"--steps", "-5"}, "--steps -5: must be at least 1"},
		{[]string{"--steps", "0"}, "--steps 0: must be at least 1"},
		{[]string{"--restarts", "0"}, "--restarts 0: must be at least 1"},
		{[]string{"--alpha", "0"}, "--alpha must be a positive number"},
		{[]string{"--alpha", "-2/255"}, "--alpha must be a positive number"},
		{[]string{"--attack", "fgsm", "--steps", "5"}, "--steps applies to none of --attack fgsm"},
		{[]string{"--attack", "apgd-ce", "--no-random-start"}, "--no-random-start applies to none"},
		{[]string{"--attack", "autoattack", "--restarts", "2"}, "--restarts applies to none"},
	}
	for _, c := range cases {
		code, _, errs := srtool(t, append(base, c.args...)...)
		if code != exitUsage || !strings.Contains(errs, c.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", c.args, code, errs, c.want)
		}
	}
}

// TestAttackShapeAndLabels: data of another shape, and labels outside the
// model's classes, are refused in one sentence.
func TestAttackShapeAndLabels(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.npz")
	tinyData(t, small, 8, 1) // 1×8×8
	code, _, errs := srtool(t, "attack", attackDemoRobust, "--data", "npz:"+small, "--attack", "fgsm")
	if code != exitFailed || !strings.Contains(errs, "takes inputs of shape 1×28×28 (C×H×W) but the data") || !strings.Contains(errs, "1×8×8") {
		t.Errorf("shape mismatch: exit %d, %q", code, errs)
	}
	bad := filepath.Join(dir, "label10.npz")
	y := []int64{0, 10}
	if err := npy.WriteNPZ(bad, map[string]*npy.Array{"x": npy.FromUint8(make([]uint8, 2*784), 2, 1, 28, 28), "y": npy.FromInt64(y, 2)}); err != nil {
		t.Fatal(err)
	}
	code, _, errs = srtool(t, "attack", attackDemoRobust, "--data", "npz:"+bad, "--attack", "fgsm")
	if code != exitFailed || !strings.Contains(errs, "label 10 of sample 1") || !strings.Contains(errs, "outside the 10 classes") {
		t.Errorf("label 10 on a 10-class model: exit %d, %q", code, errs)
	}
}

// TestAttackRecordsSettings: the report and the console record what each
// attack ran with, every default resolved; default PGD steps by ε/4.
func TestAttackRecordsSettings(t *testing.T) {
	dir := t.TempDir()
	js := filepath.Join(dir, "r.json")
	code, out, errs := srtool(t, "attack", attackDemoRobust, "--data", demoTest, "--n", "16", "--attack", "pgd,apgd-t", "--eps", "0.1", "--steps", "2", "--json", js)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep attackJSON
	readJSON(t, js, &rep)
	if !rep.Complete || rep.Robust == nil || len(rep.PerAttack) != 2 {
		t.Fatalf("report: %+v", rep)
	}
	pgd, apgdt := rep.PerAttack[0].Settings, rep.PerAttack[1].Settings
	if pgd.Steps != 2 || math.Abs(float64(pgd.StepSize)-0.025) > 1e-7 || pgd.Restarts != 1 || !pgd.RandomStart || pgd.Loss != "ce" ||
		pgd.Convention != "aa" || pgd.Targets != 0 || pgd.Seed != 1 || pgd.Epsilon != 0.1 {
		t.Errorf("pgd settings %+v; want 2 steps, α = ε/4 = 0.025, 1 restart, random start, loss ce, aa, seed 1", pgd)
	}
	if apgdt.Steps != 2 || apgdt.Targets != 9 || apgdt.Restarts != 1 || !apgdt.RandomStart || apgdt.Loss != "dlr-t" || apgdt.StepRule == "" {
		t.Errorf("apgd-t settings %+v; want 2 steps, 9 targets, 1 restart, random start, loss dlr-t, the adaptive step rule", apgdt)
	}
	if !strings.Contains(out, "after pgd:") || !strings.Contains(out, "2 steps, α=0.025, 1 restart, random start, loss ce") ||
		!strings.Contains(out, "9 targets, 1 restart per target") {
		t.Errorf("console summary lacks the settings:\n%s", out)
	}
	// adv-acc records the convention per attack too.
	code, _, errs = srtool(t, "attack", attackDemoRobust, "--data", demoTest, "--n", "16", "--attack", "fgsm", "--eps", "0.1", "--convention", "adv-acc", "--json", js)
	if code != 0 {
		t.Fatalf("adv-acc: exit %d: %s", code, errs)
	}
	readJSON(t, js, &rep)
	if s := rep.PerAttack[0].Settings; !rep.Complete || s.Convention != "adv-acc" || s.Steps != 1 || s.StepSize != 0.1 || s.RandomStart {
		t.Errorf("adv-acc fgsm settings %+v", s)
	}
	// --help writes every default out.
	_, help, _ := srtool(t, "attack", "--help")
	for _, want := range []string{"pgd 10", "apgd-ce/apgd-dlr/apgd-t 100", "square 5000 queries", "default: 1 for every attack", "9 target classes", "default: ε/4"} {
		if !strings.Contains(help, want) {
			t.Errorf("attack --help lacks %q", want)
		}
	}
	if strings.Contains(help, "attack's default") && !strings.Contains(help, "each attack's default") {
		t.Errorf("attack --help still says \"the attack's default\"")
	}
}
