package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/report"
	"github.com/semirobust/srtool/zoo"
)

func zooCommand() *cli.Command {
	return &cli.Command{
		Name:  "zoo",
		Usage: "RobustBench's CIFAR-10/100 models that srtool rebuilds exactly: list them, import a downloaded checkpoint by ID",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "the table: ID, threat model, architecture, input normalisation, RobustBench's clean and robust accuracy",
				Flags: append(commonFlags(),
					&cli.StringFlag{Name: "dataset", Usage: "only `cifar10` or cifar100"},
					&cli.StringFlag{Name: "threat", Usage: "only `Linf`, L2 or corruptions"},
					&cli.StringFlag{Name: "arch", Usage: "only models of this srtool `ARCH` (e.g. wrn-34-10)"},
					&cli.BoolFlag{Name: "excluded", Usage: "list the RobustBench CIFAR models srtool does not rebuild, with the reason"},
				),
				Action: func(c *cli.Context) error {
					if c.NArg() != 0 {
						return usagef("zoo list takes no arguments")
					}
					return runZooList(c, c.App.Writer)
				},
			},
			{
				Name:      "import",
				Usage:     "build the architecture of a zoo model and load its RobustBench checkpoint into it (strictly); the ONNX model takes pixels in [0,1]",
				ArgsUsage: "ID",
				Flags: append(commonFlags(),
					&cli.StringFlag{Name: "from", Required: true, Usage: "the RobustBench checkpoint `FILE` (.pt/.pth/.pt.tar as downloaded, or .safetensors)"},
					&cli.StringFlag{Name: "o", Aliases: []string{"out"}, Required: true, Usage: "output `MODEL.onnx`"},
					&cli.IntFlag{Name: "width", Usage: "build at base width `W` instead of RobustBench's (16 for WideResNets, 64 for ResNets); only for shrunken checkpoints such as srtool's test fixtures"},
				),
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usagef("zoo import needs exactly one ID argument (see `srtool zoo list`)")
					}
					if c.Int("width") < 0 {
						return usagef("--width must not be negative (0 = RobustBench's width)")
					}
					return runZooImport(c, c.Args().First(), c.App.Writer)
				},
			},
		},
	}
}

type zooListReport struct {
	report.Header
	Source   zoo.Source     `json:"source"`
	Models   []zoo.Entry    `json:"models"`
	Excluded []zoo.Excluded `json:"excluded,omitempty"`
}

