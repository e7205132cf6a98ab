package main

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/report"
	"github.com/semirobust/srtool/semirobust"
)

type finetuneReport struct {
	report.Header
	Robust   string   `json:"robust"`
	Normal   string   `json:"normal"`
	Layers   int      `json:"layers"`
	FbLayers int      `json:"fb_layers"`
	Cut      []string `json:"cut"`
	HeadBN   string   `json:"head_bn"`
	Train    string   `json:"train_data"`
	Test     string   `json:"eval_data"`
	// Eval is the evaluation attack as it ran, every default resolved
	// (null: clean accuracy).
	Eval   *attacks.Setting `json:"eval_attack"`
	Adv    *attacks.PGD     `json:"adversarial_training,omitempty"`
	TRADES *ort.TRADES      `json:"trades,omitempty"`
	// Options are the fine-tuning options as they ran, the target
	// resolved (absent when the run stopped before Acc* was known).
	Options *finetune.Options `json:"finetune_options,omitempty"`
	// BNExport says what --rho-every-epoch's ρ taps (see semirobust's report).
	BNExport     semirobust.BNExport `json:"bn_export,omitempty"`
	BNExportNote string              `json:"bn_export_note,omitempty"`
	// Output is the model written: -o when complete, -o + ".partial" (the
	// best epoch so far) when not; Outputs holds the SHA-256 of every file
	// written with this report, which is written last.
	Output        string              `json:"output,omitempty"`
	Outputs       map[string]string   `json:"outputs,omitempty"`
	CheckpointDir string              `json:"checkpoint_dir,omitempty"`
	Outcome       *semirobust.Outcome `json:"outcome"`
}

func finetuneCommand() *cli.Command {
	return &cli.Command{
		Name:      "finetune",
		Usage:     "semirobust fine-tuning (Algorithm 1): robust head frozen, tail from a normal model, fine-tuned until it reaches the robust model's accuracy",
		ArgsUsage: "ROBUST.onnx",
		Flags: append(append(append(append(commonFlags(), trainDataFlags()...), attackParamFlags()...), trainFlags(10, "pgd")...),
			&cli.StringFlag{Name: "tail-from", Required: true, Usage: "the normally trained model `NORMAL.onnx` whose tail starts the fine-tuning"},
			&cli.IntFlag{Name: "fb-layers", Usage: "weight layers in the tail (the paper's K), at least 1 (one of --fb-layers and --at is required)"},
			&cli.IntFlag{Name: "at", Usage: "last weight layer of the head (instead of --fb-layers)"},
			&cli.StringFlag{Name: "head-bn", Value: "eval", Usage: "frozen head's BatchNorm during training: eval (running statistics) or train (batch statistics, the authors' code)"},
			&cli.StringFlag{Name: "target", Value: "auto", Usage: "stop when the evaluation accuracy reaches this percentage; auto = Acc*, the robust model's"},
			&cli.Float64Flag{Name: "tolerance", Value: 0, Usage: "the paper's k, ≥ 0: stop at target − k"},
			&cli.IntFlag{Name: "trials", Value: 1, Usage: "independent trials, at least 1 (the paper: 10)"},
			&cli.StringFlag{Name: "o", Aliases: []string{"out"}, Required: true, Usage: "output `MODEL.onnx` (best trial and epoch; an unfinished run writes its best so far to MODEL.onnx.partial)"},
			&cli.StringFlag{Name: "safetensors", Usage: "also write the weights to `FILE.safetensors` keyed by PyTorch names"},
			&cli.BoolFlag{Name: "rho-every-epoch", Usage: "record ρ for the tail's layer pairs after every epoch (the paper's trial rhos), on evaluation data attacked with --eval-attack"},
			&cli.StringFlag{Name: "estimator", Value: "edge", Usage: "estimator for --rho-every-epoch"},
			&cli.StringFlag{Name: "options", Usage: "estimator options as JSON (default: the estimator's defaults)"},
			&cli.BoolFlag{Name: "nats", Usage: "ρ in nats instead of bits"},
			&cli.IntFlag{Name: "rho-n", Value: 500, Usage: "evaluation samples for --rho-every-epoch (enough that every class has the estimator's minimum rows)"},
			featureCacheFlag(),
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("finetune needs exactly one ROBUST model argument")
			}
			if c.IsSet("at") == c.IsSet("fb-layers") {
				return usagef("finetune needs exactly one of --fb-layers or --at")
			}
			if c.IsSet("fb-layers") && c.Int("fb-layers") < 1 {
				return usagef("--fb-layers must be at least 1")
			}
			return runFinetune(c, c.Args().First(), c.App.Writer, c.App.ErrWriter)
		},
	}
}

