package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/semirobust"
)

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
	fo.Trials, fo.Tolerance = c.Int("trials"), c.Float64("tolerance")
	if err := semirobust.CheckTrials(fo.Trials, fo.Tolerance); err != nil {
		return usageOf(err)
	}
	target, auto, err := semirobust.ParseTarget(c.String("target"))
	if err != nil {
		return usageOf(err)
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
	setup, err := semirobust.NewSetup(robust, normal, c.Int("at"), c.Int("fb-layers"), finetune.BNMode(c.String("head-bn")))
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
	rep, err := semirobust.Finetune(c.Context, semirobust.FinetuneOptions{
		TrainingRun: trainingRun(c, path, train, test, atk, adv, trades, fo, eng, w, errw),
		Setup:       setup, RobustPath: path, NormalPath: c.String("tail-from"),
		Target: target, AutoTarget: auto, FeatureCacheMiB: c.Int("feature-cache-mb"),
		RhoEstimator: est, RhoN: c.Int("rho-n"), Seed: uint64(c.Int64("seed"))}, w, errw)
	var stop *semirobust.StoppedError
	if errors.As(err, &stop) {
		return semirobust.StoppedTraining(stop, rep.Output, c.String("json"), c.String("checkpoint-dir"), "fine-tuning")
	}
	return usageOf(err)
}
