package finetune

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// newJob returns a softmax-regression job on blobs data.
func newJob(t *testing.T) (Job, softmaxModel) {
	t.Helper()
	m := softmaxModel{D: 8, K: 3}
	tr, st := m.init(1)
	return Job{
		Train:     blobs(300, 3, 1),
		Trainable: tr, State: st,
		Stepper:   m,
		Evaluator: accuracyEvaluator{m, blobs(150, 3, 2)},
	}, m
}

// TestTrainSeparable checks that the loop drives a softmax regression on
// separable data to high accuracy and records every epoch.
func TestTrainSeparable(t *testing.T) {
	job, _ := newJob(t)
	res, err := Options{Epochs: 8, BatchSize: 32, Optimizer: SGD{LR: 0.5, Momentum: 0.9}, Seed: 3}.Run(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	tr := res.Trials[0]
	if got := len(tr.Epochs); got != 8 {
		t.Fatalf("epochs recorded = %d; want 8", got)
	}
	if tr.BestAcc < 95 {
		t.Errorf("best accuracy = %.1f%%; want ≥ 95%% on separable blobs", tr.BestAcc)
	}
	if last := tr.Epochs[7]; last.TrainAcc < 90 || last.Loss > tr.Epochs[0].Loss {
		t.Errorf("last epoch: train acc %.1f%%, loss %.3f (first %.3f); want ≥ 90%% and a falling loss", last.TrainAcc, last.Loss, tr.Epochs[0].Loss)
	}
	if tr.Converged || tr.EpochsToConverge != 0 || res.BestTrial != 1 || res.Best == nil || res.Last == nil || !res.Complete {
		t.Errorf("Converged %v after %d, BestTrial %d, Best %v, Last %v, Complete %v; want false, 0, 1, snapshots, complete", tr.Converged, tr.EpochsToConverge, res.BestTrial, res.Best != nil, res.Last != nil, res.Complete)
	}
	if tr.Trial != 1 || tr.Epochs[0].Epoch != 1 || tr.Epochs[7].Epoch != 8 || res.Last.Epoch != 8 {
		t.Errorf("trial %d, epochs %d..%d, last snapshot at epoch %d; want trial 1, epochs 1..8, last at 8 (counting from 1)", tr.Trial, tr.Epochs[0].Epoch, tr.Epochs[7].Epoch, res.Last.Epoch)
	}
	if res.Best.Acc != tr.BestAcc || res.Best.Epoch != tr.BestEpoch {
		t.Errorf("Best snapshot at epoch %d with %.2f%%; want epoch %d, %.2f%%", res.Best.Epoch, res.Best.Acc, tr.BestEpoch, tr.BestAcc)
	}
	if job.Trainable["fc.bias"][0] != 0 {
		t.Errorf("the job's initial parameters were modified")
	}
}

// scriptStepper returns a fixed finite loss and zero gradients; it fails
// the Loss at (epoch, batch) = nanAt with NaN, or a gradient with nanGrad.
type scriptStepper struct {
	calls   *int
	perEp   int
	nanAt   [2]int
	nanGrad bool
}

func (s scriptStepper) Step(ctx context.Context, p, state Params, x []float32, n int, y []int64) (StepResult, error) {
	ep, b := *s.calls/s.perEp, *s.calls%s.perEp
	*s.calls++
	g := Params{}
	for k, v := range p {
		g[k] = make([]float32, len(v))
	}
	r := StepResult{Loss: 1, Grads: g}
	if ep == s.nanAt[0] && b == s.nanAt[1] {
		if s.nanGrad {
			g["fc.bias"][1] = float32(math.Inf(1))
		} else {
			r.Loss = float32(math.NaN())
		}
	}
	return r, nil
}

// scriptEvaluator returns the given accuracies, one per call.
type scriptEvaluator struct {
	accs  []float64
	calls *int
}

func (e scriptEvaluator) Evaluate(ctx context.Context, p, state Params) (float64, error) {
	a := e.accs[*e.calls]
	*e.calls++
	return a, nil
}

// TestStoppingRule checks Algorithm 1's rule: stop after the first epoch
// whose best accuracy is ≥ Target − Tolerance.
func TestStoppingRule(t *testing.T) {
	cases := []struct {
		name              string
		accs              []float64
		target, tolerance float64
		wantEpochs        int // epochs run
		wantConverge      int
		wantBest          float64
	}{
		{"reached at epoch 3", []float64{40, 45, 50, 60, 70}, 50, 0, 3, 3, 50},
		{"tolerance reaches earlier", []float64{40, 45, 50, 60, 70}, 50, 5, 2, 2, 45},
		{"boundary is inclusive", []float64{10, 49.5, 20, 20, 20}, 50, 0.5, 2, 2, 49.5},
		{"first epoch", []float64{60, 10, 10, 10, 10}, 55, 0, 1, 1, 60},
		{"never", []float64{10, 20, 30, 40, 45}, 50, 1, 5, 0, 45},
		{"no target runs every epoch", []float64{90, 95, 99, 99, 99}, 0, 0, 5, 0, 99},
		{"best is kept, not last", []float64{30, 48, 20, 10, 10}, 50, 0, 5, 0, 48},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			job, _ := newJob(t)
			calls, evals := 0, 0
			job.Stepper = scriptStepper{calls: &calls, perEp: 3, nanAt: [2]int{-1, -1}}
			job.Evaluator = scriptEvaluator{c.accs, &evals}
			res, err := Options{Epochs: 5, BatchSize: 100, Target: c.target, Tolerance: c.tolerance}.Run(context.Background(), job)
			if err != nil {
				t.Fatal(err)
			}
			tr := res.Trials[0]
			if len(tr.Epochs) != c.wantEpochs || tr.EpochsToConverge != c.wantConverge || tr.BestAcc != c.wantBest {
				t.Errorf("ran %d epochs, converged after %d, best %.1f; want %d, %d, %.1f", len(tr.Epochs), tr.EpochsToConverge, tr.BestAcc, c.wantEpochs, c.wantConverge, c.wantBest)
			}
			if !tr.Done || tr.Converged != (c.wantConverge > 0) {
				t.Errorf("done %v, converged %v; want done, converged %v", tr.Done, tr.Converged, c.wantConverge > 0)
			}
		})
	}
}

