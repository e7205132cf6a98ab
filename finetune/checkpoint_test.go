package finetune

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// stopAfter runs opt on job in dir and cancels it once epochs epochs of
// the whole run have finished (and, with batch > 0, that many batches of
// the next epoch). It returns the result and error of the stopped run.
func stopAfter(t *testing.T, opt Options, job Job, epochs, batch int) (*Result, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := 0
	job.Progress = func(p Progress) {
		if p.Finished != nil {
			seen++
			if seen == epochs && batch == 0 {
				cancel()
			}
			return
		}
		if seen == epochs && p.Batch == batch {
			cancel()
		}
	}
	return opt.Run(ctx, job)
}

// TestStoppedRunReportsBestSoFar checks what a cancelled run returns:
// Complete false, the unfinished trial's records and best epoch so far, and
// no record of a trial that finished no epoch.
func TestStoppedRunReportsBestSoFar(t *testing.T) {
	job, _ := newJob(t)
	opt := Options{Trials: 2, Epochs: 3, BatchSize: 64, Optimizer: SGD{LR: 0.5, Momentum: 0.9}}
	// Stopped inside trial 2's second epoch (3 + 1 epochs finished).
	res, err := stopAfter(t, opt, job, 4, 2)
	if !errors.Is(err, context.Canceled) || res == nil {
		t.Fatalf("stopped run: %v, %v; want context.Canceled and the result so far", res, err)
	}
	if res.Complete || len(res.Trials) != 2 || res.Trials[1].Done || len(res.Trials[1].Epochs) != 1 {
		t.Fatalf("complete %v, %d trials; want an incomplete run whose trial 2 has 1 epoch", res.Complete, len(res.Trials))
	}
	if res.Best == nil || res.Best.Trial != 1 || res.Partial == nil || res.Partial.Trial != 2 || res.Partial.Epoch != 1 {
		t.Fatalf("best %+v, partial %+v; want trial 1's best and trial 2 epoch 1 as the partial best", res.Best, res.Partial)
	}
	if got := res.BestSoFar(); got.Acc != max(res.Best.Acc, res.Partial.Acc) {
		t.Errorf("BestSoFar %.2f%%; want the higher of %.2f and %.2f", got.Acc, res.Best.Acc, res.Partial.Acc)
	}
	// Stopped in trial 2's first batch: trial 2 finished nothing and is not reported.
	res, err = stopAfter(t, opt, job, 3, 1)
	if !errors.Is(err, context.Canceled) || res.Complete || len(res.Trials) != 1 || res.Partial != nil || res.BestSoFar() != res.Best {
		t.Fatalf("stopped in trial 2's first epoch: %d trials, partial %v, err %v; want trial 1 only", len(res.Trials), res.Partial, err)
	}
	// Stopped in the first epoch of all: nothing measured.
	res, err = stopAfter(t, opt, job, 0, 1)
	if !errors.Is(err, context.Canceled) || len(res.Trials) != 0 || res.BestSoFar() != nil {
		t.Fatalf("stopped in the first epoch: %+v, %v; want no trial and no best", res, err)
	}
}

