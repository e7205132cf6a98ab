package semirobust

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/hessian"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/report"
)

// BoundReport is the weight-difference bound's report (`srtool bound
// --json`). The paper's numbers are top-level keys; a number whose
// computation did not finish is absent (null).
type BoundReport struct {
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
func trainerGradient(tr *diffmodel.Trainer, fp flatParams, x []float32, y []int64, dim, batch int) hessian.GradientFunc {
	return hessian.Mean(len(y), batch, func(ctx context.Context, w []float32, lo, hi int) ([]float32, float64, error) {
		r, err := tr.Step(ctx, fp.view(w), nil, x[lo*dim:hi*dim], hi-lo, y[lo:hi])
		if err != nil {
			return nil, 0, err
		}
		return fp.flatten(r.Grads), float64(r.Loss), nil
	})
}

// meanCE is the mean cross-entropy of clf's logits on (x, y), in float64.
func meanCE(ctx context.Context, clf *diffmodel.Classifier, x []float32, y []int64, dim, batch int) (float64, error) {
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

// BoundOptions are the inputs of the weight-difference bound.
type BoundOptions struct {
	// Robust is ω* and Finetuned ω~ (ω*'s head, a fine-tuned tail), read
	// from RobustPath and FinetunedPath, which the report names.
	Robust, Finetuned         *onnxio.Model
	RobustPath, FinetunedPath string
	// Exactly one of FbLayers (the tail holds the last K weight layers) and
	// At (the head holds weight layers 1..A) is positive.
	FbLayers, At int
	// Attack, if set, makes the inputs at ω* first (nil: clean inputs).
	Attack attacks.Attack
	Engine ort.Options
	Batch  int
	// Power is the power iteration's tolerance, iterations and seed;
	// FDStep [hessian.DefaultStep], FDLossChange [hessian.DefaultLossChange]
	// and FDRichardson set the finite differences (hessian.FiniteDiff).
	Power        hessian.PowerOptions
	FDStep       float64
	FDLossChange float64
	FDRichardson bool
	// Progress reports the attack and the power iterations.
	Progress Progress
}

// Validate checks o's settings (not its models): exactly one of FbLayers
// and At, neither negative; a positive Power.Tol and FDLossChange, at
// least one Power.MaxIter, FDStep in (0, 1). Errors wrap ErrOption and
// name srtool bound's flags.
func (o BoundOptions) Validate() error {
	switch tol, step, change := o.Power.Tol, o.FDStep, o.FDLossChange; {
	case (o.FbLayers == 0) == (o.At == 0):
		return optionf("give exactly one of --fb-layers K and --at A")
	case o.FbLayers < 0 || o.At < 0:
		return optionf("--fb-layers and --at must be positive")
	case !(tol > 0) || math.IsInf(tol, 0):
		return optionf("--tol must be a positive number, got %g", tol)
	case o.Power.MaxIter < 1:
		return optionf("--max-iter must be at least 1, got %d", o.Power.MaxIter)
	case !(step > 0 && step < 1):
		return optionf("--fd-step must be in (0, 1), got %g", step)
	case !(change > 0) || math.IsInf(change, 0):
		return optionf("--fd-loss-change must be a positive number, got %g", change)
	}
	return nil
}

// Bound is a bound computation: NewBound checks the models and measures
// the weight differences; Compute measures the rest on data.
type Bound struct {
	Report   BoundReport
	in       boundInputs
	progress Progress
}

// NewBound splits ω* at the options' K or A, checks that ω~ has the same
// parameters, and fills the report's sizes, settings and weight
// differences (header h opens it). A split the model cannot take wraps
// ErrOption.
func NewBound(o BoundOptions, h report.Header) (*Bound, error) {
	an, err := analyzer.Analyze(o.Robust)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.RobustPath, err)
	}
	var cut *analyzer.Cut
	if o.FbLayers > 0 {
		cut, err = an.CutTail(o.FbLayers)
	} else {
		cut, err = an.CutAfter(o.At)
	}
	if err != nil {
		return nil, optionf("%v", err)
	}
	part := an.Partition(cut)
	if len(part.TailParams) == 0 {
		return nil, fmt.Errorf("the split after layer %d leaves no trainable parameter in the tail", cut.After)
	}
	rp, err := checkpoint.Export(o.Robust)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.RobustPath, err)
	}
	fp, err := checkpoint.Export(o.Finetuned)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.FinetunedPath, err)
	}
	rv, fv := map[string][]float32{}, map[string][]float32{}
	for _, group := range [][]string{part.HeadParams, part.TailParams, part.HeadStats, part.TailStats} {
		for _, n := range group {
			a, inR := rp[n]
			b, inF := fp[n]
			if !inR || !inF {
				missing := o.FinetunedPath
				if !inR {
					missing = o.RobustPath
				}
				return nil, fmt.Errorf("parameter %s is missing from %s: the models must have the same parameter names (a fine-tuned model written by srtool finetune has them)", n, missing)
			}
			if !slices.Equal(a.Shape, b.Shape) {
				return nil, fmt.Errorf("parameter %s has shape %v in %s but %v in %s: architectures do not match", n, a.Shape, o.RobustPath, b.Shape, o.FinetunedPath)
			}
			if rv[n], err = a.Float32s(); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", o.RobustPath, n, err)
			}
			if fv[n], err = b.Float32s(); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", o.FinetunedPath, n, err)
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
	tailFlat, err := newFlatParams(part.TailParams, rv)
	if err != nil {
		return nil, err
	}
	allFlat, err := newFlatParams(append(slices.Clone(part.HeadParams), part.TailParams...), rv)
	if err != nil {
		return nil, err
	}
	b := &Bound{progress: o.Progress,
		in: boundInputs{robust: o.Robust, ft: o.Finetuned, attack: o.Attack, part: part, tail: tailFlat, all: allFlat, rv: rv, fv: fv, eng: o.Engine, batch: o.Batch}}
	b.Report = BoundReport{Header: h, Robust: o.RobustPath, Finetuned: o.FinetunedPath, Inputs: "clean",
		Layers: len(an.Layers), FbLayers: len(an.Layers) - cut.After, CutAfter: cut.After, TailParams: tailFlat.dim, AllParams: allFlat.dim,
		HeadDiffNorm:      math.Sqrt(sqDiff(part.HeadParams) + sqDiff(part.HeadStats)),
		TailStatsDiffNorm: math.Sqrt(sqDiff(part.TailStats)),
		WeightDiffSq:      ptr(sqDiff(part.TailParams)),
		Power:             o.Power,
		FDStep:            o.FDStep, FDLossChange: o.FDLossChange, FDRichardson: o.FDRichardson, Device: o.Engine.Device.String()}
	return b, nil
}

