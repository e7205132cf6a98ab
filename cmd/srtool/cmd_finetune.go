package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/report"
)

// semirobustSetup is a robust model whose tail was replaced by a normal
// model's, ready for Algorithm 1.
type semirobustSetup struct {
	Robust, Start *onnxio.Model
	Analysis      *analyzer.Analysis
	Cut           *analyzer.Cut
	Part          analyzer.Partition
	Layers        int
	FbLayers      int
	HeadBN        string
}

// newSemirobust builds (f*_a, f_b): the robust model with every tail
// parameter and BN buffer taken from the normal model, matched by PyTorch
// name (or, when the names differ, by position among parameters of equal
// shapes).
func newSemirobust(robust, normal *onnxio.Model, at, fbLayers int, headBN string) (*semirobustSetup, error) {
	an, err := analyzer.Analyze(robust)
	if err != nil {
		return nil, fmt.Errorf("robust model: %w", err)
	}
	nan, err := analyzer.Analyze(normal)
	if err != nil {
		return nil, fmt.Errorf("normal model: %w", err)
	}
	if len(an.Layers) != len(nan.Layers) {
		return nil, fmt.Errorf("the robust model has %d weight layers and the normal one %d: architectures do not match", len(an.Layers), len(nan.Layers))
	}
	for i := range an.Layers {
		a, b := an.Layers[i], nan.Layers[i]
		if a.Op != b.Op || a.ParamCount != b.ParamCount {
			return nil, fmt.Errorf("weight layer %d is %s with %d parameters in the robust model but %s with %d in the normal one: architectures do not match", i+1, a.Op, a.ParamCount, b.Op, b.ParamCount)
		}
	}
	var cut *analyzer.Cut
	if fbLayers > 0 {
		cut, err = an.CutTail(fbLayers)
	} else {
		cut, err = an.CutAfter(at)
	}
	if err != nil {
		return nil, err
	}
	part := an.Partition(cut)
	if len(part.TailParams) == 0 {
		return nil, fmt.Errorf("the split after layer %d leaves no trainable parameter in the tail", cut.After)
	}
	switch headBN {
	case "", "eval":
		headBN = "eval"
	case "train":
	default:
		return nil, usagef("--head-bn %q: want eval or train", headBN)
	}
	src, err := checkpoint.Export(normal)
	if err != nil {
		return nil, fmt.Errorf("normal model: %w", err)
	}
	dst, err := checkpoint.Export(robust)
	if err != nil {
		return nil, fmt.Errorf("robust model: %w", err)
	}
	names := append(append([]string(nil), part.TailParams...), part.TailStats...)
	tail := map[string]checkpoint.Tensor{}
	byName := true
	for _, n := range names {
		if _, ok := src[n]; !ok {
			byName = false
			break
		}
	}
	if byName {
		for _, n := range names {
			if fmt.Sprint(src[n].Shape) != fmt.Sprint(dst[n].Shape) {
				return nil, fmt.Errorf("tail parameter %s has shape %v in the normal model but %v in the robust one", n, src[n].Shape, dst[n].Shape)
			}
			tail[n] = src[n]
		}
	} else {
		// Names were folded or renamed: match by position in the parameter order.
		rn, nn := exportOrder(robust, dst), exportOrder(normal, src)
		if len(rn) != len(nn) {
			return nil, fmt.Errorf("the models have %d and %d parameter tensors and different names: architectures do not match", len(rn), len(nn))
		}
		pos := map[string]int{}
		for i, n := range rn {
			pos[n] = i
		}
		for _, n := range names {
			i, ok := pos[n]
			if !ok {
				return nil, fmt.Errorf("tail parameter %s not found in the robust model's parameters", n)
			}
			s := src[nn[i]]
			if fmt.Sprint(s.Shape) != fmt.Sprint(dst[n].Shape) {
				return nil, fmt.Errorf("matching by position: %s %v (robust) vs %s %v (normal): architectures do not match", n, dst[n].Shape, nn[i], s.Shape)
			}
			tail[n] = s
		}
	}
	start := robust.Clone()
	if _, err := checkpoint.Import(start, tail, checkpoint.ImportOptions{AllowMissing: true}); err != nil {
		return nil, err
	}
	return &semirobustSetup{Robust: robust, Start: start, Analysis: an, Cut: cut, Part: part, Layers: len(an.Layers), FbLayers: len(an.Layers) - cut.After, HeadBN: headBN}, nil
}

