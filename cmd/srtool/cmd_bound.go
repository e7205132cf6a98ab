package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/hessian"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/report"
)

// boundReport is `srtool bound --json`. The paper's numbers are top-level
// keys; a number whose computation did not finish is absent (null).
type boundReport struct {
	report.Header
	Robust    string `json:"robust"`
	Finetuned string `json:"finetuned"`
	Data      string `json:"data"`
	N         int    `json:"n"`
	// Inputs is "clean" or the attack that made the inputs at ω*;
	// AdvAccuracy is ω*'s accuracy on them (percent).
	Inputs      string   `json:"inputs"`
	AdvAccuracy *float64 `json:"adv_accuracy,omitempty"`
	Layers      int      `json:"layers"`
	FbLayers    int      `json:"fb_layers"`
	CutAfter    int      `json:"cut_after"`
	TailParams  int      `json:"tail_params"`
	AllParams   int      `json:"all_params"`

	// LambdaMaxTail and LambdaMaxAll are the largest eigenvalues of the
	// Hessian of the mean cross-entropy at ω* (BN in eval mode) with respect
	// to the tail's trainable parameters and to all of them.
	LambdaMaxTail *float64 `json:"lambda_max_tail"`
	LambdaMaxAll  *float64 `json:"lambda_max_all"`
	// WeightDiffSq is ‖ω~_b − ω*_b‖² over the tail's trainable parameters.
	WeightDiffSq *float64 `json:"weight_diff_sq"`
	// Bound is ½ λmax_tail ‖Δω_b‖².
	Bound *float64 `json:"bound"`
	// QuadraticForm is ½ Δωᵀ H Δω; LinearTerm is ∇ℓ(ω*)ᵀ Δω, which the
	// paper's argument takes to be 0 (ω* a minimum); Taylor2 is their sum,
	// the second-order prediction of the loss gap.
	QuadraticForm *float64 `json:"quadratic_form"`
	LinearTerm    *float64 `json:"linear_term"`
	Taylor2       *float64 `json:"taylor2"`
	// LossGap is ℓ(ω~) − ℓ(ω*) of the two models as they are;
	// LossGapSameStats is the gap at ω* with only the tail's trainable
	// parameters replaced by ω~'s (ω*'s BN running statistics), the point the
	// Taylor expansion is about.
	LossGap          *float64 `json:"loss_gap"`
	LossGapSameStats *float64 `json:"loss_gap_same_stats"`
	// LossGapFrozenGates is that gap again with every ReLU gate held at ω*'s
	// (hessian.FreezeGates): the smooth loss whose Hessian the products
	// take, so Taylor2 predicts it up to third-order terms; the difference
	// from LossGapSameStats is what the ReLUs that switch contribute.
	LossGapFrozenGates *float64 `json:"loss_gap_frozen_gates"`
	LossRobust         *float64 `json:"loss_robust"`
	LossFinetuned      *float64 `json:"loss_finetuned"`
	// GradNormTail is ‖∇_b ℓ(ω*)‖.
	GradNormTail *float64 `json:"grad_norm_tail"`
	// HeadDiffNorm is ‖ω~_a − ω*_a‖ over the head's parameters and BN
	// statistics (0 after Algorithm 1); TailStatsDiffNorm the same over the
	// tail's BN running statistics, which the bound does not cover.
	HeadDiffNorm      float64 `json:"head_diff_norm"`
	TailStatsDiffNorm float64 `json:"tail_stats_diff_norm"`

	// PowerTail and PowerAll are the power iterations (iterations,
	// convergence, last relative change).
	PowerTail *hessian.Eigen       `json:"power_tail"`
	PowerAll  *hessian.Eigen       `json:"power_all"`
	Power     hessian.PowerOptions `json:"power_options"`
	// FDStep, FDLossChange and FDRichardson are the finite-difference
	// settings (hessian.FiniteDiff); FDRedone counts the products redone
	// with a shorter step.
	FDStep        float64 `json:"fd_step"`
	FDLossChange  float64 `json:"fd_loss_change"`
	FDRichardson  bool    `json:"fd_richardson"`
	FDRedone      int     `json:"fd_redone"`
	GradientCalls int     `json:"gradient_calls"`
	Device        string  `json:"device"`
	Seconds       float64 `json:"seconds"`
}

