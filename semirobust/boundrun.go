package semirobust

import (
	"context"
	"fmt"

	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/hessian"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/report"
)

// TrialBound is the weight-difference bound of one trial's best model
// (Options.Bound): at ω* = f* and ω~ = that model (f*'s head, the
// fine-tuned tail of the row's K weight layers), on the ρ data's clean
// inputs, as `srtool bound --fb-layers K` computes it (NewBound,
// Bound.Compute) with tolerance 1e-4, at most 100 products and the run's
// seed.
type TrialBound struct {
	Trial int `json:"trial"`
	// LambdaMaxTail and LambdaMaxAll are the largest Hessian eigenvalues
	// of the mean cross-entropy at ω* over the tail's trainable parameters
	// and over all of them; WeightDiffSq is ‖ω~_b − ω*_b‖².
	LambdaMaxTail float64 `json:"lambda_max_tail"`
	LambdaMaxAll  float64 `json:"lambda_max_all"`
	WeightDiffSq  float64 `json:"weight_diff_sq"`
	// Bound is ½ λmax_tail ‖Δω_b‖², QuadraticForm ½ ΔωᵀHΔω and LossGap the
	// measured ℓ(ω~) − ℓ(ω*).
	Bound         float64 `json:"bound"`
	QuadraticForm float64 `json:"quadratic_form"`
	LossGap       float64 `json:"loss_gap"`
	// Converged says both power iterations converged; PowerTail and
	// PowerAll are their iterations, convergence and last relative change.
	Converged bool          `json:"converged"`
	PowerTail hessian.Eigen `json:"power_tail"`
	PowerAll  hessian.Eigen `json:"power_all"`
}

// BoundPower are the power-iteration settings of a run's bounds: `srtool
// bound`'s defaults, seeded with the run's seed.
func BoundPower(seed uint64) hessian.PowerOptions {
	return hessian.PowerOptions{Tol: 1e-4, MaxIter: 100, Seed: seed}
}

// TrialBoundOptions are the BoundOptions of a trial's bound: ω* robust,
// ω~ finetuned (paths for messages), the tail of K weight layers,
// clean inputs, BoundPower(seed) and the default finite differences.
func TrialBoundOptions(robust, finetuned *onnxio.Model, robustPath, finetunedPath string, k int, eng ort.Options, batch int, seed uint64, progress Progress) BoundOptions {
	return BoundOptions{Robust: robust, Finetuned: finetuned, RobustPath: robustPath, FinetunedPath: finetunedPath,
		FbLayers: k, Engine: eng, Batch: batch, Power: BoundPower(seed),
		FDStep: hessian.DefaultStep, FDLossChange: hessian.DefaultLossChange, Progress: progress}
}

// ComputeTrialBound computes trial's bound with o on d.
func ComputeTrialBound(ctx context.Context, o BoundOptions, d *dataset.Dataset, trial int) (*TrialBound, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	b, err := NewBound(o, report.Header{})
	if err != nil {
		return nil, fmt.Errorf("bound of trial %d: %w", trial, err)
	}
	if err := b.Compute(ctx, d); err != nil {
		return nil, fmt.Errorf("bound of trial %d: %w", trial, err)
	}
	return TrialBoundOf(&b.Report, trial), nil
}

// TrialBoundOf takes a finished BoundReport's numbers (nil when one is
// missing).
func TrialBoundOf(rep *BoundReport, trial int) *TrialBound {
	if rep.LambdaMaxTail == nil || rep.LambdaMaxAll == nil || rep.WeightDiffSq == nil || rep.Bound == nil ||
		rep.QuadraticForm == nil || rep.LossGap == nil || rep.PowerTail == nil || rep.PowerAll == nil {
		return nil
	}
	return &TrialBound{Trial: trial, LambdaMaxTail: *rep.LambdaMaxTail, LambdaMaxAll: *rep.LambdaMaxAll,
		WeightDiffSq: *rep.WeightDiffSq, Bound: *rep.Bound, QuadraticForm: *rep.QuadraticForm, LossGap: *rep.LossGap,
		Converged: rep.PowerTail.Converged && rep.PowerAll.Converged, PowerTail: *rep.PowerTail, PowerAll: *rep.PowerAll}
}

// headerWithoutOptInsOff is h without the recorded flags of the opt-in
// measurements that are off (optIns: flag name → whether it is on;
// "bound", "rho-every-epoch"): a run without them records (and
// fingerprints) the flags it did before those flags existed, so its
// reports and work units stay the same. The caller's flag map is not
// changed.
func headerWithoutOptInsOff(h report.Header, optIns map[string]bool) report.Header {
	drop := false
	for name, on := range optIns {
		if _, ok := h.Run.Flags[name]; ok && !on {
			drop = true
		}
	}
	if !drop {
		return h
	}
	flags := make(map[string]any, len(h.Run.Flags))
	for k, v := range h.Run.Flags {
		if on, optIn := optIns[k]; !optIn || on {
			flags[k] = v
		}
	}
	h.Run.Flags = flags
	return h
}
