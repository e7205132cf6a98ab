package main

import (
	"io"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/progress"
	"github.com/semirobust/srtool/runs"
	"github.com/semirobust/srtool/semirobust"
)

// trainFlags are the optimiser, schedule and adversarial-training flags
// shared by train, finetune and semirobust. Defaults are the paper's
// fine-tuning recipe; defaultAdv is "pgd" for fine-tuning (Algorithm 1
// fine-tunes with PGD-10) and "none" for train.
func trainFlags(defaultEpochs int, defaultAdv string) []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "epochs", Value: defaultEpochs, Usage: "most epochs per trial, at least 1"},
		&cli.IntFlag{Name: "train-batch", Value: 128, Usage: "training batch size, at least 1"},
		&cli.StringFlag{Name: "optimizer", Value: "sgd", Usage: "sgd or adamw"},
		&cli.Float64Flag{Name: "lr", Value: 0.01, Usage: "learning rate, > 0"},
		&cli.Float64Flag{Name: "momentum", Value: 0.9, Usage: "SGD momentum, in [0,1)"},
		&cli.BoolFlag{Name: "nesterov", Usage: "Nesterov momentum"},
		&cli.Float64Flag{Name: "wd", Value: 5e-4, Usage: "weight decay, ≥ 0"},
		&cli.StringFlag{Name: "schedule", Value: "const", Usage: "const, multistep:E1,E2[:gamma] (gamma 0.1 unless given), cosine or onecycle (max lr = --lr)"},
		&cli.IntFlag{Name: "crop-pad", Value: 0, Usage: "random-crop padding for augmentation, ≥ 0 (0 = none)"},
		&cli.BoolFlag{Name: "flip", Usage: "random horizontal flips"},
		&cli.StringFlag{Name: "adv", Value: defaultAdv, Usage: "adversarial training: none, pgd (Madry's PGD, as Algorithm 1 fine-tunes) or trades"},
		&cli.Float64Flag{Name: "trades-beta", Value: 6, Usage: "TRADES β (with --adv trades), > 0"},
		&cli.StringFlag{Name: "adv-eps", Value: "8/255", Usage: "training attack's radius ε (L∞, pixel units of inputs in [0,1]), in (0,1]"},
		&cli.StringFlag{Name: "adv-alpha", Value: "eps/4", Usage: "training attack's step α: a number, or eps/K for ε/K (eps/4 = 2/255 at ε = 8/255, the Madry and torchattacks setting)"},
		&cli.IntFlag{Name: "adv-steps", Value: 10, Usage: "training attack's steps, at least 1"},
		&cli.StringFlag{Name: "eval-attack", Value: "none", Usage: "attack of the per-epoch evaluation: none (clean accuracy), fgsm, pgd, cw, autoattack, … with --eps/--norm/--steps/--alpha/--restarts"},
		&cli.StringFlag{Name: "eval-data", Usage: "evaluation data SPEC (default: the test split of --data; required for npz, npy and folder data)"},
		&cli.IntFlag{Name: "eval-n", Value: 1000, Usage: "evaluation samples, the first N of the evaluation data (0 = all)"},
		&cli.StringFlag{Name: "checkpoint-dir", Usage: "write a resumable checkpoint to `DIR` after every epoch (default: none)"},
		&cli.BoolFlag{Name: "resume", Usage: "continue the run whose checkpoint is in --checkpoint-dir; refused if it belongs to another model, data, setting or srtool version; starts fresh, saying so, when there is no checkpoint yet"},
	}
}

// trainDataFlags are dataFlags for the commands that train: --split
// selects the training data and defaults to train (the evaluation data is
// --eval-data, or --data's test split).
func trainDataFlags() []cli.Flag {
	fs := dataFlags()
	for i, f := range fs {
		if f.Names()[0] == "split" {
			fs[i] = &cli.StringFlag{Name: "split", Value: "train", Usage: "split of --data to train on: train or test"}
		}
	}
	return fs
}