// exportOrder lists exported parameter names in initializer order.
func exportOrder(m *onnxio.Model, ts map[string]checkpoint.Tensor) []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range m.Graph().GetInitializer() {
		if _, ok := ts[t.GetName()]; ok && !seen[t.GetName()] {
			seen[t.GetName()] = true
			out = append(out, t.GetName())
		}
	}
	for _, n := range m.Graph().GetNode() {
		if n.GetOpType() == "Identity" && len(n.GetOutput()) == 1 {
			if _, ok := ts[n.GetOutput()[0]]; ok && !seen[n.GetOutput()[0]] {
				seen[n.GetOutput()[0]] = true
				out = append(out, n.GetOutput()[0])
			}
		}
	}
	return out
}

// finetuneRun is one Algorithm 1 run's inputs.
type finetuneRun struct {
	Setup      *semirobustSetup
	Train      *dataset.Dataset
	Test       *dataset.Dataset
	EvalAttack attacks.Attack
	Adv        *attacks.PGD
	TRADES     *ort.TRADES
	Options    finetune.Options
	Engine     ort.Options
	Batch      int
	Progress   func(finetune.Progress)
	// ErrW receives the progress bars of the accuracy measurements.
	ErrW io.Writer
	// AccStar and AccSR, if set, are the robust and the semirobust start
	// model's accuracies under EvalAttack on Test, already measured
	// (semirobust reuses Acc* across K; a checkpoint keeps both).
	AccStar, AccSR *float64
	// Target is the accuracy to reach; AutoTarget replaces it with Acc*.
	Target     float64
	AutoTarget bool
	// Identity is what the run's checkpoints record (finetune.Job.Identity).
	Identity []finetune.Setting
	// Checkpoint, if set, is resumed; the caller opened it.
	Checkpoint *finetune.Checkpoint
	// EpochMetrics, if set, adds per-epoch metrics (the trial rhos).
	EpochMetrics func(m *onnxio.Model) (finetune.Metrics, error)
	// FeatureCacheMiB bounds the frozen head's cached features for clean
	// fine-tuning (--feature-cache-mb); 0 turns the cache off.
	FeatureCacheMiB int
	// Note, if set, receives one-line remarks before training starts.
	Note func(string)
}

// Keys of finetune.Job.Measured: Algorithm 1's accuracies measured before
// fine-tuning, kept in checkpoints so that a resumed run reuses them.
const (
	measuredAccStar = "acc_star"
	measuredAccSR   = "acc_sr"
)

// finetuneOutcome is what runFinetuneJob measured. A number of work that
// did not finish is absent (nil), never 0: an unfinished run has no Acc~
// and Δ, only BestSoFar.
type finetuneOutcome struct {
	Complete bool     `json:"complete"`
	AccStar  *float64 `json:"acc_star,omitempty"` // robust model under the evaluation attack
	AccSR    *float64 `json:"acc_sr,omitempty"`   // semirobust model before fine-tuning
	// AccTilde is the best accuracy over the trials and Delta = Acc~ − Acc*,
	// both only when every trial finished.
	AccTilde *float64 `json:"acc_tilde,omitempty"`
	Delta    *float64 `json:"delta,omitempty"`
	// BestSoFar is the best accuracy an unfinished run reached.
	BestSoFar *bestSoFar `json:"best_so_far,omitempty"`
	Target    *float64   `json:"target,omitempty"`
	// ResumedFrom says where the checkpoint resumed left the run.
	ResumedFrom string           `json:"resumed_from,omitempty"`
	Result      *finetune.Result `json:"result,omitempty"`
	Seconds     float64          `json:"seconds"`
	// FeatureCache says whether the frozen head's features were computed
	// once (clean fine-tuning) or the head ran in every step, and why.
	FeatureCache string `json:"feature_cache,omitempty"`
	// Final is the model at the best epoch (so far, when not Complete).
	Final *onnxio.Model `json:"-"`
}