func boundCommand() *cli.Command {
	return &cli.Command{
		Name:  "bound",
		Usage: "the paper's weight-difference bound ½ λmax ‖ω~_b − ω*_b‖² against the measured loss gap",
		Description: "At ω* (the robust model, BatchNorm in eval mode) and on the given data (clean, or attacked at ω*\n" +
			"with --adv), computes the largest Hessian eigenvalue of the mean cross-entropy for the tail's\n" +
			"trainable parameters and for all of them (power iteration on finite-difference Hessian-vector\n" +
			"products), ‖ω~_b − ω*_b‖², the bound ½ λmax_tail ‖Δω_b‖², the quadratic form ½ ΔωᵀHΔω and the\n" +
			"measured loss gap ℓ(ω~) − ℓ(ω*).",
		Flags: append(append(append(commonFlags(), dataFlags()...), attackParamFlags()...),
			&cli.StringFlag{Name: "robust", Usage: "the robust model ω* (`FSTAR.onnx`)", Required: true},
			&cli.StringFlag{Name: "finetuned", Usage: "the semirobust model ω~ (`FTILDE.onnx`): ω*'s head, fine-tuned tail", Required: true},
			&cli.IntFlag{Name: "fb-layers", Usage: "the tail holds the last `K` weight layers"},
			&cli.IntFlag{Name: "at", Usage: "the head holds weight layers 1..`A`"},
			&cli.StringFlag{Name: "adv", Aliases: []string{"attack"}, Value: "none", Usage: "inputs: none (clean) or an attack run at ω* first (pgd, with --eps/--steps/--alpha/--restarts/--no-random-start)"},
			&cli.Float64Flag{Name: "tol", Value: 1e-4, Usage: "power iteration: relative tolerance on the eigenvalue"},
			&cli.IntFlag{Name: "max-iter", Value: 100, Usage: "power iteration: most Hessian-vector products"},
			&cli.Float64Flag{Name: "fd-step", Value: hessian.DefaultStep, Usage: "finite-difference step h relative to ‖ω‖"},
			&cli.Float64Flag{Name: "fd-loss-change", Value: hessian.DefaultLossChange, Usage: "shorten a step whose second-order loss change ½ρh² exceeds this (nats), along directions of high curvature ρ"},
			&cli.BoolFlag{Name: "fd-richardson", Usage: "extrapolate two central differences (h and h/2) to cancel the O(h²) error: twice the gradient calls"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("bound takes no arguments; give the models with --robust and --finetuned")
			}
			return runBound(c, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// flatParams lays out named tensors as one vector, in a fixed name order.
type flatParams struct {
	names []string
	sizes []int
	dim   int
}

func newFlatParams(names []string, values map[string][]float32) (flatParams, error) {
	f := flatParams{names: slices.Clone(names)}
	for _, n := range names {
		v, ok := values[n]
		if !ok {
			return f, fmt.Errorf("no value for parameter %q", n)
		}
		f.sizes = append(f.sizes, len(v))
		f.dim += len(v)
	}
	return f, nil
}

func (f flatParams) flatten(p map[string][]float32) []float32 {
	out := make([]float32, 0, f.dim)
	for _, n := range f.names {
		out = append(out, p[n]...)
	}
	return out
}

// view returns the tensors of w by name; the slices share w's storage.
func (f flatParams) view(w []float32) finetune.Params {
	p := make(finetune.Params, len(f.names))
	off := 0
	for i, n := range f.names {
		p[n] = w[off : off+f.sizes[i] : off+f.sizes[i]]
		off += f.sizes[i]
	}
	return p
}

// trainerGradient is the mean cross-entropy over (x, y) and its gradient
// with respect to the trainer's parameters (laid out by fp), in batches.
func trainerGradient(tr *ort.Trainer, fp flatParams, x []float32, y []int64, dim, batch int) hessian.GradientFunc {
	return hessian.Mean(len(y), batch, func(ctx context.Context, w []float32, lo, hi int) ([]float32, float64, error) {
		r, err := tr.Step(ctx, fp.view(w), nil, x[lo*dim:hi*dim], hi-lo, y[lo:hi])
		if err != nil {
			return nil, 0, err
		}
		return fp.flatten(r.Grads), float64(r.Loss), nil
	})
}

// meanCE is the mean cross-entropy of clf's logits on (x, y), in float64.
func meanCE(ctx context.Context, clf *ort.Classifier, x []float32, y []int64, dim, batch int) (float64, error) {
	k := clf.NumClasses()
	var sum float64
	for lo := 0; lo < len(y); lo += batch {
		hi := min(lo+batch, len(y))
		z, err := clf.Logits(ctx, x[lo*dim:hi*dim], hi-lo)
		if err != nil {
			return 0, err
		}
		for i := range hi - lo {
			row := z[i*k : (i+1)*k]
			m := float64(slices.Max(row))
			var s float64
			for _, v := range row {
				s += math.Exp(float64(v) - m)
			}
			sum += m + math.Log(s) - float64(row[y[lo+i]])
		}
	}
	return sum / float64(len(y)), nil
}

func ptr(v float64) *float64 { return &v }

func runBound(c *cli.Context, w, errw io.Writer) error {
	eng, err := engineOptions(c)
	if err != nil {
		return err
	}
	k, at := c.Int("fb-layers"), c.Int("at")
	if (k == 0) == (at == 0) {
		return usagef("give exactly one of --fb-layers K and --at A")
	}
	if k < 0 || at < 0 {
		return usagef("--fb-layers and --at must be positive")
	}
	tol, maxIter, step := c.Float64("tol"), c.Int("max-iter"), c.Float64("fd-step")
	if !(tol > 0) || math.IsInf(tol, 0) {
		return usagef("--tol must be a positive number, got %g", tol)
	}
	if maxIter < 1 {
		return usagef("--max-iter must be at least 1, got %d", maxIter)
	}
	if !(step > 0 && step < 1) {
		return usagef("--fd-step must be in (0, 1), got %g", step)
	}
	lossChange := c.Float64("fd-loss-change")
	if !(lossChange > 0) || math.IsInf(lossChange, 0) {
		return usagef("--fd-loss-change must be a positive number, got %g", lossChange)
	}
	if c.Int("steps") < 0 || c.Int("restarts") < 0 {
		return usagef("--steps and --restarts must not be negative (0 = the attack's default)")
	}
	var attack attacks.Attack
	if adv := c.String("adv"); adv != "none" {
		// --adv is also --attack, the flag buildAttacks reads.
		list, err := buildAttacks(c)
		if err != nil {
			return err
		}
		if len(list) != 1 {
			return usagef("--adv takes one attack, got %d", len(list))
		}
		attack = list[0]
	}
	robustPath, ftPath := c.String("robust"), c.String("finetuned")
	robust, err := loadModel(c, robustPath)
	if err != nil {
		return err
	}
	ft, err := loadModel(c, ftPath)
	if err != nil {
		return err
	}
	an, err := analyzer.Analyze(robust)
	if err != nil {
		return fmt.Errorf("%s: %w", robustPath, err)
	}
	var cut *analyzer.Cut
	if k > 0 {
		cut, err = an.CutTail(k)
	} else {
		cut, err = an.CutAfter(at)
	}
	if err != nil {
		return usagef("%v", err)
	}
	part := an.Partition(cut)
	if len(part.TailParams) == 0 {
		return fmt.Errorf("the split after layer %d leaves no trainable parameter in the tail", cut.After)
	}
	rp, err := checkpoint.Export(robust)
	if err != nil {
		return fmt.Errorf("%s: %w", robustPath, err)
	}
	fp, err := checkpoint.Export(ft)
	if err != nil {
		return fmt.Errorf("%s: %w", ftPath, err)
	}
	rv, fv := map[string][]float32{}, map[string][]float32{}
	for _, group := range [][]string{part.HeadParams, part.TailParams, part.HeadStats, part.TailStats} {
		for _, n := range group {
			a, inR := rp[n]
			b, inF := fp[n]
			if !inR || !inF {
				missing := ftPath
				if !inR {
					missing = robustPath
				}
				return fmt.Errorf("parameter %s is missing from %s: the models must have the same parameter names (a fine-tuned model written by srtool finetune has them)", n, missing)
			}
			if !slices.Equal(a.Shape, b.Shape) {
				return fmt.Errorf("parameter %s has shape %v in %s but %v in %s: architectures do not match", n, a.Shape, robustPath, b.Shape, ftPath)
			}
			if rv[n], err = a.Float32s(); err != nil {
				return fmt.Errorf("%s: %s: %w", robustPath, n, err)
			}
			if fv[n], err = b.Float32s(); err != nil {
				return fmt.Errorf("%s: %s: %w", ftPath, n, err)
			}
		}
	}
	sqDiff := func(names []string) float64 {
		var s float64
		for _, n := range names {
			for i, a := range rv[n] {
				d := float64(fv[n][i]) - float64(a)
				s += d * d
			}
		}
		return s
	}
	d, err := loadData(c)
	if err != nil {
		return err
	}
	tailFlat, err := newFlatParams(part.TailParams, rv)
	if err != nil {
		return err
	}
	allFlat, err := newFlatParams(append(slices.Clone(part.HeadParams), part.TailParams...), rv)
	if err != nil {
		return err
	}
	rep := boundReport{Header: newHeader(c), Robust: robustPath, Finetuned: ftPath, Data: d.Name, N: d.Len(), Inputs: "clean",
		Layers: len(an.Layers), FbLayers: len(an.Layers) - cut.After, CutAfter: cut.After, TailParams: tailFlat.dim, AllParams: allFlat.dim,
		HeadDiffNorm:      math.Sqrt(sqDiff(part.HeadParams) + sqDiff(part.HeadStats)),
		TailStatsDiffNorm: math.Sqrt(sqDiff(part.TailStats)),
		WeightDiffSq:      ptr(sqDiff(part.TailParams)),
		Power:             hessian.PowerOptions{Tol: tol, MaxIter: maxIter, Seed: uint64(c.Int64("seed"))},
		FDStep:            step, FDLossChange: lossChange, FDRichardson: c.Bool("fd-richardson"), Device: eng.Device.String()}
	if rep.HeadDiffNorm != 0 {
		fmt.Fprintf(errw, "warning: the heads differ (‖ω~_a − ω*_a‖ = %.6g): %s is not %s's head with a fine-tuned tail; the bound assumes a frozen head\n", rep.HeadDiffNorm, ftPath, robustPath)
	}
	start := time.Now()
	runErr := computeBound(c.Context, &rep, boundInputs{robust: robust, ft: ft, d: d, attack: attack, part: part, tail: tailFlat, all: allFlat,
		rv: rv, fv: fv, eng: eng, batch: c.Int("batch")}, errw)
	rep.Seconds = time.Since(start).Seconds()
	if runErr != nil && !isCancel(runErr) && rep.LossGap == nil {
		return runErr // refused before any result (data shape, labels, sessions)
	}
	printBound(w, &rep)
	if runErr != nil {
		rep.MarkIncomplete(runErr)
		if err := report.WriteJSON(c.String("json"), rep); err != nil {
			return err
		}
		if !isCancel(runErr) {
			return runErr
		}
		done := "bound stopped before " + boundStage(&rep) + "; unfinished numbers are not reported"
		if p := c.String("json"); p != "" {
			done += "; " + p + " says complete: false"
		}
		return interrupted(runErr, done, "run the command again (bound has no resume)")
	}
	return report.WriteJSON(c.String("json"), rep)
}

// boundStage names the first number of rep that is missing.
func boundStage(rep *boundReport) string {
	switch {
	case rep.LossGap == nil:
		return "the loss gap was measured"
	case rep.QuadraticForm == nil:
		return "the quadratic form was computed"
	case rep.LambdaMaxTail == nil:
		return "the tail's power iteration finished"
	default:
		return "the power iteration over all parameters finished"
	}
}

type boundInputs struct {
	robust, ft *onnxio.Model
	d          *dataset.Dataset
	attack     attacks.Attack
	part       analyzer.Partition
	tail, all  flatParams
	rv, fv     map[string][]float32
	eng        ort.Options
	batch      int
}

// computeBound fills rep's numbers in order: inputs, losses, the quadratic
// form along Δω, the tail's λmax, then λmax over all parameters. It returns
// at the first error with what finished in rep.
func computeBound(ctx context.Context, rep *boundReport, in boundInputs, errw io.Writer) error {
	d := in.d
	dim := d.C * d.H * d.W
	clfR, err := ort.NewClassifier(in.robust, in.eng)
	if err != nil {
		return fmt.Errorf("%s: %w", rep.Robust, err)
	}
	defer clfR.Close()
	if err := checkInputShape(rep.Robust, clfR.InputShape(), d); err != nil {
		return err
	}
	if err := checkLabels(d, clfR.NumClasses(), rep.Robust); err != nil {
		return err
	}
	x := d.X
	if in.attack != nil {
		r, err := attacks.AdversarialAccuracy(ctx, clfR, d.X, d.Y, in.attack, in.batch, newProgress(errw, in.attack.Name()+" at ω*").update)
		if err != nil {
			return err
		}
		x, rep.Inputs, rep.AdvAccuracy = r.Adv, in.attack.Name(), ptr(r.Accuracy)
	}
	clfF, err := ort.NewClassifier(in.ft, in.eng)
	if err != nil {
		return fmt.Errorf("%s: %w", rep.Finetuned, err)
	}
	defer clfF.Close()
	lr, err := meanCE(ctx, clfR, x, d.Y, dim, in.batch)
	if err != nil {
		return err
	}
	lf, err := meanCE(ctx, clfF, x, d.Y, dim, in.batch)
	if err != nil {
		return err
	}
	rep.LossRobust, rep.LossFinetuned, rep.LossGap = ptr(lr), ptr(lf), ptr(lf-lr)
	// ω* with ω~'s tail parameters and ω*'s BN statistics.
	clfS, err := ort.NewClassifierWithParams(in.robust, in.eng, in.tail.names)
	if err != nil {
		return err
	}
	defer clfS.Close()
	if err := clfS.SetParams(in.tail.view(in.tail.flatten(in.fv))); err != nil {
		return err
	}
	ls, err := meanCE(ctx, clfS, x, d.Y, dim, in.batch)
	if err != nil {
		return err
	}
	rep.LossGapSameStats = ptr(ls - lr)
	clfS.Close()

	// The tail block: the gradient at ω* and one product along Δω, on the
	// model with its ReLU gates frozen at ω* (hessian.FreezeGates).
	gated, _, err := hessian.FreezeGates(in.robust)
	if err != nil {
		return err
	}
	trT, _, _, err := ort.NewTrainer(gated, in.eng, ort.TrainerOptions{Trainable: in.part.TailParams})
	if err != nil {
		return err
	}
	defer trT.Close()
	gradT := trainerGradient(trT, in.tail, x, d.Y, dim, in.batch)
	wStar := in.tail.flatten(in.rv)
	wTilde := in.tail.flatten(in.fv)
	g0, l0, err := gradT(ctx, wStar)
	if err != nil {
		return err
	}
	_, lg, err := gradT(ctx, wTilde)
	if err != nil {
		return err
	}
	rep.GradientCalls += 2
	rep.LossGapFrozenGates = ptr(lg - l0)
	delta := make([]float64, len(wStar))
	for i := range delta {
		delta[i] = float64(wTilde[i]) - float64(wStar[i])
	}
	rep.LinearTerm, rep.GradNormTail = ptr(hessian.Dot(g0, delta)), ptr(math.Sqrt(hessian.Dot(g0, g0)))
	fdT := &hessian.FiniteDiff{Grad: gradT, W: wStar, Step: rep.FDStep, LossChange: rep.FDLossChange, Richardson: rep.FDRichardson}
	hd, err := fdT.Product(ctx, delta)
	rep.GradientCalls += fdT.Calls
	rep.FDRedone += fdT.Redone
	fdT.Calls, fdT.Redone = 0, 0
	if err != nil {
		return err
	}
	rep.QuadraticForm = ptr(0.5 * hessian.Dot(delta, hd))
	rep.Taylor2 = ptr(*rep.LinearTerm + *rep.QuadraticForm)

	power := func(label string, fd *hessian.FiniteDiff, dim int) (hessian.Eigen, error) {
		bar := newProgressUnit(errw, "power iteration, "+label, "iterations")
		o := rep.Power
		o.Progress = func(it int, _, _ float64) { bar.update(it, o.MaxIter) }
		e, err := hessian.MaxEigenvalue(ctx, dim, fd.Product, o)
		rep.GradientCalls += fd.Calls
		rep.FDRedone += fd.Redone
		fd.Calls, fd.Redone = 0, 0
		return e, err
	}
	eT, err := power("tail", fdT, in.tail.dim)
	if err != nil {
		return err
	}
	rep.PowerTail, rep.LambdaMaxTail = &eT, ptr(eT.Value)
	rep.Bound = ptr(0.5 * eT.Value * *rep.WeightDiffSq)
	trT.Close()

	trA, _, _, err := ort.NewTrainer(gated, in.eng, ort.TrainerOptions{Trainable: in.all.names})
	if err != nil {
		return err
	}
	defer trA.Close()
	fdA := &hessian.FiniteDiff{Grad: trainerGradient(trA, in.all, x, d.Y, dim, in.batch), W: in.all.flatten(in.rv), Step: rep.FDStep, LossChange: rep.FDLossChange, Richardson: rep.FDRichardson}
	eA, err := power("all parameters", fdA, in.all.dim)
	if err != nil {
		return err
	}
	rep.PowerAll, rep.LambdaMaxAll = &eA, ptr(eA.Value)
	return nil
}

func printBound(w io.Writer, rep *boundReport) {
	num := func(p *float64) string {
		if p == nil {
			return "not finished"
		}
		return fmt.Sprintf("%.6g", *p)
	}
	conv := func(e *hessian.Eigen) string {
		if e == nil {
			return ""
		}
		s := fmt.Sprintf(" (%d products, converged)", e.Iterations)
		if !e.Converged {
			s = fmt.Sprintf(" (%d products, NOT converged)", e.Iterations)
		}
		return s
	}
	fmt.Fprintf(w, "ω* %s, ω~ %s: tail of %d weight layers (after layer %d), %d tail / %d parameters; %d %s samples of %s\n",
		rep.Robust, rep.Finetuned, rep.FbLayers, rep.CutAfter, rep.TailParams, rep.AllParams, rep.N, rep.Inputs, rep.Data)
	fmt.Fprintf(w, "λmax tail            %s%s\n", num(rep.LambdaMaxTail), conv(rep.PowerTail))
	fmt.Fprintf(w, "λmax all             %s%s\n", num(rep.LambdaMaxAll), conv(rep.PowerAll))
	fmt.Fprintf(w, "‖ω~_b − ω*_b‖²       %s\n", num(rep.WeightDiffSq))
	fmt.Fprintf(w, "bound ½λ‖Δω_b‖²      %s\n", num(rep.Bound))
	fmt.Fprintf(w, "½ ΔωᵀHΔω             %s\n", num(rep.QuadraticForm))
	fmt.Fprintf(w, "∇ℓ(ω*)ᵀΔω            %s\n", num(rep.LinearTerm))
	fmt.Fprintf(w, "loss gap ℓ(ω~)−ℓ(ω*) %s (ω~'s tail parameters with ω*'s BN statistics: %s; and with ω*'s ReLU gates: %s)\n", num(rep.LossGap), num(rep.LossGapSameStats), num(rep.LossGapFrozenGates))
	if rep.HeadDiffNorm != 0 {
		fmt.Fprintf(w, "head difference      %.6g (nonzero: the head was not frozen)\n", rep.HeadDiffNorm)
	}
}
