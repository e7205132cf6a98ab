package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stripVolatile removes what legitimately differs between a sharded and an
// unsharded run: timings, the command line and output paths.
func stripVolatile(m map[string]any) {
	for _, k := range []string{"seconds", "images_per_second", "merged_from", "run", "sharding"} {
		delete(m, k)
	}
}

func TestEvalShardsMergeToTheUnshardedRun(t *testing.T) {
	dir := t.TempDir()
	base := []string{"eval", sharedModel, "--data", demoTest, "--n", "301", "--batch", "50"}
	whole := filepath.Join(dir, "whole.json")
	wholeLogits := filepath.Join(dir, "whole.npy")
	if code, _, errs := srtool(t, append(base, "--json", whole, "--save-logits", wholeLogits)...); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var want map[string]any
	readJSON(t, whole, &want)
	stripVolatile(want)
	wantLogits, err := os.ReadFile(wholeLogits)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 3, 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			sdir := filepath.Join(dir, fmt.Sprint(n))
			if err := os.Mkdir(sdir, 0o755); err != nil {
				t.Fatal(err)
			}
			var args []string
			for i := 0; i < n; i++ {
				js := filepath.Join(sdir, fmt.Sprintf("shard%d.json", i))
				lg := filepath.Join(sdir, fmt.Sprintf("logits%d.npy", i))
				if code, _, errs := srtool(t, append(base, "--shard", fmt.Sprintf("%d/%d", i, n), "--json", js, "--save-logits", lg)...); code != 0 {
					t.Fatalf("shard %d/%d: exit %d: %s", i, n, code, errs)
				}
				args = append(args, js)
			}
			out := filepath.Join(dir, fmt.Sprintf("merged%d.json", n))
			outLogits := filepath.Join(dir, fmt.Sprintf("merged%d.npy", n))
			if code, _, errs := srtool(t, append([]string{"merge", out, "--save-logits", outLogits}, args...)...); code != 0 {
				t.Fatalf("merge: exit %d: %s", code, errs)
			}
			var got map[string]any
			readJSON(t, out, &got)
			stripVolatile(got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("merged report differs from the unsharded one:\n got %v\nwant %v", got, want)
			}
			b, err := os.ReadFile(outLogits)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != string(wantLogits) {
				t.Error("merged logits differ from the unsharded run's")
			}
		})
	}
}

func TestMergeRefusesWhatIsNotOneRun(t *testing.T) {
	dir := t.TempDir()
	base := []string{"eval", sharedModel, "--data", demoTest, "--n", "90"}
	shardJSON := func(name string, extra ...string) string {
		js := filepath.Join(dir, name)
		if code, _, errs := srtool(t, append(append(base, "--json", js), extra...)...); code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		return js
	}
	s0 := shardJSON("s0.json", "--shard", "0/3")
	s1 := shardJSON("s1.json", "--shard", "1/3")
	s2 := shardJSON("s2.json", "--shard", "2/3")
	other := shardJSON("other.json", "--shard", "2/3", "--mean", "0.1", "--std", "1")
	of2 := shardJSON("of2.json", "--shard", "1/2")
	whole := shardJSON("whole.json")
	incomplete := filepath.Join(dir, "incomplete.json")
	var m map[string]any
	readJSON(t, s2, &m)
	m["complete"] = false
	b, _ := json.Marshal(m)
	os.WriteFile(incomplete, b, 0o644)
	edited := filepath.Join(dir, "edited.json")
	readJSON(t, s2, &m)
	m["sharding"].(map[string]any)["lo"] = 50.0
	b, _ = json.Marshal(m)
	os.WriteFile(edited, b, 0o644)

	for _, tc := range []struct {
		name   string
		shards []string
		want   string
	}{
		{"missing", []string{s0, s2}, "missing shard(s) 1/3"},
		{"duplicate", []string{s0, s1, s1, s2}, "appears twice"},
		{"other settings", []string{s0, s1, other}, "--mean"},
		{"other count", []string{s0, s1, of2}, "of 90"},
		{"incomplete", []string{s0, s1, incomplete}, "not complete"},
		{"overlapping", []string{s0, s1, edited}, "covers [50,"},
		{"not a shard", []string{whole}, "not a shard report"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := srtool(t, append([]string{"merge", filepath.Join(dir, "out.json")}, tc.shards...)...)
			if code != exitFailed || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, stderr %q; want a refusal with %q", code, errs, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "out.json")); err == nil {
				t.Error("a refused merge wrote its output")
			}
		})
	}
}

func TestSkipDone(t *testing.T) {
	dir := t.TempDir()
	js := filepath.Join(dir, "s.json")
	args := []string{"eval", sharedModel, "--data", demoTest, "--n", "40", "--shard", "1/2", "--json", js, "--skip-done"}
	if code, out, errs := srtool(t, args...); code != 0 || strings.Contains(out, "skipped") {
		t.Fatalf("first run: exit %d %q %s", code, out, errs)
	}
	if code, out, _ := srtool(t, args...); code != 0 || !strings.Contains(out, "skipped") {
		t.Errorf("second run: exit %d, %q; want skipped", code, out)
	}
	// Another setting is another run: not skipped.
	if code, out, _ := srtool(t, append(args, "--n", "41")...); code != 0 || strings.Contains(out, "skipped") {
		t.Errorf("changed run: exit %d, %q; want it run", code, out)
	}
}

