//go:build cgo

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/semirobust/srtool/report"
	"github.com/semirobust/srtool/runs"
)

// cancelWriter collects a command's stdout and cancels its context once the
// markers have appeared in order (as Ctrl-C at that point would).
type cancelWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	markers []string
	cancel  func()
}

// partialSuffix marks the outputs of an unfinished run.
const partialSuffix = runs.PartialSuffix

func (w *cancelWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	s := w.buf.String()
	for _, m := range w.markers {
		i := strings.Index(s, m)
		if i < 0 {
			return len(p), nil
		}
		s = s[i+len(m):]
	}
	w.cancel()
	return len(p), nil
}

func (w *cancelWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// srtoolStopped runs the command line and cancels it once stdout has shown
// the markers in order. It returns exit code, stdout and stderr.
func srtoolStopped(t *testing.T, markers []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelWriter{markers: markers, cancel: cancel}
	var errb bytes.Buffer
	code := run(ctx, append([]string{"srtool"}, args...), out, &errb)
	return code, out.String(), errb.String()
}

// readJSONMap reads a JSON file as generic maps.
func readJSONMap(t *testing.T, path string) map[string]any {
	t.Helper()
	var m map[string]any
	readJSON(t, path, &m)
	return m
}

// TestFinetuneInterruptedReportsBestSoFar stops finetune after its first
// epoch: exit 130, one interrupted: line saying what finished, a report
// with complete false, no Acc~ or Δ (not 0), the best accuracy so far
// marked as such, and the best model so far only under a .partial name.
func TestFinetuneInterruptedReportsBestSoFar(t *testing.T) {
	D, p := tinyModelPair(t, 192)
	code, out, errs := srtoolStopped(t, []string{"trial 1 epoch  1"}, "finetune", p("fstar.onnx"), "--tail-from", p("f.onnx"), "--fb-layers", "4",
		"--data", D, "--eval-data", D, "--epochs", "3", "--train-batch", "32", "--target", "100", "--adv", "none", "--threads", "1",
		"-o", p("ft.onnx"), "--json", p("ft.json"))
	if code != exitInterrupted {
		t.Fatalf("exit %d; want %d (stderr %q)", code, exitInterrupted, errs)
	}
	if lines := strings.Split(strings.TrimSpace(errs), "\n"); !strings.HasPrefix(lines[len(lines)-1], "interrupted: ") ||
		!strings.Contains(errs, "stopped after 1 of 3 epochs") || !strings.Contains(errs, "best so far") {
		t.Errorf("stderr %q; want one interrupted: line saying trial 1 stopped after 1 of 3 epochs with the best so far", errs)
	}
	if strings.Contains(out, "Acc~ (after) 0.00") || !strings.Contains(out, "Acc~ (after) not finished (best so far") {
		t.Errorf("summary claims an Acc~:\n%s", out)
	}
	rep := readJSONMap(t, p("ft.json"))
	oc := rep["outcome"].(map[string]any)
	if rep["complete"] != false || rep["incomplete_reason"] != "interrupted" {
		t.Errorf("complete %v, reason %v; want false, interrupted", rep["complete"], rep["incomplete_reason"])
	}
	for _, k := range []string{"acc_tilde", "delta"} {
		if v, ok := oc[k]; ok {
			t.Errorf("outcome.%s = %v in an unfinished run; want it absent", k, v)
		}
	}
	for _, k := range []string{"acc_star", "acc_sr", "best_so_far"} {
		if _, ok := oc[k]; !ok {
			t.Errorf("outcome lacks %s", k)
		}
	}
	trials := oc["result"].(map[string]any)["trials"].([]any)
	tr := trials[0].(map[string]any)
	epochs := tr["epochs"].([]any)
	if len(trials) != 1 || tr["trial"].(float64) != 1 || tr["done"] != false || len(epochs) != 1 || epochs[0].(map[string]any)["epoch"].(float64) != 1 {
		t.Fatalf("trials %v; want trial 1, unfinished, with epoch 1 only", trials)
	}
	best := oc["best_so_far"].(map[string]any)
	if best["acc"] != epochs[0].(map[string]any)["eval_acc"] || best["trial"].(float64) != 1 || best["epoch"].(float64) != 1 {
		t.Errorf("best_so_far %v; want epoch 1's accuracy %v at trial 1 epoch 1", best, epochs[0].(map[string]any)["eval_acc"])
	}
	if _, err := os.Stat(p("ft.onnx")); err == nil {
		t.Errorf("the unfinished run wrote -o ft.onnx; want only ft.onnx.partial")
	}
	checkOutputs(t, rep, p("ft.onnx")+partialSuffix)
}

// TestTrainInterruptedReportsBestSoFar: train stopped after its first
// epoch reports the best so far, marked, and writes only a .partial model.
func TestTrainInterruptedReportsBestSoFar(t *testing.T) {
	D, p := tinyModelPair(t, 96)
	code, out, errs := srtoolStopped(t, []string{"trial 1 epoch  1"}, "train", p("init.onnx"), "--data", D, "--eval-data", D, "--epochs", "3",
		"--train-batch", "32", "--threads", "1", "-o", p("t.onnx"), "--json", p("t.json"))
	if code != exitInterrupted || !strings.Contains(errs, "interrupted: trial 1 stopped after 1 of 3 epochs") {
		t.Fatalf("exit %d, stderr %q; want 130 and what finished", code, errs)
	}
	if !strings.Contains(out, "not finished: best so far") {
		t.Errorf("stdout does not mark the best so far:\n%s", out)
	}
	rep := readJSONMap(t, p("t.json"))
	if rep["complete"] != false || rep["best"] != nil || rep["best_so_far"] == nil {
		t.Errorf("complete %v, best %v, best_so_far %v; want false, absent, present", rep["complete"], rep["best"], rep["best_so_far"])
	}
	checkOutputs(t, rep, p("t.onnx")+partialSuffix)
}

// checkOutputs checks that a report names want as its output and records
// the SHA-256 of the file on disk.
func checkOutputs(t *testing.T, rep map[string]any, want string) {
	t.Helper()
	if rep["output"] != want {
		t.Errorf("output %v; want %s", rep["output"], want)
	}
	outs, _ := rep["outputs"].(map[string]any)
	d, err := report.FileDigests(want)
	if err != nil {
		t.Fatal(err)
	}
	if outs[want] != d[want] {
		t.Errorf("outputs %v; want the SHA-256 %s of %s", outs, d[want], want)
	}
}

// TestSemirobustInterruptedThenResumed stops semirobust in its second row:
// the partial report keeps the finished row and marks the unfinished one;
// --resume takes the finished row over and continues the second from its
// checkpoint instead of starting it again.
func TestSemirobustInterruptedThenResumed(t *testing.T) {
	D, p := tinyModelPair(t, 192)
	// A robust model trained longer: Acc* above what fine-tuning at a tiny
	// learning rate reaches, so that no trial stops early.
	if code, _, errs := srtool(t, "train", p("init.onnx"), "--data", D, "--eval-data", D, "--epochs", "4", "--lr", "0.1", "--train-batch", "32",
		"--seed", "2", "--threads", "1", "-o", p("strong.onnx")); code != 0 {
		t.Fatal(errs)
	}
	args := []string{"semirobust", "--normal", p("f.onnx"), "--robust", p("strong.onnx"), "--data", D, "--eval-data", D, "--eval-n", "96", "--rho-n", "96",
		"--attacks", "none", "--fb-layers", "2,3", "--epochs", "3", "--lr", "1e-6", "--adv", "none", "--train-batch", "32", "--threads", "1",
		"-o", p("run"), "--checkpoint-dir", p("ck"), "--json", p("sr.json")}
	code, out, errs := srtoolStopped(t, []string{"== attack clean, K = 3", "trial 1 epoch  1"}, args...)
	if code != exitInterrupted {
		t.Fatalf("exit %d; want %d (stderr %q, stdout %s)", code, exitInterrupted, errs, out)
	}
	if !strings.Contains(errs, "interrupted: 1 of 2 rows finished; clean K=3 stopped") || !strings.Contains(errs, "--resume") {
		t.Errorf("stderr %q; want what finished and how to resume", errs)
	}
	rep := readJSONMap(t, p("run/report.json"))
	rows := rep["rows"].([]any)
	if rep["complete"] != false || len(rows) != 2 {
		t.Fatalf("report: complete %v, %d rows; want false and 2 rows", rep["complete"], len(rows))
	}
	done, stopped := rows[0].(map[string]any), rows[1].(map[string]any)
	if done["complete"] != true || done["acc_tilde"] == nil || done["rhos"] == nil {
		t.Errorf("first row %v; want it finished with Acc~ and ρ", done)
	}
	for _, k := range []string{"acc_tilde", "delta", "rhos", "mean_epochs_to_converge"} {
		if v, ok := stopped[k]; ok {
			t.Errorf("unfinished row has %s = %v; want it absent", k, v)
		}
	}
	if stopped["complete"] != false || stopped["acc_star"] == nil || stopped["best_so_far"] == nil {
		t.Errorf("unfinished row %v; want complete false with Acc* and the best so far", stopped)
	}
	md, err := os.ReadFile(p("run/report.md"))
	if err != nil || !strings.Contains(string(md), "**Not finished**") || !strings.Contains(string(md), "| clean | 3 |") {
		t.Errorf("report.md (%v) does not mark the unfinished run:\n%s", err, md)
	}
	if _, err := os.Stat(p("sr.json")); err != nil {
		t.Errorf("--json not written for the unfinished run: %v", err)
	}

	code, out, errs = srtool(t, append(args, "--resume")...)
	if code != 0 {
		t.Fatalf("resume: exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "== attack clean, K = 2: finished before") || !strings.Contains(out, "resuming from") {
		t.Errorf("resume output lacks the finished row taken over or the row resumed:\n%s", out)
	}
	_, k3, _ := strings.Cut(out, "== attack clean, K = 3")
	if strings.Contains(k3, "trial 1 epoch  1 ") || !strings.Contains(k3, "trial 1 epoch  2 ") {
		t.Errorf("K = 3 started again instead of continuing at epoch 2:\n%s", k3)
	}
	rep = readJSONMap(t, p("run/report.json"))
	rows = rep["rows"].([]any)
	if rep["complete"] != true || len(rows) != 2 || rows[1].(map[string]any)["complete"] != true {
		t.Fatalf("resumed report: complete %v, rows %d", rep["complete"], len(rows))
	}
	eps := rows[1].(map[string]any)["finetune"].([]any)[0].(map[string]any)["epochs"].([]any)
	if len(eps) != 3 || eps[0].(map[string]any)["epoch"].(float64) != 1 || eps[2].(map[string]any)["epoch"].(float64) != 3 {
		t.Errorf("K = 3 records %d epochs; want epochs 1..3", len(eps))
	}
}

// editCheckpointRecord rewrites the resume record of a fine-tuning
// checkpoint, as a user with a text editor might.
func editCheckpointRecord(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var header map[string]any
	if err := json.Unmarshal(b[8:8+n], &header); err != nil {
		t.Fatal(err)
	}
	md := header["__metadata__"].(map[string]any)
	var rec map[string]any
	if err := json.Unmarshal([]byte(md["srtool.finetune"].(string)), &rec); err != nil {
		t.Fatal(err)
	}
	edit(rec)
	rb, _ := json.Marshal(rec)
	md["srtool.finetune"] = string(rb)
	hb, _ := json.Marshal(header)
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hb)))
	out = append(append(out, hb...), b[8+n:]...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFinetuneResumeRefusesOtherRuns resumes a checkpoint with another
// model, another setting and after an edit: each is one clear error (exit
// 1, no panic) before any work; with no checkpoint yet, --resume starts
// fresh and says so.
func TestFinetuneResumeRefusesOtherRuns(t *testing.T) {
	D, p := tinyModelPair(t, 160)
	base := func(extra ...string) []string {
		return append([]string{"finetune", p("fstar.onnx"), "--fb-layers", "4", "--data", D, "--eval-data", D, "--epochs", "3",
			"--train-batch", "32", "--target", "100", "--adv", "none", "--threads", "1", "--checkpoint-dir", p("ck"), "-o", p("ft.onnx")}, extra...)
	}
	// --resume without a checkpoint yet: a fresh run, said so; stopped after epoch 1.
	code, out, errs := srtoolStopped(t, []string{"trial 1 epoch  1"}, base("--tail-from", p("f.onnx"), "--resume")...)
	if code != exitInterrupted || !strings.Contains(out, "no checkpoint in "+p("ck")+" yet: starting fresh") {
		t.Fatalf("--resume with no checkpoint: exit %d, stdout %q, stderr %q; want a fresh start, said so", code, out, errs)
	}
	ck := filepath.Join(p("ck"), "checkpoint.safetensors")
	saved, err := os.ReadFile(ck)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		args  []string
		edit  func(map[string]any)
		wants []string
	}{
		{"another normal model", base("--tail-from", p("fstar.onnx"), "--resume"), nil, []string{"belongs to another run", "normal model (SHA-256) is"}},
		{"another learning rate", base("--tail-from", p("f.onnx"), "--lr", "0.02", "--resume"), nil, []string{"belongs to another run", "--lr is 0.01 there but 0.02 in this run"}},
		{"another evaluation attack", base("--tail-from", p("f.onnx"), "--eval-attack", "fgsm", "--eps", "0.05", "--resume"), nil, []string{"belongs to another run", "evaluation attack"}},
		{"fewer epochs than recorded", base("--tail-from", p("f.onnx"), "--resume"), func(r map[string]any) {
			tr := r["trials"].([]any)[0].(map[string]any)
			e := tr["epochs"].([]any)
			for len(e) < 5 {
				c := map[string]any{}
				for k, v := range e[0].(map[string]any) {
					c[k] = v
				}
				c["epoch"], c["eval_acc"] = float64(len(e)+1), 0.0
				e = append(e, c)
			}
			tr["epochs"] = e
		}, []string{"records 5 epochs; --epochs is 3"}},
		{"best accuracy edited", base("--tail-from", p("f.onnx"), "--resume"), func(r map[string]any) {
			r["trials"].([]any)[0].(map[string]any)["best_acc"] = 100.0
		}, []string{"inconsistent", "the epochs make it"}},
		{"trial without results", base("--tail-from", p("f.onnx"), "--resume"), func(r map[string]any) {
			r["trials"].([]any)[0].(map[string]any)["epochs"] = []any{}
		}, []string{"inconsistent", "no epoch recorded"}},
		{"Acc* removed", base("--tail-from", p("f.onnx"), "--resume"), func(r map[string]any) { delete(r, "measured") }, []string{"does not record Acc*"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(ck, saved, 0o644); err != nil {
				t.Fatal(err)
			}
			if c.edit != nil {
				editCheckpointRecord(t, ck, c.edit)
			}
			code, out, errs := srtool(t, c.args...)
			if code != exitFailed || strings.Contains(errs, "internal error") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
				t.Errorf("exit %d, stderr %q; want exit 1 and one line", code, errs)
			}
			for _, w := range c.wants {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q; want it to say %q", errs, w)
				}
			}
			if strings.Contains(out, "epoch") || strings.Contains(out, "Acc*") {
				t.Errorf("work ran before the refusal:\n%s", out)
			}
		})
	}
	// The untouched checkpoint resumes and finishes.
	os.WriteFile(ck, saved, 0o644)
	code, out, errs = srtool(t, base("--tail-from", p("f.onnx"), "--resume", "--json", p("ft.json"))...)
	if code != 0 || !strings.Contains(out, "resuming from") || strings.Contains(out, "trial 1 epoch  1 ") {
		t.Fatalf("resume: exit %d, %s\n%s", code, errs, out)
	}
	rep := readJSONMap(t, p("ft.json"))
	if rep["complete"] != true || rep["outcome"].(map[string]any)["acc_tilde"] == nil {
		t.Errorf("resumed run: complete %v, outcome %v", rep["complete"], rep["outcome"])
	}
	checkOutputs(t, rep, p("ft.onnx"))
}

