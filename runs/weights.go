package runs

import (
	"fmt"
	"io"
	"sort"

	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/report"
)

// WeightsImportReport is the JSON document of `srtool weights import`:
// checkpoint.Import's report, where the state_dict was found in the file
// ("" at its top) and every entry of the file that was not loaded.
type WeightsImportReport struct {
	report.Header
	*checkpoint.Report
	StateDict string               `json:"state_dict,omitempty"`
	Ignored   []checkpoint.Ignored `json:"ignored"`
}

// WeightsOptions are the settings of WeightsImport and WeightsExport.
type WeightsOptions struct {
	Header report.Header // the report's header
	// From is the checkpoint to import (.pt, .pth or .safetensors); Out the
	// model (import) or safetensors file (export) to write; JSON the report
	// ("" = none).
	From, Out, JSON string
	Import          checkpoint.ImportOptions
}

// WeightsImport loads the checkpoint o.From into the initializers of the
// model at path by PyTorch name, writes the model to o.Out, what was loaded
// and ignored on w, and the report.
func WeightsImport(path string, o WeightsOptions, w io.Writer) (*WeightsImportReport, error) {
	m, err := onnxio.Read(path)
	if err != nil {
		return nil, err
	}
	ck, err := checkpoint.Load(o.From)
	if err != nil {
		return nil, err
	}
	rep, err := checkpoint.Import(m, ck.Tensors, o.Import)
	if err != nil {
		return nil, fmt.Errorf("import %s into %s: %w", o.From, path, err)
	}
	if err := onnxio.Write(o.Out, m); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "%s: loaded %d tensors from %s", o.Out, len(rep.Loaded), o.From)
	if len(rep.Untied) > 0 {
		fmt.Fprintf(w, ", untied %d exporter-shared names", len(rep.Untied))
	}
	if len(rep.Missing) > 0 {
		fmt.Fprintf(w, ", kept %d model values the checkpoint lacks", len(rep.Missing))
	}
	fmt.Fprintln(w)
	if len(rep.Unexpected) > 0 {
		fmt.Fprintf(w, "ignored %d checkpoint tensors the model lacks (--allow-unexpected):\n", len(rep.Unexpected))
		for _, n := range rep.Unexpected {
			fmt.Fprintf(w, "  %s\n", n)
		}
	}
	PrintIgnored(w, o.From, ck)
	ignored := ck.Ignored
	if ignored == nil {
		ignored = []checkpoint.Ignored{}
	}
	r := &WeightsImportReport{Header: o.Header, Report: rep, StateDict: ck.Path, Ignored: ignored}
	return r, report.WriteJSON(o.JSON, r)
}

// PrintIgnored lists the entries of the checkpoint file that are not part
// of its state_dict, one per line; BatchNorm's num_batches_tracked
// counters (which no ONNX model holds) are counted on one line.
func PrintIgnored(w io.Writer, from string, ck *checkpoint.Checkpoint) {
	var counters int
	var other []checkpoint.Ignored
	for _, ig := range ck.Ignored {
		if ig.Reason == checkpoint.CounterReason {
			counters++
		} else {
			other = append(other, ig)
		}
	}
	if len(other) > 0 {
		fmt.Fprintf(w, "ignored %d entries of %s that are not state_dict tensors:\n", len(other), from)
		for _, ig := range other {
			fmt.Fprintf(w, "  %s\n", ig)
		}
	}
	if counters > 0 {
		fmt.Fprintf(w, "ignored %d BatchNorm num_batches_tracked counters (no ONNX counterpart)\n", counters)
	}
}

// WeightsExportReport is the JSON document of `srtool weights export`.
type WeightsExportReport struct {
	report.Header
	Model   string   `json:"model"`
	Output  string   `json:"output"`
	Tensors []string `json:"tensors"`
	Values  int64    `json:"values"`
}

// WeightsExport writes the parameters of the model at path to the
// safetensors file o.Out keyed by PyTorch names, a line on w and the report.
func WeightsExport(path string, o WeightsOptions, w io.Writer) (*WeightsExportReport, error) {
	m, err := onnxio.Read(path)
	if err != nil {
		return nil, err
	}
	ts, err := checkpoint.Export(m)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", path, err)
	}
	if err := checkpoint.WriteSafetensors(o.Out, ts, map[string]string{"format": "pt", "source": path}); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ts))
	var total int64
	for k, t := range ts {
		names = append(names, k)
		total += t.NumElements()
	}
	sort.Strings(names)
	fmt.Fprintf(w, "%s: %d tensors, %d values, keyed by PyTorch names (load with safetensors.torch.load_file + model.load_state_dict)\n", o.Out, len(ts), total)
	r := &WeightsExportReport{Header: o.Header, Model: path, Output: o.Out, Tensors: names, Values: total}
	return r, report.WriteJSON(o.JSON, r)
}
