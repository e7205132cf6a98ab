package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/report"
)

type layersOptions struct {
	Model  string
	JSON   string
	Header report.Header // the JSON report's header
}

// layersReport is the JSON document of `srtool layers`.
type layersReport struct {
	report.Header
	Model        string            `json:"model"`
	Opset        int64             `json:"opset"`
	Layers       []analyzer.Layer  `json:"layers"`
	Params       int64             `json:"params"`
	WeightParams int64             `json:"weight_layer_params"`
	MACs         int64             `json:"macs"`
	Cuts         []layersCutReport `json:"cuts"`
}

type layersCutReport struct {
	After        int      `json:"after_layer"`
	Tensors      []string `json:"tensors"`
	SingleTensor bool     `json:"single_tensor"`
}

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
			return runLayers(c.Context, layersOptions{Model: c.Args().First(), JSON: c.String("json"), Header: newHeader(c)}, c.App.Writer)
		},
	}
}

func runLayers(ctx context.Context, o layersOptions, w io.Writer) error {
	m, err := onnxio.Read(o.Model)
	if err != nil {
		return err
	}
	an, err := analyzer.Analyze(m)
	if err != nil {
		return fmt.Errorf("%s: %w", o.Model, err)
	}
	rep := layersReport{Header: o.Header, Model: o.Model, Opset: m.Opset(), Layers: an.Layers}
	rep.Params, rep.WeightParams, rep.MACs = an.Totals()
	for a := 1; a < len(an.Layers); a++ {
		cut, err := an.CutAfter(a)
		if err != nil {
			return fmt.Errorf("%s: cut after layer %d: %w", o.Model, a, err)
		}
		cr := layersCutReport{After: a, SingleTensor: len(cut.Tensors) == 1}
		for _, t := range cut.Tensors {
			cr.Tensors = append(cr.Tensors, t.Name)
		}
		rep.Cuts = append(rep.Cuts, cr)
	}
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tNODE\tOP\tPARAMS\tOUTPUT\tSHAPE\tPARAM COUNT\tMACS\tCUT AFTER")
	for i, l := range an.Layers {
		cut := "-"
		if i < len(rep.Cuts) {
			if rep.Cuts[i].SingleTensor {
				cut = "single"
			} else {
				cut = fmt.Sprintf("%d tensors", len(rep.Cuts[i].Tensors))
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", l.Index, l.Name, l.Op, strings.Join(l.Params, ","), l.Output, fmtShape(l.Shape), l.ParamCount, l.MACs, cut)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d weight layers, %d parameters (%d in weight layers), %d MACs per sample, opset %d\n", len(an.Layers), rep.Params, rep.WeightParams, rep.MACs, rep.Opset)
	return report.WriteJSON(o.JSON, rep)
}

func fmtShape(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		if d < 0 {
			parts[i] = "N"
		} else {
			parts[i] = fmt.Sprint(d)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}