// TestDiverged checks that a NaN loss or an infinite gradient is an
// ErrDiverged naming where it happened.
func TestDiverged(t *testing.T) {
	for _, nanGrad := range []bool{false, true} {
		job, _ := newJob(t)
		calls := 0
		job.Stepper = scriptStepper{calls: &calls, perEp: 3, nanAt: [2]int{1, 2}, nanGrad: nanGrad}
		_, err := Options{Epochs: 4, BatchSize: 100}.Run(context.Background(), job)
		var de *DivergedError
		if !errors.Is(err, ErrDiverged) || !errors.As(err, &de) {
			t.Fatalf("nanGrad %v: error = %v; want ErrDiverged", nanGrad, err)
		}
		wantTensor := ""
		if nanGrad {
			wantTensor = "fc.bias"
		}
		if de.Trial != 1 || de.Epoch != 2 || de.Batch != 3 || de.Tensor != wantTensor {
			t.Errorf("diverged at trial %d epoch %d batch %d tensor %q; want 1, 2, 3, %q (%v)", de.Trial, de.Epoch, de.Batch, de.Tensor, wantTensor, err)
		}
	}
}

// checkingStepper fails the test if a frozen value ever differs from its
// initial value when a step starts.
type checkingStepper struct {
	softmaxModel
	t      *testing.T
	frozen Params
}

func (c checkingStepper) Step(ctx context.Context, p, state Params, x []float32, n int, y []int64) (StepResult, error) {
	for k, want := range c.frozen {
		got := p[k]
		if got == nil {
			got = state[k]
		}
		if !(Params{k: got}).Equal(Params{k: want}) {
			c.t.Fatalf("frozen %q changed: %v; want %v", k, got[:3], want[:3])
		}
	}
	return c.softmaxModel.Step(ctx, p, state, x, n, y)
}

