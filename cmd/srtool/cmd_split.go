package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/report"
)

type splitOptions struct {
	Model    string
	At       int
	FbLayers int
	Tensors  []string
	OutDir   string
	JSON     string
	Header   report.Header // the JSON report's header
}

type splitReport struct {
	report.Header
	Model    string               `json:"model"`
	Layers   int                  `json:"layers"`
	At       int                  `json:"at"`
	FbLayers int                  `json:"fb_layers"`
	Head     string               `json:"head"`
	Tail     string               `json:"tail"`
	Cut      []analyzer.CutTensor `json:"cut"`
	// SHA256 holds the digest of head.onnx and tail.onnx as written; the
	// report is written last, so a reader can tell a consistent set.
	SHA256 map[string]string `json:"sha256"`
}

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
			o := splitOptions{Model: c.Args().First(), At: c.Int("at"), FbLayers: c.Int("fb-layers"),
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
			return runSplit(c.Context, o, c.App.Writer)
		},
	}
}

func runSplit(ctx context.Context, o splitOptions, w io.Writer) error {
	m, err := onnxio.Read(o.Model)
	if err != nil {
		return err
	}
	an, err := analyzer.Analyze(m)
	if err != nil {
		return fmt.Errorf("%s: %w", o.Model, err)
	}
	var cut *analyzer.Cut
	switch {
	case len(o.Tensors) > 0:
		cut, err = an.CutAt(o.Tensors)
	case o.FbLayers != 0:
		cut, err = an.CutTail(o.FbLayers)
	default:
		cut, err = an.CutAfter(o.At)
	}
	if err != nil {
		return fmt.Errorf("split %s: %w", o.Model, err)
	}
	head, tail, err := an.Split(cut)
	if err != nil {
		return fmt.Errorf("split %s: %w", o.Model, err)
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return fmt.Errorf("split: %w", err)
	}
	hp, tp := filepath.Join(o.OutDir, "head.onnx"), filepath.Join(o.OutDir, "tail.onnx")
	if err := onnxio.Write(hp, head); err != nil {
		return err
	}
	if err := onnxio.Write(tp, tail); err != nil {
		os.Remove(hp)
		return err
	}
	rep := splitReport{Header: o.Header, Model: o.Model, Layers: len(an.Layers), At: cut.After, Head: hp, Tail: tp, Cut: cut.Tensors}
	if cut.After > 0 {
		rep.FbLayers = len(an.Layers) - cut.After
	}
	if rep.SHA256, err = report.FileDigests(hp, tp); err != nil {
		return err
	}
	fmt.Fprintf(w, "head: %s (layers 1..%d)\ntail: %s (%d layers)\ncut tensors:\n", hp, cut.After, tp, rep.FbLayers)
	for _, t := range cut.Tensors {
		fmt.Fprintf(w, "  %s %s\n", t.Name, fmtShape(t.Shape))
	}
	return report.WriteJSON(o.JSON, rep)
}
