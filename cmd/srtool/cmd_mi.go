package main

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/plotting"
	"github.com/semirobust/srtool/report"
	"github.com/semirobust/srtool/runs"
	"github.com/semirobust/srtool/semirobust"
)

func miCommand() *cli.Command {
	return &cli.Command{
		Name:      "mi",
		Usage:     "dependence between layers (the paper's ρ) or between two arrays: EDGE, KSG, Gaussian, CKA, HSIC, connectivity",
		ArgsUsage: "[MODEL.onnx]",
		Flags: append(append(append(append(commonFlags(), dataFlags()...), attackFlags()...), shardFlags()...),
			&cli.StringFlag{Name: "estimator", Value: "edge", Usage: "edge, ksg, gauss, cka, hsic, nocco or corr"},
			&cli.StringFlag{Name: "options", Usage: "estimator options as a JSON object, e.g. '{\"RNG\":\"reference\",\"Deterministic\":true}'"},
			&cli.BoolFlag{Name: "nats", Usage: "report information in nats instead of bits"},
			&cli.IntFlag{Name: "permutations", Usage: "permutation-null repetitions (0 = none); reports null mean/std and the corrected value"},
			&cli.IntFlag{Name: "bootstrap", Usage: "bootstrap resamples for a 95% interval (array mode)"},
			&cli.StringFlag{Name: "x", Usage: "array mode: first variable `A.npy` (rows = samples)"},
			&cli.StringFlag{Name: "y", Usage: "array mode: second variable `B.npy`"},
			&cli.StringFlag{Name: "labels", Usage: "class labels `L.npy` for per-class weighting (array mode)"},
			&cli.IntFlag{Name: "fb-layers", Value: 4, Usage: "model mode: pairs (j−1, j) for the last K weight layers (the paper's ρ_n … ρ_{n−K+1})"},
			&cli.StringFlag{Name: "pairs", Usage: "model mode: explicit pairs i:j,…, all consecutive pairs (all), or every pair i < j (matrix, plotted as a heat map)"},
			&cli.StringFlag{Name: "adv", Usage: "model mode: use these adversarial inputs `X.npy` instead of the clean data"},
			&cli.BoolFlag{Name: "attack-first", Usage: "model mode: attack the data with --attack/--eps first (the paper's ρ on attacked test data)"},
			&cli.BoolFlag{Name: "per-class", Value: true, Usage: "model mode: Σ_c p(c)·estimate on class c (the paper's ρ); --per-class=false pools all samples"},
			&cli.BoolFlag{Name: "channel-mean", Usage: "model mode: reduce each layer to its per-channel means"},
			&cli.StringFlag{Name: "plot", Usage: "model mode: write a PNG of the values per layer pair"},
		),
		Action: func(c *cli.Context) error {
			switch {
			case c.NArg() == 0 && c.String("x") != "":
				return runMIArrays(c, c.App.Writer)
			case c.NArg() == 1 && c.String("x") == "":
				return runMIModel(c, c.Args().First(), c.App.Writer, c.App.ErrWriter)
			default:
				return usagef("mi needs either MODEL with --data, or --x A.npy --y B.npy")
			}
		},
	}
}

// newEstimator builds --estimator with --options, --seed and --nats, and
// checks the repetition counts --permutations and --bootstrap.
func newEstimator(c *cli.Context) (estimators.Estimator, string, error) {
	for _, flag := range []string{"permutations", "bootstrap"} {
		if n := c.Int(flag); n < 0 || n == 1 || n > estimators.MaxReps {
			return nil, "", usagef("--%s %d: want 0 (none) or 2 to %d", flag, n, estimators.MaxReps)
		}
	}
	est, err := estimators.New(c.String("estimator"), []byte(c.String("options")))
	if err != nil {
		return nil, "", usagef("--options: %v", err)
	}
	units := estimators.Bits
	if c.Bool("nats") {
		units = estimators.Nats
	}
	seed := uint64(c.Int64("seed"))
	unitName := units.String()
	switch e := est.(type) {
	case estimators.EDGE:
		if !c.IsSet("options") || e.Seed == 0 {
			e.Seed = seed
		}
		e.Units = units
		est = e
	case estimators.KSG:
		if !c.IsSet("options") || e.Seed == 0 {
			e.Seed = seed
		}
		e.Units = units
		est = e
	case estimators.Gaussian:
		e.Units = units
		est = e
	case estimators.CKA:
		if !c.IsSet("options") || e.Seed == 0 {
			e.Seed = seed
		}
		est, unitName = e, "unitless"
	case estimators.HSIC:
		if !c.IsSet("options") || e.Seed == 0 {
			e.Seed = seed
		}
		est, unitName = e, "unitless"
	default:
		unitName = "unitless"
	}
	return est, unitName, nil
}

func runMIArrays(c *cli.Context, w io.Writer) error {
	if c.String("y") == "" {
		return usagef("array mode needs --x and --y")
	}
	est, units, err := newEstimator(c)
	if err != nil {
		return err
	}
	if c.String("shard") != "" {
		return usagef("--shard splits model mode's layer pairs; array mode is one estimate")
	}
	_, err = runs.MIArrays(c.Context, runs.MIArrayOptions{Header: newHeader(c), Estimator: est, Units: units, X: c.String("x"), Y: c.String("y"),
		Labels: c.String("labels"), Permutations: c.Int("permutations"), Bootstrap: c.Int("bootstrap"), Seed: uint64(c.Int64("seed")), JSON: c.String("json")}, w)
	return err
}

