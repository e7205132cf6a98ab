package main

import (
	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/runs"
)

func layersCommand() *cli.Command {
	return &cli.Command{
		Name:      "layers",
		Usage:     "list the weight layers (Conv/Gemm/MatMul) and the cuts between them",
		ArgsUsage: "MODEL.onnx",
		Flags:     commonFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("layers needs exactly one MODEL argument")
			}
			_, err := runs.Layers(c.Context, runs.LayersOptions{Model: c.Args().First(), JSON: c.String("json"), Header: newHeader(c)}, c.App.Writer)
			return err
		},
	}
}