func f64(v float64) *float64 { return &v }

// runFinetuneJob measures Acc* and Acc_sr (unless given), then runs
// Algorithm 1 (trials of fine-tuning the tail with the head frozen,
// stopping at the target), or resumes it from r.Checkpoint. It returns what
// finished with any error.
func runFinetuneJob(ctx context.Context, r finetuneRun) (*finetuneOutcome, error) {
	s := r.Setup
	out := &finetuneOutcome{AccStar: r.AccStar, AccSR: r.AccSR}
	label := attackLabel(r.EvalAttack)
	if out.AccStar == nil {
		robustClf, err := ort.NewClassifier(s.Robust, r.Engine)
		if err != nil {
			return out, err
		}
		acc, err := accuracy(ctx, robustClf, r.Test, r.EvalAttack, r.Batch, progressTo(r.ErrW, "Acc* (robust model, "+label+")"))
		robustClf.Close()
		if err != nil {
			return out, err
		}
		out.AccStar = &acc
	}
	if out.AccSR == nil {
		startClf, err := ort.NewClassifier(s.Start, r.Engine)
		if err != nil {
			return out, err
		}
		acc, err := accuracy(ctx, startClf, r.Test, r.EvalAttack, r.Batch, progressTo(r.ErrW, "Acc_sr (semirobust start, "+label+")"))
		startClf.Close()
		if err != nil {
			return out, err
		}
		out.AccSR = &acc
	}
	out.Target = f64(r.Target)
	if r.AutoTarget {
		out.Target = f64(*out.AccStar)
	}
	fo, to := jobOptions(s, r.Options, r.TRADES, *out.Target)
	if r.Checkpoint != nil {
		if err := r.Checkpoint.Check(fo, r.Identity); err != nil {
			return out, fmt.Errorf("resume: %w", err)
		}
		out.ResumedFrom = resumedFrom(r.Checkpoint, fo.Epochs)
	}
	trainModel, train := s.Start, r.Train
	var source *dataset.Dataset
	if ok, why := featureCacheEligible(r); ok {
		hf, reason, err := cacheHeadFeatures(ctx, s, r.Train, r.Engine, r.Batch, int64(r.FeatureCacheMiB)<<20)
		if err != nil {
			return out, err
		}
		if hf != nil {
			trainModel, train, source = hf.Tail, hf.Train, r.Train
			out.FeatureCache = fmt.Sprintf("frozen head's features computed once: %d × %d floats (%.1f MiB) in %.1f s", hf.Train.Len(), hf.Train.C, hf.MiB, hf.Seconds)
		} else {
			out.FeatureCache = "head run every step: " + reason
		}
	} else {
		out.FeatureCache = "head run every step: " + why
	}
	if r.Note != nil {
		r.Note(out.FeatureCache)
		if out.ResumedFrom != "" {
			r.Note(fmt.Sprintf("resuming from %s: %s; Acc* %.2f%% and Acc_sr %.2f%% as measured before", r.Checkpoint.Path, out.ResumedFrom, *out.AccStar, *out.AccSR))
		}
	}
	trainer, trainable, state, err := ort.NewTrainer(trainModel, r.Engine, to)
	if err != nil {
		return out, err
	}
	defer trainer.Close()
	job := finetune.Job{Train: train, DataSource: source, Trainable: trainable, State: state, Stepper: trainer, Progress: r.Progress,
		Identity: r.Identity, Measured: map[string]float64{measuredAccStar: *out.AccStar, measuredAccSR: *out.AccSR}}
	closeParts, err := jobParts(&job, s.Start, r.Engine, r.Test, r.EvalAttack, r.Adv, r.Batch, r.ErrW)
	defer closeParts()
	if err != nil {
		return out, err
	}
	if r.EpochMetrics != nil {
		job.EpochMetrics = func(_ context.Context, trial, epoch int, tr, st finetune.Params) (finetune.Metrics, error) {
			m, err := withParams(s.Start, tr, st)
			if err != nil {
				return nil, err
			}
			return r.EpochMetrics(m)
		}
	}
	start := time.Now()
	res, err := runOrResume(ctx, r.Checkpoint, fo, job)
	out.Seconds = time.Since(start).Seconds()
	out.Result = res
	if res == nil {
		return out, err
	}
	out.Complete = res.Complete
	best := res.Best
	if res.Complete {
		out.AccTilde = f64(res.Best.Acc)
		out.Delta = f64(res.Best.Acc - *out.AccStar)
	} else {
		out.BestSoFar = bestSoFarOf(res)
		best = res.BestSoFar()
	}
	if best != nil {
		m, werr := withParams(s.Start, best.Trainable, best.State)
		if werr != nil && err == nil {
			return out, werr
		}
		out.Final = m
	}
	return out, err
}