// TestFrozenNeverChanges checks that frozen weights and state entries keep
// their initial bits through weight decay, gradients and state updates.
func TestFrozenNeverChanges(t *testing.T) {
	job, m := newJob(t)
	frozen := Params{"head.scale": job.Trainable["head.scale"], "head_bn.running_mean": job.State["head_bn.running_mean"]}.Clone()
	job.Stepper = checkingStepper{m, t, frozen}
	res, err := Options{Epochs: 3, BatchSize: 50, Frozen: []string{"head.scale", "head_bn.running_mean"}, HeadBN: "train",
		Optimizer: SGD{LR: 0.1, Momentum: 0.9, WeightDecay: 0.1}}.Run(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Snapshot{res.Last, res.Best} {
		for k, want := range frozen {
			got := s.Trainable[k]
			if got == nil {
				got = s.State[k]
			}
			if !(Params{k: got}).Equal(Params{k: want}) {
				t.Errorf("frozen %q = %v…; want %v…", k, got[:3], want[:3])
			}
		}
	}
	if (Params{"m": res.Last.State["bn.running_mean"]}).Equal(Params{"m": job.State["bn.running_mean"]}) {
		t.Errorf("bn.running_mean never changed; the test does not test the restore")
	}
	if res.Options.HeadBN != "train" {
		t.Errorf("recorded head BN mode %q; want train", res.Options.HeadBN)
	}
	b, _ := json.Marshal(res)
	if !bytes.Contains(b, []byte(`"head_bn":"train"`)) {
		t.Errorf("result JSON lacks the head BN mode: %s", b)
	}
}

// headBNStepper reports its head BatchNorm mode.
type headBNStepper struct {
	softmaxModel
	mode BNMode
}

func (h headBNStepper) HeadBN() BNMode { return h.mode }

func TestOptionErrors(t *testing.T) {
	job, m := newJob(t)
	cases := []struct {
		name string
		opt  Options
		job  func(Job) Job
		want string
	}{
		{"head BN disagrees", Options{}, func(j Job) Job { j.Stepper = headBNStepper{m, "train"}; return j }, `"train" mode`},
		{"bad head BN", Options{HeadBN: "frozen"}, nil, "head BN mode"},
		{"unknown frozen", Options{Frozen: []string{"nope"}}, nil, `frozen "nope"`},
		{"target without evaluator", Options{Target: 50}, func(j Job) Job { j.Evaluator = nil; return j }, "needs an evaluator"},
		{"onecycle too short", Options{Epochs: 5, Schedule: OneCycle{MaxLR: 1, TotalSteps: 4}}, nil, "total_steps 4"},
		{"nesterov without momentum", Options{Optimizer: SGD{LR: 1, Nesterov: true}}, nil, "Nesterov"},
		{"no batch", Options{BatchSize: 1000, DropLast: true}, nil, "no batch"},
	}
	for _, c := range cases {
		j := job
		if c.job != nil {
			j = c.job(job)
		}
		_, err := c.opt.Run(context.Background(), j)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error = %v; want one containing %q", c.name, err, c.want)
		}
	}
}

// stripTimes removes wall times so results can be compared.
func stripTimes(r *Result) []TrialResult {
	out := append([]TrialResult(nil), r.Trials...)
	for i := range out {
		out[i].Seconds = 0
		out[i].Epochs = append([]EpochResult(nil), out[i].Epochs...)
		for j := range out[i].Epochs {
			out[i].Epochs[j].Seconds = 0
		}
	}
	return out
}

func sameRun(t *testing.T, what string, got, want *Result) {
	t.Helper()
	g, _ := json.Marshal(stripTimes(got))
	w, _ := json.Marshal(stripTimes(want))
	if !bytes.Equal(g, w) {
		t.Errorf("%s: records\n%s\nwant\n%s", what, g, w)
	}
	if got.BestTrial != want.BestTrial {
		t.Errorf("%s: best trial %d; want %d", what, got.BestTrial, want.BestTrial)
	}
	for _, s := range []struct {
		name      string
		got, want *Snapshot
	}{{"last", got.Last, want.Last}, {"best", got.Best, want.Best}} {
		if s.got == nil || s.want == nil {
			t.Fatalf("%s: %s snapshot %v; want %v", what, s.name, s.got, s.want)
		}
		if s.got.Trial != s.want.Trial || s.got.Epoch != s.want.Epoch || s.got.Acc != s.want.Acc ||
			!s.got.Trainable.Equal(s.want.Trainable) || !s.got.State.Equal(s.want.State) {
			t.Errorf("%s: %s snapshot (trial %d epoch %d acc %v) differs from the uninterrupted run's (trial %d epoch %d acc %v)",
				what, s.name, s.got.Trial, s.got.Epoch, s.got.Acc, s.want.Trial, s.want.Epoch, s.want.Acc)
		}
	}
}

