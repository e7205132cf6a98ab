package runs

import (
	"fmt"
	"io"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/arch"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/report"
)

// InitReport is the JSON document of `srtool init`.
type InitReport struct {
	report.Header
	Model  string      `json:"model"`
	Arch   string      `json:"arch"`
	Config arch.Config `json:"config"`
	Layers int         `json:"layers"`
	Params int64       `json:"params"`
	MACs   int64       `json:"macs"`
}

// InitOptions are Init's settings.
type InitOptions struct {
	Header report.Header // the report's header
	Arch   string        // an arch.Names() name or wrn-D-K
	Config arch.Config
	Out    string // the model to write
	JSON   string // the report ("" = none)
}

// Init writes the architecture o.Arch, freshly initialised as PyTorch does,
// to o.Out, a line on w and the report.
func Init(o InitOptions, w io.Writer) (*InitReport, error) {
	m, err := arch.Build(o.Arch, o.Config)
	if err != nil {
		return nil, err
	}
	an, err := analyzer.Analyze(m)
	if err != nil {
		return nil, err
	}
	if err := onnxio.Write(o.Out, m); err != nil {
		return nil, err
	}
	params, _, macs := an.Totals()
	in := o.Config.In
	fmt.Fprintf(w, "%s: %s, input %dx%dx%d, %d classes, %d weight layers, %d parameters, %d MACs per sample\n",
		o.Out, o.Arch, in[0], in[1], in[2], o.Config.Classes, len(an.Layers), params, macs)
	rep := &InitReport{Header: o.Header, Model: o.Out, Arch: o.Arch, Config: o.Config, Layers: len(an.Layers), Params: params, MACs: macs}
	return rep, report.WriteJSON(o.JSON, rep)
}