func runZooList(c *cli.Context, w io.Writer) error {
	t, err := zoo.Load()
	if err != nil {
		return err
	}
	ds, threat, arch := c.String("dataset"), c.String("threat"), c.String("arch")
	for _, f := range []struct{ name, v string }{{"dataset", ds}, {"threat", threat}, {"arch", arch}} {
		if f.v == "" {
			continue
		}
		ok := false
		for _, e := range t.Models {
			ok = ok || f.v == map[string]string{"dataset": e.Dataset, "threat": e.ThreatModel, "arch": e.Arch}[f.name]
		}
		if !ok {
			return usagef("--%s %q matches no model in the table", f.name, f.v)
		}
	}
	rep := zooListReport{Header: newHeader(c), Source: t.Source, Models: []zoo.Entry{}}
	for _, e := range t.Models {
		if (ds == "" || e.Dataset == ds) && (threat == "" || e.ThreatModel == threat) && (arch == "" || e.Arch == arch) {
			rep.Models = append(rep.Models, e)
		}
	}
	src := fmt.Sprintf("RobustBench %s (version %s, %s)", shortCommit(t.Source.Commit), t.Source.Version, t.Source.CommitDate)
	if c.Bool("excluded") {
		rep.Models = nil
		rep.Excluded = t.Excluded
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tWHY NOT")
		for _, x := range t.Excluded {
			fmt.Fprintf(tw, "%s\t%s\n", x.ID, x.Reason)
		}
		tw.Flush()
		fmt.Fprintf(w, "%d RobustBench CIFAR models in %s have an architecture srtool does not build; export them to ONNX from PyTorch (README, \"Using a RobustBench model\").\n", len(t.Excluded), src)
		return report.WriteJSON(c.String("json"), rep)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTHREAT\tARCH\tCLASSES\tINPUT NORMALISATION\tCLEAN %\tROBUST %")
	for _, e := range rep.Models {
		a := e.Arch
		if e.SubBlock1 {
			a += " +sub_block1"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", e.ID, threatText(e), a, e.Classes, normText(e.Normalization), pct(e.CleanAcc), robustText(e))
	}
	tw.Flush()
	fmt.Fprintf(w, "%d of %d models from %s; accuracies as RobustBench lists them (robust: AutoAttack at the threat's ε, or the common-corruptions accuracy).\n",
		len(rep.Models), len(t.Models), src)
	fmt.Fprintf(w, "srtool does not download: fetch a checkpoint as RobustBench does, then `srtool zoo import ID --from FILE.pt -o MODEL.onnx`. %d more RobustBench CIFAR models need architectures srtool does not build (--excluded).\n", len(t.Excluded))
	return report.WriteJSON(c.String("json"), rep)
}

func shortCommit(s string) string { return s[:min(len(s), 12)] }

func threatText(e zoo.Entry) string {
	if e.Eps != nil && e.ThreatModel != "corruptions" {
		return e.ThreatModel + " " + *e.Eps
	}
	return e.ThreatModel
}

func pct(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *p)
}

func robustText(e zoo.Entry) string {
	s := pct(e.RobustAcc())
	if e.ThreatModel == "corruptions" {
		return s + " (corruptions)"
	}
	if e.Unreliable {
		s += " (unreliable)"
	}
	return s
}

func normText(n *zoo.Normalization) string {
	if n == nil {
		return "none"
	}
	if !n.Buffers {
		return n.Forward
	}
	return fmt.Sprintf("mu %s, sigma %s", floats(n.Mean, 4), floats(n.Std, 4))
}

// floats prints values with at most digits decimals, or (digits < 0) as
// the shortest decimal that reads back as the same float32.
func floats(v []float32, digits int) string {
	parts := make([]string, len(v))
	for i, x := range v {
		if digits < 0 {
			parts[i] = strconv.FormatFloat(float64(x), 'g', -1, 32)
			continue
		}
		parts[i] = strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.*f", digits, x), "0"), ".")
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

type zooImportReport struct {
	report.Header
	Entry      zoo.Entry `json:"entry"` // the table's row, RobustBench's accuracies included
	Source     string    `json:"robustbench_commit"`
	Checkpoint string    `json:"checkpoint"`
	// StateDictPath is where in the checkpoint the state_dict was found
	// ("" = the object itself, "state_dict", …); Ignored lists the
	// checkpoint's other entries (epoch, optimizer, BN counters).
	StateDictPath string               `json:"state_dict_path"`
	Ignored       []checkpoint.Ignored `json:"ignored"`
	Output        string               `json:"output"`
	*zoo.Report
	// Differences lists why a refused checkpoint does not fit (complete false).
	Differences *zooDifferences `json:"differences,omitempty"`
	// SHA256 holds the digests of the checkpoint read and the model written;
	// the report is written last.
	SHA256 map[string]string `json:"sha256,omitempty"`
}

type zooDifferences struct {
	Missing    []string `json:"missing"`
	Unexpected []string `json:"unexpected"`
	Shape      []string `json:"shape"`
	Notes      []string `json:"notes,omitempty"`
	Looks      string   `json:"checkpoint_looks_like,omitempty"`
}

func runZooImport(c *cli.Context, id string, w io.Writer) error {
	e, err := zoo.Lookup(id)
	if err != nil {
		return err
	}
	t, err := zoo.Load()
	if err != nil {
		return err
	}
	from, out := c.String("from"), c.String("o")
	rep := zooImportReport{Header: newHeader(c), Entry: e, Source: t.Source.Commit, Checkpoint: from, Output: out}
	ck, err := checkpoint.Load(from)
	if err != nil {
		if e.Nested != "" {
			return fmt.Errorf("%w (RobustBench keeps %s's state_dict under %q; if that is the problem, re-save it first: python3 -c \"import torch; torch.save(torch.load('%s', map_location='cpu')['%s'], 'state_dict.pt')\")",
				err, e.Name, e.Nested, from, e.Nested)
		}
		return err
	}
	rep.StateDictPath, rep.Ignored = ck.Path, ck.Ignored
	if rep.Ignored == nil {
		rep.Ignored = []checkpoint.Ignored{}
	}
	m, ir, err := zoo.Import(e, ck.Tensors, zoo.Options{Width: c.Int("width")})
	var mis *zoo.MismatchError
	if errors.As(err, &mis) {
		rep.MarkIncomplete(err)
		rep.Output = ""
		rep.Differences = &zooDifferences{Missing: nonNil(mis.Missing), Unexpected: nonNil(mis.Unexpected), Shape: nonNil(mis.Shape), Notes: mis.Notes, Looks: mis.Looks}
		if jerr := report.WriteJSON(c.String("json"), rep); jerr != nil {
			return errors.Join(err, jerr)
		}
		return fmt.Errorf("%s: %w", from, err)
	}
	if err != nil {
		return err
	}
	rep.Report = ir
	if err := onnxio.Write(out, m); err != nil {
		return err
	}
	if rep.SHA256, err = report.FileDigests(from, out); err != nil {
		return err
	}

	fmt.Fprintf(w, "%s: %s, %d classes, base width %d", e.ID, e.Arch, ir.Config.Classes, ir.Config.Width)
	if c.Int("width") > 0 {
		fmt.Fprintf(w, " (--width; RobustBench's model is wider)")
	}
	fmt.Fprintf(w, "\n  RobustBench: %s\n", e.Definition)
	fmt.Fprintf(w, "loaded %d tensors from %s", len(ir.Loaded), from)
	if ck.Path != "" {
		fmt.Fprintf(w, " (the state_dict under %q)", ck.Path)
	}
	if ir.Stripped > 0 {
		fmt.Fprintf(w, " (%d without their \"model.\" prefix)", ir.Stripped)
	}
	if len(ck.Ignored) > 0 {
		fmt.Fprintf(w, "; %d other entries ignored (listed in --json)", len(ck.Ignored))
	}
	fmt.Fprintln(w)
	if len(ir.Dropped) > 0 {
		fmt.Fprintf(w, "dropped %d sub_block1.* tensors, which RobustBench's WideResNet(sub_block1=True) creates but its forward never uses:\n", len(ir.Dropped))
		wrapList(w, ir.Dropped, "  ", 100)
	}
	switch n := ir.Normalization; {
	case n == nil:
		fmt.Fprintln(w, "input normalisation: none (RobustBench's model takes [0,1] pixels as they are)")
	case n.Source == zoo.FromCheckpoint:
		fmt.Fprintf(w, "input normalisation: (x - mu) / sigma in the graph, mu %s, sigma %s, from the checkpoint's mu/sigma\n", floats(n.Mean, -1), floats(n.Std, -1))
		if n.DiffersFromTable() {
			fmt.Fprintf(w, "  the checkpoint's values differ from RobustBench's class definition (mu %s, sigma %s); the checkpoint's are used\n", floats(n.TableMean, -1), floats(n.TableStd, -1))
		}
	default:
		fmt.Fprintf(w, "input normalisation: %s in the graph, mu %s, sigma %s, from RobustBench's class definition (the checkpoint carries no mu/sigma)\n", n.Forward, floats(n.Mean, -1), floats(n.Std, -1))
	}
	fmt.Fprintf(w, "wrote %s: input \"input\" takes pixels in [0,1] (NCHW 3×32×32); later commands need no --mean/--std\n", out)
	fmt.Fprintf(w, "RobustBench lists clean %s %%, %s (RobustBench %s)\n", pct(e.CleanAcc), robustName(e), shortCommit(t.Source.Commit))
	return report.WriteJSON(c.String("json"), rep)
}

func robustName(e zoo.Entry) string {
	if e.ThreatModel == "corruptions" {
		return "common corruptions " + pct(e.CorruptionsAcc) + " %"
	}
	return "AutoAttack " + pct(e.AutoAttackAcc) + " % at " + threatText(e)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// wrapList prints names comma-separated in lines of at most width bytes.
func wrapList(w io.Writer, names []string, indent string, width int) {
	line := indent
	for i, n := range names {
		s := n
		if i < len(names)-1 {
			s += ","
		}
		if len(line) > len(indent) && len(line)+1+len(s) > width {
			fmt.Fprintln(w, line)
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += s
	}
	fmt.Fprintln(w, line)
}
