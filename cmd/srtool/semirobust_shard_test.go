package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// semirobustShardArgs is a small semirobust run on the tiny model pair:
// one attack with a random start, K = 2 and 3, two trials each (5 work
// units), PGD fine-tuning with its per-batch random starts.
func semirobustShardArgs(D string, p func(string) string) []string {
	return []string{"semirobust", "--normal", p("f.onnx"), "--robust", p("fstar.onnx"), "--data", D, "--eval-data", D, "--n", "96",
		"--eval-n", "96", "--rho-n", "96", "--attacks", "pgd", "--eps", "0.05", "--steps", "2", "--fb-layers", "2,3", "--trials", "2",
		"--epochs", "1", "--train-batch", "32", "--adv-eps", "0.05", "--adv-steps", "1", "--seed", "5", "--threads", "1"}
}

// stripSemirobust removes what legitimately differs between a merged and
// an unsharded report: timings, the command line, where files went and
// whether a shard was resumed. Outputs are kept by file name.
func stripSemirobust(m map[string]any) {
	stripVolatile(m)
	for _, k := range []string{"checkpoint_dir", "merged_from"} {
		delete(m, k)
	}
	if outs, ok := m["outputs"].(map[string]any); ok {
		byName := map[string]any{}
		for p, v := range outs {
			if filepath.Base(p) != "report.md" { // compared by sameFiles, resume notes aside
				byName[filepath.Base(p)] = v
			}
		}
		m["outputs"] = byName
	}
	var strip func(v any)
	strip = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			delete(t, "seconds")
			delete(t, "resumed_from") // run information: a resumed shard says so
			if p, ok := t["model"].(string); ok {
				t["model"] = filepath.Base(p)
			}
			for _, x := range t {
				strip(x)
			}
		case []any:
			for _, x := range t {
				strip(x)
			}
		}
	}
	strip(m)
}

// resumedLine is report.md's note that a row resumed from a checkpoint.
var resumedLine = regexp.MustCompile(`(?m)^Fine-tuning resumed from a checkpoint .*\n\n`)

// sameFiles reports the files of want's folder (report.md, plots, models)
// that differ from got's, or are missing there.
func sameFiles(t *testing.T, got, want string) {
	t.Helper()
	ents, err := os.ReadDir(want)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if e.IsDir() || e.Name() == "report.json" {
			continue
		}
		n++
		a, err1 := os.ReadFile(filepath.Join(want, e.Name()))
		b, err2 := os.ReadFile(filepath.Join(got, e.Name()))
		if e.Name() == "report.md" {
			b = resumedLine.ReplaceAll(b, nil) // run information, as in the JSON
		}
		if err1 != nil || err2 != nil || string(a) != string(b) {
			t.Errorf("%s: merged differs from the unsharded run's (%v, %v)", e.Name(), err1, err2)
		}
	}
	if n < 6 { // report.md, and per row a model and two plots
		t.Errorf("%s holds %d files besides report.json; want report.md, plots and models", want, n)
	}
}

