package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// trainFlags are the optimiser, schedule and adversarial-training flags
// shared by train and finetune. Defaults are the paper's fine-tuning recipe.
func trainFlags(defaultEpochs int) []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "epochs", Value: defaultEpochs, Usage: "epochs per trial"},
		&cli.IntFlag{Name: "train-batch", Value: 128, Usage: "training batch size"},
		&cli.StringFlag{Name: "optimizer", Value: "sgd", Usage: "sgd or adamw"},
		&cli.Float64Flag{Name: "lr", Value: 0.01, Usage: "learning rate"},
		&cli.Float64Flag{Name: "momentum", Value: 0.9, Usage: "SGD momentum"},
		&cli.BoolFlag{Name: "nesterov", Usage: "Nesterov momentum"},
		&cli.Float64Flag{Name: "wd", Value: 5e-4, Usage: "weight decay"},
		&cli.StringFlag{Name: "schedule", Value: "const", Usage: "const, multistep:E1,E2[:gamma], cosine or onecycle"},
		&cli.IntFlag{Name: "crop-pad", Usage: "random-crop padding for augmentation (0 = none)"},
		&cli.BoolFlag{Name: "flip", Usage: "random horizontal flips"},
		&cli.StringFlag{Name: "adv", Value: "none", Usage: "adversarial training: none, pgd or trades"},
		&cli.Float64Flag{Name: "trades-beta", Value: 6, Usage: "TRADES β (with --adv trades)"},
		&cli.StringFlag{Name: "adv-eps", Value: "8/255", Usage: "PGD training radius (L∞, pixel units)"},
		&cli.StringFlag{Name: "adv-alpha", Value: "2/255", Usage: "PGD training step"},
		&cli.IntFlag{Name: "adv-steps", Value: 10, Usage: "PGD training steps"},
		&cli.StringFlag{Name: "eval-attack", Value: "none", Usage: "attack for the per-epoch evaluation: none, fgsm, pgd, cw, autoattack, … (uses --eps/--steps/--alpha)"},
		&cli.StringFlag{Name: "eval-data", Usage: "evaluation data SPEC (default: --data with --split test)"},
		&cli.IntFlag{Name: "eval-n", Value: 1000, Usage: "evaluation samples (0 = all)"},
		&cli.StringFlag{Name: "checkpoint-dir", Usage: "write a resumable checkpoint here after every epoch"},
		&cli.BoolFlag{Name: "resume", Usage: "continue from --checkpoint-dir"},
	}
}

// trainOptions reads the optimiser and schedule flags.
func trainOptions(c *cli.Context) (finetune.Options, error) {
	o := finetune.Options{Epochs: c.Int("epochs"), BatchSize: c.Int("train-batch"), Seed: uint64(c.Int64("seed")),
		Augment: dataset.Augment{Pad: c.Int("crop-pad"), Flip: c.Bool("flip")}, CheckpointDir: c.String("checkpoint-dir")}
	if o.Epochs < 1 || o.BatchSize < 1 {
		return o, usagef("--epochs and --train-batch must be positive")
	}
	switch c.String("optimizer") {
	case "sgd":
		o.Optimizer = finetune.SGD{LR: c.Float64("lr"), Momentum: c.Float64("momentum"), WeightDecay: c.Float64("wd"), Nesterov: c.Bool("nesterov")}
	case "adamw":
		o.Optimizer = finetune.AdamW{LR: c.Float64("lr"), WeightDecay: c.Float64("wd")}
	default:
		return o, usagef("--optimizer %q: want sgd or adamw", c.String("optimizer"))
	}
	if err := o.Optimizer.Validate(); err != nil {
		return o, usagef("%v", err)
	}
	sched := c.String("schedule")
	switch {
	case sched == "const" || sched == "":
	case sched == "cosine":
		o.Schedule = finetune.Cosine{TMax: o.Epochs}
	case sched == "onecycle":
		o.Schedule = finetune.OneCycle{MaxLR: c.Float64("lr")}
		o.ScheduleEvery = "batch"
	case strings.HasPrefix(sched, "multistep:"):
		parts := strings.Split(strings.TrimPrefix(sched, "multistep:"), ":")
		ms := finetune.MultiStep{Gamma: 0.1}
		for _, e := range strings.Split(parts[0], ",") {
			v, err := strconv.Atoi(strings.TrimSpace(e))
			if err != nil {
				return o, usagef("--schedule %q: milestones must be integers", sched)
			}
			ms.Milestones = append(ms.Milestones, v)
		}
		if len(parts) > 1 {
			g, err := strconv.ParseFloat(parts[1], 64)
			if err != nil {
				return o, usagef("--schedule %q: bad gamma", sched)
			}
			ms.Gamma = g
		}
		o.Schedule = ms
	default:
		return o, usagef("--schedule %q: want const, multistep:E1,E2[:gamma], cosine or onecycle", sched)
	}
	return o, nil
}