func runFinetune(c *cli.Context, path string, w, errw io.Writer) error {
	tc, err := readTrainingFlags(c)
	if err != nil {
		return err
	}
	eng, fo, adv, trades := tc.Engine, tc.Options, tc.PGD, tc.TRADES
	fo.Trials = c.Int("trials")
	fo.Tolerance = c.Float64("tolerance")
	if fo.Trials < 1 {
		return usagef("--trials %d: must be at least 1", fo.Trials)
	}
	if !(fo.Tolerance >= 0) || math.IsInf(fo.Tolerance, 0) {
		return usagef("--tolerance %v: must not be negative", fo.Tolerance)
	}
	target, auto := 0.0, strings.EqualFold(c.String("target"), "auto")
	if !auto {
		if target, err = parseNumber(c.String("target")); err != nil || target < 0 || target > 100 {
			return usagef("--target %q: want auto or a percentage", c.String("target"))
		}
	}
	if c.Int("feature-cache-mb") < 0 {
		return usagef("--feature-cache-mb must not be negative")
	}
	atk, err := evalAttack(c, c.String("eval-attack"))
	if err != nil {
		return err
	}
	var est estimators.Estimator
	if c.Bool("rho-every-epoch") {
		if est, _, err = newEstimator(c); err != nil {
			return err
		}
		if c.Int("rho-n") < 1 {
			return usagef("--rho-n %d: must be at least 1", c.Int("rho-n"))
		}
	}
	robust, err := loadModel(c, path)
	if err != nil {
		return err
	}
	normal, err := loadModel(c, c.String("tail-from"))
	if err != nil {
		return err
	}
	setup, err := semirobust.NewSetup(robust, normal, c.Int("at"), c.Int("fb-layers"), c.String("head-bn"))
	if err != nil {
		return usageOf(fmt.Errorf("finetune %s with the tail of %s: %w", path, c.String("tail-from"), err))
	}
	train, err := trainData(c)
	if err != nil {
		return err
	}
	test, err := evalData(c)
	if err != nil {
		return err
	}
	classes := semirobust.ModelClasses(setup.Analysis)
	evalSetting := semirobust.AttackSetting(atk, classes)
	run := semirobust.FinetuneJob{Setup: setup, Train: train, Test: test, EvalAttack: atk, Adv: adv, TRADES: trades, Options: fo, Engine: eng, Batch: c.Int("batch"),
		Progress: epochPrinter(w, errw), Measure: progressOn(errw), FeatureCacheMiB: c.Int("feature-cache-mb"), Target: target, AutoTarget: auto,
		Note: func(s string) { fmt.Fprintln(w, s) }}
	var rhoNote string
	if c.Bool("rho-every-epoch") {
		pairs, err := semirobust.TailPairs(setup.Layers, setup.FbLayers)
		if err != nil {
			return err
		}
		rhoData := test.Slice(0, min(test.Len(), c.Int("rho-n")))
		// Sample-size requirements are checked before any training.
		if err := semirobust.CheckRhoSamples(est, setup.Analysis, pairs, rhoData, "--rho-n", errw); err != nil {
			return usageOf(err)
		}
		rhoNote = semirobust.BNExportOf(setup.Analysis).Warning()
		ro := semirobust.RhoOptions{Estimator: est, PerClass: true, Seed: uint64(c.Int64("seed")), Batch: c.Int("batch"), Engine: eng}
		run.EpochMetrics = func(m *onnxio.Model) (finetune.Metrics, error) {
			rs, err := semirobust.RhosOnAttacked(c.Context, m, rhoData, atk, pairs, ro)
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
	if fo.CheckpointDir != "" {
		run.Identity, err = semirobust.RunIdentity(newRunInfo(c), [][2]string{{"robust model", path}, {"normal model", c.String("tail-from")}},
			[]semirobust.IdentityData{{Role: "training data", D: train, Offset: c.Int("offset")}, {Role: "evaluation data", D: test}},
			[]finetune.Setting{semirobust.SettingJSON("adversarial training", adv), semirobust.SettingJSON("TRADES training", trades), semirobust.SettingJSON("evaluation attack", evalSetting)})
		if err != nil {
			return err
		}
	}
	ck, note, err := openResume(c)
	if err != nil {
		return err
	}
	if note != "" {
		fmt.Fprintln(w, note)
	}
	if ck != nil {
		// Acc* and Acc_sr come from the checkpoint; it must belong to this run.
		m := ck.Measured()
		star, ok1 := m[semirobust.MeasuredAccStar]
		sr, ok2 := m[semirobust.MeasuredAccSR]
		if !ok1 || !ok2 {
			return fmt.Errorf("resume: %s does not record Acc* and Acc_sr: it was not written by srtool finetune or semirobust", ck.Path)
		}
		run.AccStar, run.AccSR, run.Checkpoint = &star, &sr, ck
		// Before any work: the checkpoint must belong to this run.
		check, _ := semirobust.JobOptions(setup, fo, trades, target)
		if auto {
			check.Target = star
		}
		if err := ck.Check(check, run.Identity); err != nil {
			return fmt.Errorf("resume: %w", err)
		}
	}
	if rhoNote != "" {
		fmt.Fprintln(errw, "warning: "+rhoNote)
	}
	rep := finetuneReport{Header: newHeader(c), Robust: path, Normal: c.String("tail-from"), Layers: setup.Layers, FbLayers: setup.FbLayers, HeadBN: setup.HeadBN,
		Train: train.Name, Test: test.Name, Eval: evalSetting, Adv: adv, TRADES: trades, CheckpointDir: fo.CheckpointDir}
	if c.Bool("rho-every-epoch") {
		rep.BNExport = semirobust.BNExportOf(setup.Analysis)
		rep.BNExportNote = rep.BNExport.Describe()
	}
	for _, t := range setup.Cut.Tensors {
		rep.Cut = append(rep.Cut, t.Name)
	}
	fmt.Fprintf(w, "semirobust network: head = layers 1..%d of %s (frozen, BN %s), tail = last %d layers of %s\n", setup.Cut.After, path, setup.HeadBN, setup.FbLayers, c.String("tail-from"))
	outcome, runErr := semirobust.RunFinetune(c.Context, run)
	rep.Outcome = outcome
	if outcome.Result != nil {
		rep.Options = &outcome.Result.Options
	} else if outcome.Target != nil {
		o, _ := semirobust.JobOptions(setup, fo, trades, *outcome.Target)
		o = o.Resolved()
		rep.Options = &o
	}
	if runErr != nil {
		rep.MarkIncomplete(runErr)
	}
	outcome.Print(w, semirobust.AttackLabel(atk))
	if outcome.Final != nil {
		if rep.Output, rep.Outputs, err = writeTrained(c, outcome.Final, path, outcome.Complete && runErr == nil); err != nil {
			return err
		}
	}
	if err := report.WriteJSON(c.String("json"), rep); err != nil {
		return err
	}
	if runErr == nil {
		return nil
	}
	done := semirobust.FinishedWork(outcome.Result, fo.Epochs)
	if outcome.AccStar == nil {
		done = "stopped while measuring Acc*"
	} else if outcome.AccSR == nil {
		done = "Acc* measured, stopped while measuring Acc_sr"
	}
	return stoppedTraining(c, runErr, done, rep.Output, "fine-tuning")
}
