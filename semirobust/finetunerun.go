package semirobust

import (
	"context"
	"fmt"
	"io"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/report"
)

// FinetuneReport is the JSON document of `srtool finetune`.
type FinetuneReport struct {
	report.Header
	Robust   string          `json:"robust"`
	Normal   string          `json:"normal"`
	Layers   int             `json:"layers"`
	FbLayers int             `json:"fb_layers"`
	Cut      []string        `json:"cut"`
	HeadBN   finetune.BNMode `json:"head_bn"`
	Train    string          `json:"train_data"`
	Test     string          `json:"eval_data"`
	// Eval is the evaluation attack as it ran, every default resolved
	// (null: clean accuracy).
	Eval   *attacks.Setting  `json:"eval_attack"`
	Adv    *attacks.PGD      `json:"adversarial_training,omitempty"`
	TRADES *diffmodel.TRADES `json:"trades,omitempty"`
	// Options are the fine-tuning options as they ran, the target
	// resolved (absent when the run stopped before Acc* was known).
	Options *finetune.Options `json:"finetune_options,omitempty"`
	// BNExport says what --rho-every-epoch's ρ taps (see semirobust's report).
	BNExport     BNExport `json:"bn_export,omitempty"`
	BNExportNote string   `json:"bn_export_note,omitempty"`
	// Output is the model written: -o when complete, -o + ".partial" (the
	// best epoch so far) when not; Outputs holds the SHA-256 of every file
	// written with this report, which is written last.
	Output        string            `json:"output,omitempty"`
	Outputs       map[string]string `json:"outputs,omitempty"`
	CheckpointDir string            `json:"checkpoint_dir,omitempty"`
	Outcome       *Outcome          `json:"outcome"`
}

// TrainingRun is what a training command's run shares, whether it trains a
// whole model (Train) or fine-tunes a tail (Finetune).
type TrainingRun struct {
	// Train is the training data, whose first sample is sample
	// TrainOffset of its source; Test is the evaluation data.
	Train, Test *dataset.Dataset
	TrainOffset int
	// EvalAttack is the per-epoch evaluation attack (nil: clean); Adv or
	// TRADES, if set, train adversarially (finetune: [PGD-10], train:
	// [none]).
	EvalAttack attacks.Attack
	Adv        *attacks.PGD
	TRADES     *diffmodel.TRADES
	// Finetune are the loop's options (Trials, Tolerance, CheckpointDir, …);
	// Resume continues the run whose checkpoint is in CheckpointDir.
	Finetune finetune.Options
	Resume   bool
	Engine   ort.Options
	Batch    int
	// Header opens the report; JSON, if set, receives it. Save writes the
	// model (the best epoch, so far when not complete) and returns its path
	// and the SHA-256 of the files written.
	Header report.Header
	JSON   string
	Save   func(m *onnxio.Model, complete bool) (string, map[string]string, error)
	// Progress reports the accuracy measurements; Epochs, if set, the
	// training loop.
	Progress Progress
	Epochs   func(finetune.Progress)
}

// open records the run's identity when it keeps checkpoints (the models
// by role and path, the data, the training and evaluation attacks: what a
// checkpoint must match) and opens the checkpoint to resume, if any, noting
// on w what it found.
func (r TrainingRun) open(models [][2]string, evalSetting *attacks.Setting, w io.Writer) ([]finetune.Setting, *finetune.Checkpoint, error) {
	var identity []finetune.Setting
	if r.Finetune.CheckpointDir != "" {
		var err error
		identity, err = RunIdentity(r.Header.Run, models,
			[]IdentityData{{Role: "training data", D: r.Train, Offset: r.TrainOffset}, {Role: "evaluation data", D: r.Test}},
			[]finetune.Setting{SettingJSON("adversarial training", r.Adv), SettingJSON("TRADES training", r.TRADES), SettingJSON("evaluation attack", evalSetting)})
		if err != nil {
			return nil, nil, err
		}
	}
	ck, note, err := OpenResume(r.Resume, r.Finetune.CheckpointDir)
	if err != nil {
		return nil, nil, err
	}
	if note != "" {
		fmt.Fprintln(w, note)
	}
	return identity, ck, nil
}

// FinetuneOptions are the inputs and settings of Finetune (`srtool
// finetune`); the flags' defaults are noted in brackets.
type FinetuneOptions struct {
	TrainingRun
	// Setup is Algorithm 1's start (NewSetup) of the robust model at
	// RobustPath with the tail of the normal model at NormalPath.
	Setup                  *Setup
	RobustPath, NormalPath string
	// Target is the accuracy to stop at; AutoTarget [true] replaces it
	// with Acc*.
	Target          float64
	AutoTarget      bool
	FeatureCacheMiB int // [2048]; 0 turns the head-feature cache off
	// RhoEstimator, if set, records ρ of the tail's pairs after every
	// epoch on the first RhoN [500] evaluation samples, attacked with
	// EvalAttack; Seed seeds it.
	RhoEstimator estimators.Estimator
	RhoN         int
	Seed         uint64
}

