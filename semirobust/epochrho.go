package semirobust

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/plotting"
)

// Thresholds are the stopping thresholds k (accuracy points below Acc*)
// at which a report with ρ after every epoch (Options.RhoEveryEpoch) gives
// ρ_n: the paper stops a trial at Acc* − k and reports ρ of the model it
// stopped with, so ρ at k says what that ρ would have been for each k.
var Thresholds = []float64{0, 1, 2, 5, 10, 20}

// ThresholdRho is ρ_n at one stopping threshold k over a row's trials:
// each trial's first epoch whose accuracy reached Acc* − k and ρ_n after
// that epoch. A trial that stopped at the run's own threshold (converged)
// before reaching Acc* − k is censored: it cannot say when it would have;
// one that ran all its epochs without reaching it did not reach it.
type ThresholdRho struct {
	K          float64 `json:"k"`
	Reached    int     `json:"trials_reached"`
	Censored   int     `json:"trials_censored"`
	NotReached int     `json:"trials_not_reached"`
	// MeanEpoch is the mean epoch of the trials that reached Acc* − k,
	// Rhos their ρ_n there (those the estimator gave a finite value) and
	// MeanRho its mean; absent when there are none.
	MeanEpoch *float64  `json:"mean_epoch,omitempty"`
	MeanRho   *float64  `json:"mean_rho_n,omitempty"`
	Rhos      []float64 `json:"rho_n,omitempty"`
}

// epochRhoKey is the epoch-metrics key of ρ of the pair parent:child (as
// FinetuneJob.EpochRho writes it).
func epochRhoKey(p Pair) string { return fmt.Sprintf("rho_%d:%d", p.Parent, p.Child) }

// hasEpochRhos says every epoch of f holds ρ values.
func hasEpochRhos(f *finetune.TrialResult) bool {
	if f == nil || len(f.Epochs) == 0 {
		return false
	}
	for _, e := range f.Epochs {
		found := false
		for k := range e.Extra {
			found = found || strings.HasPrefix(k, "rho_")
		}
		if !found {
			return false
		}
	}
	return true
}

// rhoAtThresholds is ρ_n (the pair last, as rhos orders them) at each of
// Thresholds over the trials of histories, for Acc* accStar. It is nil
// when the trials hold no ρ after every epoch.
func rhoAtThresholds(histories []finetune.TrialResult, accStar float64, last Pair) []ThresholdRho {
	key := epochRhoKey(last)
	for i := range histories {
		if !hasEpochRhos(&histories[i]) {
			return nil
		}
	}
	if len(histories) == 0 {
		return nil
	}
	out := make([]ThresholdRho, 0, len(Thresholds))
	for _, k := range Thresholds {
		t := ThresholdRho{K: k}
		var epochs, rhos float64
		for _, h := range histories {
			at := -1
			for i, e := range h.Epochs {
				if e.EvalAcc >= accStar-k {
					at = i
					break
				}
			}
			switch {
			case at >= 0:
				t.Reached++
				epochs += float64(h.Epochs[at].Epoch)
				if rho := h.Epochs[at].Extra[key]; !math.IsNaN(rho) && !math.IsInf(rho, 0) {
					t.Rhos = append(t.Rhos, rho)
					rhos += rho
				}
			case h.Converged:
				t.Censored++
			default:
				t.NotReached++
			}
		}
		if t.Reached > 0 {
			t.MeanEpoch = f64(epochs / float64(t.Reached))
		}
		if len(t.Rhos) > 0 {
			t.MeanRho = f64(rhos / float64(len(t.Rhos)))
		}
		out = append(out, t)
	}
	return out
}

// addRhoThresholds fills each complete row's RhoAtThreshold from its
// trials' per-epoch ρ (nothing for rows without).
func addRhoThresholds(rows []Row) {
	for i := range rows {
		r := &rows[i]
		if r.Complete && r.AccStar != nil && len(r.Rhos) > 0 {
			r.RhoAtThreshold = rhoAtThresholds(r.FinetuneHistory, *r.AccStar, r.Rhos[len(r.Rhos)-1])
		}
	}
}

// writeEpochRhoSection adds ρ after every epoch to report.md: ρ_n and the
// accuracy per trial and epoch, ρ_n at each stopping threshold k, and
// rho_epoch.png (ρ_n against Acc* − the epoch's accuracy, one series per
// row); it returns the plots written.
func writeEpochRhoSection(b *strings.Builder, dir string, rep *Report) ([]string, error) {
	has := false
	for _, r := range rep.Rows {
		has = has || len(r.RhoAtThreshold) > 0
	}
	if !has {
		return nil, nil
	}
	fmt.Fprintf(b, "\n## ρ after every epoch (trial rhos)\n\nρ_n (%s) of the fine-tuned tail's last pair after each epoch, on the ρ data attacked with the row's attack against that epoch's model, beside the epoch's accuracy; k = Acc* − accuracy is the stopping threshold the epoch would have met.\n\n", rep.Units)
	b.WriteString("| attack A | K | trial | epoch | accuracy | Acc* − accuracy | ρ_n |\n|---|---|---|---|---|---|---|\n")
	var ss []plotting.Series
	for _, r := range rep.Rows {
		if len(r.RhoAtThreshold) == 0 {
			continue
		}
		key := epochRhoKey(r.Rhos[len(r.Rhos)-1])
		label := seriesLabel(rep, r)
		s := plotting.Series{Name: label}
		for _, h := range r.FinetuneHistory {
			for _, e := range h.Epochs {
				rho := e.Extra[key]
				fmt.Fprintf(b, "| %s | %d | %d | %d | %.2f | %.2f | %.4g |\n", r.Attack, r.K, h.Trial, e.Epoch, e.EvalAcc, *r.AccStar-e.EvalAcc, rho)
				if !math.IsNaN(rho) {
					s.X, s.Y = append(s.X, *r.AccStar-e.EvalAcc), append(s.Y, rho)
				}
			}
		}
		ss = append(ss, s)
	}
	b.WriteString("\n### ρ_n at the stopping threshold k\n\nFor each k, each trial's first epoch with accuracy ≥ Acc* − k: the mean ρ_n and epoch over the trials that reached it (reached / censored / not reached: a censored trial stopped at the run's own threshold before it reached Acc* − k).\n\n| attack A | K |")
	for _, k := range Thresholds {
		fmt.Fprintf(b, " k = %g |", k)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(Thresholds)) + "\n")
	for _, r := range rep.Rows {
		if len(r.RhoAtThreshold) == 0 {
			continue
		}
		fmt.Fprintf(b, "| %s | %d |", r.Attack, r.K)
		for _, t := range r.RhoAtThreshold {
			if t.MeanRho == nil {
				fmt.Fprintf(b, " – (%d/%d/%d) |", t.Reached, t.Censored, t.NotReached)
				continue
			}
			fmt.Fprintf(b, " %.4g, epoch %.1f (%d/%d/%d) |", *t.MeanRho, *t.MeanEpoch, t.Reached, t.Censored, t.NotReached)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	const file = "rho_epoch.png"
	if err := plotting.WriteScatterPlot(filepath.Join(dir, file), "ρ_n after every epoch against the stopping threshold it meets", "k = Acc* − the epoch's accuracy (points)", "ρ_n ("+rep.Units+")", ss); err != nil {
		return nil, err
	}
	fmt.Fprintf(b, "![ρ_n against the stopping threshold](%s)\n\n", file)
	return []string{filepath.Join(dir, file)}, nil
}