// TestSemirobustRhoNRefusedBeforeTraining: --rho-n 50 leaves 10 classes
// about 5 samples each, fewer than EDGE needs; that is a usage error naming
// the minimum and the flag, before anything is trained or written.
func TestSemirobustRhoNRefusedBeforeTraining(t *testing.T) {
	const demo = "../../testdata/demo"
	out := filepath.Join(t.TempDir(), "run")
	code, stdout, errs := srtool(t, "semirobust", "--normal", filepath.Join(demo, "fmnist_normal.onnx"), "--robust", filepath.Join(demo, "fmnist_robust.onnx"),
		"--data", "npz:"+filepath.Join(demo, "fmnist_train_3000.npz"), "--eval-data", "npz:"+filepath.Join(demo, "fmnist_test_1000.npz"),
		"--rho-n", "50", "--attacks", "none", "--epochs", "1", "-o", out)
	if code != exitUsage || !strings.Contains(errs, "--rho-n") || !strings.Contains(errs, "needs at least 20 samples in a class") {
		t.Fatalf("exit %d, stderr %q; want a usage error naming EDGE's minimum of 20 and --rho-n", code, errs)
	}
	if strings.Contains(stdout, "epoch") {
		t.Errorf("training ran before the refusal:\n%s", stdout)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s was created by a refused run", out)
	}
}

