package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/semirobust"
)

func trainCommand() *cli.Command {
	return &cli.Command{
		Name:      "train",
		Usage:     "train every parameter of a model, normally or adversarially (produces f and f*)",
		ArgsUsage: "MODEL.onnx",
		Flags: append(append(append(append(commonFlags(), trainDataFlags()...), attackParamFlags()...), trainFlags(10, "none")...),
			&cli.StringFlag{Name: "o", Aliases: []string{"out"}, Required: true, Usage: "output `MODEL.onnx` (best epoch; an unfinished run writes its best so far to MODEL.onnx.partial)"},
			&cli.StringFlag{Name: "safetensors", Usage: "also write the weights to `FILE.safetensors` keyed by PyTorch names"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("train needs exactly one MODEL argument")
			}
			return runTrain(c, c.Args().First(), c.App.Writer, c.App.ErrWriter)
		},
	}
}

func runTrain(c *cli.Context, path string, w, errw io.Writer) error {
	tc, err := readTrainingFlags(c)
	if err != nil {
		return err
	}
	opts, fo, adv, trades := tc.Engine, tc.Options, tc.PGD, tc.TRADES
	evalAtk, err := evalAttack(c, c.String("eval-attack"))
	if err != nil {
		return err
	}
	m, err := loadModel(c, path)
	if err != nil {
		return err
	}
	an, err := analyzer.Analyze(m)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	train, err := trainData(c)
	if err != nil {
		return err
	}
	test, err := evalData(c)
	if err != nil {
		return err
	}
	rep, err := semirobust.Train(c.Context, semirobust.TrainOptions{
		TrainingRun: trainingRun(c, path, train, test, evalAtk, adv, trades, fo, opts, w, errw),
		Model:       m, Path: path, Analysis: an}, w)
	var stop *semirobust.StoppedError
	if errors.As(err, &stop) {
		return semirobust.StoppedTraining(stop, rep.Output, c.String("json"), c.String("checkpoint-dir"), "training")
	}
	return err
}
