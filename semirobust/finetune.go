package semirobust

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// FinetuneJob is one Algorithm 1 run's inputs.
type FinetuneJob struct {
	Setup      *Setup
	Train      *dataset.Dataset
	Test       *dataset.Dataset
	EvalAttack attacks.Attack
	Adv        *attacks.PGD
	TRADES     *diffmodel.TRADES
	Options    finetune.Options
	Engine     ort.Options
	Batch      int
	Progress   func(finetune.Progress)
	// Measure reports the progress of the accuracy measurements.
	Measure Progress
	// AccStar and AccSR, if set, are the robust and the semirobust start
	// model's accuracies under EvalAttack on Test, already measured
	// (semirobust reuses Acc* across K; a checkpoint keeps both).
	AccStar, AccSR *float64
	// Target is the accuracy to reach; AutoTarget replaces it with Acc*.
	Target     float64
	AutoTarget bool
	// Identity is what the run's checkpoints record (finetune.Job.Identity).
	Identity []finetune.Setting
	// Checkpoint, if set, is resumed; the caller opened it.
	Checkpoint *finetune.Checkpoint
	// EpochRho, if set, adds ρ after every epoch (the trial rhos) to the
	// epoch's metrics.
	EpochRho *EpochRho
	// FeatureCacheMiB bounds the frozen head's cached features for clean
	// fine-tuning (--feature-cache-mb, 2048 there); 0 turns the cache off.
	FeatureCacheMiB int
	// Note, if set, receives one-line remarks before training starts.
	Note func(string)
}

// EpochRho says how to measure ρ after every epoch: Pairs on Data,
// attacked with the run's EvalAttack against the epoch's model.
type EpochRho struct {
	Data    *dataset.Dataset
	Pairs   [][2]int
	Options RhoOptions
}

// Keys of finetune.Job.Measured: Algorithm 1's accuracies measured before
// fine-tuning, kept in checkpoints so that a resumed run reuses them.
const (
	MeasuredAccStar = "acc_star"
	MeasuredAccSR   = "acc_sr"
)

// Outcome is what RunFinetune measured. A number of work that
// did not finish is absent (nil), never 0: an unfinished run has no Acc~
// and Δ, only BestSoFar.
type Outcome struct {
	Complete bool     `json:"complete"`
	AccStar  *float64 `json:"acc_star,omitempty"` // robust model under the evaluation attack
	AccSR    *float64 `json:"acc_sr,omitempty"`   // semirobust model before fine-tuning
	// AccTilde is the best accuracy over the trials and Delta = Acc~ − Acc*,
	// both only when every trial finished.
	AccTilde *float64 `json:"acc_tilde,omitempty"`
	Delta    *float64 `json:"delta,omitempty"`
	// BestSoFar is the best accuracy an unfinished run reached.
	BestSoFar *BestSoFar `json:"best_so_far,omitempty"`
	Target    *float64   `json:"target,omitempty"`
	// ResumedFrom says where the checkpoint resumed left the run.
	ResumedFrom string           `json:"resumed_from,omitempty"`
	Result      *finetune.Result `json:"result,omitempty"`
	Seconds     float64          `json:"seconds"`
	// FeatureCache says whether the frozen head's features were computed
	// once (clean fine-tuning) or the head ran in every step, and why.
	FeatureCache string `json:"feature_cache,omitempty"`
	// Final is the model at the best epoch (so far, when not Complete).
	Final *onnxio.Model `json:"-"`
}

func f64(v float64) *float64 { return &v }

