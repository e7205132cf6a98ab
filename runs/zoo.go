package runs

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/report"
	"github.com/semirobust/srtool/zoo"
)

// ZooListReport is the JSON document of `srtool zoo list`.
type ZooListReport struct {
	report.Header
	Source   zoo.Source     `json:"source"`
	Models   []zoo.Entry    `json:"models"`
	Excluded []zoo.Excluded `json:"excluded,omitempty"`
}

// ZooListOptions select the rows of `srtool zoo list` ("" = all).
type ZooListOptions struct {
	Header                report.Header // the report's header
	Dataset, Threat, Arch string
	Excluded              bool   // list the models srtool does not rebuild instead
	JSON                  string // the report ("" = none)
}

// ZooList prints the rows of the table t that o selects on w and writes
// the report.
func ZooList(t *zoo.Table, o ZooListOptions, w io.Writer) (*ZooListReport, error) {
	ds, threat, arch := o.Dataset, o.Threat, o.Arch
	rep := &ZooListReport{Header: o.Header, Source: t.Source, Models: []zoo.Entry{}}
	for _, e := range t.Models {
		if (ds == "" || e.Dataset == ds) && (threat == "" || e.ThreatModel == threat) && (arch == "" || e.Arch == arch) {
			rep.Models = append(rep.Models, e)
		}
	}
	src := fmt.Sprintf("RobustBench %s (version %s, %s)", shortCommit(t.Source.Commit), t.Source.Version, t.Source.CommitDate)
	if o.Excluded {
		rep.Models = nil
		rep.Excluded = t.Excluded
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tWHY NOT")
		for _, x := range t.Excluded {
			fmt.Fprintf(tw, "%s\t%s\n", x.ID, x.Reason)
		}
		tw.Flush()
		fmt.Fprintf(w, "%d RobustBench CIFAR models in %s have an architecture srtool does not build; export them to ONNX from PyTorch (README, \"Using a RobustBench model\").\n", len(t.Excluded), src)
		return rep, report.WriteJSON(o.JSON, rep)
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
	return rep, report.WriteJSON(o.JSON, rep)
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

// ZooImportReport is the JSON document of `srtool zoo import`.
type ZooImportReport struct {
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
	Differences *ZooDifferences `json:"differences,omitempty"`
	// SHA256 holds the digests of the checkpoint read and the model written;
	// the report is written last.
	SHA256 map[string]string `json:"sha256,omitempty"`
}

// ZooDifferences say why a checkpoint does not fit its architecture.
type ZooDifferences struct {
	Missing    []string `json:"missing"`
	Unexpected []string `json:"unexpected"`
	Shape      []string `json:"shape"`
	Notes      []string `json:"notes,omitempty"`
	Looks      string   `json:"checkpoint_looks_like,omitempty"`
}

// ZooImportOptions are ZooImport's settings.
type ZooImportOptions struct {
	Header report.Header // the report's header
	// From is the RobustBench checkpoint, Out the ONNX model to write, JSON
	// the report ("" = none).
	From, Out, JSON string
	Width           int // base width to build at (0 = RobustBench's)
}

// ZooImport builds the architecture of the zoo model id, loads the
// checkpoint o.From into it strictly, writes the model to o.Out, what was
// loaded on w, and the report (with the differences when the checkpoint
// does not fit).
func ZooImport(id string, o ZooImportOptions, w io.Writer) (*ZooImportReport, error) {
	e, err := zoo.Lookup(id)
	if err != nil {
		return nil, err
	}
	t, err := zoo.Load()
	if err != nil {
		return nil, err
	}
	from, out := o.From, o.Out
	rep := &ZooImportReport{Header: o.Header, Entry: e, Source: t.Source.Commit, Checkpoint: from, Output: out}
	ck, err := checkpoint.Load(from)
	if err != nil {
		if e.Nested != "" {
			return nil, fmt.Errorf("%w (RobustBench keeps %s's state_dict under %q; if that is the problem, re-save it first: python3 -c \"import torch; torch.save(torch.load('%s', map_location='cpu')['%s'], 'state_dict.pt')\")",
				err, e.Name, e.Nested, from, e.Nested)
		}
		return nil, err
	}
	rep.StateDictPath, rep.Ignored = ck.Path, ck.Ignored
	if rep.Ignored == nil {
		rep.Ignored = []checkpoint.Ignored{}
	}
	m, ir, err := zoo.Import(e, ck.Tensors, zoo.Options{Width: o.Width})
	var mis *zoo.MismatchError
	if errors.As(err, &mis) {
		rep.MarkIncomplete(err)
		rep.Output = ""
		rep.Differences = &ZooDifferences{Missing: nonNil(mis.Missing), Unexpected: nonNil(mis.Unexpected), Shape: nonNil(mis.Shape), Notes: mis.Notes, Looks: mis.Looks}
		if jerr := report.WriteJSON(o.JSON, rep); jerr != nil {
			return rep, errors.Join(err, jerr)
		}
		return rep, fmt.Errorf("%s: %w", from, err)
	}
	if err != nil {
		return nil, err
	}
	rep.Report = ir
	if err := onnxio.Write(out, m); err != nil {
		return nil, err
	}
	if rep.SHA256, err = report.FileDigests(from, out); err != nil {
		return nil, err
	}

	fmt.Fprintf(w, "%s: %s, %d classes, base width %d", e.ID, e.Arch, ir.Config.Classes, ir.Config.Width)
	if o.Width > 0 {
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
	return rep, report.WriteJSON(o.JSON, rep)
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
