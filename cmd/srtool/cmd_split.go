package main

import (
	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/runs"
)

func splitCommand() *cli.Command {
	return &cli.Command{
		Name:      "split",
		Usage:     "split a model into head (layers 1..A) and tail; writes DIR/head.onnx and DIR/tail.onnx",
		ArgsUsage: "MODEL.onnx",
		Flags: append(commonFlags(),
			&cli.IntFlag{Name: "at", Usage: "last weight layer of the head (1..L-1)"},
			&cli.IntFlag{Name: "fb-layers", Usage: "number of weight layers in the tail (the paper's num_fb_layers)"},
			&cli.StringSliceFlag{Name: "at-tensor", Usage: "cut at these tensors (repeat the flag)"},
			&cli.StringFlag{Name: "o", Aliases: []string{"out"}, Usage: "output `DIR`", Required: true},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("split needs exactly one MODEL argument")
			}
			o := runs.SplitOptions{Model: c.Args().First(), At: c.Int("at"), FbLayers: c.Int("fb-layers"),
				Tensors: c.StringSlice("at-tensor"), OutDir: c.String("o"), JSON: c.String("json"), Header: newHeader(c)}
			n := 0
			for _, set := range []bool{c.IsSet("at"), c.IsSet("fb-layers"), len(o.Tensors) > 0} {
				if set {
					n++
				}
			}
			if n != 1 {
				return usagef("split needs exactly one of --at, --fb-layers or --at-tensor")
			}
			if c.IsSet("fb-layers") && o.FbLayers < 1 {
				return usagef("--fb-layers must be at least 1")
			}
			_, err := runs.Split(c.Context, o, c.App.Writer)
			return err
		},
	}
}
