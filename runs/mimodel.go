package runs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"text/tabwriter"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/plotting"
	"github.com/semirobust/srtool/report"
	"github.com/semirobust/srtool/semirobust"
)

// MIModelReport is the JSON document of `srtool mi MODEL`. A shard holds
// the pairs of its unit range (sharding.lo..hi of sharding.total pairs);
// an interrupted run holds no pairs and says complete: false.
type MIModelReport struct {
	report.Header
	Model     string               `json:"model"`
	Data      string               `json:"data"`
	Inputs    string               `json:"inputs"` // clean, adversarial file, or attack name
	N         int                  `json:"n"`
	Estimator string               `json:"estimator"`
	Options   estimators.Estimator `json:"options"`
	Units     string               `json:"units"`
	PerClass  bool                 `json:"per_class"`
	Reduced   bool                 `json:"channel_mean"`
	// BNExport says which activations ρ taps (PRESERVE: conv outputs, as
	// the paper; BN-folded: conv+BN outputs).
	BNExport   string            `json:"bn_export"`
	Pairs      []semirobust.Pair `json:"pairs"`
	MergedFrom []string          `json:"merged_from,omitempty"`
}

// MIModelOptions are MIModel's settings.
type MIModelOptions struct {
	Model  string        // the model's path, for the report
	Header report.Header // the report's header (fingerprint and sharding set)
	// Rho says how to estimate (its Units restrict a shard to its pairs);
	// Units names the estimate's units in the report.
	Rho   semirobust.RhoOptions
	Units string
	// Pairs are the weight-layer pairs (1-based) of the whole run;
	// Analysis is m's (analyzer.Analyze).
	Pairs    [][2]int
	Analysis *analyzer.Analysis
	// Adv, when set, holds adversarial inputs (.npy, the data's shape) to
	// use instead of the clean data; else Attack, when set, attacks the
	// data first (AttackProgress sees its progress; may be nil).
	Adv            string
	Attack         attacks.Attack
	AttackProgress func(done, total int)
	// Plot is a PNG to draw (a heat map over layers when Matrix, else a
	// curve over the pairs); JSON the report ("" = none of either).
	Plot   string
	Matrix bool
	JSON   string
	Log    io.Writer // warnings; nil for none
}

// MIModel measures the dependence (the paper's ρ) between the outputs of
// the weight-layer pairs of m on d, prints the table on w, draws the plot
// and writes the report. Interrupted, it writes a report with complete:
// false and no pairs.
func MIModel(ctx context.Context, m *onnxio.Model, d *dataset.Dataset, o MIModelOptions, w io.Writer) (*MIModelReport, error) {
	x, inputs := d.X, "clean"
	if p := o.Adv; p != "" {
		a, err := npy.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if a.Len() != len(d.X) {
			return nil, fmt.Errorf("--adv %s has %d values; the data has %d (shape %v)", p, a.Len(), len(d.X), []int{d.Len(), d.C, d.H, d.W})
		}
		x, inputs = a.Float32(), p
		if !a.IsFloat() {
			for i := range x {
				x[i] /= 255
			}
		}
	} else if o.Attack != nil {
		clf, err := diffmodel.NewClassifier(m, o.Rho.Engine)
		if err != nil {
			return nil, err
		}
		r, err := attacks.AdversarialAccuracy(ctx, clf, d.X, d.Y, o.Attack, o.Rho.Batch, o.AttackProgress)
		clf.Close()
		if err != nil {
			return nil, err
		}
		x, inputs = r.Adv, o.Attack.Name()
		fmt.Fprintf(w, "inputs: %s adversarial examples (accuracy on them %.2f%%)\n", o.Attack.Name(), r.Accuracy)
	}
	bn := semirobust.BNExportOf(o.Analysis)
	est := o.Rho.Estimator
	rep := &MIModelReport{Header: o.Header, Model: o.Model, Data: d.Name, Inputs: inputs, N: d.Len(), Estimator: est.Name(), Options: est, Units: o.Units,
		PerClass: o.Rho.PerClass, Reduced: o.Rho.ChannelMean, BNExport: bn.Describe(), Pairs: []semirobust.Pair{}}
	rhos, err := semirobust.MeasureRhos(ctx, m, x, d.Y, []int{d.C, d.H, d.W}, o.Pairs, o.Rho)
	if err != nil {
		if !report.IsCancel(err) {
			return nil, err
		}
		rep.MarkIncomplete(err)
		fmt.Fprintln(w, "ρ: not finished")
		if werr := report.WriteJSON(o.JSON, rep); werr != nil {
			return rep, werr
		}
		done := "the layer activations or estimates were not finished; no ρ reported"
		if o.JSON != "" {
			done += "; " + o.JSON + " says complete: false"
		}
		return rep, report.Interrupt(err, done, "run the command again (mi keeps no resume state; --shard splits the pairs into smaller runs)")
	}
	rep.Pairs = rhos
	fmt.Fprintln(w, bn.Describe())
	if warn := bn.Warning(); warn != "" && o.Log != nil {
		fmt.Fprintf(o.Log, "warning: %s\n", warn)
	}
	rep.WriteTable(w)
	if o.Plot != "" {
		if err := rep.Plot(o.Plot, o.Matrix, len(o.Analysis.Layers)); err != nil {
			return rep, err
		}
	}
	return rep, report.WriteJSON(o.JSON, rep)
}