// resumeOptions are the settings TestResume runs with: every moving part
// that a checkpoint must carry (momentum or Adam moments, a schedule,
// augmentation, adversarial seeds, frozen tensors, the stopping rule).
var resumeOptions = []struct {
	name string
	opt  Options
	adv  bool
}{
	{"sgd multistep", Options{Trials: 2, Epochs: 4, BatchSize: 64, Seed: 11,
		Optimizer: SGD{LR: 0.2, Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true},
		Schedule:  MultiStep{Milestones: []int{1, 3}, Gamma: 0.5}, Frozen: []string{"head.scale"}}, false},
	{"adamw onecycle per batch adversarial", Options{Trials: 2, Epochs: 3, BatchSize: 50, Seed: 5,
		Optimizer: AdamW{LR: 0.01, WeightDecay: 0.01}, Schedule: OneCycle{MaxLR: 0.05}, ScheduleEvery: "batch",
		Augment: augmentFlip, Frozen: []string{"head_bn.running_mean"}}, true},
	{"cosine with early stop", Options{Trials: 2, Epochs: 5, BatchSize: 40, Seed: 2,
		Optimizer: SGD{LR: 0.03, Momentum: 0.9}, Schedule: Cosine{TMax: 5}, Target: 97, Tolerance: 1}, false},
}

// TestResume stops a run after every epoch in turn (and once in the middle
// of an epoch), resumes it, and checks that the final parameters and
// records are those of the uninterrupted run.
func TestResume(t *testing.T) {
	for _, rc := range resumeOptions {
		t.Run(rc.name, func(t *testing.T) {
			t.Parallel() // the checkpoints' fsyncs dominate; let them overlap
			job, _ := newJob(t)
			if rc.adv {
				job.Adv = noiseAdv{}
			}
			job.EpochMetrics = func(ctx context.Context, trial, epoch int, p, s Params) (Metrics, error) {
				return Metrics{"norm_w": float64(p["fc.weight"][0]), "nan": math.NaN()}, nil
			}
			want, err := rc.opt.Run(context.Background(), job)
			if err != nil {
				t.Fatal(err)
			}
			if c := want.Trials[0].EpochsToConverge; rc.opt.Target > 0 && (c < 1 || c >= rc.opt.Epochs) {
				t.Fatalf("the early-stop case converged after %d epochs; want a stop before epoch %d", c, rc.opt.Epochs)
			}
			total := 0
			for _, tr := range want.Trials {
				total += len(tr.Epochs)
			}
			// Stop after epoch k of the whole run (k = total−1 means the run
			// completed) or, with mid, in the middle of the next epoch.
			for k := 0; k < total; k++ {
				for _, mid := range []bool{false, true} {
					if mid && k%3 != 1 {
						continue
					}
					opt := rc.opt
					opt.CheckpointDir = t.TempDir()
					ctx, cancel := context.WithCancel(context.Background())
					j := job
					seen, batches := 0, 0
					j.Progress = func(p Progress) {
						if p.Finished != nil {
							seen++
							return
						}
						if seen == k+1 {
							batches++
							if !mid || batches == 2 {
								cancel()
							}
						}
					}
					if !mid {
						j.Progress = func(p Progress) {
							if p.Finished != nil {
								if seen++; seen == k+1 {
									cancel()
								}
							}
						}
					}
					_, err := opt.Run(ctx, j)
					cancel()
					if k < total-1 && !errors.Is(err, context.Canceled) {
						t.Fatalf("stop after epoch %d (mid %v): error %v; want context.Canceled", k, mid, err)
					}
					got, err := opt.Resume(context.Background(), job)
					if err != nil {
						t.Fatalf("resume after epoch %d: %v", k, err)
					}
					sameRun(t, fmt.Sprintf("resumed after epoch %d (mid %v)", k, mid), got, want)
				}
			}
		})
	}
}