// featureCacheFlag is --feature-cache-mb of finetune and semirobust.
func featureCacheFlag() cli.Flag {
	return &cli.IntFlag{Name: "feature-cache-mb", Value: 2048,
		Usage: "clean fine-tuning (--adv none, --head-bn eval, no augmentation) computes the frozen head's features once and trains the tail on them when they fit in this many MiB; 0 = always run the head"}
}

// evalAttack builds the per-epoch evaluation attack from --eval-attack (nil
// for none) with --eps/--norm/--steps/--alpha/--restarts
// (semirobust.EvalAttack).
func evalAttack(c *cli.Context, name string) (attacks.Attack, error) {
	a, err := semirobust.EvalAttack(name, attackSpec(c))
	return a, usageOf(err)
}

// evalData loads --eval-data, or --data's test split, limited to --eval-n
// (dataset.LoadEval).
func evalData(c *cli.Context) (*dataset.Dataset, error) {
	d, err := dataset.LoadEval(c.String("eval-data"), c.String("data"), c.Int("eval-n"))
	return d, usageOf(err)
}

// trainData loads --data's training split (dataset.Selection.LoadTrain).
func trainData(c *cli.Context) (*dataset.Dataset, error) {
	d, err := dataSelection(c).LoadTrain()
	return d, usageOf(err)
}

// trainingConfig is what the training flags shared by train, finetune and
// semirobust say: the engine, the loop's options and the adversarial
// training (PGD or TRADES; both nil for clean training).
type trainingConfig struct {
	Engine  ort.Options
	Options finetune.Options
	PGD     *attacks.PGD
	TRADES  *diffmodel.TRADES
}

// readTrainingFlags reads the engine and training flags
// (semirobust.TrainingSpec); invalid values are usage errors.
func readTrainingFlags(c *cli.Context) (trainingConfig, error) {
	var tc trainingConfig
	var err error
	if tc.Engine, err = engineOptions(c); err != nil {
		return tc, err
	}
	s := semirobust.TrainingSpec{Epochs: c.Int("epochs"), BatchSize: c.Int("train-batch"), Seed: uint64(c.Int64("seed")),
		CropPad: c.Int("crop-pad"), Flip: c.Bool("flip"), CheckpointDir: c.String("checkpoint-dir"), Resume: c.Bool("resume"),
		Optimizer: c.String("optimizer"), LR: c.Float64("lr"), Momentum: c.Float64("momentum"), Nesterov: c.Bool("nesterov"),
		WeightDecay: c.Float64("wd"), SGDGiven: c.IsSet("momentum") || c.IsSet("nesterov"), Schedule: c.String("schedule"),
		Adv: c.String("adv"), AdvEps: c.String("adv-eps"), AdvAlpha: c.String("adv-alpha"), AdvSteps: c.Int("adv-steps"), TradesBeta: c.Float64("trades-beta")}
	if tc.Options, err = s.Options(); err != nil {
		return tc, usageOf(err)
	}
	if tc.PGD, tc.TRADES, err = s.Adversarial(); err != nil {
		return tc, usageOf(err)
	}
	return tc, nil
}

// trainingRun is what train and finetune pass alike: the data, attacks and
// loop options read from the flags, the report header and outputs (-o,
// --safetensors and --json, the model written by runs.WriteTrained from the
// model at source), and progress on errw with epoch lines on w.
func trainingRun(c *cli.Context, source string, train, test *dataset.Dataset, evalAtk attacks.Attack, adv *attacks.PGD, trades *diffmodel.TRADES,
	fo finetune.Options, eng ort.Options, w, errw io.Writer) semirobust.TrainingRun {
	return semirobust.TrainingRun{Train: train, Test: test, TrainOffset: c.Int("offset"), EvalAttack: evalAtk, Adv: adv, TRADES: trades,
		Finetune: fo, Resume: c.Bool("resume"), Engine: eng, Batch: c.Int("batch"), Header: newHeader(c), JSON: c.String("json"),
		Save: func(m *onnxio.Model, complete bool) (string, map[string]string, error) {
			return runs.WriteTrained(m, c.String("o"), c.String("safetensors"), source, complete)
		},
		Progress: progress.Stages(errw), Epochs: semirobust.EpochPrinter(w, errw)}
}
