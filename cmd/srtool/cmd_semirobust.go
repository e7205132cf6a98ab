package main

import (
	"errors"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/internal/number"
	"github.com/semirobust/srtool/progress"
	"github.com/semirobust/srtool/report"
	"github.com/semirobust/srtool/semirobust"
)

func semirobustCommand() *cli.Command {
	return &cli.Command{
		Name:  "semirobust",
		Usage: "the paper's experiment: Acc, Acc*, Acc_sr, Acc~ and ρ for each attack and K, as Markdown, JSON and plots",
		Flags: append(append(append(append(append(commonFlags(), trainDataFlags()...), attackParamFlags()...), trainFlags(10, "pgd")...), semirobustShardFlags()...),
			&cli.StringFlag{Name: "normal", Required: true, Usage: "normally trained model f (`NORMAL.onnx`)"},
			&cli.StringFlag{Name: "robust", Required: true, Usage: "adversarially trained model f* (`ROBUST.onnx`)"},
			&cli.StringFlag{Name: "fb-layers", Value: "4", Usage: "K values (weight layers in the tail): comma-separated integers and ranges, e.g. 1-12 or 2,4,6-8"},
			&cli.StringFlag{Name: "dependence", Usage: "also measure, per K and trial, each of these (comma-separated: edge, ksg, gauss, cka, hsic, nocco, corr, sensitivity) of the normal, fine-tuned and robust tails under f*'s head, on the ρ data clean and attacked; report their rank correlations (Spearman, Kendall τ_b) with Acc~ − Acc* and Acc_sr, and plots"},
			&cli.BoolFlag{Name: "untrained-fb", Usage: "also measure, per attack and K, the zero-shot accuracy of f*'s head with a freshly initialised tail (PyTorch's default initialisation, seed --seed)"},
			&cli.BoolFlag{Name: "cost", Usage: "report what each K costs: trainable parameters, wall time per epoch and to convergence, peak memory (report.json rows' cost, a table and cost_K.png)"},
			&cli.BoolFlag{Name: "reference-adv-training", Usage: "with --cost: also adversarially train all of f (from its weights) on the same data, epochs and --adv, as the reference cost (not with --shard)"},
			&cli.StringFlag{Name: "attacks", Value: "pgd", Usage: "evaluation attacks A, comma-separated: none, fgsm, pgd, cw, autoattack, … (with --eps/--norm/--steps/--alpha/--restarts)"},
			&cli.StringFlag{Name: "head-bn", Value: "eval", Usage: "frozen head's BatchNorm during fine-tuning: eval or train"},
			&cli.Float64Flag{Name: "tolerance", Value: 0, Usage: "the paper's k, ≥ 0: stop at Acc* − k"},
			&cli.IntFlag{Name: "trials", Value: 1, Usage: "trials per setting, at least 1 (the paper: 10); trial t draws from seed --seed + t − 1"},
			&cli.StringFlag{Name: "estimator", Value: "edge", Usage: "estimator for ρ"},
			&cli.IntFlag{Name: "permutations", Value: 0, Usage: "permutation-null repetitions for ρ (0 = none)"},
			&cli.IntFlag{Name: "rho-n", Value: 1000, Usage: "attacked test samples for ρ (and for --linear); every class needs the estimator's minimum (edge: 20), checked before training"},
			&cli.BoolFlag{Name: "linear", Usage: "also run Algorithm S1: accuracy of the least-squares linear predictor from f*'s head-layer outputs"},
			&cli.StringFlag{Name: "o", Aliases: []string{"out"}, Required: true, Usage: "run `DIR` for report.md, report.json, plots and models, and the work units' results in DIR/units (an unfinished run writes a partial report, marked)"},
			&cli.BoolFlag{Name: "rho-every-epoch", Usage: "also measure ρ of the tail's layer pairs after every epoch of every trial (the authors' trial rhos; --estimator on the --rho-n data attacked with the row's attack): each epoch's metrics, a table of ρ_n per epoch and at each stopping threshold k (report.json rows' rho_at_threshold) and rho_epoch.png"},
			&cli.BoolFlag{Name: "bound", Usage: "also compute, per K and trial, the weight-difference bound of the trial's best model ω~ against f* = ω* on the --rho-n data (clean), as `srtool bound --fb-layers K` does (tolerance 1e-4, at most 100 products, seed --seed): λmax of the tail's and of the whole Hessian, ‖Δω_b‖², the bound ½ λmax ‖Δω_b‖², ½ ΔωᵀHΔω and the loss gap (report.json rows' bound_per_trial, a table and bound_K.png)"},
			featureCacheFlag(),
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("semirobust takes no positional arguments")
			}
			return runSemirobust(c, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// semirobustShardFlags are shardFlags as semirobust reads them: over work
// units, and --skip-done also takes finished units over.
func semirobustShardFlags() []cli.Flag {
	fs := shardFlags()
	for i, f := range fs {
		switch f.Names()[0] {
		case "shard":
			fs[i] = &cli.StringFlag{Name: "shard", Usage: "run piece `I/N` of the work units (per attack: Acc and Acc*, then one unit per K and trial; N contiguous ranges, a shard with no unit writes an empty shard report) and write the shard report (--json, else DIR/shard-I-of-N.json) instead of the report; or auto: Slurm array task / Kubernetes Indexed Job (auto/N); combine the shard reports with `srtool merge`"}
		case "skip-done":
			fs[i] = &cli.BoolFlag{Name: "skip-done", Usage: "exit at once when the report (--json, else DIR's) already holds this run's complete report of this shard; otherwise take over the units already finished in DIR/units (array-task retries)"}
		}
	}
	return fs
}

func runSemirobust(c *cli.Context, w, errw io.Writer) error {
	start := time.Now()
	tc, err := readTrainingFlags(c)
	if err != nil {
		return err
	}
	tc.Options.Trials, tc.Options.Tolerance = c.Int("trials"), c.Float64("tolerance")
	estUnits := estimators.Bits
	if c.Bool("nats") {
		estUnits = estimators.Nats
	}
	eps, _ := number.Parse(c.String("eps"))
	o := semirobust.Options{NormalPath: c.String("normal"), RobustPath: c.String("robust"),
		TrainOffset: c.Int("offset"), RhoN: c.Int("rho-n"), HeadBN: finetune.BNMode(c.String("head-bn")),
		Finetune: tc.Options, Adv: tc.PGD, TRADES: tc.TRADES, Eps: eps, Norm: c.String("norm"), Engine: tc.Engine, Batch: c.Int("batch"),
		EstimatorUnits: estUnits, Permutations: c.Int("permutations"), Seed: uint64(c.Int64("seed")),
		Linear: c.Bool("linear"), Cost: c.Bool("cost"), UntrainedTail: c.Bool("untrained-fb"), ReferenceAdvTraining: c.Bool("reference-adv-training"),
		FeatureCacheMiB: c.Int("feature-cache-mb"), Dir: c.String("o"), JSON: c.String("json"),
		Sharded: c.String("shard") != "", Resume: c.Bool("resume"), SkipDone: c.Bool("skip-done"),
		Bound: c.Bool("bound"), RhoEveryEpoch: c.Bool("rho-every-epoch"), Header: newHeader(c), Start: start, Progress: progress.Stages(errw),
		EpochProgress: func() func(finetune.Progress) { return semirobust.EpochPrinter(w, errw) }}
	if err := o.Validate(); err != nil {
		return usageOf(err)
	}
	if c.IsSet("eval-attack") {
		return usagef("semirobust does not take --eval-attack (the evaluation attacks are --attacks)")
	}
	if o.Shard, err = resolveShard(c); err != nil {
		return err
	}
	if o.Ks, err = semirobust.ParseKList(c.String("fb-layers")); err != nil {
		return usagef("%v", err)
	}
	if o.Attacks, err = semirobust.ParseAttacks(c.String("attacks"), attackSpec(c)); err != nil {
		return usageOf(err)
	}
	if o.Estimator, o.Units, err = newEstimator(c); err != nil {
		return err
	}
	if o.Dependence, err = semirobust.ParseDependence(c.String("dependence")); err != nil {
		return usagef("%v", err)
	}
	if o.Normal, err = loadModel(c, o.NormalPath); err != nil {
		return err
	}
	if o.Robust, err = loadModel(c, o.RobustPath); err != nil {
		return err
	}
	if o.Train, err = trainData(c); err != nil {
		return err
	}
	if o.Test, err = evalData(c); err != nil {
		return err
	}
	_, err = semirobust.Run(c.Context, o, w, errw)
	var stop *semirobust.StoppedError
	if errors.As(err, &stop) && report.IsCancel(stop.Err) {
		return interrupted(stop.Err, stop.Done, semirobust.ResumeHint(c.String("checkpoint-dir")))
	}
	return usageOf(err)
}
