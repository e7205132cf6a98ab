package finetune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/semirobust/srtool/dataset"
)

// Options configure a fine-tuning run (Algorithm 1's training loop, or any
// plain training run). The zero value is the paper's fine-tuning recipe:
// one trial of 10 epochs, batches of 128, SGD with lr 0.01, momentum 0.9
// and weight decay 5e-4, constant learning rate, no early stop, head
// BatchNorm in eval mode, no checkpoints. Options marshal to JSON so every
// report records exactly what ran.
type Options struct {
	// Trials is the number of independent trials (the paper's T = 10);
	// 0 means 1. Each restarts from the Job's initial parameters.
	Trials int `json:"trials"`
	// FirstTrial is the number of the first trial (0 means 1). A run of
	// Trials trials from FirstTrial runs trials FirstTrial … FirstTrial +
	// Trials − 1 of a larger run exactly as that run does (trial t draws
	// from seed Seed + t − 1 and nothing carries over between trials), so
	// the trials of one experiment can run as separate work units and be
	// put together afterwards.
	FirstTrial int `json:"first_trial,omitempty"`
	// Epochs is the most epochs per trial (the paper's E = 10); 0 means 10.
	Epochs int `json:"epochs"`
	// BatchSize is the number of samples per step; 0 means 128.
	BatchSize int `json:"batch_size"`
	// DropLast leaves out each epoch's last, smaller batch.
	DropLast bool `json:"drop_last,omitempty"`
	// Augment is applied to every training batch (random crop, flip).
	Augment dataset.Augment `json:"augment"`
	// Seed determines every random choice: trial t (from 1) shuffles and
	// augments epoch e (from 1) with dataset.BatchOptions{Seed: Seed + t − 1,
	// Epoch: e − 1} and hands the AdvGenerator a seed derived from those and
	// the batch.
	Seed uint64 `json:"seed"`
	// Optimizer is SGD or AdamW; nil means the paper's
	// SGD{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4}.
	Optimizer Optimizer `json:"optimizer"`
	// Schedule sets the learning rate (and momentum); nil keeps the
	// optimizer's. It restarts with every trial.
	Schedule Schedule `json:"schedule"`
	// ScheduleEvery is EveryEpoch ("epoch", default: scheduler.step() after
	// each epoch, as in the paper's MultiStepLR) or EveryBatch ("batch":
	// after each optimizer step, as OneCycleLR is meant to be used).
	ScheduleEvery ScheduleUnit `json:"schedule_every"`
	// Target is the accuracy in percent to reach (Algorithm 1's Acc*, the
	// robust network's accuracy under the evaluation attack) and Tolerance
	// the slack k in percent: a trial stops after the first epoch whose
	// best evaluation accuracy is ≥ Target − Tolerance. Target 0 never
	// stops early. Stopping needs an Evaluator.
	Target    float64 `json:"target"`
	Tolerance float64 `json:"tolerance"`
	// HeadBN says how the frozen head's BatchNorm layers run during
	// training steps: HeadBNEval ("eval", default; running statistics, the
	// clean definition of a frozen head) or HeadBNTrain ("train": batch
	// statistics, as the authors' code does by calling model.train() on the
	// whole network). The Stepper implements it; the loop records it and,
	// if the Stepper is a HeadBNReporter, checks that they agree.
	HeadBN BNMode `json:"head_bn"`
	// Frozen names trainable tensors or state entries that must never
	// change: the loop restores their initial values after every step, as
	// the authors' code reloads the head after every optimizer step (so
	// that weight decay and BatchNorm statistics updates cannot move it).
	Frozen []string `json:"frozen,omitempty"`
	// CheckpointDir, if set, receives a resumable checkpoint after every
	// epoch (see Resume and the package documentation).
	CheckpointDir string `json:"checkpoint_dir,omitempty"`
}

// BNMode is how BatchNorm layers run in a training step; it marshals as
// its name ("eval", "train"). The zero value means HeadBNEval where a
// default applies (Options.HeadBN).
type BNMode string

const (
	// HeadBNEval normalises with the running statistics and leaves them.
	HeadBNEval BNMode = "eval"
	// HeadBNTrain normalises with the batch statistics and updates the
	// running ones.
	HeadBNTrain BNMode = "train"
)

// ParseBNMode accepts "eval" and "train" ("" gives HeadBNEval).
func ParseBNMode(s string) (BNMode, error) {
	switch m := BNMode(s); m {
	case "":
		return HeadBNEval, nil
	case HeadBNEval, HeadBNTrain:
		return m, nil
	}
	return "", fmt.Errorf("head BN mode %q; want eval or train", s)
}

