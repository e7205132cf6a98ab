package semirobust

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/internal/number"
	"github.com/semirobust/srtool/progress"
	"github.com/semirobust/srtool/report"
)

// TrainingSpec is the optimiser, schedule and adversarial-training settings
// as written on the command line of train, finetune and semirobust (the
// flags named in its errors). Options and Adversarial check them; their
// errors wrap ErrOption.
type TrainingSpec struct {
	Epochs, BatchSize int
	Seed              uint64
	CropPad           int // random-crop padding, ≥ 0
	Flip              bool
	CheckpointDir     string
	Resume            bool // needs CheckpointDir

	Optimizer   string // sgd or adamw
	LR          float64
	Momentum    float64
	Nesterov    bool
	WeightDecay float64
	// SGDGiven says --momentum or --nesterov was given: AdamW refuses them.
	SGDGiven bool
	Schedule string // ParseSchedule

	Adv        string // none (or ""), pgd or trades
	AdvEps     string // ε, a number or fraction in (0,1]
	AdvAlpha   string // α: a number, or eps/K (number.Step)
	AdvSteps   int
	TradesBeta float64
}

// Options checks s's loop settings and returns the loop's options (Trials
// and Tolerance left zero).
func (s TrainingSpec) Options() (finetune.Options, error) {
	o := finetune.Options{Epochs: s.Epochs, BatchSize: s.BatchSize, Seed: s.Seed,
		Augment: dataset.Augment{Pad: s.CropPad, Flip: s.Flip}, CheckpointDir: s.CheckpointDir}
	switch {
	case o.Epochs < 1:
		return o, optionf("--epochs %d: must be at least 1", o.Epochs)
	case o.BatchSize < 1:
		return o, optionf("--train-batch %d: must be at least 1", o.BatchSize)
	case o.Augment.Pad < 0:
		return o, optionf("--crop-pad %d: must not be negative", o.Augment.Pad)
	case !(s.LR > 0) || math.IsInf(s.LR, 0):
		return o, optionf("--lr %v: the learning rate must be positive", s.LR)
	case !(s.Momentum >= 0 && s.Momentum < 1):
		return o, optionf("--momentum %v: must be in [0,1)", s.Momentum)
	case !(s.WeightDecay >= 0) || math.IsInf(s.WeightDecay, 0):
		return o, optionf("--wd %v: the weight decay must not be negative", s.WeightDecay)
	case s.Resume && o.CheckpointDir == "":
		return o, optionf("--resume needs --checkpoint-dir, the folder of the checkpoint to continue")
	}
	switch s.Optimizer {
	case "sgd":
		o.Optimizer = finetune.SGD{LR: s.LR, Momentum: s.Momentum, WeightDecay: s.WeightDecay, Nesterov: s.Nesterov}
	case "adamw":
		if s.SGDGiven {
			return o, optionf("--momentum and --nesterov are SGD's; --optimizer adamw does not take them")
		}
		o.Optimizer = finetune.AdamW{LR: s.LR, WeightDecay: s.WeightDecay}
	default:
		return o, optionf("--optimizer %q: want sgd or adamw", s.Optimizer)
	}
	if err := o.Optimizer.Validate(); err != nil {
		return o, optionf("%v", err)
	}
	sched, every, err := ParseSchedule(s.Schedule, o.Epochs, s.LR)
	if err != nil {
		return o, err
	}
	o.Schedule, o.ScheduleEvery = sched, every
	return o, nil
}