// rewriteCheckpoint decodes the checkpoint in dir, lets edit change its
// resume record (as generic JSON) and tensors, and writes it back.
func rewriteCheckpoint(t *testing.T, dir string, edit func(meta map[string]any, tensors map[string][]float32)) {
	t.Helper()
	path := filepath.Join(dir, CheckpointFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	md, tensors, err := decodeSafetensors(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	if err := json.Unmarshal([]byte(md[metaKey]), &meta); err != nil {
		t.Fatal(err)
	}
	edit(meta, tensors)
	mj, _ := json.Marshal(meta)
	md[metaKey] = string(mj)
	if err := writeSafetensors(path, md, tensors); err != nil {
		t.Fatal(err)
	}
}

// TestResumeRefusesEditedCheckpoints edits a checkpoint in the ways a user
// or a damaged disk might and checks that resuming is one clear error,
// never a panic, and that nothing runs.
func TestResumeRefusesEditedCheckpoints(t *testing.T) {
	job, _ := newJob(t)
	// A target no trial reaches, so that trial 1 runs every epoch.
	opt := Options{Trials: 2, Epochs: 3, BatchSize: 64, Optimizer: SGD{LR: 0.01, Momentum: 0.9}, Target: 99.9}
	trial := func(m map[string]any, i int) map[string]any { return m["trials"].([]any)[i].(map[string]any) }
	epoch := func(m map[string]any, i, j int) map[string]any {
		return trial(m, i)["epochs"].([]any)[j].(map[string]any)
	}
	cases := []struct {
		name string
		edit func(m map[string]any, ts map[string][]float32)
		want string
	}{
		{"epochs beyond --epochs", func(m map[string]any, _ map[string][]float32) {
			tr := trial(m, 0)
			eps := tr["epochs"].([]any)
			for e := len(eps) + 1; e <= 5; e++ {
				c := map[string]any{}
				for k, v := range eps[0].(map[string]any) {
					c[k] = v
				}
				c["epoch"], c["eval_acc"] = float64(e), 0.0
				eps = append(eps, c)
			}
			tr["epochs"] = eps
		}, "records 5 epochs; --epochs is 3"},
		{"finished trial without results", func(m map[string]any, _ map[string][]float32) { trial(m, 0)["epochs"] = []any{} }, "trial 1: no epoch recorded"},
		{"best accuracy raised", func(m map[string]any, _ map[string][]float32) { trial(m, 0)["best_acc"] = 100.0 }, "the epochs make it"},
		{"accuracy above 100", func(m map[string]any, _ map[string][]float32) { epoch(m, 0, 0)["eval_acc"] = 150.0 }, "out of range"},
		{"trial numbered from 0", func(m map[string]any, _ map[string][]float32) { trial(m, 0)["trial"] = 0.0 }, "trial record 1 is numbered 0"},
		{"marked converged", func(m map[string]any, _ map[string][]float32) {
			trial(m, 0)["converged"], trial(m, 0)["epochs_to_converge"] = true, float64(len(trial(m, 0)["epochs"].([]any)))
		}, "never reached the target"},
		{"best trial out of range", func(m map[string]any, _ map[string][]float32) { m["best_trial"] = 7.0 }, "best trial 7 recorded"},
		{"negative schedule steps", func(m map[string]any, _ map[string][]float32) { m["schedule_steps"] = -3.0 }, "schedule steps -3"},
		{"tensor removed", func(_ map[string]any, ts map[string][]float32) { delete(ts, "trainable/fc.bias") }, `"fc.bias"`},
		{"tensor shortened", func(_ map[string]any, ts map[string][]float32) {
			ts["trainable/fc.weight"] = ts["trainable/fc.weight"][:5]
		}, `"fc.weight" has`},
		{"foreign tensor", func(_ map[string]any, ts map[string][]float32) { ts["junk/x"] = []float32{1} }, `unexpected tensor "junk/x"`},
		{"optimizer buffer for no tensor", func(_ map[string]any, ts map[string][]float32) {
			ts["optim/momentum_buffer/nope"] = []float32{1}
		}, "does not match a trainable tensor"},
		{"another format", func(m map[string]any, _ map[string][]float32) { m["format"] = "srtool.finetune/1" }, "format"},
		{"another identity", func(m map[string]any, _ map[string][]float32) {
			m["identity"] = []any{map[string]any{"name": "model sha256", "value": "abc"}}
		}, "model sha256 is abc there but def in this run"},
	}
	job.Identity = []Setting{{"model sha256", "def"}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := opt
			o.CheckpointDir = t.TempDir()
			// Stop inside trial 2 so that every part of the record exists.
			if _, err := stopAfter(t, o, job, 4, 1); !errors.Is(err, context.Canceled) {
				t.Fatalf("stopped run: %v", err)
			}
			rewriteCheckpoint(t, o.CheckpointDir, c.edit)
			j := job
			ran := false
			j.Progress = func(Progress) { ran = true }
			_, err := o.Resume(context.Background(), j)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("resume: %v; want an error containing %q", err, c.want)
			}
			if ran {
				t.Errorf("training ran although the checkpoint was refused")
			}
		})
	}
	// The unedited checkpoint resumes (the cases above fail for their edit).
	o := opt
	o.CheckpointDir = t.TempDir()
	stopAfter(t, o, job, 4, 1)
	rewriteCheckpoint(t, o.CheckpointDir, func(map[string]any, map[string][]float32) {})
	if _, err := o.Resume(context.Background(), job); err != nil {
		t.Errorf("unedited checkpoint: %v", err)
	}
}