// jobOptions are the loop's and the trainer's options for fine-tuning the
// tail of s towards target: the head's BatchNorm mode and, with --head-bn
// train, the head's statistics frozen.
func jobOptions(s *semirobustSetup, fo finetune.Options, trades *ort.TRADES, target float64) (finetune.Options, ort.TrainerOptions) {
	to := ort.TrainerOptions{Trainable: s.Part.TailParams, TrainBN: s.Part.TailBN, HeadBN: s.HeadBN, TRADES: trades}
	fo.HeadBN = s.HeadBN
	fo.Target = target
	fo.Frozen = slices.Clone(fo.Frozen)
	if s.HeadBN == "train" {
		// The authors' model.train(): head BNs normalise with batch
		// statistics, and their running statistics are restored after every step.
		to.TrainBN = append(append([]string(nil), s.Part.HeadBN...), s.Part.TailBN...)
		fo.Frozen = append(fo.Frozen, s.Part.HeadStats...)
	}
	return fo, to
}

// print writes the outcome's summary line: every number measured, "not
// finished" for the others.
func (o *finetuneOutcome) print(w io.Writer, attack string) {
	pct := func(v *float64) string {
		if v == nil {
			return "not finished"
		}
		return fmt.Sprintf("%.2f%%", *v)
	}
	tilde := pct(o.AccTilde)
	if o.AccTilde == nil && o.BestSoFar != nil {
		tilde = "not finished (" + o.BestSoFar.String() + ")"
	}
	delta := "not finished"
	if o.Delta != nil {
		delta = fmt.Sprintf("%+.2f", *o.Delta)
	}
	fmt.Fprintf(w, "Acc* (robust, %s) %s   Acc_sr (before) %s   Acc~ (after) %s   Δ %s   target %s\n",
		attack, pct(o.AccStar), pct(o.AccSR), tilde, delta, pct(o.Target))
	if o.Result != nil {
		for _, t := range o.Result.Trials {
			conv := "did not reach the target"
			if t.Converged {
				conv = fmt.Sprintf("reached the target after %d epochs", t.EpochsToConverge)
			}
			if !t.Done {
				conv = fmt.Sprintf("not finished (%d epochs so far)", len(t.Epochs))
			}
			fmt.Fprintf(w, "trial %d: best %.2f%% at epoch %d, %s, %.0fs\n", t.Trial, t.BestAcc, t.BestEpoch, conv, t.Seconds)
		}
	}
}