// ScheduleUnit is what one step of a Schedule is; it marshals as its name
// ("epoch", "batch"). The zero value means EveryEpoch where a default
// applies (Options.ScheduleEvery).
type ScheduleUnit string

const (
	// EveryEpoch steps the schedule after each epoch.
	EveryEpoch ScheduleUnit = "epoch"
	// EveryBatch steps the schedule after each optimizer step.
	EveryBatch ScheduleUnit = "batch"
)

// ParseScheduleUnit accepts "epoch" and "batch" ("" gives EveryEpoch).
func ParseScheduleUnit(s string) (ScheduleUnit, error) {
	switch u := ScheduleUnit(s); u {
	case "":
		return EveryEpoch, nil
	case EveryEpoch, EveryBatch:
		return u, nil
	}
	return "", fmt.Errorf("schedule every %q; want epoch or batch", s)
}

// Job is what a run trains and how: the model behind small interfaces, the
// data, the starting point and the callbacks. Nothing in a Job is modified.
type Job struct {
	// Train is the training set.
	Train *dataset.Dataset
	// DataSource, if set, is the data Train was computed from (say, images
	// whose frozen-head features Train holds). Checkpoints fingerprint it
	// instead of Train, so that a run can be resumed with or without such
	// a cache.
	DataSource *dataset.Dataset
	// Trainable and State are the parameters every trial starts from: the
	// tensors the optimizer updates (the tail's weights) and those it does
	// not (BatchNorm running statistics, updated by the Stepper's steps).
	Trainable, State Params
	// Stepper computes loss and gradients; required.
	Stepper Stepper
	// Evaluator measures accuracy after every epoch; nil skips evaluation
	// (no early stop; the last epoch counts as best).
	Evaluator Evaluator
	// Adv, if set, replaces every training batch by adversarial inputs.
	Adv AdvGenerator
	// EpochMetrics, if set, is called after every epoch's evaluation with
	// read-only parameters (trial and epoch count from 1); its values are
	// recorded in EpochResult.Extra (the paper's "trial rhos").
	EpochMetrics func(ctx context.Context, trial, epoch int, trainable, state Params) (Metrics, error)
	// Progress, if set, is called after every batch and every epoch.
	Progress func(Progress)
	// Identity, if set, names what the run belongs to beyond the Options,
	// the initial tensors and the training data, which a checkpoint
	// fingerprints itself: the files the model came from, the evaluation
	// data and attack, the adversarial training, the program's version. A
	// checkpoint records it, and Resume refuses a checkpoint whose Identity
	// differs, naming the first difference.
	Identity []Setting
	// Measured holds numbers the caller measured before the run (say
	// Algorithm 1's Acc* and Acc_sr). Checkpoints keep them, so that a
	// resumed run can report them without measuring again
	// (Checkpoint.Measured).
	Measured map[string]float64
}

// Setting is one named value of a run's Identity.
type Setting struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Resolved returns o with the documented defaults filled in, as a Result
// records them.
func (o Options) Resolved() Options { return o.withDefaults() }

// withDefaults returns o with the documented defaults filled in.
func (o Options) withDefaults() Options {
	if o.Trials == 0 {
		o.Trials = 1
	}
	if o.Epochs == 0 {
		o.Epochs = 10
	}
	if o.BatchSize == 0 {
		o.BatchSize = 128
	}
	if o.Optimizer == nil {
		o.Optimizer = SGD{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4}
	}
	if o.ScheduleEvery == "" {
		o.ScheduleEvery = EveryEpoch
	}
	if o.HeadBN == "" {
		o.HeadBN = HeadBNEval
	}
	o.Frozen = slices.Clone(o.Frozen)
	return o
}

// firstTrial is the number of the run's first trial.
func (o Options) firstTrial() int { return max(o.FirstTrial, 1) }

func (o Options) validate() error {
	switch {
	case o.Trials < 0 || o.Epochs < 0 || o.BatchSize < 0 || o.FirstTrial < 0:
		return fmt.Errorf("trials %d, first trial %d, epochs %d and batch size %d must not be negative", o.Trials, o.FirstTrial, o.Epochs, o.BatchSize)
	case o.ScheduleEvery != EveryEpoch && o.ScheduleEvery != EveryBatch:
		return fmt.Errorf("schedule every %q; want epoch or batch", o.ScheduleEvery)
	case o.HeadBN != HeadBNEval && o.HeadBN != HeadBNTrain:
		return fmt.Errorf("head BN mode %q; want eval or train", o.HeadBN)
	case !(o.Target >= 0 && o.Target <= 100) || !(o.Tolerance >= 0):
		return fmt.Errorf("target %v%% must be in [0,100] and tolerance %v%% not negative", o.Target, o.Tolerance)
	}
	return o.Optimizer.Validate()
}

