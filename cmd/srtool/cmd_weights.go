package main

import (
	"io"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/runs"
)

func weightsCommand() *cli.Command {
	return &cli.Command{
		Name:  "weights",
		Usage: "move weights between ONNX initializers and PyTorch checkpoints (.pt/.pth/.safetensors), by PyTorch name",
		Subcommands: []*cli.Command{
			{
				Name:      "import",
				Usage:     "load a PyTorch checkpoint into a model's initializers",
				ArgsUsage: "MODEL.onnx",
				Flags: append(commonFlags(),
					&cli.StringFlag{Name: "from", Required: true, Usage: "checkpoint `FILE` (.pt, .pth or .safetensors)"},
					&cli.StringFlag{Name: "o", Aliases: []string{"out"}, Required: true, Usage: "output `MODEL.onnx`"},
					&cli.BoolFlag{Name: "allow-missing", Usage: "keep the model's values for names the checkpoint lacks"},
					&cli.StringSliceFlag{Name: "allow-unexpected", Usage: "ignore checkpoint names the model lacks that match `PATTERN`: a glob (sub_block1.*) or a name prefix (sub_block1.); repeat for several; every ignored name is listed"},
				),
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usagef("weights import needs exactly one MODEL argument")
					}
					return runWeightsImport(c, c.Args().First(), c.App.Writer)
				},
			},
			{
				Name:      "export",
				Usage:     "write a model's parameters to a safetensors file keyed by PyTorch names",
				ArgsUsage: "MODEL.onnx",
				Flags: append(commonFlags(),
					&cli.StringFlag{Name: "o", Aliases: []string{"out"}, Required: true, Usage: "output `FILE.safetensors`"},
				),
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usagef("weights export needs exactly one MODEL argument")
					}
					return runWeightsExport(c, c.Args().First(), c.App.Writer)
				},
			},
		},
	}
}

func runWeightsImport(c *cli.Context, path string, w io.Writer) error {
	o := runs.WeightsOptions{Header: newHeader(c), From: c.String("from"), Out: c.String("o"), JSON: c.String("json"),
		Import: checkpoint.ImportOptions{AllowMissing: c.Bool("allow-missing"), UnexpectedPatterns: c.StringSlice("allow-unexpected")}}
	if err := o.Import.CheckPatterns(); err != nil {
		return usagef("--allow-unexpected: %v", err)
	}
	_, err := runs.WeightsImport(path, o, w)
	return err
}

func runWeightsExport(c *cli.Context, path string, w io.Writer) error {
	_, err := runs.WeightsExport(path, runs.WeightsOptions{Header: newHeader(c), Out: c.String("o"), JSON: c.String("json")}, w)
	return err
}