// TestTrainingDefaults: the training attack steps ε/4 unless --adv-alpha
// says otherwise, finetune fine-tunes with PGD-10 by default (Algorithm 1),
// and the reports record the resolved values.
func TestTrainingDefaults(t *testing.T) {
	D, p := tinyModelPair(t, 64)
	code, _, errs := srtool(t, "train", p("init.onnx"), "--data", D, "--eval-data", D, "--epochs", "1", "--train-batch", "32", "--adv", "pgd", "--adv-eps", "0.1", "--adv-steps", "2",
		"--threads", "1", "-o", p("t.onnx"), "--json", p("t.json"))
	if code != 0 {
		t.Fatalf("train: %s", errs)
	}
	rep := readJSONMap(t, p("t.json"))
	adv := rep["adversarial_training"].(map[string]any)
	if a := adv["step_size"].(float64); math.Abs(a-0.025) > 1e-7 || rep["run"].(map[string]any)["flags"].(map[string]any)["adv-alpha"] != "eps/4" {
		t.Errorf("train --adv-eps 0.1: step %v (flag %v); want 0.025 = ε/4", a, rep["run"].(map[string]any)["flags"].(map[string]any)["adv-alpha"])
	}
	checkOutputs(t, rep, p("t.onnx"))
	code, _, errs = srtool(t, "finetune", p("fstar.onnx"), "--tail-from", p("f.onnx"), "--fb-layers", "2", "--data", D, "--eval-data", D, "--epochs", "1",
		"--train-batch", "32", "--threads", "1", "-o", p("ft.onnx"), "--json", p("ft.json"))
	if code != 0 {
		t.Fatalf("finetune: %s", errs)
	}
	rep = readJSONMap(t, p("ft.json"))
	adv, ok := rep["adversarial_training"].(map[string]any)
	if !ok || math.Abs(adv["epsilon"].(float64)-8.0/255) > 1e-7 || math.Abs(adv["step_size"].(float64)-2.0/255) > 1e-7 || adv["steps"].(float64) != 10 {
		t.Errorf("finetune's default fine-tuning %v; want PGD-10 at ε 8/255 with α 2/255", rep["adversarial_training"])
	}
	if rep["outcome"].(map[string]any)["feature_cache"] != "head run every step: adversarial fine-tuning" {
		t.Errorf("feature cache %v; want the head run every step for adversarial fine-tuning", rep["outcome"].(map[string]any)["feature_cache"])
	}
}