type finetuneReport struct {
	report.Header
	Robust   string   `json:"robust"`
	Normal   string   `json:"normal"`
	Layers   int      `json:"layers"`
	FbLayers int      `json:"fb_layers"`
	Cut      []string `json:"cut"`
	HeadBN   string   `json:"head_bn"`
	Train    string   `json:"train_data"`
	Test     string   `json:"eval_data"`
	// Eval is the evaluation attack as it ran, every default resolved
	// (null: clean accuracy).
	Eval   *attacks.Setting `json:"eval_attack"`
	Adv    *attacks.PGD     `json:"adversarial_training,omitempty"`
	TRADES *ort.TRADES      `json:"trades,omitempty"`
	// Options are the fine-tuning options as they ran, the target
	// resolved (absent when the run stopped before Acc* was known).
	Options *finetune.Options `json:"finetune_options,omitempty"`
	// BNExport says what --rho-every-epoch's ρ taps (see semirobust's report).
	BNExport     bnExport `json:"bn_export,omitempty"`
	BNExportNote string   `json:"bn_export_note,omitempty"`
	// Output is the model written: -o when complete, -o + ".partial" (the
	// best epoch so far) when not; Outputs holds the SHA-256 of every file
	// written with this report, which is written last.
	Output        string            `json:"output,omitempty"`
	Outputs       map[string]string `json:"outputs,omitempty"`
	CheckpointDir string            `json:"checkpoint_dir,omitempty"`
	Outcome       *finetuneOutcome  `json:"outcome"`
}

func finetuneCommand() *cli.Command {
	return &cli.Command{
		Name:      "finetune",
		Usage:     "semirobust fine-tuning (Algorithm 1): robust head frozen, tail from a normal model, fine-tuned until it reaches the robust model's accuracy",
		ArgsUsage: "ROBUST.onnx",
		Flags: append(append(append(append(commonFlags(), trainDataFlags()...), attackParamFlags()...), trainFlags(10, "pgd")...),
			&cli.StringFlag{Name: "tail-from", Required: true, Usage: "the normally trained model `NORMAL.onnx` whose tail starts the fine-tuning"},
			&cli.IntFlag{Name: "fb-layers", Usage: "weight layers in the tail (the paper's K), at least 1 (one of --fb-layers and --at is required)"},
			&cli.IntFlag{Name: "at", Usage: "last weight layer of the head (instead of --fb-layers)"},
			&cli.StringFlag{Name: "head-bn", Value: "eval", Usage: "frozen head's BatchNorm during training: eval (running statistics) or train (batch statistics, the authors' code)"},
			&cli.StringFlag{Name: "target", Value: "auto", Usage: "stop when the evaluation accuracy reaches this percentage; auto = Acc*, the robust model's"},
			&cli.Float64Flag{Name: "tolerance", Value: 0, Usage: "the paper's k, ≥ 0: stop at target − k"},
			&cli.IntFlag{Name: "trials", Value: 1, Usage: "independent trials, at least 1 (the paper: 10)"},
			&cli.StringFlag{Name: "o", Aliases: []string{"out"}, Required: true, Usage: "output `MODEL.onnx` (best trial and epoch; an unfinished run writes its best so far to MODEL.onnx.partial)"},
			&cli.StringFlag{Name: "safetensors", Usage: "also write the weights to `FILE.safetensors` keyed by PyTorch names"},
			&cli.BoolFlag{Name: "rho-every-epoch", Usage: "record ρ for the tail's layer pairs after every epoch (the paper's trial rhos), on evaluation data attacked with --eval-attack"},
			&cli.StringFlag{Name: "estimator", Value: "edge", Usage: "estimator for --rho-every-epoch"},
			&cli.StringFlag{Name: "options", Usage: "estimator options as JSON (default: the estimator's defaults)"},
			&cli.BoolFlag{Name: "nats", Usage: "ρ in nats instead of bits"},
			&cli.IntFlag{Name: "rho-n", Value: 500, Usage: "evaluation samples for --rho-every-epoch (enough that every class has the estimator's minimum rows)"},
			featureCacheFlag(),
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("finetune needs exactly one ROBUST model argument")
			}
			if c.IsSet("at") == c.IsSet("fb-layers") {
				return usagef("finetune needs exactly one of --fb-layers or --at")
			}
			if c.IsSet("fb-layers") && c.Int("fb-layers") < 1 {
				return usagef("--fb-layers must be at least 1")
			}
			return runFinetune(c, c.Args().First(), c.App.Writer, c.App.ErrWriter)
		},
	}
}

