package main

import (
	"io"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/runs"
)

func gradCommand() *cli.Command {
	return &cli.Command{
		Name:      "grad",
		Usage:     "gradients of a loss with respect to the input or parameters, as .npy",
		ArgsUsage: "MODEL.onnx",
		Flags: append(commonFlags(),
			&cli.StringFlag{Name: "input", Usage: "input batch `X.npy` (N×C×H×W float32 in [0,1], or uint8)", Required: true},
			&cli.StringFlag{Name: "labels", Usage: "labels `Y.npy` (N integers)", Required: true},
			&cli.StringFlag{Name: "loss", Value: "ce", Usage: "ce, cw or dlr"},
			&cli.StringFlag{Name: "reduction", Value: "mean", Usage: "mean, sum or none"},
			&cli.StringSliceFlag{Name: "wrt", Value: cli.NewStringSlice("input"), Usage: "input or a parameter (initializer) name; repeat for several"},
			&cli.StringFlag{Name: "o", Aliases: []string{"out"}, Required: true, Usage: "output `FILE`.npy for one --wrt, a folder for several"},
			&cli.StringFlag{Name: "mean", Usage: "per-channel mean the model expects (prepended)"},
			&cli.StringFlag{Name: "std", Usage: "per-channel std the model expects (prepended)"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("grad needs exactly one MODEL argument")
			}
			return runGrad(c, c.Args().First(), c.App.Writer)
		},
	}
}

func runGrad(c *cli.Context, path string, w io.Writer) error {
	opts, err := engineOptions(c)
	if err != nil {
		return err
	}
	wrt := c.StringSlice("wrt")
	spec, err := runs.GradSpec(c.String("loss"), c.String("reduction"), wrt)
	if err != nil {
		return usageOf(err)
	}
	m, err := loadModel(c, path)
	if err != nil {
		return err
	}
	_, err = runs.Grad(c.Context, m, runs.GradOptions{Model: path, Header: newHeader(c), Engine: opts, Spec: spec, Wrt: wrt,
		LossName: c.String("loss"), Reduction: c.String("reduction"), Input: c.String("input"), Labels: c.String("labels"),
		Out: c.String("o"), JSON: c.String("json")}, w)
	return err
}