// WriteTable prints the pairs of a ρ report.
func (rep *MIModelReport) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintf(tw, "PAIR\tRELATION\tDIMS\t%s (%s)", rep.Estimator, rep.Units)
	perms := len(rep.Pairs) > 0 && rep.Pairs[0].NullMean != nil
	if perms {
		fmt.Fprintf(tw, "\tNULL MEAN ± STD\tCORRECTED")
	}
	fmt.Fprintln(tw)
	for _, r := range rep.Pairs {
		fmt.Fprintf(tw, "%d:%d\t%s\t%d → %d\t%.4f", r.Parent, r.Child, r.Relation, r.ParentDim, r.ChildDim, r.Value)
		if r.NullMean != nil {
			fmt.Fprintf(tw, "\t%.4f ± %.4f\t%.4f", *r.NullMean, *r.NullStd, *r.Corrected)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// Plot draws a ρ report to the PNG p: a heat map over the layers
// (matrix) or a curve over the pairs.
func (rep *MIModelReport) Plot(p string, matrix bool, layers int) error {
	est, units, rhos, inputs := rep.Estimator, rep.Units, rep.Pairs, rep.Inputs
	if matrix {
		n := layers
		v := make([]float64, n*n)
		for i := range v {
			v[i] = math.NaN()
		}
		for _, r := range rhos {
			v[(r.Parent-1)*n+(r.Child-1)] = r.Value
		}
		return plotting.WriteHeatMap(p, fmt.Sprintf("%s between weight layers", est), units, n, v)
	}
	s := plotting.Series{Name: est}
	var ss []plotting.Series
	cs := plotting.Series{Name: "corrected (permutation null)"}
	var ticks []string
	for i, r := range rhos {
		s.X, s.Y = append(s.X, float64(i)), append(s.Y, r.Value)
		if r.Corrected != nil {
			cs.X, cs.Y = append(cs.X, float64(i)), append(cs.Y, *r.Corrected)
		}
		ticks = append(ticks, fmt.Sprintf("%d:%d", r.Parent, r.Child))
	}
	ss = append(ss, s)
	if len(cs.X) > 0 {
		ss = append(ss, cs)
	}
	return plotting.WriteLinePlot(p, fmt.Sprintf("%s between weight layers (%s inputs)", est, inputs), "weight-layer pair (parent:child)", units, ss, ticks...)
}

// MergeMI puts the mi shards' layer pairs together in pair order
// (pieces checked and in shard order); everything else is shard 0's (the
// fingerprint made sure the shards agree on it). It prints the table on w,
// draws plot when set, and writes the merged report to out.
func MergeMI(out string, reps []report.Piece, plot string, w io.Writer) error {
	var doc map[string]json.RawMessage
	var table MIModelReport // for the console and the plot
	for i, r := range reps {
		var p struct {
			Pairs     []semirobust.Pair `json:"pairs"`
			Estimator string            `json:"estimator"`
			Units     string            `json:"units"`
			Inputs    string            `json:"inputs"`
		}
		if err := json.Unmarshal(r.Raw, &p); err != nil {
			return fmt.Errorf("%s: %w", r.Path, err)
		}
		if want := r.Header.Sharding.Hi - r.Header.Sharding.Lo; len(p.Pairs) != want {
			return fmt.Errorf("%s (shard %s) holds %d layer pairs; want %d", r.Path, r.Header.Sharding.Shard, len(p.Pairs), want)
		}
		if i == 0 {
			if err := json.Unmarshal(r.Raw, &doc); err != nil {
				return fmt.Errorf("%s: %w", r.Path, err)
			}
			table.Estimator, table.Units, table.Inputs = p.Estimator, p.Units, p.Inputs
		}
		table.Pairs = append(table.Pairs, p.Pairs...)
	}
	if err := report.SetHeader(doc, report.MergedHeader(reps), report.Paths(reps)); err != nil {
		return err
	}
	pairs, err := json.Marshal(table.Pairs)
	if err != nil {
		return err
	}
	doc["pairs"] = pairs
	table.WriteTable(w)
	if plot != "" {
		layers := 0
		for _, r := range table.Pairs {
			layers = max(layers, r.Child)
		}
		matrix := reps[0].Header.Run.Flags["pairs"] == "matrix"
		if err := table.Plot(plot, matrix, layers); err != nil {
			return err
		}
	}
	return report.WriteJSON(out, doc)
}