// RunFinetune measures Acc* and Acc_sr (unless given), then runs
// Algorithm 1 (trials of fine-tuning the tail with the head frozen,
// stopping at the target), or resumes it from r.Checkpoint. It returns what
// finished with any error.
func RunFinetune(ctx context.Context, r FinetuneJob) (*Outcome, error) {
	s := r.Setup
	out := &Outcome{AccStar: r.AccStar, AccSR: r.AccSR}
	label := AttackLabel(r.EvalAttack)
	if out.AccStar == nil {
		robustClf, err := diffmodel.NewClassifier(s.Robust, r.Engine)
		if err != nil {
			return out, err
		}
		acc, err := Accuracy(ctx, robustClf, r.Test, r.EvalAttack, r.Batch, r.Measure.samples("Acc* (robust model, "+label+")"))
		robustClf.Close()
		if err != nil {
			return out, err
		}
		out.AccStar = &acc
	}
	if out.AccSR == nil {
		startClf, err := diffmodel.NewClassifier(s.Start, r.Engine)
		if err != nil {
			return out, err
		}
		acc, err := Accuracy(ctx, startClf, r.Test, r.EvalAttack, r.Batch, r.Measure.samples("Acc_sr (semirobust start, "+label+")"))
		startClf.Close()
		if err != nil {
			return out, err
		}
		out.AccSR = &acc
	}
	out.Target = f64(r.Target)
	if r.AutoTarget {
		out.Target = f64(*out.AccStar)
	}
	fo, to := JobOptions(s, r.Options, r.TRADES, *out.Target)
	if r.Checkpoint != nil {
		if err := r.Checkpoint.Check(fo, r.Identity); err != nil {
			return out, fmt.Errorf("resume: %w", err)
		}
		out.ResumedFrom = ResumedFrom(r.Checkpoint, fo.Epochs)
	}
	trainModel, train := s.Start, r.Train
	var source *dataset.Dataset
	if ok, why := featureCacheEligible(r); ok {
		hf, reason, err := CacheHeadFeatures(ctx, s, r.Train, r.Engine, r.Batch, int64(r.FeatureCacheMiB)<<20)
		if err != nil {
			return out, err
		}
		if hf != nil {
			trainModel, train, source = hf.Tail, hf.Train, r.Train
			out.FeatureCache = fmt.Sprintf("frozen head's features computed once: %d × %d floats (%.1f MiB) in %.1f s", hf.Train.Len(), hf.Train.C, hf.MiB, hf.Seconds)
		} else {
			out.FeatureCache = "head run every step: " + reason
		}
	} else {
		out.FeatureCache = "head run every step: " + why
	}
	if r.Note != nil {
		r.Note(out.FeatureCache)
		if out.ResumedFrom != "" {
			r.Note(fmt.Sprintf("resuming from %s: %s; Acc* %.2f%% and Acc_sr %.2f%% as measured before", r.Checkpoint.Path, out.ResumedFrom, *out.AccStar, *out.AccSR))
		}
	}
	trainer, trainable, state, err := diffmodel.NewTrainer(trainModel, r.Engine, to)
	if err != nil {
		return out, err
	}
	defer trainer.Close()
	job := finetune.Job{Train: train, DataSource: source, Trainable: trainable, State: state, Stepper: trainer, Progress: r.Progress,
		Identity: r.Identity, Measured: map[string]float64{MeasuredAccStar: *out.AccStar, MeasuredAccSR: *out.AccSR}}
	closeParts, err := JobParts(&job, s.Start, r.Engine, r.Test, r.EvalAttack, r.Adv, r.Batch, r.Measure)
	defer closeParts()
	if err != nil {
		return out, err
	}
	if e := r.EpochRho; e != nil {
		// The meter's graphs and sessions are built on the first epoch and
		// serve every epoch of every trial.
		var meter *RhoMeter
		defer func() { meter.Close() }()
		over := append(job.Trainable.Names(), job.State.Names()...)
		job.EpochMetrics = func(ctx context.Context, trial, epoch int, tr, st finetune.Params) (finetune.Metrics, error) {
			if meter == nil {
				var err error
				if meter, err = NewRhoMeter(s.Start, over, e.Data, r.EvalAttack, e.Pairs, e.Options); err != nil {
					return nil, err
				}
			}
			rs, err := meter.Measure(ctx, finetune.Merge(tr, st))
			if err != nil {
				return nil, err
			}
			out := finetune.Metrics{}
			for _, r := range rs {
				out[fmt.Sprintf("rho_%d:%d", r.Parent, r.Child)] = r.Value
			}
			return out, nil
		}
	}
	start := time.Now()
	res, err := RunOrResume(ctx, r.Checkpoint, fo, job)
	out.Seconds = time.Since(start).Seconds()
	out.Result = res
	if res == nil {
		return out, err
	}
	out.Complete = res.Complete
	best := res.Best
	if res.Complete {
		out.AccTilde = f64(res.Best.Acc)
		out.Delta = f64(res.Best.Acc - *out.AccStar)
	} else {
		out.BestSoFar = bestSoFarOf(res)
		best = res.BestSoFar()
	}
	if best != nil {
		m, werr := WithParams(s.Start, best.Trainable, best.State)
		if werr != nil && err == nil {
			return out, werr
		}
		out.Final = m
	}
	return out, err
}

// JobOptions are the loop's and the trainer's options for fine-tuning the
// tail of s towards target: the head's BatchNorm mode and, with --head-bn
// train, the head's statistics frozen.
func JobOptions(s *Setup, fo finetune.Options, trades *diffmodel.TRADES, target float64) (finetune.Options, diffmodel.TrainerOptions) {
	to := diffmodel.TrainerOptions{Trainable: s.Part.TailParams, TrainBN: s.Part.TailBN, HeadBN: s.HeadBN, TRADES: trades}
	fo.HeadBN = s.HeadBN
	fo.Target = target
	fo.Frozen = slices.Clone(fo.Frozen)
	if s.HeadBN == finetune.HeadBNTrain {
		// The authors' model.train(): head BNs normalise with batch
		// statistics, and their running statistics are restored after every step.
		to.TrainBN = append(append([]string(nil), s.Part.HeadBN...), s.Part.TailBN...)
		fo.Frozen = append(fo.Frozen, s.Part.HeadStats...)
	}
	return fo, to
}

// Print writes the outcome's summary line: every number measured, "not
// finished" for the others.
func (o *Outcome) Print(w io.Writer, attack string) {
	pct := func(v *float64) string {
		if v == nil {
			return "not finished"
		}
		return fmt.Sprintf("%.2f%%", *v)
	}
	tilde := pct(o.AccTilde)
	if o.AccTilde == nil && o.BestSoFar != nil {
		tilde = "not finished (" + o.BestSoFar.String() + ")"
	}
	delta := "not finished"
	if o.Delta != nil {
		delta = fmt.Sprintf("%+.2f", *o.Delta)
	}
	fmt.Fprintf(w, "Acc* (robust, %s) %s   Acc_sr (before) %s   Acc~ (after) %s   Δ %s   target %s\n",
		attack, pct(o.AccStar), pct(o.AccSR), tilde, delta, pct(o.Target))
	if o.Result != nil {
		for _, t := range o.Result.Trials {
			conv := "did not reach the target"
			if t.Converged {
				conv = fmt.Sprintf("reached the target after %d epochs", t.EpochsToConverge)
			}
			if !t.Done {
				conv = fmt.Sprintf("not finished (%d epochs so far)", len(t.Epochs))
			}
			fmt.Fprintf(w, "trial %d: best %.2f%% at epoch %d, %s, %.0fs\n", t.Trial, t.BestAcc, t.BestEpoch, conv, t.Seconds)
		}
	}
}