// TestCheckBeforeWork checks a checkpoint against a run's options and
// identity without a Job: the first difference is named.
func TestCheckBeforeWork(t *testing.T) {
	job, _ := newJob(t)
	job.Identity = []Setting{{"tool version", "1"}, {"robust model sha256", "aaa"}, {"evaluation attack", "pgd"}}
	job.Measured = map[string]float64{"acc_star": 42.5}
	opt := Options{Epochs: 3, BatchSize: 64, CheckpointDir: t.TempDir()}
	stopAfter(t, opt, job, 1, 0)
	c, err := OpenCheckpoint(opt.CheckpointDir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Measured()["acc_star"] != 42.5 || len(c.Trials()) != 1 || len(c.Trials()[0].Epochs) != 1 {
		t.Errorf("measured %v, trials %+v; want acc_star 42.5 and one epoch", c.Measured(), c.Trials())
	}
	if err := c.Check(opt, job.Identity); err != nil {
		t.Errorf("same run: %v", err)
	}
	other := []Setting{{"tool version", "1"}, {"robust model sha256", "bbb"}, {"evaluation attack", "fgsm"}}
	if err := c.Check(opt, other); err == nil || !strings.Contains(err.Error(), "robust model sha256 is aaa there but bbb in this run") {
		t.Errorf("another model: %v; want the model named", err)
	}
	o := opt
	o.Optimizer = SGD{LR: 0.1, Momentum: 0.9, WeightDecay: 5e-4}
	if err := c.Check(o, job.Identity); err == nil || !strings.Contains(err.Error(), "option optimizer.lr is 0.01 there but 0.1 in this run") {
		t.Errorf("another lr: %v; want optimizer.lr named", err)
	}
	if err := c.Check(opt, job.Identity[:2]); err == nil || !strings.Contains(err.Error(), "evaluation attack") {
		t.Errorf("a setting fewer: %v; want it named", err)
	}
	if _, err := OpenCheckpoint(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no checkpoint: %v; want fs.ErrNotExist", err)
	}
}

// TestDecodeSafetensorsBounds checks that sizes in a header are checked
// against the file before anything is allocated.
func TestDecodeSafetensorsBounds(t *testing.T) {
	header := func(h string) []byte {
		b := make([]byte, 8, 8+len(h)+16)
		binary.LittleEndian.PutUint64(b, uint64(len(h)))
		return append(append(b, h...), make([]byte, 16)...)
	}
	cases := map[string][]byte{
		"huge header size":   binary.LittleEndian.AppendUint64(nil, 1<<62),
		"huge tensor":        header(`{"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,16]}}`),
		"overflowing shape":  header(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,16]}}`),
		"offsets past end":   header(`{"a":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4398046511104]}}`),
		"negative offset":    header(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[-16,0]}}`),
		"negative dimension": header(`{"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}`),
		"gap":                header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`),
		"short":              []byte{1, 2, 3},
	}
	for name, b := range cases {
		if _, _, err := decodeSafetensors(bytes.NewReader(b), int64(len(b))); err == nil {
			t.Errorf("%s: decoded; want an error", name)
		}
	}
}

// fuzzJob is the small job the fuzz target restores checkpoints into.
func fuzzJob() (Options, Job) {
	m := softmaxModel{D: 8, K: 3}
	tr, st := m.init(1)
	job := Job{Train: blobs(40, 3, 1), Trainable: tr, State: st, Stepper: m, Evaluator: accuracyEvaluator{m, blobs(20, 3, 2)},
		Identity: []Setting{{"model", "m"}}}
	return Options{Trials: 2, Epochs: 2, BatchSize: 16, Seed: 3, Optimizer: SGD{LR: 0.1, Momentum: 0.9}}, job
}

// FuzzCheckpoint feeds arbitrary bytes to the checkpoint reader and, when
// they are accepted, restores and finishes the run from them: no input may
// panic, hang or allocate more than the file holds. The seed corpus
// (testdata/fuzz/FuzzCheckpoint) holds checkpoints of fuzzJob's run after
// each epoch.
func FuzzCheckpoint(f *testing.F) {
	opt, job := fuzzJob()
	opt.CheckpointDir = f.TempDir()
	if _, err := opt.Run(context.Background(), job); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(opt.CheckpointDir, CheckpointFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCheckpoint(bytes.NewReader(b), int64(len(b)), "fuzz")
		if err != nil {
			return
		}
		opt, job := fuzzJob()
		if err := c.Check(opt, job.Identity); err != nil {
			return
		}
		r, err := newRun(opt, job)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.restore(c); err != nil {
			return
		}
		if _, err := r.execute(context.Background()); err != nil {
			t.Fatalf("a restored checkpoint failed to finish: %v", err)
		}
	})
}

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// TestFuzzCorpus rewrites FuzzCheckpoint's seed corpus with -update:
// fuzzJob's checkpoints inside trial 1, inside trial 2 and at the end, and
// two damaged files. Without -update it checks that the corpus is there.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzCheckpoint")
	if !*update {
		if ents, err := os.ReadDir(dir); err != nil || len(ents) == 0 {
			t.Fatalf("seed corpus %s missing (%v); regenerate with go test -run TestFuzzCorpus -update", dir, err)
		}
		return
	}
	seeds := map[string][]byte{}
	for name, epochs := range map[string]int{"trial-1-epoch-1": 1, "trial-2-epoch-1": 3, "finished": 0} {
		opt, job := fuzzJob()
		opt.CheckpointDir = t.TempDir()
		if epochs > 0 {
			stopAfter(t, opt, job, epochs, 1)
		} else if _, err := opt.Run(context.Background(), job); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(opt.CheckpointDir, CheckpointFile))
		if err != nil {
			t.Fatal(err)
		}
		seeds[name] = b
	}
	seeds["truncated"] = seeds["finished"][:len(seeds["finished"])/2]
	seeds["header-too-large"] = binary.LittleEndian.AppendUint64(nil, 1<<40)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