// Run fine-tunes as o says, starting afresh (an existing checkpoint in
// o.CheckpointDir is replaced after the first epoch). It returns the
// result so far with any error (Result.Complete false): a cancelled ctx
// stops it before the next batch, leaving the checkpoint of the last
// complete epoch.
func (o Options) Run(ctx context.Context, job Job) (*Result, error) {
	r, err := newRun(o, job)
	if err != nil {
		return nil, err
	}
	return r.execute(ctx)
}

// Resume continues the run whose checkpoint is in o.CheckpointDir, with the
// same Options and Job as the run that wrote it (both are checked), and
// returns the result of the whole run. A run stopped after any epoch and
// resumed ends with exactly the parameters and records of an uninterrupted
// run (apart from wall times). A missing checkpoint is an error wrapping
// fs.ErrNotExist; a checkpoint of another run (Options, Job.Identity,
// initial tensors or training data differ) or one that is not consistent
// is an error naming the first difference or flaw, and nothing runs.
func (o Options) Resume(ctx context.Context, job Job) (*Result, error) {
	if o.CheckpointDir == "" {
		return nil, errors.New("resume: no checkpoint directory")
	}
	r, err := newRun(o, job)
	if err != nil {
		return nil, err
	}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r.execute(ctx)
}

// run is a run in progress.
type run struct {
	opt      Options // defaults filled in
	job      Job
	sched    Schedule // resolved (OneCycle.TotalSteps set)
	batches  int      // per epoch
	initHash uint64
	dataHash uint64
	measured map[string]float64                // Job.Measured, or the checkpoint's
	frozen   struct{ trainable, state Params } // initial values of frozen tensors

	res *Result
	// The current trial (the last of res.Trials).
	trainable, state Params
	ost              OptimizerState
	scheduler        Scheduler
	schedSteps       int
	best             *Snapshot // the current trial's best
}

func newRun(o Options, job Job) (*run, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	switch {
	case job.Train == nil || job.Train.Len() == 0:
		return nil, errors.New("no training data")
	case job.Stepper == nil:
		return nil, errors.New("no stepper")
	case len(job.Trainable) == 0:
		return nil, errors.New("no trainable parameters")
	case o.Target > 0 && job.Evaluator == nil:
		return nil, fmt.Errorf("target %v%% needs an evaluator", o.Target)
	}
	if h, ok := job.Stepper.(HeadBNReporter); ok && h.HeadBN() != o.HeadBN {
		return nil, fmt.Errorf("stepper runs the head's BatchNorm in %q mode; options say %q", h.HeadBN(), o.HeadBN)
	}
	if len(job.Train.X) != job.Train.Len()*job.Train.Dim() {
		return nil, fmt.Errorf("training set %s: %d values for %d samples of %d", job.Train.Name, len(job.Train.X), job.Train.Len(), job.Train.Dim())
	}
	for k, v := range job.Measured {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("measured %q is %v", k, v)
		}
	}
	r := &run{opt: o, job: job, measured: maps.Clone(job.Measured)}
	r.batches = job.Train.NumBatches(o.BatchSize, o.DropLast)
	if r.batches == 0 {
		return nil, fmt.Errorf("batch size %d with drop-last leaves no batch of %d samples", o.BatchSize, job.Train.Len())
	}
	var err error
	r.sched, err = resolveSchedule(o.Schedule, scheduleSteps(o.Epochs, r.batches, o.ScheduleEvery == EveryBatch))
	if err != nil {
		return nil, err
	}
	r.frozen.trainable, r.frozen.state = Params{}, Params{}
	for _, name := range o.Frozen {
		switch {
		case job.Trainable[name] != nil:
			r.frozen.trainable[name] = job.Trainable[name]
		case job.State[name] != nil:
			r.frozen.state[name] = job.State[name]
		default:
			return nil, fmt.Errorf("frozen %q is neither a trainable tensor nor a state entry", name)
		}
	}
	r.initHash = paramsHash(job.Trainable, job.State)
	if job.DataSource != nil {
		r.dataHash = dataHash(job.DataSource)
	} else {
		r.dataHash = dataHash(job.Train)
	}
	r.res = &Result{Options: o}
	r.res.Options.Schedule = r.sched // as it ran: OneCycle.TotalSteps filled in
	return r, nil
}