// Adversarial is the adversarial training s asks for: PGD (Adv "pgd") or
// TRADES ("trades") with AdvEps, AdvAlpha (eps/K resolved to ε/K) and
// AdvSteps; both nil for "none".
func (s TrainingSpec) Adversarial() (*attacks.PGD, *diffmodel.TRADES, error) {
	switch s.Adv {
	case "none", "":
		return nil, nil, nil
	case "pgd", "trades":
	default:
		return nil, nil, optionf("--adv %q: want none, pgd or trades", s.Adv)
	}
	eps, err := number.Parse(s.AdvEps)
	if err != nil || !(eps > 0 && eps <= 1) {
		return nil, nil, optionf("--adv-eps %s: want a radius in (0,1], e.g. 8/255", s.AdvEps)
	}
	alpha, err := number.Step(s.AdvAlpha, eps)
	if err != nil {
		return nil, nil, optionf("--adv-alpha: %v", err)
	}
	if s.AdvSteps < 1 {
		return nil, nil, optionf("--adv-steps %d: must be at least 1", s.AdvSteps)
	}
	if s.Adv == "pgd" {
		// Every setting explicit, so that reports record what ran; the
		// seed of each batch derives from the seed, trial, epoch and batch.
		return &attacks.PGD{Epsilon: float32(eps), Norm: attacks.LInf, StepSize: float32(alpha), Steps: s.AdvSteps, Restarts: 1}, nil, nil
	}
	if b := s.TradesBeta; !(b > 0) || math.IsInf(b, 0) {
		return nil, nil, optionf("--trades-beta %v: must be positive", b)
	}
	return nil, &diffmodel.TRADES{Beta: float32(s.TradesBeta), Epsilon: float32(eps), StepSize: float32(alpha), Steps: s.AdvSteps}, nil
}

// CheckTrials checks the trial count (at least 1) and Algorithm 1's
// tolerance k (≥ 0) of finetune and semirobust.
func CheckTrials(trials int, tolerance float64) error {
	if trials < 1 {
		return optionf("--trials %d: must be at least 1", trials)
	}
	if !(tolerance >= 0) || math.IsInf(tolerance, 0) {
		return optionf("--tolerance %v: must not be negative", tolerance)
	}
	return nil
}

// EpochPrinter renders finetune progress: a bar counting each epoch's
// training samples on errw (a line every progress.LogInterval in logs) and
// a line per finished epoch on w.
func EpochPrinter(w, errw io.Writer) func(finetune.Progress) {
	var bar *progress.Bar
	return func(p finetune.Progress) {
		if p.Finished == nil {
			if bar == nil || p.Batch == 1 {
				bar = progress.New(errw, fmt.Sprintf("trial %d epoch %d: training", p.Trial, p.Epoch))
			}
			bar.Update(p.Samples, p.EpochSamples)
			return
		}
		e := p.Finished
		eval := "-"
		if e.EvalAcc >= 0 {
			eval = fmt.Sprintf("%.2f%%", e.EvalAcc)
		}
		extra := ""
		for _, k := range sortedMetricNames(e.Extra) {
			extra += fmt.Sprintf("  %s %.3f", k, e.Extra[k])
		}
		stop := ""
		if p.Stopped {
			stop = "  (target reached)"
		}
		fmt.Fprintf(w, "trial %d epoch %2d  loss %.4f  train acc %6.2f%%  eval acc %s  lr %.4g  %.1fs%s%s\n",
			p.Trial, e.Epoch, e.Loss, e.TrainAcc, eval, e.LR, e.Seconds, extra, stop)
	}
}

func sortedMetricNames(m finetune.Metrics) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ResumeHint says how to continue an interrupted training run whose
// checkpoints go to checkpointDir ("" for none).
func ResumeHint(checkpointDir string) string {
	if checkpointDir != "" {
		return fmt.Sprintf("resume with the same command and --resume (checkpoint in %s)", checkpointDir)
	}
	return "no checkpoint was kept (run with --checkpoint-dir DIR to make a run resumable); run the command again to start over"
}

// StoppedTraining is the error of a train or finetune run that stopped
// early (what is "training" or "fine-tuning"): stop.Done says what
// finished, to which the best model so far (output, "" for none) and the
// report (jsonPath, "" for none) are added; a cancelled run is a
// *report.Interrupted with ResumeHint(checkpointDir).
func StoppedTraining(stop *StoppedError, output, jsonPath, checkpointDir, what string) error {
	done := stop.Done
	if output != "" {
		done += "; best model so far written to " + output
	}
	if jsonPath != "" {
		done += "; report written to " + jsonPath + " (complete: false)"
	}
	if report.IsCancel(stop.Err) {
		return report.Interrupt(stop.Err, done, ResumeHint(checkpointDir))
	}
	if errors.Is(stop.Err, finetune.ErrDiverged) {
		return fmt.Errorf("%s diverged (%w); %s", what, stop.Err, done)
	}
	return fmt.Errorf("%s stopped: %w; %s", what, stop.Err, done)
}
