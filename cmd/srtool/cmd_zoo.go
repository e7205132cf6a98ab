package main

import (
	"io"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/runs"
	"github.com/semirobust/srtool/zoo"
)

func zooCommand() *cli.Command {
	return &cli.Command{
		Name:  "zoo",
		Usage: "RobustBench's CIFAR-10/100 models that srtool rebuilds exactly: list them, import a downloaded checkpoint by ID",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "the table: ID, threat model, architecture, input normalisation, RobustBench's clean and robust accuracy",
				Flags: append(commonFlags(),
					&cli.StringFlag{Name: "dataset", Usage: "only `cifar10` or cifar100"},
					&cli.StringFlag{Name: "threat", Usage: "only `Linf`, L2 or corruptions"},
					&cli.StringFlag{Name: "arch", Usage: "only models of this srtool `ARCH` (e.g. wrn-34-10)"},
					&cli.BoolFlag{Name: "excluded", Usage: "list the RobustBench CIFAR models srtool does not rebuild, with the reason"},
				),
				Action: func(c *cli.Context) error {
					if c.NArg() != 0 {
						return usagef("zoo list takes no arguments")
					}
					return runZooList(c, c.App.Writer)
				},
			},
			{
				Name:      "import",
				Usage:     "build the architecture of a zoo model and load its RobustBench checkpoint into it (strictly); the ONNX model takes pixels in [0,1]",
				ArgsUsage: "ID",
				Flags: append(commonFlags(),
					&cli.StringFlag{Name: "from", Required: true, Usage: "the RobustBench checkpoint `FILE` (.pt/.pth/.pt.tar as downloaded, or .safetensors)"},
					&cli.StringFlag{Name: "o", Aliases: []string{"out"}, Required: true, Usage: "output `MODEL.onnx`"},
					&cli.IntFlag{Name: "width", Usage: "build at base width `W` instead of RobustBench's (16 for WideResNets, 64 for ResNets); only for shrunken checkpoints such as srtool's test fixtures"},
				),
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usagef("zoo import needs exactly one ID argument (see `srtool zoo list`)")
					}
					if c.Int("width") < 0 {
						return usagef("--width must not be negative (0 = RobustBench's width)")
					}
					return runZooImport(c, c.Args().First(), c.App.Writer)
				},
			},
		},
	}
}

func runZooList(c *cli.Context, w io.Writer) error {
	t, err := zoo.Load()
	if err != nil {
		return err
	}
	o := runs.ZooListOptions{Header: newHeader(c), Dataset: c.String("dataset"), Threat: c.String("threat"), Arch: c.String("arch"),
		Excluded: c.Bool("excluded"), JSON: c.String("json")}
	if err := o.Check(t); err != nil {
		return usageOf(err)
	}
	_, err = runs.ZooList(t, o, w)
	return err
}

func runZooImport(c *cli.Context, id string, w io.Writer) error {
	_, err := runs.ZooImport(id, runs.ZooImportOptions{Header: newHeader(c), From: c.String("from"), Out: c.String("o"), JSON: c.String("json"), Width: c.Int("width")}, w)
	return err
}
