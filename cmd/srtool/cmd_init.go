package main

import (
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/arch"
	"github.com/semirobust/srtool/runs"
)

func initCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "write a standard architecture as ONNX with PyTorch parameter names and PyTorch's default initialisation",
		Flags: append(commonFlags(),
			&cli.StringFlag{Name: "arch", Required: true, Usage: strings.Join(arch.Names(), ", ") + " or wrn-D-K"},
			&cli.StringFlag{Name: "in", Value: "3,32,32", Usage: "input C,H,W"},
			&cli.IntFlag{Name: "classes", Value: 10, Usage: "number of classes"},
			&cli.IntFlag{Name: "width", Usage: "base width (0 = the architecture's default)"},
			&cli.StringFlag{Name: "o", Aliases: []string{"out"}, Required: true, Usage: "output `MODEL.onnx`"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("init takes no positional arguments")
			}
			return runInit(c, c.App.Writer)
		},
	}
}

func runInit(c *cli.Context, w io.Writer) error {
	in, err := runs.ParseInputShape(c.String("in"))
	if err != nil {
		return usageOf(err)
	}
	cfg := arch.Config{In: in, Classes: c.Int("classes"), Width: c.Int("width"), Seed: uint64(c.Int64("seed"))}
	_, err = runs.Init(runs.InitOptions{Header: newHeader(c), Arch: c.String("arch"), Config: cfg, Out: c.String("o"), JSON: c.String("json")}, w)
	return err
}