// paramEvaluator measures accuracy of the current parameters on held-out
// data, clean or under an attack (accuracy on the adversarial examples, the
// convention of the paper's torchattacks evaluation).
type paramEvaluator struct {
	clf    *ort.Classifier
	data   *dataset.Dataset
	attack attacks.Attack // nil = clean
	batch  int
}

func (e *paramEvaluator) Evaluate(ctx context.Context, trainable, state finetune.Params) (float64, error) {
	if err := e.clf.SetParams(finetune.Merge(trainable, state)); err != nil {
		return 0, err
	}
	return accuracy(ctx, e.clf, e.data, e.attack, e.batch)
}

// accuracy is clean accuracy (attack nil) or accuracy on adversarial examples, in percent.
func accuracy(ctx context.Context, clf attacks.Gradienter, d *dataset.Dataset, attack attacks.Attack, batch int) (float64, error) {
	if attack != nil {
		r, err := attacks.AdversarialAccuracy(ctx, clf, d.X, d.Y, attack, batch, nil)
		if err != nil {
			return 0, err
		}
		return r.Accuracy, nil
	}
	ok, err := correctness(ctx, clf, d, batch)
	if err != nil {
		return 0, err
	}
	correct := 0
	for _, v := range ok {
		if v {
			correct++
		}
	}
	return 100 * float64(correct) / float64(d.Len()), nil
}

// correctness classifies d in batches and reports which samples are right.
func correctness(ctx context.Context, clf attacks.Model, d *dataset.Dataset, batch int) ([]bool, error) {
	if batch < 1 {
		batch = 128
	}
	k := clf.NumClasses()
	dim := d.C * d.H * d.W
	out := make([]bool, d.Len())
	for lo := 0; lo < d.Len(); lo += batch {
		hi := min(lo+batch, d.Len())
		z, err := clf.Logits(ctx, d.X[lo*dim:hi*dim], hi-lo)
		if err != nil {
			return nil, err
		}
		for i := lo; i < hi; i++ {
			out[i] = argmax(z[(i-lo)*k:(i-lo+1)*k]) == int(d.Y[i])
		}
	}
	return out, nil
}

// pgdGenerator makes PGD training examples against the current parameters
// (BatchNorm in inference mode, as TRADES' and many PGD-AT codes generate them).
type pgdGenerator struct {
	clf *ort.Classifier
	pgd attacks.PGD
}

func (g *pgdGenerator) Perturb(ctx context.Context, trainable, state finetune.Params, x []float32, n int, y []int64, seed uint64) ([]float32, error) {
	if err := g.clf.SetParams(finetune.Merge(trainable, state)); err != nil {
		return nil, err
	}
	a := g.pgd
	a.Seed = seed
	r, err := a.Run(ctx, g.clf, x, y)
	if err != nil {
		return nil, err
	}
	return r.Adv, nil
}

// evalAttack builds the per-epoch evaluation attack from --eval-attack (nil for none).
func evalAttack(c *cli.Context, name string) (attacks.Attack, error) {
	if name == "" || name == "none" || name == "clean" {
		return nil, nil
	}
	eps, err := parseNumber(c.String("eps"))
	if err != nil {
		return nil, usagef("--eps: %v", err)
	}
	if eps < 0 || eps > 1 {
		return nil, usagef("--eps %g is outside [0,1]", eps)
	}
	a, err := attacks.ByName(name, float32(eps), c.String("norm"))
	if err != nil {
		return nil, usagef("--eval-attack %s: %v", name, err)
	}
	alpha := 0.0
	if s := c.String("alpha"); s != "" {
		if alpha, err = parseNumber(s); err != nil || alpha <= 0 {
			return nil, usagef("--alpha must be positive")
		}
	}
	configureAttack(a, c.Int("steps"), float32(alpha), c.Int("restarts"), uint64(c.Int64("seed")), c.Bool("no-random-start"))
	return a, nil
}