// startTrial begins trial t (counting from 1) from the job's initial parameters.
func (r *run) startTrial(t int) {
	r.trainable, r.state = r.job.Trainable.Clone(), r.job.State.Clone()
	if r.state == nil {
		r.state = Params{}
	}
	r.ost = OptimizerState{}
	r.schedSteps = 0
	r.best = nil
	r.res.Trials = append(r.res.Trials, TrialResult{
		Trial: t, Seed: r.opt.Seed + uint64(t-1), BestAcc: -1,
	})
}

// startScheduler makes the scheduler and replays r.schedSteps steps.
func (r *run) startScheduler() {
	lr, mom := r.opt.Optimizer.Rates()
	if r.sched == nil {
		r.scheduler = constant{lr, mom}
		return
	}
	r.scheduler = r.sched.Start(lr, mom)
	for range r.schedSteps {
		r.scheduler.Step()
	}
}

func (r *run) execute(ctx context.Context) (*Result, error) {
	for {
		n := len(r.res.Trials)
		if n == 0 || r.res.Trials[n-1].Done {
			if n == r.opt.Trials {
				r.res.Complete = true
				return r.res, nil
			}
			r.startTrial(r.opt.firstTrial() + n)
			n++
		}
		tr := &r.res.Trials[n-1]
		r.startScheduler()
		for !tr.Done {
			if err := r.epoch(ctx, tr); err != nil {
				return r.stopped(), err
			}
		}
	}
}

// stopped returns the result of a run that ends early: without a trial that
// finished no epoch, and with the unfinished trial's best so far.
func (r *run) stopped() *Result {
	res := r.res
	res.Complete = false
	if n := len(res.Trials); n > 0 && !res.Trials[n-1].Done {
		if len(res.Trials[n-1].Epochs) == 0 {
			res.Trials = res.Trials[:n-1]
		} else {
			res.Partial = r.best.clone()
		}
	}
	return res
}