// Run computes the bound on d as `srtool bound` does: a warning on errw
// when the heads differ, Compute, the numbers on w (PrintBound) and the
// report to jsonPath ("" for none). Refused before any number it returns
// the error alone; a cancelled run writes what finished and returns a
// *StoppedError saying so; another failure after the loss gap writes the
// partial report and returns the error.
func (b *Bound) Run(ctx context.Context, d *dataset.Dataset, jsonPath string, w, errw io.Writer) error {
	rep := &b.Report
	if rep.HeadDiffNorm != 0 {
		fmt.Fprintf(errw, "warning: the heads differ (‖ω~_a − ω*_a‖ = %.6g): %s is not %s's head with a fine-tuned tail; the bound assumes a frozen head\n", rep.HeadDiffNorm, rep.Finetuned, rep.Robust)
	}
	start := time.Now()
	runErr := b.Compute(ctx, d)
	rep.Seconds = time.Since(start).Seconds()
	if runErr != nil && !report.IsCancel(runErr) && rep.LossGap == nil {
		return runErr // refused before any result (data shape, labels, sessions)
	}
	PrintBound(w, rep)
	if runErr != nil {
		rep.MarkIncomplete(runErr)
		if err := report.WriteJSON(jsonPath, rep); err != nil {
			return err
		}
		if !report.IsCancel(runErr) {
			return runErr
		}
		done := "bound stopped before " + BoundStage(rep) + "; unfinished numbers are not reported"
		if p := jsonPath; p != "" {
			done += "; " + p + " says complete: false"
		}
		return &StoppedError{Err: runErr, Done: done}
	}
	return report.WriteJSON(jsonPath, rep)
}

// BoundStage names the first number of rep that is missing.
func BoundStage(rep *BoundReport) string {
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
	attack     attacks.Attack
	part       analyzer.Partition
	tail, all  flatParams
	rv, fv     map[string][]float32
	eng        ort.Options
	batch      int
}

// Compute measures the bound on d (clean, or attacked at ω* with the
// options' Attack), filling the report's numbers in order: inputs, losses,
// the quadratic form along Δω, the tail's λmax, then λmax over all
// parameters. It returns at the first error with what finished in the
// report.
func (b *Bound) Compute(ctx context.Context, d *dataset.Dataset) error {
	rep, in, progress := &b.Report, b.in, b.progress
	rep.Data, rep.N = d.Name, d.Len()
	dim := d.C * d.H * d.W
	clfR, err := diffmodel.NewClassifier(in.robust, in.eng)
	if err != nil {
		return fmt.Errorf("%s: %w", rep.Robust, err)
	}
	defer clfR.Close()
	if err := d.CheckShape(rep.Robust, clfR.InputShape()); err != nil {
		return err
	}
	if err := d.CheckLabels(clfR.NumClasses(), rep.Robust); err != nil {
		return err
	}
	x := d.X
	if in.attack != nil {
		r, err := attacks.AdversarialAccuracy(ctx, clfR, d.X, d.Y, in.attack, in.batch, progress.samples(in.attack.Name()+" at ω*"))
		if err != nil {
			return err
		}
		x, rep.Inputs, rep.AdvAccuracy = r.Adv, in.attack.Name(), ptr(r.Accuracy)
	}
	clfF, err := diffmodel.NewClassifier(in.ft, in.eng)
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
	clfS, err := diffmodel.NewClassifierWithParams(in.robust, in.eng, in.tail.names)
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
	trT, _, _, err := diffmodel.NewTrainer(gated, in.eng, diffmodel.TrainerOptions{Trainable: in.part.TailParams})
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
		bar := progress.start("power iteration, "+label, "iterations")
		o := rep.Power
		if bar != nil {
			o.Progress = func(it int, _, _ float64) { bar(it, o.MaxIter) }
		}
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

	trA, _, _, err := diffmodel.NewTrainer(gated, in.eng, diffmodel.TrainerOptions{Trainable: in.all.names})
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

func PrintBound(w io.Writer, rep *BoundReport) {
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
