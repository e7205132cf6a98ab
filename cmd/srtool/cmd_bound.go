package main

import (
	"errors"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/hessian"
	"github.com/semirobust/srtool/progress"
	"github.com/semirobust/srtool/semirobust"
)

func boundCommand() *cli.Command {
	return &cli.Command{
		Name:  "bound",
		Usage: "the paper's weight-difference bound ½ λmax ‖ω~_b − ω*_b‖² against the measured loss gap",
		Description: "At ω* (the robust model, BatchNorm in eval mode) and on the given data (clean, or attacked at ω*\n" +
			"with --adv), computes the largest Hessian eigenvalue of the mean cross-entropy for the tail's\n" +
			"trainable parameters and for all of them (power iteration on finite-difference Hessian-vector\n" +
			"products), ‖ω~_b − ω*_b‖², the bound ½ λmax_tail ‖Δω_b‖², the quadratic form ½ ΔωᵀHΔω and the\n" +
			"measured loss gap ℓ(ω~) − ℓ(ω*).",
		Flags: append(append(append(commonFlags(), dataFlags()...), attackParamFlags()...),
			&cli.StringFlag{Name: "robust", Usage: "the robust model ω* (`FSTAR.onnx`)", Required: true},
			&cli.StringFlag{Name: "finetuned", Usage: "the semirobust model ω~ (`FTILDE.onnx`): ω*'s head, fine-tuned tail", Required: true},
			&cli.IntFlag{Name: "fb-layers", Usage: "the tail holds the last `K` weight layers"},
			&cli.IntFlag{Name: "at", Usage: "the head holds weight layers 1..`A`"},
			&cli.StringFlag{Name: "adv", Aliases: []string{"attack"}, Value: "none", Usage: "inputs: none (clean) or an attack run at ω* first (pgd, with --eps/--steps/--alpha/--restarts/--no-random-start)"},
			&cli.Float64Flag{Name: "tol", Value: 1e-4, Usage: "power iteration: relative tolerance on the eigenvalue"},
			&cli.IntFlag{Name: "max-iter", Value: 100, Usage: "power iteration: most Hessian-vector products"},
			&cli.Float64Flag{Name: "fd-step", Value: hessian.DefaultStep, Usage: "finite-difference step h relative to ‖ω‖"},
			&cli.Float64Flag{Name: "fd-loss-change", Value: hessian.DefaultLossChange, Usage: "shorten a step whose second-order loss change ½ρh² exceeds this (nats), along directions of high curvature ρ"},
			&cli.BoolFlag{Name: "fd-richardson", Usage: "extrapolate two central differences (h and h/2) to cancel the O(h²) error: twice the gradient calls"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("bound takes no arguments; give the models with --robust and --finetuned")
			}
			return runBound(c, c.App.Writer, c.App.ErrWriter)
		},
	}
}

func runBound(c *cli.Context, w, errw io.Writer) error {
	eng, err := engineOptions(c)
	if err != nil {
		return err
	}
	o := semirobust.BoundOptions{RobustPath: c.String("robust"), FinetunedPath: c.String("finetuned"),
		FbLayers: c.Int("fb-layers"), At: c.Int("at"), Engine: eng, Batch: c.Int("batch"),
		Power:  hessian.PowerOptions{Tol: c.Float64("tol"), MaxIter: c.Int("max-iter"), Seed: uint64(c.Int64("seed"))},
		FDStep: c.Float64("fd-step"), FDLossChange: c.Float64("fd-loss-change"), FDRichardson: c.Bool("fd-richardson"), Progress: progress.Stages(errw)}
	if err := o.Validate(); err != nil {
		return usageOf(err)
	}
	if c.Int("steps") < 0 || c.Int("restarts") < 0 {
		return usagef("--steps and --restarts must not be negative (0 = the attack's default)")
	}
	if adv := c.String("adv"); adv != "none" {
		// --adv is also --attack, the flag buildAttacks reads.
		list, err := buildAttacks(c)
		if err != nil {
			return err
		}
		if len(list) != 1 {
			return usagef("--adv takes one attack, got %d", len(list))
		}
		o.Attack = list[0]
	}
	if o.Robust, err = loadModel(c, o.RobustPath); err != nil {
		return err
	}
	if o.Finetuned, err = loadModel(c, o.FinetunedPath); err != nil {
		return err
	}
	b, err := semirobust.NewBound(o, newHeader(c))
	if err != nil {
		return usageOf(err)
	}
	d, err := loadData(c)
	if err != nil {
		return err
	}
	err = b.Run(c.Context, d, c.String("json"), w, errw)
	var stop *semirobust.StoppedError
	if errors.As(err, &stop) {
		return interrupted(stop.Err, stop.Done, "run the command again (bound has no resume)")
	}
	return err
}