// TestTrainingUsageErrors: invalid settings are usage errors (exit 2, one
// line) before anything is read.
func TestTrainingUsageErrors(t *testing.T) {
	ft := []string{"finetune", "robust.onnx", "--tail-from", "normal.onnx", "--fb-layers", "2", "--data", "npz:x.npz", "-o", "x.onnx"}
	sr := []string{"semirobust", "--normal", "n.onnx", "--robust", "r.onnx", "--data", "npz:x.npz", "-o", "out"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{append(ft, "--epochs", "0"), "--epochs 0"},
		{append(ft, "--lr", "0"), "--lr 0"},
		{append(ft, "--lr", "-0.1"), "--lr -0.1"},
		{append(ft, "--momentum", "1"), "--momentum 1"},
		{append(ft, "--trials", "0"), "--trials 0"},
		{append(ft, "--tolerance", "-1"), "--tolerance -1"},
		{append(ft, "--adv-eps", "0"), "--adv-eps 0"},
		{append(ft, "--adv-alpha", "0"), "--adv-alpha"},
		{append(ft, "--adv-alpha", "eps/0"), "--adv-alpha"},
		{append(ft, "--adv-steps", "0"), "--adv-steps 0"},
		{append(ft, "--resume"), "--resume needs --checkpoint-dir"},
		{append(ft, "--schedule", "multistep:3,1"), "--schedule"},
		{append(ft, "--rho-every-epoch", "--rho-n", "0"), "--rho-n 0"},
		{append(sr, "--trials", "0"), "--trials 0"},
		{append(sr, "--rho-n", "0"), "--rho-n 0"},
		{append(sr, "--fb-layers", "2,2"), "twice"},
		{append(sr, "--eval-attack", "pgd"), "--attacks"},
		{[]string{"train", "m.onnx", "--data", "npz:x.npz", "-o", "y.onnx", "--epochs", "-1"}, "--epochs -1"},
	} {
		code, _, errs := srtool(t, c.args...)
		if code != exitUsage || !strings.Contains(errs, c.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want a one-line usage error naming %q", c.args[len(c.args)-2:], code, errs, c.want)
		}
	}
}