// TestAttackShardsMergeToTheUnshardedRun: every attack family with random
// choices (PGD's random start, APGD-T's targets, FAB-T, Square's sampling)
// run whole and in N = 1, 2, 3 and 7 shards; the merged report, per-sample
// file and adversarial examples equal the unsharded run's.
func TestAttackShardsMergeToTheUnshardedRun(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 14 attack runs")
	}
	dir := t.TempDir()
	base := []string{"attack", "../../testdata/demo/fmnist_robust.onnx", "--data", demoTest, "--n", "23", "--batch", "8",
		"--attack", "fgsm,pgd,apgd-ce,apgd-t,fab-t,square", "--steps", "4", "--eps", "0.1", "--threads", "1"}
	whole := filepath.Join(dir, "whole")
	if code, _, errs := srtool(t, append(base, "--json", whole+".json", "--save-adv", whole+".npy", "--per-sample", whole+".jsonl")...); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var want map[string]any
	readJSON(t, whole+".json", &want)
	stripAttackVolatile(want)
	for _, n := range []int{1, 2, 3, 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var args []string
			for i := 0; i < n; i++ {
				p := filepath.Join(dir, fmt.Sprintf("n%d-s%d", n, i))
				if code, _, errs := srtool(t, append(base, "--shard", fmt.Sprintf("%d/%d", i, n), "--json", p+".json", "--save-adv", p+".npy", "--per-sample", p+".jsonl")...); code != 0 {
					t.Fatalf("shard %d/%d: exit %d: %s", i, n, code, errs)
				}
				args = append(args, p+".json")
			}
			out := filepath.Join(dir, fmt.Sprintf("merged%d", n))
			if code, _, errs := srtool(t, append([]string{"merge", out + ".json", "--save-adv", out + ".npy", "--per-sample", out + ".jsonl"}, args...)...); code != 0 {
				t.Fatalf("merge: exit %d: %s", code, errs)
			}
			var got map[string]any
			readJSON(t, out+".json", &got)
			stripAttackVolatile(got)
			if !reflect.DeepEqual(got, want) {
				for k := range want {
					if !reflect.DeepEqual(got[k], want[k]) {
						t.Errorf("%s: merged %v, unsharded %v", k, got[k], want[k])
					}
				}
			}
			for _, ext := range []string{".npy", ".jsonl"} {
				a, err1 := os.ReadFile(whole + ext)
				b, err2 := os.ReadFile(out + ext)
				if err1 != nil || err2 != nil || string(a) != string(b) {
					t.Errorf("merged %s differs from the unsharded run's (%v, %v)", ext, err1, err2)
				}
			}
		})
	}
}

// stripAttackVolatile removes timings, outputs and the call counts, which
// depend on how points were batched (sample counts do not).
func stripAttackVolatile(m map[string]any) {
	stripVolatile(m)
	delete(m, "outputs")
	var strip func(v any)
	strip = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			delete(t, "grad_calls")
			delete(t, "forward_calls")
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

// TestMIShardsMergeToTheUnshardedRun: ρ over every consecutive pair of the
// fixture model with a permutation null, whole and in N = 1, 2, 3, 7 shards
// of layer pairs.
func TestMIShardsMergeToTheUnshardedRun(t *testing.T) {
	dir := t.TempDir()
	base := []string{"mi", sharedModel, "--data", demoTest, "--n", "200", "--pairs", "all", "--estimator", "ksg", "--permutations", "2", "--threads", "1"}
	whole := filepath.Join(dir, "whole.json")
	if code, _, errs := srtool(t, append(base, "--json", whole)...); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var want map[string]any
	readJSON(t, whole, &want)
	stripVolatile(want)
	if pairs, _ := want["pairs"].([]any); len(pairs) != 12 {
		t.Fatalf("unsharded run has %d pairs; want 12", len(pairs))
	}
	for _, n := range []int{1, 2, 3, 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var args []string
			for i := 0; i < n; i++ {
				js := filepath.Join(dir, fmt.Sprintf("n%d-s%d.json", n, i))
				if code, _, errs := srtool(t, append(base, "--shard", fmt.Sprintf("%d/%d", i, n), "--json", js)...); code != 0 {
					t.Fatalf("shard %d/%d: exit %d: %s", i, n, code, errs)
				}
				args = append(args, js)
			}
			out := filepath.Join(dir, fmt.Sprintf("merged%d.json", n))
			if code, _, errs := srtool(t, append([]string{"merge", out}, args...)...); code != 0 {
				t.Fatalf("merge: exit %d: %s", code, errs)
			}
			var got map[string]any
			readJSON(t, out, &got)
			stripVolatile(got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("merged report differs from the unsharded one:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// TestMergeRefusesAFIFO: a shard "report" that is a FIFO is refused at
// once instead of blocking the merge.
func TestMergeRefusesAFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "shard.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan struct{})
	var code int
	var errs string
	go func() {
		code, _, errs = srtool(t, "merge", filepath.Join(dir, "out.json"), fifo)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("merge blocked on a FIFO")
	}
	if code != exitFailed || !strings.Contains(errs, "not a regular file") {
		t.Errorf("exit %d, stderr %q; want a refusal", code, errs)
	}
}