func runFinetune(c *cli.Context, path string, w, errw io.Writer) error {
	tc, err := readTrainingFlags(c)
	if err != nil {
		return err
	}
	eng, fo, adv, trades := tc.Engine, tc.Options, tc.PGD, tc.TRADES
	fo.Trials = c.Int("trials")
	fo.Tolerance = c.Float64("tolerance")
	if fo.Trials < 1 {
		return usagef("--trials %d: must be at least 1", fo.Trials)
	}
	if !(fo.Tolerance >= 0) || math.IsInf(fo.Tolerance, 0) {
		return usagef("--tolerance %v: must not be negative", fo.Tolerance)
	}
	target, auto := 0.0, strings.EqualFold(c.String("target"), "auto")
	if !auto {
		if target, err = parseNumber(c.String("target")); err != nil || target < 0 || target > 100 {
			return usagef("--target %q: want auto or a percentage", c.String("target"))
		}
	}
	if c.Int("feature-cache-mb") < 0 {
		return usagef("--feature-cache-mb must not be negative")
	}
	atk, err := evalAttack(c, c.String("eval-attack"))
	if err != nil {
		return err
	}
	var est estimators.Estimator
	if c.Bool("rho-every-epoch") {
		if est, _, err = newEstimator(c); err != nil {
			return err
		}
		if c.Int("rho-n") < 1 {
			return usagef("--rho-n %d: must be at least 1", c.Int("rho-n"))
		}
	}
	robust, err := loadModel(c, path)
	if err != nil {
		return err
	}
	normal, err := loadModel(c, c.String("tail-from"))
	if err != nil {
		return err
	}
	setup, err := newSemirobust(robust, normal, c.Int("at"), c.Int("fb-layers"), c.String("head-bn"))
	if err != nil {
		return fmt.Errorf("finetune %s with the tail of %s: %w", path, c.String("tail-from"), err)
	}
	train, err := trainData(c)
	if err != nil {
		return err
	}
	test, err := evalData(c)
	if err != nil {
		return err
	}
	classes := modelClasses(setup.Analysis)
	evalSetting := attackSetting(atk, classes)
	run := finetuneRun{Setup: setup, Train: train, Test: test, EvalAttack: atk, Adv: adv, TRADES: trades, Options: fo, Engine: eng, Batch: c.Int("batch"),
		Progress: epochPrinter(w, errw), ErrW: errw, FeatureCacheMiB: c.Int("feature-cache-mb"), Target: target, AutoTarget: auto,
		Note: func(s string) { fmt.Fprintln(w, s) }}
	var rhoNote string
	if c.Bool("rho-every-epoch") {
		pairs, err := tailPairs(setup.Layers, setup.FbLayers)
		if err != nil {
			return err
		}
		rhoData := test.Slice(0, min(test.Len(), c.Int("rho-n")))
		// Sample-size requirements are checked before any training.
		if err := checkRhoSamples(est, setup.Analysis, pairs, rhoData, "--rho-n", errw); err != nil {
			return err
		}
		rhoNote = bnExportOf(setup.Analysis).warning()
		ro := rhoOptions{Estimator: est, PerClass: true, Seed: uint64(c.Int64("seed")), Batch: c.Int("batch"), Engine: eng}
		run.EpochMetrics = func(m *onnxio.Model) (finetune.Metrics, error) {
			rs, err := rhosOnAttacked(c.Context, m, rhoData, atk, pairs, ro)
			if err != nil {
				return nil, err
			}
			out := finetune.Metrics{}
			for _, r := range rs {
				out[fmt.Sprintf("rho_%d:%d", r.Parent, r.Child)] = r.Value
			}
			return out, nil
		}
	}
	if fo.CheckpointDir != "" {
		run.Identity, err = runIdentity(c, [][2]string{{"robust model", path}, {"normal model", c.String("tail-from")}},
			[]identityData{{"training data", train, c.Int("offset")}, {"evaluation data", test, 0}},
			[]finetune.Setting{settingJSON("adversarial training", adv), settingJSON("TRADES training", trades), settingJSON("evaluation attack", evalSetting)})
		if err != nil {
			return err
		}
	}
	ck, note, err := openResume(c)
	if err != nil {
		return err
	}
	if note != "" {
		fmt.Fprintln(w, note)
	}
	if ck != nil {
		// Acc* and Acc_sr come from the checkpoint; it must belong to this run.
		m := ck.Measured()
		star, ok1 := m[measuredAccStar]
		sr, ok2 := m[measuredAccSR]
		if !ok1 || !ok2 {
			return fmt.Errorf("resume: %s does not record Acc* and Acc_sr: it was not written by srtool finetune or semirobust", ck.Path)
		}
		run.AccStar, run.AccSR, run.Checkpoint = &star, &sr, ck
		// Before any work: the checkpoint must belong to this run.
		check, _ := jobOptions(setup, fo, trades, target)
		if auto {
			check.Target = star
		}
		if err := ck.Check(check, run.Identity); err != nil {
			return fmt.Errorf("resume: %w", err)
		}
	}
	if rhoNote != "" {
		fmt.Fprintln(errw, "warning: "+rhoNote)
	}
	rep := finetuneReport{Header: newHeader(c), Robust: path, Normal: c.String("tail-from"), Layers: setup.Layers, FbLayers: setup.FbLayers, HeadBN: setup.HeadBN,
		Train: train.Name, Test: test.Name, Eval: evalSetting, Adv: adv, TRADES: trades, CheckpointDir: fo.CheckpointDir}
	if c.Bool("rho-every-epoch") {
		rep.BNExport = bnExportOf(setup.Analysis)
		rep.BNExportNote = rep.BNExport.describe()
	}
	for _, t := range setup.Cut.Tensors {
		rep.Cut = append(rep.Cut, t.Name)
	}
	fmt.Fprintf(w, "semirobust network: head = layers 1..%d of %s (frozen, BN %s), tail = last %d layers of %s\n", setup.Cut.After, path, setup.HeadBN, setup.FbLayers, c.String("tail-from"))
	outcome, runErr := runFinetuneJob(c.Context, run)
	rep.Outcome = outcome
	if outcome.Result != nil {
		rep.Options = &outcome.Result.Options
	} else if outcome.Target != nil {
		o, _ := jobOptions(setup, fo, trades, *outcome.Target)
		o = o.Resolved()
		rep.Options = &o
	}
	if runErr != nil {
		rep.MarkIncomplete(runErr)
	}
	outcome.print(w, attackLabel(atk))
	if outcome.Final != nil {
		if rep.Output, rep.Outputs, err = writeTrained(c, outcome.Final, path, outcome.Complete && runErr == nil); err != nil {
			return err
		}
	}
	if err := report.WriteJSON(c.String("json"), rep); err != nil {
		return err
	}
	if runErr == nil {
		return nil
	}
	done := finishedWork(outcome.Result, fo.Epochs)
	if outcome.AccStar == nil {
		done = "stopped while measuring Acc*"
	} else if outcome.AccSR == nil {
		done = "Acc* measured, stopped while measuring Acc_sr"
	}
	return stoppedTraining(c, runErr, done, rep.Output, "fine-tuning")
}