// epoch runs the next epoch of trial tr, evaluates, records and checkpoints.
func (r *run) epoch(ctx context.Context, tr *TrialResult) error {
	start := time.Now()
	ep := len(tr.Epochs) // 0-based: the seeds of batches and adversarial inputs derive from it
	epoch := ep + 1
	everyBatch := r.opt.ScheduleEvery == EveryBatch
	bopt := dataset.BatchOptions{Shuffle: true, Seed: tr.Seed, Epoch: ep, DropLast: r.opt.DropLast, Augment: r.opt.Augment}
	var lossSum float64
	var correct, seen int
	var lr float64
	epochSamples := r.job.Train.Len()
	if r.opt.DropLast {
		epochSamples = r.batches * r.opt.BatchSize
	}
	for b, batch := range r.job.Train.Batches(r.opt.BatchSize, bopt) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("trial %d epoch %d batch %d: %w", tr.Trial, epoch, b+1, err)
		}
		n := batch.Len()
		x := batch.X
		if r.job.Adv != nil {
			adv, err := r.job.Adv.Perturb(ctx, r.trainable, r.state, x, n, batch.Y, batchSeed(tr.Seed, ep, b))
			if err != nil {
				return fmt.Errorf("trial %d epoch %d batch %d: adversarial inputs: %w", tr.Trial, epoch, b+1, err)
			}
			if len(adv) != len(x) {
				return fmt.Errorf("trial %d epoch %d batch %d: %d adversarial values for %d inputs", tr.Trial, epoch, b+1, len(adv), len(x))
			}
			x = adv
		}
		res, err := r.job.Stepper.Step(ctx, r.trainable, r.state, x, n, batch.Y)
		if err != nil {
			return fmt.Errorf("trial %d epoch %d batch %d: step: %w", tr.Trial, epoch, b+1, err)
		}
		if l := float64(res.Loss); math.IsNaN(l) || math.IsInf(l, 0) {
			return &DivergedError{Trial: tr.Trial, Epoch: epoch, Batch: b + 1, Loss: res.Loss}
		}
		if err := sameShape("gradients", res.Grads, r.trainable); err != nil {
			return fmt.Errorf("trial %d epoch %d batch %d: %w", tr.Trial, epoch, b+1, err)
		}
		if name, _, bad := firstNonFinite(res.Grads); bad {
			return &DivergedError{Trial: tr.Trial, Epoch: epoch, Batch: b + 1, Loss: res.Loss, Tensor: name}
		}
		if res.State != nil {
			if err := sameShape("state", res.State, r.state); err != nil {
				return fmt.Errorf("trial %d epoch %d batch %d: %w", tr.Trial, epoch, b+1, err)
			}
		}
		var mom float64
		lr, mom = r.scheduler.Rates()
		if err := r.opt.Optimizer.Update(&r.ost, r.trainable, res.Grads, lr, mom); err != nil {
			return fmt.Errorf("trial %d epoch %d batch %d: %w", tr.Trial, epoch, b+1, err)
		}
		if res.State != nil {
			copyInto(r.state, res.State)
		}
		copyInto(r.trainable, r.frozen.trainable)
		copyInto(r.state, r.frozen.state)
		if everyBatch {
			r.scheduler.Step()
			r.schedSteps++
		}
		lossSum += float64(res.Loss) * float64(n)
		correct += res.Correct
		seen += n
		if r.job.Progress != nil {
			r.job.Progress(Progress{Trial: tr.Trial, Epoch: epoch, Batch: b + 1, Batches: r.batches, Samples: seen, EpochSamples: epochSamples, Loss: res.Loss, LR: lr})
		}
	}
	if !everyBatch {
		r.scheduler.Step()
		r.schedSteps++
	}

	er := EpochResult{Epoch: epoch, Loss: lossSum / float64(seen), TrainAcc: 100 * float64(correct) / float64(seen), EvalAcc: -1, LR: lr}
	if r.job.Evaluator != nil {
		acc, err := r.job.Evaluator.Evaluate(ctx, r.trainable, r.state)
		if err != nil {
			return fmt.Errorf("trial %d epoch %d: evaluate: %w", tr.Trial, epoch, err)
		}
		er.EvalAcc = acc
	}
	if r.job.EpochMetrics != nil {
		m, err := r.job.EpochMetrics(ctx, tr.Trial, epoch, r.trainable, r.state)
		if err != nil {
			return fmt.Errorf("trial %d epoch %d: metrics: %w", tr.Trial, epoch, err)
		}
		er.Extra = maps.Clone(m)
	}
	er.Seconds = time.Since(start).Seconds()

	// Record the epoch; everything below changes only in-memory state that
	// the checkpoint then saves, so an error before the write leaves the
	// previous checkpoint as the resumable one.
	tr.Epochs = append(tr.Epochs, er)
	tr.Seconds += er.Seconds
	if r.best == nil || r.job.Evaluator == nil || er.EvalAcc > tr.BestAcc {
		r.best = &Snapshot{Trial: tr.Trial, Epoch: epoch, Acc: er.EvalAcc, Trainable: r.trainable.Clone(), State: r.state.Clone()}
		tr.BestAcc, tr.BestEpoch = er.EvalAcc, epoch
	}
	stopped := false
	if r.opt.Target > 0 && tr.BestAcc >= r.opt.Target-r.opt.Tolerance {
		tr.Converged, tr.EpochsToConverge = true, epoch
		stopped = true
	}
	if stopped || epoch == r.opt.Epochs {
		r.finishTrial(tr)
	}
	if r.opt.CheckpointDir != "" {
		if err := r.save(); err != nil {
			return fmt.Errorf("trial %d epoch %d: %w", tr.Trial, epoch, err)
		}
	}
	if r.job.Progress != nil {
		r.job.Progress(Progress{Trial: tr.Trial, Epoch: epoch, Batch: r.batches, Batches: r.batches, Samples: seen, EpochSamples: epochSamples,
			LR: lr, Finished: &tr.Epochs[ep], Stopped: stopped})
	}
	return nil
}

// finishTrial marks tr done and updates the run's best and last snapshots.
func (r *run) finishTrial(tr *TrialResult) {
	tr.Done = true
	if r.res.Best == nil || r.best.Acc > r.res.Best.Acc || r.job.Evaluator == nil {
		r.res.Best = r.best
		r.res.BestTrial = tr.Trial
	}
	r.res.Last = &Snapshot{Trial: tr.Trial, Epoch: len(tr.Epochs), Acc: tr.Epochs[len(tr.Epochs)-1].EvalAcc, Trainable: r.trainable.Clone(), State: r.state.Clone()}
}

// batchSeed is the seed handed to the AdvGenerator for a batch: a
// SplitMix64 mix of the trial's seed, the epoch and the batch number.
func batchSeed(seed uint64, epoch, batch int) uint64 {
	z := seed
	for _, v := range []uint64{uint64(epoch), uint64(batch)} {
		z += 0x9e3779b97f4a7c15 ^ v*0xbf58476d1ce4e5b9
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		z ^= z >> 31
	}
	return z
}

// optionsJSON is o's record, without the checkpoint folder, for comparing
// a resumed run's options with the checkpoint's.
func optionsJSON(o Options) ([]byte, error) {
	o.CheckpointDir = ""
	return json.Marshal(o)
}