// Finetune runs Algorithm 1 as `srtool finetune` does: it checks the ρ
// data and any checkpoint to resume before work, fine-tunes, writes the
// model (Save) and the report (JSON). Progress lines go to w, warnings to
// errw. A run that stopped after it began returns its report with a
// *StoppedError saying what finished; an error in the settings wraps
// ErrOption.
func Finetune(ctx context.Context, o FinetuneOptions, w, errw io.Writer) (*FinetuneReport, error) {
	setup, train, test, atk, adv, trades, fo, eng, est := o.Setup, o.Train, o.Test, o.EvalAttack, o.Adv, o.TRADES, o.Finetune, o.Engine, o.RhoEstimator
	path, target, auto := o.RobustPath, o.Target, o.AutoTarget
	var err error
	classes := ModelClasses(setup.Analysis)
	evalSetting := AttackSetting(atk, classes)
	run := FinetuneJob{Setup: setup, Train: train, Test: test, EvalAttack: atk, Adv: adv, TRADES: trades, Options: fo, Engine: eng, Batch: o.Batch,
		Progress: o.Epochs, Measure: o.Progress, FeatureCacheMiB: o.FeatureCacheMiB, Target: target, AutoTarget: auto,
		Note: func(s string) { fmt.Fprintln(w, s) }}
	var rhoNote string
	if est != nil {
		pairs, err := TailPairs(setup.Layers, setup.FbLayers)
		if err != nil {
			return nil, err
		}
		rhoData := test.Slice(0, min(test.Len(), o.RhoN))
		// Sample-size requirements are checked before any training.
		if err := CheckRhoSamples(est, setup.Analysis, pairs, rhoData, "--rho-n", errw); err != nil {
			return nil, err
		}
		rhoNote = BNExportOf(setup.Analysis).Warning()
		ro := RhoOptions{Estimator: est, PerClass: true, Seed: o.Seed, Batch: o.Batch, Engine: eng}
		run.EpochRho = &EpochRho{Data: rhoData, Pairs: pairs, Options: ro}
	}
	var ck *finetune.Checkpoint
	run.Identity, ck, err = o.open([][2]string{{"robust model", path}, {"normal model", o.NormalPath}}, evalSetting, w)
	if err != nil {
		return nil, err
	}
	if ck != nil {
		// Acc* and Acc_sr come from the checkpoint; it must belong to this run.
		m := ck.Measured()
		star, ok1 := m[MeasuredAccStar]
		sr, ok2 := m[MeasuredAccSR]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("resume: %s does not record Acc* and Acc_sr: it was not written by srtool finetune or semirobust", ck.Path)
		}
		run.AccStar, run.AccSR, run.Checkpoint = &star, &sr, ck
		// Before any work: the checkpoint must belong to this run.
		check, _ := JobOptions(setup, fo, trades, target)
		if auto {
			check.Target = star
		}
		if err := ck.Check(check, run.Identity); err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
	}
	if rhoNote != "" {
		fmt.Fprintln(errw, "warning: "+rhoNote)
	}
	rep := &FinetuneReport{Header: o.Header, Robust: path, Normal: o.NormalPath, Layers: setup.Layers, FbLayers: setup.FbLayers, HeadBN: setup.HeadBN,
		Train: train.Name, Test: test.Name, Eval: evalSetting, Adv: adv, TRADES: trades, CheckpointDir: fo.CheckpointDir}
	if est != nil {
		rep.BNExport = BNExportOf(setup.Analysis)
		rep.BNExportNote = rep.BNExport.Describe()
	}
	for _, t := range setup.Cut.Tensors {
		rep.Cut = append(rep.Cut, t.Name)
	}
	fmt.Fprintf(w, "semirobust network: head = layers 1..%d of %s (frozen, BN %s), tail = last %d layers of %s\n", setup.Cut.After, path, setup.HeadBN, setup.FbLayers, o.NormalPath)
	outcome, runErr := RunFinetune(ctx, run)
	rep.Outcome = outcome
	if outcome.Result != nil {
		rep.Options = &outcome.Result.Options
	} else if outcome.Target != nil {
		ro, _ := JobOptions(setup, fo, trades, *outcome.Target)
		ro = ro.Resolved()
		rep.Options = &ro
	}
	if runErr != nil {
		rep.MarkIncomplete(runErr)
	}
	outcome.Print(w, AttackLabel(atk))
	if outcome.Final != nil {
		if rep.Output, rep.Outputs, err = o.Save(outcome.Final, outcome.Complete && runErr == nil); err != nil {
			return nil, err
		}
	}
	if err := report.WriteJSON(o.JSON, rep); err != nil {
		return nil, err
	}
	if runErr == nil {
		return rep, nil
	}
	done := FinishedWork(outcome.Result, fo.Epochs)
	if outcome.AccStar == nil {
		done = "stopped while measuring Acc*"
	} else if outcome.AccSR == nil {
		done = "Acc* measured, stopped while measuring Acc_sr"
	}
	return rep, &StoppedError{Err: runErr, Done: done}
}
