package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
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

// finetuneRun is one Algorithm 1 run's inputs and outputs.
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
	Resume     bool
	Progress   func(finetune.Progress)
	// AccStar, if set, is the robust model's accuracy under EvalAttack on
	// Test, already measured (semirobust reuses it across K).
	AccStar *float64
	// EpochMetrics, if set, adds per-epoch metrics (the trial rhos).
	EpochMetrics func(m *onnxio.Model) (finetune.Metrics, error)
	// FeatureCacheMiB bounds the frozen head's cached features for clean
	// fine-tuning (--feature-cache-mb); 0 turns the cache off.
	FeatureCacheMiB int
	// Note, if set, receives one-line remarks before training starts.
	Note func(string)
}

// finetuneOutcome is what runFinetuneJob measured.
type finetuneOutcome struct {
	AccStar  float64          `json:"acc_star"` // robust model under the evaluation attack
	AccSR    float64          `json:"acc_sr"`   // semirobust model before fine-tuning
	AccTilde float64          `json:"acc_tilde"`
	Delta    float64          `json:"delta"` // Acc~ − Acc*
	Target   float64          `json:"target"`
	Result   *finetune.Result `json:"result"`
	Seconds  float64          `json:"seconds"`
	// FeatureCache says whether the frozen head's features were computed
	// once (clean fine-tuning) or the head ran in every step, and why.
	FeatureCache string        `json:"feature_cache"`
	Final        *onnxio.Model `json:"-"`
}

