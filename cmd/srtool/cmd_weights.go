package main

import (
	"fmt"
	"io"
	"sort"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/report"
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
	m, err := onnxio.Read(path)
	if err != nil {
		return err
	}
	ck, err := checkpoint.Load(c.String("from"))
	if err != nil {
		return err
	}
	opt := checkpoint.ImportOptions{AllowMissing: c.Bool("allow-missing"), UnexpectedPatterns: c.StringSlice("allow-unexpected")}
	if err := opt.CheckPatterns(); err != nil {
		return usagef("--allow-unexpected: %v", err)
	}
	rep, err := checkpoint.Import(m, ck.Tensors, opt)
	if err != nil {
		return fmt.Errorf("import %s into %s: %w", c.String("from"), path, err)
	}
	if err := onnxio.Write(c.String("o"), m); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: loaded %d tensors from %s", c.String("o"), len(rep.Loaded), c.String("from"))
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
	printIgnored(w, c.String("from"), ck)
	ignored := ck.Ignored
	if ignored == nil {
		ignored = []checkpoint.Ignored{}
	}
	return report.WriteJSON(c.String("json"), weightsImportReport{Header: newHeader(c), Report: rep, StateDict: ck.Path, Ignored: ignored})
}

// weightsImportReport is the --json of weights import: checkpoint.Import's
// report, where the state_dict was found in the file ("" at its top) and
// every entry of the file that was not loaded.
type weightsImportReport struct {
	report.Header
	*checkpoint.Report
	StateDict string               `json:"state_dict,omitempty"`
	Ignored   []checkpoint.Ignored `json:"ignored"`
}

// printIgnored lists the entries of the checkpoint file that are not part
// of its state_dict, one per line; BatchNorm's num_batches_tracked
// counters (which no ONNX model holds) are counted on one line.
func printIgnored(w io.Writer, from string, ck *checkpoint.Checkpoint) {
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

func runWeightsExport(c *cli.Context, path string, w io.Writer) error {
	m, err := onnxio.Read(path)
	if err != nil {
		return err
	}
	ts, err := checkpoint.Export(m)
	if err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	if err := checkpoint.WriteSafetensors(c.String("o"), ts, map[string]string{"format": "pt", "source": path}); err != nil {
		return err
	}
	names := make([]string, 0, len(ts))
	var total int64
	for k, t := range ts {
		names = append(names, k)
		total += t.NumElements()
	}
	sort.Strings(names)
	fmt.Fprintf(w, "%s: %d tensors, %d values, keyed by PyTorch names (load with safetensors.torch.load_file + model.load_state_dict)\n", c.String("o"), len(ts), total)
	return report.WriteJSON(c.String("json"), struct {
		report.Header
		Model   string   `json:"model"`
		Output  string   `json:"output"`
		Tensors []string `json:"tensors"`
		Values  int64    `json:"values"`
	}{newHeader(c), path, c.String("o"), names, total})
}

// exportSafetensors writes a model's parameters keyed by PyTorch names
// (without the --mean/--std normalisation srtool prepended).
func exportSafetensors(m *onnxio.Model, path, source string) error {
	ts, err := checkpoint.Export(analyzer.StripNormalization(m))
	if err != nil {
		return err
	}
	return checkpoint.WriteSafetensors(path, ts, map[string]string{"format": "pt", "source": source})
}

// writeModel writes a trained model without the --mean/--std normalisation
// srtool prepended, so it takes the same inputs as the model it came from.
func writeModel(path string, m *onnxio.Model) error {
	return onnxio.Write(path, analyzer.StripNormalization(m))
}
