package runs

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/report"
)

// LayersOptions are Layers' settings.
type LayersOptions struct {
	Model  string        // the model's path
	JSON   string        // the report ("" = none)
	Header report.Header // the JSON report's header
}

// LayersReport is the JSON document of `srtool layers`.
type LayersReport struct {
	report.Header
	Model        string           `json:"model"`
	Opset        int64            `json:"opset"`
	Layers       []analyzer.Layer `json:"layers"`
	Params       int64            `json:"params"`
	WeightParams int64            `json:"weight_layer_params"`
	MACs         int64            `json:"macs"`
	Cuts         []LayersCut      `json:"cuts"`
}

// LayersCut is the cut after one weight layer.
type LayersCut struct {
	After        int      `json:"after_layer"`
	Tensors      []string `json:"tensors"`
	SingleTensor bool     `json:"single_tensor"`
}

// Layers lists the weight layers of the model o.Model and the cuts between
// them on w (a table) and in the report.
func Layers(ctx context.Context, o LayersOptions, w io.Writer) (*LayersReport, error) {
	m, an, err := readAnalyzed(o.Model)
	if err != nil {
		return nil, err
	}
	rep := &LayersReport{Header: o.Header, Model: o.Model, Opset: m.Opset(), Layers: an.Layers}
	rep.Params, rep.WeightParams, rep.MACs = an.Totals()
	for a := 1; a < len(an.Layers); a++ {
		cut, err := an.CutAfter(a)
		if err != nil {
			return nil, fmt.Errorf("%s: cut after layer %d: %w", o.Model, a, err)
		}
		cr := LayersCut{After: a, SingleTensor: len(cut.Tensors) == 1}
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
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", l.Index, l.Name, l.Op, strings.Join(l.Params, ","), l.Output, FormatShape(l.Shape), l.ParamCount, l.MACs, cut)
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "%d weight layers, %d parameters (%d in weight layers), %d MACs per sample, opset %d\n", len(an.Layers), rep.Params, rep.WeightParams, rep.MACs, rep.Opset)
	return rep, report.WriteJSON(o.JSON, rep)
}

// FormatShape writes a tensor shape with N for the dynamic batch.
func FormatShape(s []int64) string {
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