// TestSemirobustShardsMergeToTheUnshardedRun runs a small semirobust whole
// and as N = 1, 2, 3 and 7 shards of its 5 work units (7 leaves two shards
// empty); each merge equals the unsharded report field by field (timings
// and paths aside), and report.md, the plots and the models byte for byte.
// One shard is interrupted inside a trial unit and resumed (--resume
// --skip-done, as a requeued array task runs), and a finished shard run
// again with --skip-done does nothing.
func TestSemirobustShardsMergeToTheUnshardedRun(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 14 semirobust runs")
	}
	D, p := tinyModelPair(t, 192)
	base := semirobustShardArgs(D, p)
	if code, _, errs := srtool(t, append(base, "-o", p("whole"), "--json", p("whole.json"))...); code != 0 {
		t.Fatalf("unsharded run: exit %d: %s", code, errs)
	}
	want := readJSONMap(t, p("whole/report.json"))
	if rows := want["rows"].([]any); len(rows) != 2 || rows[0].(map[string]any)["trials"] != 2.0 {
		t.Fatalf("unsharded report rows %v; want 2 rows of 2 trials", rows)
	}
	stripSemirobust(want)
	for _, n := range []int{1, 2, 3, 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			sdir := p(fmt.Sprintf("n%d", n))
			var reports []string
			for i := 0; i < n; i++ {
				args := append(base, "--shard", fmt.Sprintf("%d/%d", i, n), "-o", filepath.Join(sdir, fmt.Sprintf("s%d", i)),
					"--json", filepath.Join(sdir, fmt.Sprintf("shard-%d.json", i)), "--checkpoint-dir", filepath.Join(sdir, fmt.Sprintf("ck%d", i)))
				if n == 2 && i == 0 {
					// Preempted after its first trial's training, then requeued.
					code, out, errs := srtoolStopped(t, []string{"trial 1 epoch  1"}, args...)
					if code != exitInterrupted || !strings.Contains(errs, "1 of 3 units of shard 0/2 finished; unit pgd K=2 trial 1 stopped") {
						t.Fatalf("interrupted shard: exit %d, stderr %q\n%s", code, errs, out)
					}
					args = append(args, "--resume", "--skip-done")
					code, out, errs = srtool(t, args...)
					if code != 0 || !strings.Contains(out, "== attack pgd: finished before") || !strings.Contains(out, "resuming from") {
						t.Fatalf("resumed shard: exit %d, %s\n%s", code, errs, out)
					}
					if code, out, _ := srtool(t, args...); code != 0 || !strings.Contains(out, "skipped") || strings.Contains(out, "epoch") {
						t.Errorf("finished shard with --skip-done: exit %d, %s; want it skipped", code, out)
					}
				} else if code, _, errs := srtool(t, args...); code != 0 {
					t.Fatalf("shard %d/%d: exit %d: %s", i, n, code, errs)
				}
				reports = append(reports, filepath.Join(sdir, fmt.Sprintf("shard-%d.json", i)))
			}
			out := filepath.Join(sdir, "merged", "report.json")
			os.MkdirAll(filepath.Dir(out), 0o755)
			if code, _, errs := srtool(t, append([]string{"merge", out}, reports...)...); code != 0 {
				t.Fatalf("merge: exit %d: %s", code, errs)
			}
			got := readJSONMap(t, out)
			stripSemirobust(got)
			if !reflect.DeepEqual(got, want) {
				for k := range want {
					if !reflect.DeepEqual(got[k], want[k]) {
						g, _ := json.Marshal(got[k])
						w, _ := json.Marshal(want[k])
						t.Errorf("%s: merged\n%s\nunsharded\n%s", k, g, w)
					}
				}
				for k := range got {
					if _, ok := want[k]; !ok {
						t.Errorf("merged report has %s, the unsharded one not", k)
					}
				}
			}
			sameFiles(t, filepath.Dir(out), p("whole"))
		})
	}
}

// TestSemirobustMergeRefusals: merge refuses semirobust shards of another
// run (naming the flag), a missing shard, and a shard whose units measured
// another Acc* than the attack unit's (a shard run on another device).
func TestSemirobustMergeRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: semirobust shard runs")
	}
	D, p := tinyModelPair(t, 192)
	base := slices.Clip(append(semirobustShardArgs(D, p), "--trials", "1", "--fb-layers", "2"))
	shard := func(name string, i int, extra ...string) string {
		js := p(name + ".json")
		args := append(append(base, "--shard", fmt.Sprintf("%d/2", i), "-o", p(name), "--json", js), extra...)
		if code, _, errs := srtool(t, args...); code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, errs)
		}
		return js
	}
	s0, s1 := shard("s0", 0), shard("s1", 1)
	other := shard("other", 1, "--lr", "0.02")
	tampered := p("tampered.json")
	m := readJSONMap(t, s1)
	u := m["work_units"].([]any)[0].(map[string]any)
	u["acc_star"] = u["acc_star"].(float64) + 1
	b, _ := json.Marshal(m)
	os.WriteFile(tampered, b, 0o644)
	for _, tc := range []struct {
		name   string
		shards []string
		want   string
	}{
		{"another run", []string{s0, other}, "--lr"},
		{"missing", []string{s1}, "missing shard(s) 0/2"},
		{"another Acc*", []string{s0, tampered}, "did not compute the same numbers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := p("merged/report.json")
			code, _, errs := srtool(t, append([]string{"merge", out}, tc.shards...)...)
			if code != exitFailed || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, stderr %q; want a refusal with %q", code, errs, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("a refused merge wrote its report")
			}
		})
	}
	if code, _, errs := srtool(t, "merge", p("merged.json"), s0, s1); code != 0 {
		t.Errorf("the untouched shards: exit %d: %s", code, errs)
	}
	// A retried task with another setting must not take the units over.
	code, out, errs := srtool(t, append(base, "--shard", "1/2", "-o", p("s1"), "--json", s1, "--skip-done", "--lr", "0.03")...)
	if code != exitFailed || !strings.Contains(errs, "belongs to another run") || !strings.Contains(errs, "--lr") || strings.Contains(out, "epoch") {
		t.Errorf("--skip-done into a folder of another run: exit %d, stderr %q; want a refusal naming --lr before any work", code, errs)
	}
}