// TestCancelKeepsCheckpoint cancels in the middle of an epoch and checks
// that the checkpoint of the previous epoch is intact and no temporary
// file is left behind.
func TestCancelKeepsCheckpoint(t *testing.T) {
	job, _ := newJob(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var saved []byte
	job.Progress = func(p Progress) {
		if p.Finished != nil && p.Epoch == 2 {
			var err error
			if saved, err = os.ReadFile(filepath.Join(dir, CheckpointFile)); err != nil {
				t.Fatal(err)
			}
		}
		if p.Finished == nil && p.Epoch == 3 && p.Batch == 2 {
			cancel()
		}
	}
	_, err := Options{Epochs: 5, BatchSize: 32, CheckpointDir: dir}.Run(ctx, job)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v; want context.Canceled", err)
	}
	after, err := os.ReadFile(filepath.Join(dir, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, saved) {
		t.Errorf("checkpoint changed after cancellation (%d bytes; want the %d of epoch 1)", len(after), len(saved))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries; want only %s", len(entries), CheckpointFile)
	}
}

// TestCheckpointIsSafetensors reads the checkpoint as the safetensors
// format specifies: 8-byte little-endian header size, JSON header with
// string metadata and F32 tensors with contiguous data_offsets.
func TestCheckpointIsSafetensors(t *testing.T) {
	job, _ := newJob(t)
	dir := t.TempDir()
	if _, err := (Options{Epochs: 2, BatchSize: 64, CheckpointDir: dir}).Run(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	if n%8 != 0 {
		t.Errorf("header size %d is not a multiple of 8", n)
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &header); err != nil {
		t.Fatal(err)
	}
	var md map[string]string
	if err := json.Unmarshal(header["__metadata__"], &md); err != nil || md["format"] != checkpointFormat {
		t.Errorf("metadata %v (%v); want format %q", md, err, checkpointFormat)
	}
	var tensor struct {
		DType   string `json:"dtype"`
		Shape   []int  `json:"shape"`
		Offsets [2]int `json:"data_offsets"`
	}
	if err := json.Unmarshal(header["trainable/fc.weight"], &tensor); err != nil {
		t.Fatal(err)
	}
	if tensor.DType != "F32" || tensor.Shape[0] != 24 || tensor.Offsets[1]-tensor.Offsets[0] != 96 {
		t.Errorf("trainable/fc.weight: %+v; want F32 [24] of 96 bytes", tensor)
	}
	record, tensors, err := ReadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	v := tensors["trainable/fc.weight"]
	at := 8 + int(n) + tensor.Offsets[0]
	if got := math.Float32frombits(binary.LittleEndian.Uint32(b[at:])); got != v[0] {
		t.Errorf("first value in the file %v; ReadCheckpoint says %v", got, v[0])
	}
	for _, k := range []string{"state/bn.running_var", "overall/trainable/fc.bias", "trainable/head.scale"} {
		if tensors[k] == nil {
			t.Errorf("checkpoint lacks %q", k)
		}
	}
	if !json.Valid(record) || !bytes.Contains(record, []byte(`"converged"`)) {
		t.Errorf("resume record %s", record)
	}
}

// TestResumeChecks refuses checkpoints of other runs.
func TestResumeChecks(t *testing.T) {
	job, _ := newJob(t)
	dir := t.TempDir()
	opt := Options{Epochs: 3, BatchSize: 64, CheckpointDir: dir}
	if _, err := opt.Resume(context.Background(), job); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("resume without a checkpoint: %v; want fs.ErrNotExist", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := job
	j.Progress = func(p Progress) {
		if p.Finished != nil {
			cancel()
		}
	}
	opt.Run(ctx, j)
	other := opt
	other.Seed = 9
	if _, err := other.Resume(context.Background(), job); err == nil || !strings.Contains(err.Error(), "option seed is 0 there but 9 in this run") {
		t.Errorf("resume with another seed: %v; want the seed named as the first mismatch", err)
	}
	j = job
	j.Trainable = job.Trainable.Clone()
	j.Trainable["fc.bias"][0] = 1
	if _, err := opt.Resume(context.Background(), j); err == nil || !strings.Contains(err.Error(), "initial parameters") {
		t.Errorf("resume from other parameters: %v; want an initial-parameters mismatch", err)
	}
	j = job
	j.Train = blobs(300, 3, 7)
	if _, err := opt.Resume(context.Background(), j); err == nil || !strings.Contains(err.Error(), "training data") {
		t.Errorf("resume on other data: %v; want a training-data mismatch", err)
	}
	// Data computed from the original (say, cached head features) resumes
	// the run when it names the original as its source, and only then.
	j = job
	j.Train, j.DataSource = blobs(300, 3, 7), job.Train
	if _, err := opt.Resume(context.Background(), j); err != nil && strings.Contains(err.Error(), "training data") {
		t.Errorf("resume on data derived from the same source: %v", err)
	}
	j.DataSource = blobs(300, 3, 8)
	if _, err := opt.Resume(context.Background(), j); err == nil || !strings.Contains(err.Error(), "training data") {
		t.Errorf("resume on data derived from another source: %v; want a training-data mismatch", err)
	}
	if _, err := opt.Resume(context.Background(), job); err != nil {
		t.Errorf("resume with the same job: %v", err)
	}
}

// TestDeterminism checks that a seed fixes the run and another seed changes it.
func TestDeterminism(t *testing.T) {
	job, _ := newJob(t)
	job.Adv = noiseAdv{}
	opt := Options{Trials: 2, Epochs: 2, BatchSize: 32, Seed: 4, Augment: augmentFlip}
	a, err := opt.Run(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	b, err := opt.Run(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	sameRun(t, "same seed", b, a)
	opt.Seed = 5
	c, err := opt.Run(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	if c.Last.Trainable.Equal(a.Last.Trainable) {
		t.Errorf("seeds 4 and 5 gave the same parameters")
	}
	if a.Trials[0].Seed != 4 || a.Trials[1].Seed != 5 {
		t.Errorf("trial seeds %d, %d; want 4, 5", a.Trials[0].Seed, a.Trials[1].Seed)
	}
	if a.Trials[0].Epochs[1].Loss == a.Trials[1].Epochs[1].Loss {
		t.Errorf("trials 0 and 1 saw the same batches")
	}
}

// TestResultJSON checks that a Result marshals, NaN metrics as null.
func TestResultJSON(t *testing.T) {
	job, _ := newJob(t)
	job.EpochMetrics = func(ctx context.Context, trial, epoch int, p, s Params) (Metrics, error) {
		return Metrics{"rho_n": 3.5, "bad": math.Inf(1)}, nil
	}
	res, err := Options{Epochs: 1, Schedule: OneCycle{MaxLR: 0.1}, Optimizer: AdamW{LR: 1e-3}}.Run(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"extra":{"bad":null,"rho_n":3.5}`, `"kind":"adamw"`, `"kind":"onecycle"`, `"pct_start":0.3`, `"converged":false`, `"head_bn":"eval"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("result JSON %s lacks %s", b, want)
		}
	}
	var back struct {
		Trials []TrialResult `json:"trials"`
	}
	if err := json.Unmarshal(b, &back); err != nil || !math.IsNaN(back.Trials[0].Epochs[0].Extra["bad"]) {
		t.Errorf("read back: %v, %v; want NaN for null", err, back.Trials)
	}
}

// TestFirstTrial runs each trial of a three-trial run on its own
// (Options.FirstTrial), as semirobust's work units do: every trial's
// records and best parameters equal those of the same trial in the whole
// run, and a stopped single-trial run resumes from its checkpoint, which
// another first trial does not accept.
func TestFirstTrial(t *testing.T) {
	job, _ := newJob(t)
	job.Adv = noiseAdv{}
	opt := Options{Trials: 3, Epochs: 3, BatchSize: 50, Seed: 7, Augment: augmentFlip,
		Optimizer: SGD{LR: 0.2, Momentum: 0.9}, Schedule: MultiStep{Milestones: []int{2}, Gamma: 0.5}}
	whole, err := opt.Run(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range stripTimes(whole) {
		one := opt
		one.Trials, one.FirstTrial = 1, i+1
		got, err := one.Run(context.Background(), job)
		if err != nil {
			t.Fatal(err)
		}
		g, _ := json.Marshal(stripTimes(got))
		w, _ := json.Marshal([]TrialResult{want})
		if !bytes.Equal(g, w) {
			t.Errorf("trial %d on its own:\n%s\nwant the whole run's\n%s", i+1, g, w)
		}
		if got.BestTrial != i+1 || got.Best.Trial != i+1 {
			t.Errorf("trial %d on its own: best trial %d (snapshot %d)", i+1, got.BestTrial, got.Best.Trial)
		}
		if i+1 == whole.BestTrial && !got.Best.Trainable.Equal(whole.Best.Trainable) {
			t.Errorf("trial %d on its own: best parameters differ from the whole run's", i+1)
		}
	}
	one := opt
	one.Trials, one.FirstTrial, one.CheckpointDir = 1, 2, t.TempDir()
	want, err := Options{Trials: 1, FirstTrial: 2, Epochs: opt.Epochs, BatchSize: opt.BatchSize, Seed: opt.Seed, Augment: opt.Augment,
		Optimizer: opt.Optimizer, Schedule: opt.Schedule}.Run(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stopAfter(t, one, job, 1, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("stop after epoch 1: %v", err)
	}
	c, err := OpenCheckpoint(one.CheckpointDir)
	if err != nil {
		t.Fatal(err)
	}
	other := one
	other.FirstTrial = 3
	if err := c.Check(other, nil); err == nil || !strings.Contains(err.Error(), "first_trial") {
		t.Errorf("a checkpoint of trial 2 checked for trial 3: %v; want first_trial named", err)
	}
	got, err := one.Resume(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	sameRun(t, "trial 2 resumed", got, want)
}

// TestModeParsing checks ParseBNMode and ParseScheduleUnit: the names, the
// default for "", and an error that names the value and the choices.
func TestModeParsing(t *testing.T) {
	bn := []struct {
		in   string
		want BNMode
		err  string
	}{
		{"", HeadBNEval, ""}, {"eval", HeadBNEval, ""}, {"train", HeadBNTrain, ""},
		{"Train", "", `head BN mode "Train"; want eval or train`}, {"frozen", "", `head BN mode "frozen"; want eval or train`},
	}
	for _, c := range bn {
		got, err := ParseBNMode(c.in)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && err.Error() != c.err) {
			t.Errorf("ParseBNMode(%q) = %q, %v; want %q, %q", c.in, got, err, c.want, c.err)
		}
	}
	units := []struct {
		in   string
		want ScheduleUnit
		err  string
	}{
		{"", EveryEpoch, ""}, {"epoch", EveryEpoch, ""}, {"batch", EveryBatch, ""},
		{"step", "", `schedule every "step"; want epoch or batch`},
	}
	for _, c := range units {
		got, err := ParseScheduleUnit(c.in)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && err.Error() != c.err) {
			t.Errorf("ParseScheduleUnit(%q) = %q, %v; want %q, %q", c.in, got, err, c.want, c.err)
		}
	}
}

// TestModesMarshalAsStrings checks that the typed modes keep the JSON of the
// strings they replaced, so reports and checkpoints stay byte-identical.
func TestModesMarshalAsStrings(t *testing.T) {
	for _, c := range []struct {
		opt  Options
		want []string
	}{
		{Options{}.Resolved(), []string{`"schedule_every":"epoch"`, `"head_bn":"eval"`}},
		{Options{HeadBN: HeadBNTrain, ScheduleEvery: EveryBatch}, []string{`"schedule_every":"batch"`, `"head_bn":"train"`}},
		{Options{}, []string{`"schedule_every":""`, `"head_bn":""`}},
	} {
		b, err := json.Marshal(c.opt)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range c.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("Options JSON %s; want it to contain %s", b, w)
			}
		}
		var back struct { // Options without its interfaces, which do not read back
			HeadBN        BNMode       `json:"head_bn"`
			ScheduleEvery ScheduleUnit `json:"schedule_every"`
		}
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if back.HeadBN != c.opt.HeadBN || back.ScheduleEvery != c.opt.ScheduleEvery {
			t.Errorf("Options JSON %s reads back as head_bn %q, schedule_every %q", b, back.HeadBN, back.ScheduleEvery)
		}
	}
}