// advTraining builds the adversarial training from the --adv flags: PGD
// (--adv pgd) or TRADES (--adv trades) with --adv-eps, --adv-alpha and
// --adv-steps; both nil for --adv none.
func advTraining(c *cli.Context) (*attacks.PGD, *ort.TRADES, error) {
	kind := c.String("adv")
	switch kind {
	case "none", "":
		return nil, nil, nil
	case "pgd", "trades":
	default:
		return nil, nil, usagef("--adv %q: want none, pgd or trades", kind)
	}
	eps, err := parseNumber(c.String("adv-eps"))
	if err != nil || eps < 0 || eps > 1 {
		return nil, nil, usagef("--adv-eps must be in [0,1]")
	}
	alpha, err := parseNumber(c.String("adv-alpha"))
	if err != nil || alpha <= 0 {
		return nil, nil, usagef("--adv-alpha must be positive")
	}
	if c.Int("adv-steps") < 1 {
		return nil, nil, usagef("--adv-steps must be positive")
	}
	if kind == "pgd" {
		return &attacks.PGD{Epsilon: float32(eps), StepSize: float32(alpha), Steps: c.Int("adv-steps")}, nil, nil
	}
	if c.Float64("trades-beta") <= 0 {
		return nil, nil, usagef("--trades-beta must be positive")
	}
	return nil, &ort.TRADES{Beta: float32(c.Float64("trades-beta")), Epsilon: float32(eps), StepSize: float32(alpha), Steps: c.Int("adv-steps")}, nil
}

// evalData loads --eval-data, or --data's test split, limited to --eval-n.
func evalData(c *cli.Context) (*dataset.Dataset, error) {
	spec := c.String("eval-data")
	if spec == "" {
		spec = c.String("data")
		if s, err := dataset.ParseSpec(spec); err == nil {
			switch s.Format {
			case "npz", "npy", "folder":
				return nil, usagef("--data %s has no separate test split: name the evaluation data with --eval-data", spec)
			}
		}
	}
	d, err := dataset.Load(spec, dataset.Options{Split: "test", N: c.Int("eval-n")})
	if err != nil {
		return nil, fmt.Errorf("evaluation data %s: %w", spec, err)
	}
	return d, nil
}

// trainData loads --data's training split (or all of an npz/npy/folder source).
func trainData(c *cli.Context) (*dataset.Dataset, error) {
	spec := c.String("data")
	if spec == "" {
		return nil, usagef("--data is required")
	}
	if c.Int("batch") < 1 {
		return nil, usagef("--batch must be at least 1")
	}
	split := "train"
	if c.IsSet("split") {
		split = c.String("split")
	}
	d, err := dataset.Load(spec, dataset.Options{Split: split, N: c.Int("n"), Offset: c.Int("offset")})
	if err != nil {
		return nil, fmt.Errorf("training data %s: %w", spec, err)
	}
	return d, nil
}

// withParams returns a copy of m whose initializers (by PyTorch name) hold
// the given values; names the exporter tied together are untied as needed.
func withParams(m *onnxio.Model, ps ...finetune.Params) (*onnxio.Model, error) {
	out := m.Clone()
	ts := map[string]checkpoint.Tensor{}
	for _, p := range ps {
		for name, v := range p {
			t, err := shapeOf(out, name)
			if err != nil {
				return nil, err
			}
			ts[name] = checkpoint.FromFloat32(t, v)
		}
	}
	if _, err := checkpoint.Import(out, ts, checkpoint.ImportOptions{AllowMissing: true}); err != nil {
		return nil, err
	}
	return out, nil
}

