package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/progress"
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
	est, units, err := runs.EstimatorSpec{Name: c.String("estimator"), Options: c.String("options"), OptionsGiven: c.IsSet("options"),
		Seed: uint64(c.Int64("seed")), Nats: c.Bool("nats"), Permutations: c.Int("permutations"), Bootstrap: c.Int("bootstrap")}.New()
	return est, units, usageOf(err)
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
	pairs, err := semirobust.SelectPairs(c.String("pairs"), c.Int("fb-layers"), len(an.Layers))
	if err != nil {
		return usagef("%v", err)
	}
	d, err := loadData(c)
	if err != nil {
		return err
	}
	if err := runs.CheckModelData(m, path, d); err != nil {
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
	o := runs.MIModelOptions{Model: path, Header: newHeader(c), Units: units, Pairs: pairs, Analysis: an, Adv: c.String("adv"),
		Plot: c.String("plot"), Matrix: c.String("pairs") == "matrix", JSON: c.String("json"), Log: errw,
		Rho: semirobust.RhoOptions{Estimator: est, PerClass: c.Bool("per-class"), ChannelMean: c.Bool("channel-mean"), Permutations: c.Int("permutations"),
			Seed: uint64(c.Int64("seed")), Batch: c.Int("batch"), Engine: eng, Progress: progress.Stages(errw)}}
	o.Header.Fingerprint = sr.fingerprint
	if c.String("shard") != "" {
		lo, hi := o.Header.SetShard(sr.shard, len(pairs))
		if lo == hi {
			return usagef("--shard %s of %d layer pairs is empty; use at most %d shards", sr.shard, len(pairs), len(pairs))
		}
		o.Rho.Units = &[2]int{lo, hi}
	}
	if o.Adv == "" && c.Bool("attack-first") {
		list, err := buildAttacks(c)
		if err != nil {
			return err
		}
		if len(list) != 1 {
			return usagef("--attack-first takes one attack, got %d", len(list))
		}
		o.Attack, o.AttackProgress = list[0], progress.New(errw, list[0].Name()).Update
	}
	_, err = runs.MIModel(c.Context, m, d, o, w)
	return err
}