// miModelReport is the JSON document of `srtool mi MODEL`. A shard holds
// the pairs of its unit range (sharding.lo..hi of sharding.total pairs);
// an interrupted run holds no pairs and says complete: false.
type miModelReport struct {
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

func runMIModel(c *cli.Context, path string, w, errw io.Writer) error {
	eng, err := engineOptions(c)
	if err != nil {
		return err
	}
	est, units, err := newEstimator(c)
	if err != nil {
		return err
	}
	m, err := loadModel(c, path)
	if err != nil {
		return err
	}
	an, err := analyzer.Analyze(m)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var pairs [][2]int
	if s := c.String("pairs"); s != "" {
		pairs, err = semirobust.ParsePairs(s, len(an.Layers))
	} else {
		pairs, err = semirobust.TailPairs(len(an.Layers), c.Int("fb-layers"))
	}
	if err != nil {
		return usagef("%v", err)
	}
	d, err := loadData(c)
	if err != nil {
		return err
	}
	sample, classes, err := modelSignature(m, path)
	if err != nil {
		return err
	}
	if err := checkInputShape(path, sample, d); err != nil {
		return err
	}
	if err := checkLabels(d, classes, path); err != nil {
		return err
	}
	files := []string{path}
	if p := c.String("adv"); p != "" {
		files = append(files, p)
	}
	sr, skip, err := startShard(c, w, files, d)
	if err != nil || skip {
		return err
	}
	sh, fp := sr.shard, sr.fingerprint
	var sharding *report.Sharding
	if c.String("shard") != "" {
		lo, hi := sh.Range(len(pairs))
		if lo == hi {
			return usagef("--shard %s of %d layer pairs is empty; use at most %d shards", sh, len(pairs), len(pairs))
		}
		sharding = &report.Sharding{Shard: sh, Lo: lo, Hi: hi, Total: len(pairs)}
	}
	x, inputs := d.X, "clean"
	if p := c.String("adv"); p != "" {
		a, err := npy.ReadFile(p)
		if err != nil {
			return err
		}
		if a.Len() != len(d.X) {
			return fmt.Errorf("--adv %s has %d values; the data has %d (shape %v)", p, a.Len(), len(d.X), []int{d.Len(), d.C, d.H, d.W})
		}
		x, inputs = a.Float32(), p
		if !a.IsFloat() {
			for i := range x {
				x[i] /= 255
			}
		}
	} else if c.Bool("attack-first") {
		list, err := buildAttacks(c)
		if err != nil {
			return err
		}
		if len(list) != 1 {
			return usagef("--attack-first takes one attack, got %d", len(list))
		}
		clf, err := ort.NewClassifier(m, eng)
		if err != nil {
			return err
		}
		r, err := attacks.AdversarialAccuracy(c.Context, clf, d.X, d.Y, list[0], c.Int("batch"), newProgress(errw, list[0].Name()).update)
		clf.Close()
		if err != nil {
			return err
		}
		x, inputs = r.Adv, list[0].Name()
		fmt.Fprintf(w, "inputs: %s adversarial examples (accuracy on them %.2f%%)\n", list[0].Name(), r.Accuracy)
	}
	o := semirobust.RhoOptions{Estimator: est, PerClass: c.Bool("per-class"), ChannelMean: c.Bool("channel-mean"), Permutations: c.Int("permutations"),
		Seed: uint64(c.Int64("seed")), Batch: c.Int("batch"), Engine: eng, Progress: progressOn(errw)}
	if sharding != nil {
		o.Units = &[2]int{sharding.Lo, sharding.Hi}
	}
	bn := semirobust.BNExportOf(an)
	rep := miModelReport{Header: newHeader(c), Model: path, Data: d.Name, Inputs: inputs, N: d.Len(), Estimator: est.Name(), Options: est, Units: units,
		PerClass: o.PerClass, Reduced: o.ChannelMean, BNExport: bn.Describe(), Pairs: []semirobust.Pair{}}
	rep.Fingerprint, rep.Sharding = fp, sharding
	rhos, err := semirobust.MeasureRhos(c.Context, m, x, d.Y, []int{d.C, d.H, d.W}, pairs, o)
	if err != nil {
		if !isCancel(err) {
			return err
		}
		rep.MarkIncomplete(err)
		fmt.Fprintln(w, "ρ: not finished")
		if werr := report.WriteJSON(c.String("json"), rep); werr != nil {
			return werr
		}
		done := "the layer activations or estimates were not finished; no ρ reported"
		if p := c.String("json"); p != "" {
			done += "; " + p + " says complete: false"
		}
		return interrupted(err, done, "run the command again (mi keeps no resume state; --shard splits the pairs into smaller runs)")
	}
	rep.Pairs = rhos
	fmt.Fprintln(w, bn.Describe())
	if warn := bn.Warning(); warn != "" {
		fmt.Fprintf(errw, "warning: %s\n", warn)
	}
	printRhoTable(w, rep)
	if p := c.String("plot"); p != "" {
		if err := plotRhos(p, rep, c.String("pairs") == "matrix", len(an.Layers)); err != nil {
			return err
		}
	}
	return report.WriteJSON(c.String("json"), rep)
}

// printRhoTable prints the pairs of a ρ report.
func printRhoTable(w io.Writer, rep miModelReport) {
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

// plotRhos draws a ρ report: a heat map over layers (matrix) or a curve
// over the pairs.
func plotRhos(p string, rep miModelReport, matrix bool, layers int) error {
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
	{
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
}