// runFinetuneJob measures Acc* and Acc_sr, then runs Algorithm 1 (trials of
// fine-tuning the tail with the head frozen, stopping at the target).
func runFinetuneJob(c *cli.Context, r finetuneRun, target float64, autoTarget bool) (*finetuneOutcome, error) {
	ctx := c.Context
	s := r.Setup
	out := &finetuneOutcome{}
	if r.AccStar != nil {
		out.AccStar = *r.AccStar
	} else {
		robustClf, err := ort.NewClassifier(s.Robust, r.Engine)
		if err != nil {
			return nil, err
		}
		out.AccStar, err = accuracy(ctx, robustClf, r.Test, r.EvalAttack, r.Batch)
		robustClf.Close()
		if err != nil {
			return nil, err
		}
	}
	startClf, err := ort.NewClassifier(s.Start, r.Engine)
	if err != nil {
		return nil, err
	}
	out.AccSR, err = accuracy(ctx, startClf, r.Test, r.EvalAttack, r.Batch)
	startClf.Close()
	if err != nil {
		return nil, err
	}
	out.Target = target
	if autoTarget {
		out.Target = out.AccStar
	}
	to := ort.TrainerOptions{Trainable: s.Part.TailParams, TrainBN: s.Part.TailBN, HeadBN: s.HeadBN, TRADES: r.TRADES}
	fo := r.Options
	fo.HeadBN = s.HeadBN
	fo.Target = out.Target
	if s.HeadBN == "train" {
		// The authors' model.train(): head BNs normalise with batch
		// statistics, and their running statistics are restored after every step.
		to.TrainBN = append(append([]string(nil), s.Part.HeadBN...), s.Part.TailBN...)
		fo.Frozen = append(fo.Frozen, s.Part.HeadStats...)
	}
	trainModel, train := s.Start, r.Train
	var source *dataset.Dataset
	if ok, why := featureCacheEligible(r); ok {
		hf, reason, err := cacheHeadFeatures(ctx, s, r.Train, r.Engine, r.Batch, int64(r.FeatureCacheMiB)<<20)
		if err != nil {
			return nil, err
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
	}
	trainer, trainable, state, err := ort.NewTrainer(trainModel, r.Engine, to)
	if err != nil {
		return nil, err
	}
	defer trainer.Close()
	job := finetune.Job{Train: train, DataSource: source, Trainable: trainable, State: state, Stepper: trainer, Progress: r.Progress}
	closeParts, err := jobParts(&job, s.Start, r.Engine, r.Test, r.EvalAttack, r.Adv, r.Batch)
	defer closeParts()
	if err != nil {
		return nil, err
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
	res, err := runOrResume(ctx, r.Resume, fo, job)
	out.Seconds = time.Since(start).Seconds()
	out.Result = res
	if res != nil && res.Best != nil {
		out.AccTilde = res.Best.Acc
		out.Delta = out.AccTilde - out.AccStar
		if m, werr := withParams(s.Start, res.Best.Trainable, res.Best.State); werr == nil {
			out.Final = m
		} else if err == nil {
			err = werr
		}
	}
	return out, err
}

type finetuneReport struct {
	Robust   string           `json:"robust"`
	Normal   string           `json:"normal"`
	Layers   int              `json:"layers"`
	FbLayers int              `json:"fb_layers"`
	Cut      []string         `json:"cut"`
	HeadBN   string           `json:"head_bn"`
	Train    string           `json:"train_data"`
	Test     string           `json:"eval_data"`
	Eval     attacks.Attack   `json:"eval_attack"`
	Adv      *attacks.PGD     `json:"adversarial_training,omitempty"`
	TRADES   *ort.TRADES      `json:"trades,omitempty"`
	Output   string           `json:"output"`
	Outcome  *finetuneOutcome `json:"outcome"`
}

func finetuneCommand() *cli.Command {
	return &cli.Command{
		Name:      "finetune",
		Usage:     "semirobust fine-tuning (Algorithm 1): robust head frozen, tail from a normal model, fine-tuned until it reaches the robust model's accuracy",
		ArgsUsage: "ROBUST.onnx",
		Flags: append(append(append(append(commonFlags(), dataFlags()...), attackParamFlags()...), trainFlags(10)...),
			&cli.StringFlag{Name: "tail-from", Required: true, Usage: "the normally trained model `NORMAL.onnx` whose tail starts the fine-tuning"},
			&cli.IntFlag{Name: "fb-layers", Usage: "weight layers in the tail (the paper's K)"},
			&cli.IntFlag{Name: "at", Usage: "last weight layer of the head (instead of --fb-layers)"},
			&cli.StringFlag{Name: "head-bn", Value: "eval", Usage: "frozen head's BatchNorm during training: eval (running statistics) or train (batch statistics, the authors' code)"},
			&cli.StringFlag{Name: "target", Value: "auto", Usage: "stop when the evaluation accuracy reaches this percentage; auto = Acc*, the robust model's"},
			&cli.Float64Flag{Name: "tolerance", Usage: "the paper's k: stop at target − k"},
			&cli.IntFlag{Name: "trials", Value: 1, Usage: "independent trials (the paper: 10)"},
			&cli.StringFlag{Name: "o", Aliases: []string{"out"}, Required: true, Usage: "output `MODEL.onnx` (best trial and epoch)"},
			&cli.StringFlag{Name: "safetensors", Usage: "also write the weights to `FILE.safetensors` keyed by PyTorch names"},
			&cli.BoolFlag{Name: "rho-every-epoch", Usage: "record ρ for the tail's layer pairs after every epoch (the paper's trial rhos), on evaluation data attacked with --eval-attack"},
			&cli.StringFlag{Name: "estimator", Value: "edge", Usage: "estimator for --rho-every-epoch"},
			&cli.StringFlag{Name: "options", Usage: "estimator options as JSON"},
			&cli.BoolFlag{Name: "nats", Usage: "ρ in nats"},
			&cli.IntFlag{Name: "rho-n", Value: 500, Usage: "evaluation samples for --rho-every-epoch"},
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
	if fo.Trials < 1 || fo.Tolerance < 0 {
		return usagef("--trials must be positive and --tolerance not negative")
	}
	target, auto := 0.0, strings.EqualFold(c.String("target"), "auto")
	if !auto {
		if target, err = parseNumber(c.String("target")); err != nil || target < 0 || target > 100 {
			return usagef("--target %q: want auto or a percentage", c.String("target"))
		}
	}
	atk, err := evalAttack(c, c.String("eval-attack"))
	if err != nil {
		return err
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
	run := finetuneRun{Setup: setup, Train: train, Test: test, EvalAttack: atk, Adv: adv, TRADES: trades, Options: fo, Engine: eng, Batch: c.Int("batch"),
		Resume: c.Bool("resume"), Progress: epochPrinter(w, errw), FeatureCacheMiB: c.Int("feature-cache-mb"),
		Note: func(s string) { fmt.Fprintln(w, s) }}
	if run.FeatureCacheMiB < 0 {
		return usagef("--feature-cache-mb must not be negative")
	}
	if c.Bool("rho-every-epoch") {
		est, _, err := newEstimator(c)
		if err != nil {
			return err
		}
		pairs, err := tailPairs(setup.Layers, setup.FbLayers)
		if err != nil {
			return err
		}
		ro := rhoOptions{Estimator: est, PerClass: true, Seed: uint64(c.Int64("seed")), Batch: c.Int("batch"), Engine: eng}
		rhoData := test.Slice(0, min(test.Len(), c.Int("rho-n")))
		run.EpochMetrics = func(m *onnxio.Model) (finetune.Metrics, error) {
			rs, err := rhosOnAttacked(c, m, rhoData, atk, pairs, ro)
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
	fmt.Fprintf(w, "semirobust network: head = layers 1..%d of %s (frozen, BN %s), tail = last %d layers of %s\n", setup.Cut.After, path, setup.HeadBN, setup.FbLayers, c.String("tail-from"))
	outcome, runErr := runFinetuneJob(c, run, target, auto)
	if outcome == nil {
		return runErr
	}
	rep := finetuneReport{Robust: path, Normal: c.String("tail-from"), Layers: setup.Layers, FbLayers: setup.FbLayers, HeadBN: setup.HeadBN,
		Train: train.Name, Test: test.Name, Eval: atk, Adv: adv, TRADES: trades, Output: c.String("o"), Outcome: outcome}
	for _, t := range setup.Cut.Tensors {
		rep.Cut = append(rep.Cut, t.Name)
	}
	attackName := "clean"
	if atk != nil {
		attackName = atk.Name()
	}
	fmt.Fprintf(w, "Acc* (robust, %s) %.2f%%   Acc_sr (before) %.2f%%   Acc~ (after) %.2f%%   Δ %+.2f   target %.2f%%\n",
		attackName, outcome.AccStar, outcome.AccSR, outcome.AccTilde, outcome.Delta, outcome.Target)
	if outcome.Result != nil {
		for _, t := range outcome.Result.Trials {
			fmt.Fprintf(w, "trial %d: best %.2f%% at epoch %d, epochs to converge %d, %.0fs\n", t.Trial, t.BestAcc, t.BestEpoch, t.EpochsToConverge, t.Seconds)
		}
	}
	if outcome.Final != nil {
		if err := writeTrained(c, outcome.Final, path); err != nil {
			return err
		}
	}
	if err := writeJSON(c.String("json"), rep); err != nil {
		return err
	}
	if runErr != nil {
		if errors.Is(runErr, finetune.ErrDiverged) {
			return fmt.Errorf("fine-tuning diverged (%w); the best epoch so far was written", runErr)
		}
		return fmt.Errorf("stopped: %w", runErr)
	}
	return nil
}
