package semirobust

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/report"
)

// TrainReport is the JSON document of `srtool train`. Best is the best
// epoch of a finished run; an unfinished one (Complete false) has only
// BestSoFar.
type TrainReport struct {
	report.Header
	Model    string `json:"model"`
	Data     string `json:"data"`
	EvalData string `json:"eval_data"`
	// Adv and TRADES are the adversarial training as it ran (α resolved).
	Adv    *attacks.PGD      `json:"adversarial_training,omitempty"`
	TRADES *diffmodel.TRADES `json:"trades,omitempty"`
	// Eval is the evaluation attack, every default resolved (null: clean).
	Eval      *attacks.Setting  `json:"eval_attack"`
	Options   finetune.Options  `json:"options"`
	Best      *BestSoFar        `json:"best,omitempty"`
	BestSoFar *BestSoFar        `json:"best_so_far,omitempty"`
	Result    *finetune.Result  `json:"result,omitempty"`
	Resumed   string            `json:"resumed_from,omitempty"`
	Output    string            `json:"output,omitempty"`
	Outputs   map[string]string `json:"outputs,omitempty"`
	Seconds   float64           `json:"seconds"`
}

// TrainOptions are the inputs and settings of Train (`srtool train`).
type TrainOptions struct {
	TrainingRun
	// Model, read from Path and analysed (Analysis), is trained in full.
	Model    *onnxio.Model
	Path     string
	Analysis *analyzer.Analysis
}

// Train trains every parameter of a model, normally or adversarially (it
// makes f and f*), as `srtool train` does: it checks any checkpoint to
// resume before work, trains, writes the best model (Save) and the report
// (JSON). Progress lines go to w. A run that stopped after its first epoch
// began returns its report with a *StoppedError.
func Train(ctx context.Context, o TrainOptions, w io.Writer) (*TrainReport, error) {
	m, an, path, train, test, evalAtk := o.Model, o.Analysis, o.Path, o.Train, o.Test, o.EvalAttack
	opts, fo, adv, trades := o.Engine, o.Finetune, o.Adv, o.TRADES
	fo.HeadBN = "eval"
	var err error
	part := an.Partition(an.WholeModel())
	evalSetting := AttackSetting(evalAtk, ModelClasses(an))
	identity, ck, err := o.open([][2]string{{"model", path}}, evalSetting, w)
	if err != nil {
		return nil, err
	}
	rep := &TrainReport{Header: o.Header, Model: path, Data: train.Name, EvalData: test.Name, Adv: adv, TRADES: trades, Eval: evalSetting, Options: fo.Resolved()}
	if ck != nil {
		// Before any work: the checkpoint must belong to this run.
		if err := ck.Check(fo, identity); err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
		rep.Resumed = ResumedFrom(ck, fo.Epochs)
		fmt.Fprintf(w, "resuming from %s: %s\n", ck.Path, rep.Resumed)
	}
	trainer, trainable, state, err := diffmodel.NewTrainer(m, opts, diffmodel.TrainerOptions{Trainable: part.TailParams, TrainBN: part.TailBN, HeadBN: "eval", TRADES: trades})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer trainer.Close()
	if err := train.CheckLabels(trainer.NumClasses(), path); err != nil {
		return nil, err
	}
	if err := test.CheckLabels(trainer.NumClasses(), path); err != nil {
		return nil, err
	}
	job := finetune.Job{Train: train, Trainable: trainable, State: state, Stepper: trainer, Progress: o.Epochs, Identity: identity}
	closeParts, err := JobParts(&job, m, opts, test, evalAtk, adv, o.Batch, o.Progress)
	defer closeParts()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	res, runErr := RunOrResume(ctx, ck, fo, job)
	if res == nil {
		return nil, runErr // refused before the first epoch
	}
	rep.Seconds = time.Since(start).Seconds()
	rep.Result, rep.Options = res, res.Options
	complete := runErr == nil && res.Complete
	if !complete {
		rep.MarkIncomplete(runErr)
	}
	best := res.BestSoFar()
	if best != nil {
		out, err := WithParams(m, best.Trainable, best.State)
		if err != nil {
			return nil, err
		}
		if rep.Output, rep.Outputs, err = o.Save(out, complete); err != nil {
			return nil, err
		}
		b := &BestSoFar{Acc: best.Acc, Trial: best.Trial, Epoch: best.Epoch}
		if complete {
			rep.Best = b
			fmt.Fprintf(w, "best: trial %d epoch %d, eval accuracy %.2f%% → %s (%.0fs)\n", b.Trial, b.Epoch, b.Acc, rep.Output, rep.Seconds)
		} else {
			rep.BestSoFar = b
			fmt.Fprintf(w, "not finished: %s → %s (%.0fs)\n", b, rep.Output, rep.Seconds)
		}
	}
	if err := report.WriteJSON(o.JSON, rep); err != nil {
		return nil, err
	}
	if complete {
		return rep, nil
	}
	return rep, &StoppedError{Err: runErr, Done: FinishedWork(res, fo.Epochs)}
}

// OpenResume opens the checkpoint in dir that resume continues (Check it
// before any work); nil without resume. With no checkpoint in dir yet it
// returns nil and a note that the run starts fresh.
func OpenResume(resume bool, dir string) (*finetune.Checkpoint, string, error) {
	if !resume {
		return nil, "", nil
	}
	ck, err := finetune.OpenCheckpoint(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Sprintf("--resume: no checkpoint in %s yet: starting fresh", dir), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("resume: %w", err)
	}
	return ck, "", nil
}