// shapeOf returns the dims of an initializer, or of the initializer behind
// an Identity output of that name.
func shapeOf(m *onnxio.Model, name string) ([]int64, error) {
	if t := m.Initializer(name); t != nil {
		return t.GetDims(), nil
	}
	for _, n := range m.Graph().GetNode() {
		if n.GetOpType() == "Identity" && len(n.GetOutput()) == 1 && n.GetOutput()[0] == name {
			if t := m.Initializer(n.GetInput()[0]); t != nil {
				return t.GetDims(), nil
			}
		}
	}
	return nil, fmt.Errorf("model has no parameter %q", name)
}

// epochPrinter renders finetune progress on w.
func epochPrinter(w, errw io.Writer) func(finetune.Progress) {
	var bar *progressBar
	return func(p finetune.Progress) {
		if p.Finished == nil {
			if bar == nil || p.Batch == 1 {
				bar = newProgress(errw, fmt.Sprintf("trial %d epoch %d", p.Trial, p.Epoch))
			}
			bar.update(p.Samples, p.EpochSamples)
			return
		}
		e := p.Finished
		eval := "-"
		if e.EvalAcc >= 0 {
			eval = fmt.Sprintf("%.2f%%", e.EvalAcc)
		}
		extra := ""
		for _, k := range sortedMetricNames(e.Extra) {
			extra += fmt.Sprintf("  %s %.3f", k, e.Extra[k])
		}
		fmt.Fprintf(w, "trial %d epoch %2d  loss %.4f  train acc %6.2f%%  eval acc %s  lr %.4g  %.1fs%s%s\n",
			p.Trial, e.Epoch, e.Loss, e.TrainAcc, eval, e.LR, e.Seconds, extra, map[bool]string{true: "  (target reached)", false: ""}[p.Stopped])
	}
}

func sortedMetricNames(m finetune.Metrics) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// trainingConfig is what the training flags shared by train, finetune and
// semirobust say: the engine, the loop's options and the adversarial
// training (PGD or TRADES; both nil for clean training).
type trainingConfig struct {
	Engine  ort.Options
	Options finetune.Options
	PGD     *attacks.PGD
	TRADES  *ort.TRADES
}

func readTrainingFlags(c *cli.Context) (trainingConfig, error) {
	var tc trainingConfig
	var err error
	if tc.Engine, err = engineOptions(c); err != nil {
		return tc, err
	}
	if tc.Options, err = trainOptions(c); err != nil {
		return tc, err
	}
	if tc.PGD, tc.TRADES, err = advTraining(c); err != nil {
		return tc, err
	}
	return tc, nil
}

// jobParts attaches to job the evaluator (accuracy of the current
// parameters on test under attack, clean when nil) and, with pgd, the PGD
// training-example generator; both use classifiers over m whose trainable
// and state tensors are fed on every run. close releases them.
func jobParts(job *finetune.Job, m *onnxio.Model, eng ort.Options, test *dataset.Dataset, attack attacks.Attack, pgd *attacks.PGD, batch int) (close func(), err error) {
	over := append(job.Trainable.Names(), job.State.Names()...)
	var clfs []*ort.Classifier
	close = func() {
		for _, c := range clfs {
			c.Close()
		}
	}
	evalClf, err := ort.NewClassifierWithParams(m, eng, over)
	if err != nil {
		return close, err
	}
	clfs = append(clfs, evalClf)
	job.Evaluator = &paramEvaluator{clf: evalClf, data: test, attack: attack, batch: batch}
	if pgd != nil {
		advClf, err := ort.NewClassifierWithParams(m, eng, over)
		if err != nil {
			return close, err
		}
		clfs = append(clfs, advClf)
		job.Adv = &pgdGenerator{clf: advClf, pgd: *pgd}
	}
	return close, nil
}

// writeTrained writes a trained or fine-tuned model to -o and, with
// --safetensors, its weights keyed by the PyTorch names of source.
func writeTrained(c *cli.Context, m *onnxio.Model, source string) error {
	if err := writeModel(c.String("o"), m); err != nil {
		return err
	}
	if p := c.String("safetensors"); p != "" {
		return exportSafetensors(m, p, source)
	}
	return nil
}

// runOrResume runs the training loop, or resumes it with --resume.
func runOrResume(ctx context.Context, resume bool, fo finetune.Options, job finetune.Job) (*finetune.Result, error) {
	if resume {
		return fo.Resume(ctx, job)
	}
	return fo.Run(ctx, job)
}
