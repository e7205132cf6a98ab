package semirobust

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/internal/atomicfile"
	"github.com/semirobust/srtool/plotting"
	"github.com/semirobust/srtool/report"
)

// printRowSummary prints the summary line of the row of unit id once its
// units have all finished in this process.
func printRowSummary(w io.Writer, trials int, done map[string]*Unit, id UnitID, units string) {
	rows, err := AssembleRows([]string{id.Attack}, []int{id.K}, trials, done, true)
	if err != nil || len(rows) != 1 || !rows[0].Complete {
		return
	}
	r := rows[0]
	ep := "–"
	if r.MeanEpochs != nil {
		ep = fmt.Sprintf("%.1f", *r.MeanEpochs)
	}
	fmt.Fprintf(w, "Acc %.2f  Acc* %.2f  Acc_sr %.2f  Acc~ %.2f  Δ %+.2f  epochs %s  ρ_n %.3f %s\n",
		*r.Acc, *r.AccStar, *r.AccSR, *r.AccTilde, *r.Delta, ep, r.Rhos[len(r.Rhos)-1].Value, units)
}

// finishedWorkOf is finishedWork for a row's trial records.
func finishedWorkOf(trials []finetune.TrialResult, epochs int, best *BestSoFar) string {
	s := FinishedWork(&finetune.Result{Trials: trials}, epochs)
	if best != nil && !strings.Contains(s, "best so far") {
		s += " (" + best.String() + ")"
	}
	return s
}

// accuracySeries are the accuracy plot's lines for a row: one per trial,
// from Acc_sr at epoch 0 (before fine-tuning) through each epoch's
// evaluation accuracy, and Acc* as a level line over the same epochs.
func accuracySeries(r Row) []plotting.Series {
	var ss []plotting.Series
	last := 1
	for _, t := range r.FinetuneHistory {
		s := plotting.Series{Name: fmt.Sprintf("trial %d", t.Trial)}
		if r.AccSR != nil {
			s.X, s.Y = append(s.X, 0), append(s.Y, *r.AccSR)
		}
		for _, e := range t.Epochs {
			s.X, s.Y = append(s.X, float64(e.Epoch)), append(s.Y, e.EvalAcc)
			last = max(last, e.Epoch)
		}
		ss = append(ss, s)
	}
	if r.AccStar != nil {
		ss = append(ss, plotting.Series{Name: "Acc* (robust f*)", X: []float64{0, float64(last)}, Y: []float64{*r.AccStar, *r.AccStar}})
	}
	return ss
}

// WriteReport writes report.md and the plots into dir and, last,
// the report JSON (jsonPath; dir/report.json for a run) with the SHA-256
// of every other file it describes. An unfinished report says so at the
// top and in every cell it lacks.
func WriteReport(dir, jsonPath string, rep *Report) error {
	const nf = "not finished"
	pct := func(v *float64) string {
		if v == nil {
			return nf
		}
		return fmt.Sprintf("%.2f", *v)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Semirobust fine-tuning report\n\n")
	if !rep.Complete {
		finished := 0
		for _, r := range rep.Rows {
			if r.Complete {
				finished++
			}
		}
		fmt.Fprintf(&b, "**Not finished** (%s): %d row(s) finished. A row marked \"%s\" holds only what was measured before the run stopped; its best accuracy so far is not Acc~.\n\n", rep.Incomplete, finished, nf)
	}
	fmt.Fprintf(&b, "- normal model f: `%s`\n- robust model f*: `%s`\n- fine-tuning data: %s; evaluation data: %s\n", rep.Normal, rep.Robust, rep.Train, rep.Test)
	fmt.Fprintf(&b, "- ε = %g (%s, pixel units); frozen head BatchNorm: %s; ", rep.Eps, rep.Norm, rep.HeadBN)
	if rep.Adv != nil {
		fmt.Fprintf(&b, "adversarial fine-tuning: PGD-%d, ε %g, step %g\n", rep.Adv.Steps, rep.Adv.Epsilon, rep.Adv.StepSize)
	} else if rep.TRADES != nil {
		fmt.Fprintf(&b, "TRADES fine-tuning: β %g, ε %g, %d steps of %g\n", rep.TRADES.Beta, rep.TRADES.Epsilon, rep.TRADES.Steps, rep.TRADES.StepSize)
	} else {
		fmt.Fprintf(&b, "clean fine-tuning\n")
	}
	for _, a := range rep.Attacks {
		if a.Setting != nil {
			fmt.Fprintf(&b, "- attack %s: %s\n", a.Name, a.Setting)
		}
	}
	fmt.Fprintf(&b, "- ρ: %s (%s), per class, on the evaluation data attacked with A; pairs (j−1, j) of the last K weight layers\n", rep.Estimator.Name(), rep.Units)
	fmt.Fprintf(&b, "- model export: %s\n", rep.BNExportNote)
	if msg := rep.BNExport.Warning(); msg != "" {
		fmt.Fprintf(&b, "- **warning**: %s\n", msg)
	}
	fmt.Fprintf(&b, "\n| attack A | K | Acc | Acc* | Acc_sr | Acc~ | Acc~ − Acc* | epochs | converged | ρ_n | ρ_{n−3} | ρ_{n−7} | ρ_{n−11} |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.Rows {
		rho := func(back int) string {
			if !r.Complete {
				return nf
			}
			i := len(r.Rhos) - 1 - back
			if i < 0 {
				return "–"
			}
			return fmt.Sprintf("%.3f", r.Rhos[i].Value)
		}
		tilde, delta, ep := pct(r.AccTilde), nf, "–"
		if r.AccTilde == nil && r.BestSoFar != nil {
			tilde = fmt.Sprintf("%s (best so far %.2f)", nf, r.BestSoFar.Acc)
		}
		if r.Delta != nil {
			delta = fmt.Sprintf("%+.2f", *r.Delta)
		}
		if r.MeanEpochs != nil {
			ep = fmt.Sprintf("%.1f", *r.MeanEpochs)
		} else if !r.Complete {
			ep = nf
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %d/%d | %s | %s | %s | %s |\n",
			r.Attack, r.K, pct(r.Acc), pct(r.AccStar), pct(r.AccSR), tilde, delta, ep, r.Converged, r.Trials, rho(0), rho(3), rho(7), rho(11))
	}
	for _, r := range rep.Rows {
		if r.AccUntrained != nil {
			fmt.Fprintf(&b, "\nUntrained tail, A = %s, K = %d: f*'s head with a freshly initialised tail (zero-shot) reaches %.2f %% (Acc_sr %s %%, Acc* %s %%).\n", r.Attack, r.K, *r.AccUntrained, pct(r.AccSR), pct(r.AccStar))
		}
		if r.AccLinear != nil {
			fmt.Fprintf(&b, "\nAlgorithm S1, A = %s, K = %d: the least-squares linear predictor from the outputs of f*'s head layers reaches %.2f %% (Acc* %s %%).\n", r.Attack, r.K, *r.AccLinear, pct(r.AccStar))
		}
	}
	costPlots, err := writeCostSection(&b, dir, rep)
	if err != nil {
		return err
	}
	rep.DependenceCorrelations = DependenceCorrelations(rep.Rows)
	depPlots, err := writeDependenceSection(&b, dir, rep)
	if err != nil {
		return err
	}
	costPlots = append(costPlots, depPlots...)
	boundPlots, err := writeBoundSection(&b, dir, rep)
	if err != nil {
		return err
	}
	costPlots = append(costPlots, boundPlots...)
	epochPlots, err := writeEpochRhoSection(&b, dir, rep)
	if err != nil {
		return err
	}
	costPlots = append(costPlots, epochPlots...)
	fmt.Fprintf(&b, "\nAccuracies in percent (accuracy on the attack's adversarial examples of every test point, as the paper's torchattacks evaluation). Epochs: mean epochs to reach Acc* − k over converged trials; trials and epochs count from 1, epoch 0 of the plots is Acc_sr, before fine-tuning.\n\n")
	written := costPlots
	for _, r := range rep.Rows {
		fmt.Fprintf(&b, "## A = %s, K = %d\n\n", r.Attack, r.K)
		if r.ResumedFrom != "" {
			fmt.Fprintf(&b, "Fine-tuning resumed from a checkpoint (%s).\n\n", r.ResumedFrom)
		}
		if len(r.Rhos) > 0 {
			fmt.Fprintf(&b, "| pair | relation | before fine-tuning | after |\n|---|---|---|---|\n")
			for i := range r.Rhos {
				fmt.Fprintf(&b, "| %d:%d | %s | %.3f | %.3f |\n", r.Rhos[i].Parent, r.Rhos[i].Child, r.Rhos[i].Relation, r.RhosBefore[i].Value, r.Rhos[i].Value)
			}
			b.WriteString("\n")
		} else {
			fmt.Fprintf(&b, "ρ: %s.\n\n", nf)
		}
		if len(r.FinetuneHistory) > 0 {
			acc := fmt.Sprintf("accuracy_%s_K%d.png", r.Attack, r.K)
			if err := plotting.WriteLinePlot(filepath.Join(dir, acc), fmt.Sprintf("fine-tuning, A = %s, K = %d", r.Attack, r.K), "epoch (0: Acc_sr, before fine-tuning)", "accuracy (%)", accuracySeries(r)); err != nil {
				return err
			}
			written = append(written, filepath.Join(dir, acc))
			fmt.Fprintf(&b, "![accuracy under %s per epoch (epoch 0: Acc_sr)](%s)\n", r.Attack, acc)
		}
		if len(r.Rhos) > 0 {
			rho := fmt.Sprintf("rho_%s_K%d.png", r.Attack, r.K)
			before, after := plotting.Series{Name: "before (f*_a, f_b)"}, plotting.Series{Name: "after (f*_a, f~_b)"}
			var ticks []string
			for i := range r.Rhos {
				x := float64(i)
				sep := ":"
				if !r.Rhos[i].Connected {
					sep = "·" // consecutive, not connected
				}
				ticks = append(ticks, fmt.Sprintf("%d%s%d", r.Rhos[i].Parent, sep, r.Rhos[i].Child))
				before.X, before.Y = append(before.X, x), append(before.Y, r.RhosBefore[i].Value)
				after.X, after.Y = append(after.X, x), append(after.Y, r.Rhos[i].Value)
			}
			if err := plotting.WriteLinePlot(filepath.Join(dir, rho), fmt.Sprintf("ρ per layer pair, A = %s, K = %d", r.Attack, r.K), "weight-layer pair (parent:child; · = not connected)", rep.Units, []plotting.Series{before, after}, ticks...); err != nil {
				return err
			}
			written = append(written, filepath.Join(dir, rho))
			fmt.Fprintf(&b, "![ρ per layer pair](%s)\n", rho)
		}
		b.WriteString("\n")
	}
	md := filepath.Join(dir, "report.md")
	if err := atomicfile.WriteFile(md, []byte(b.String())); err != nil {
		return err
	}
	written = append(written, md)
	for _, r := range rep.Rows {
		if r.Model != "" {
			written = append(written, r.Model)
		}
	}
	digests, err := report.FileDigests(written...)
	if err != nil {
		return err
	}
	rep.Outputs = digests
	return report.WriteJSON(jsonPath, rep)
}

// writeCostSection adds the cost table (rows with a cost record) and the
// reference to report.md, and writes cost_K.png (wall time per epoch and to
// convergence against K) and acc_K.png (Acc~, Acc* and Acc_sr against K);
// it returns the plots written.
func writeCostSection(b *strings.Builder, dir string, rep *Report) ([]string, error) {
	has := false
	for _, r := range rep.Rows {
		has = has || r.Cost != nil
	}
	if !has && rep.Reference == nil {
		return nil, nil
	}
	opt := func(v *float64, format string) string {
		if v == nil {
			return "–"
		}
		return fmt.Sprintf(format, *v)
	}
	fmt.Fprintf(b, "\n## Cost per K\n\n| attack A | K | trainable parameters | s / epoch | s to converge | epochs to converge | epochs run | peak RSS (MiB) | Go runtime (MiB) | Acc~ | Acc~ − Acc* |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.Rows {
		if r.Cost == nil {
			continue
		}
		c := r.Cost
		fmt.Fprintf(b, "| %s | %d | %d | %.2f | %s | %s | %d | %.0f | %.0f | %s | %s |\n", r.Attack, r.K, c.TrainableParams, c.EpochSeconds,
			opt(c.ConvergeSeconds, "%.2f"), opt(c.EpochsToConverge, "%.1f"), c.EpochsRun, c.PeakRSSMiB, c.GoSysMiB, opt(r.AccTilde, "%.2f"), opt(r.Delta, "%+.2f"))
	}
	if ref := rep.Reference; ref != nil && ref.Cost != nil {
		c := ref.Cost
		fmt.Fprintf(b, "| reference: full adversarial training of f (%s) | all | %d | %.2f | %s | %s | %d | %.0f | %.0f | %.2f | %+.2f |\n", ref.Attack, c.TrainableParams, c.EpochSeconds,
			opt(c.ConvergeSeconds, "%.2f"), opt(c.EpochsToConverge, "%.1f"), c.EpochsRun, c.PeakRSSMiB, c.GoSysMiB, ref.BestAcc, ref.Delta)
	}
	fmt.Fprintf(b, "\nWall times are the mean over every epoch of the row's trials (training, evaluation and metrics of the epoch) and the mean over converged trials of the time to reach Acc* − k; they depend on the machine and its load. Memory: %s.", MemoryNote)
	if rep.Reference != nil {
		fmt.Fprintf(b, " The reference adversarially trains every layer of f from its weights, with the same data, epochs, optimiser and --adv, its target the Acc* of %s.", rep.Reference.Attack)
	}
	b.WriteString("\n\n")
	var written []string
	var timeSS, accSS []plotting.Series
	for _, a := range rep.Attacks {
		ep, cv := plotting.Series{Name: "s / epoch, " + a.Name}, plotting.Series{Name: "s to converge, " + a.Name}
		tilde, star, sr := plotting.Series{Name: "Acc~, " + a.Name}, plotting.Series{Name: "Acc*, " + a.Name}, plotting.Series{Name: "Acc_sr, " + a.Name}
		for _, r := range rep.Rows {
			if r.Attack != a.Name || r.Cost == nil {
				continue
			}
			x := float64(r.K)
			ep.X, ep.Y = append(ep.X, x), append(ep.Y, r.Cost.EpochSeconds)
			if r.Cost.ConvergeSeconds != nil {
				cv.X, cv.Y = append(cv.X, x), append(cv.Y, *r.Cost.ConvergeSeconds)
			}
			for _, p := range []struct {
				s *plotting.Series
				v *float64
			}{{&tilde, r.AccTilde}, {&star, r.AccStar}, {&sr, r.AccSR}} {
				if p.v != nil {
					p.s.X, p.s.Y = append(p.s.X, x), append(p.s.Y, *p.v)
				}
			}
		}
		for _, s := range []plotting.Series{ep, cv} {
			if len(s.X) > 0 {
				timeSS = append(timeSS, s)
			}
		}
		for _, s := range []plotting.Series{tilde, star, sr} {
			if len(s.X) > 0 {
				accSS = append(accSS, s)
			}
		}
	}
	if len(timeSS) == 0 {
		return nil, nil
	}
	if ref := rep.Reference; ref != nil && ref.Cost != nil {
		lo, hi := timeSS[0].X[0], timeSS[0].X[len(timeSS[0].X)-1]
		timeSS = append(timeSS, plotting.Series{Name: "reference s / epoch", X: []float64{lo, hi}, Y: []float64{ref.Cost.EpochSeconds, ref.Cost.EpochSeconds}})
		if ref.Cost.ConvergeSeconds != nil {
			timeSS = append(timeSS, plotting.Series{Name: "reference s to converge", X: []float64{lo, hi}, Y: []float64{*ref.Cost.ConvergeSeconds, *ref.Cost.ConvergeSeconds}})
		}
	}
	for _, p := range []struct {
		file, title, ylabel string
		ss                  []plotting.Series
	}{
		{"cost_K.png", "fine-tuning cost against K", "wall time (s)", timeSS},
		{"acc_K.png", "accuracy against K", "accuracy (%)", accSS},
	} {
		if len(p.ss) == 0 {
			continue
		}
		if err := plotting.WriteLinePlot(filepath.Join(dir, p.file), p.title, "K (weight layers in the tail)", p.ylabel, p.ss); err != nil {
			return nil, err
		}
		written = append(written, filepath.Join(dir, p.file))
		fmt.Fprintf(b, "![%s](%s)\n", p.title, p.file)
	}
	b.WriteString("\n")
	return written, nil
}

// writeDependenceSection adds the rank-correlation table to report.md and
// writes one scatter plot per measure (every tail and data series of the
// measure against Acc~ − Acc*); it returns the plots written.
func writeDependenceSection(b *strings.Builder, dir string, rep *Report) ([]string, error) {
	if len(rep.DependenceCorrelations) == 0 {
		return nil, nil
	}
	opt := func(v *float64) string {
		if v == nil {
			return "–"
		}
		return fmt.Sprintf("%+.3f", *v)
	}
	fmt.Fprintf(b, "\n## Which dependence measure predicts semirobustness\n\nEach measure is the mean over the tail's K layer pairs (sensitivity ‖f_l(x) − f_l(x_adv)‖₁ / ‖f_l(x)‖₁: over its K layers), taken of three tails under the robust head f*_a — f_b (normal), f~_b (fine-tuned, per trial) and f*_b (robust) — on the ρ data clean and attacked against the model measured. Points: every (attack, K, trial); the outcomes are the trial's best accuracy − Acc* (Acc~ − Acc*) and the row's Acc_sr. Rank correlations: Spearman's ρ_s and Kendall's τ_b (ties handled); – where undefined (a constant series). With few points none of these is conclusive.\n\n")
	fmt.Fprintf(b, "| measure | tail | data | kind | n | ρ_s with Acc~ − Acc* | τ_b with Acc~ − Acc* | ρ_s with Acc_sr | τ_b with Acc_sr |\n|---|---|---|---|---|---|---|---|---|\n")
	for i := 0; i+1 < len(rep.DependenceCorrelations); i += 2 {
		d, s := rep.DependenceCorrelations[i], rep.DependenceCorrelations[i+1]
		fmt.Fprintf(b, "| %s | %s | %s | %s | %d | %s | %s | %s | %s |\n", d.Measure, d.Tail, d.Data, d.Kind, d.N, opt(d.Spearman), opt(d.Kendall), opt(s.Spearman), opt(s.Kendall))
	}
	b.WriteString("\n")
	keys, x, delta, _ := dependencePoints(rep.Rows)
	var written []string
	for _, m := range DependenceMeasures {
		var ss []plotting.Series
		for _, k := range keys {
			if k.Measure != m || k.Kind != "raw" {
				continue
			}
			ss = append(ss, plotting.Series{Name: k.Tail + ", " + k.Data, X: x[k], Y: delta[k]})
		}
		if len(ss) == 0 {
			continue
		}
		file := "dependence_" + m + ".png"
		if err := plotting.WriteScatterPlot(filepath.Join(dir, file), m+" of the tail against Acc~ − Acc*", m+" (mean over the tail)", "Acc~ − Acc* (%)", ss); err != nil {
			return nil, err
		}
		written = append(written, filepath.Join(dir, file))
		fmt.Fprintf(b, "![%s against Acc~ − Acc*](%s)\n", m, file)
	}
	b.WriteString("\n")
	return written, nil
}

// writeBoundSection adds the weight-difference bound's table (rows with
// bound_per_trial, per K and trial) to report.md and writes bound_K.png,
// the bound and the quadratic form of every trial against its measured
// loss gap (one series each per attack and K); it returns the plot written.
func writeBoundSection(b *strings.Builder, dir string, rep *Report) ([]string, error) {
	has := false
	for _, r := range rep.Rows {
		has = has || len(r.BoundPerTrial) > 0
	}
	if !has {
		return nil, nil
	}
	fmt.Fprintf(b, "\n## Weight-difference bound\n\nAt ω* = f* (BatchNorm in eval mode), for ω~ = each trial's best model (f*'s head, the fine-tuned tail of the last K weight layers), on the ρ data's clean inputs: the largest Hessian eigenvalue of the mean cross-entropy over the tail's trainable parameters (λmax tail) and over all of them (λmax all), ‖Δω_b‖² = ‖ω~_b − ω*_b‖², the bound ½ λmax tail ‖Δω_b‖², the quadratic form ½ ΔωᵀHΔω and the measured loss gap ℓ(ω~) − ℓ(ω*) (as `srtool bound`: power iteration on finite-difference Hessian-vector products, tolerance 1e-4, at most 100 products, seed --seed). Converged: both power iterations.\n\n")
	fmt.Fprintf(b, "| attack A | K | trial | λmax tail | λmax all | ‖Δω_b‖² | bound ½λ‖Δω_b‖² | ½ΔωᵀHΔω | loss gap | converged |\n|---|---|---|---|---|---|---|---|---|---|\n")
	var ss []plotting.Series
	for _, r := range rep.Rows {
		if len(r.BoundPerTrial) == 0 {
			continue
		}
		label := seriesLabel(rep, r)
		bound, quad := plotting.Series{Name: "bound, " + label}, plotting.Series{Name: "½ΔωᵀHΔω, " + label}
		for _, t := range r.BoundPerTrial {
			conv := "yes"
			if !t.Converged {
				conv = fmt.Sprintf("no (tail %d, all %d products)", t.PowerTail.Iterations, t.PowerAll.Iterations)
			}
			fmt.Fprintf(b, "| %s | %d | %d | %.6g | %.6g | %.6g | %.6g | %.6g | %.6g | %s |\n", r.Attack, r.K, t.Trial, t.LambdaMaxTail, t.LambdaMaxAll, t.WeightDiffSq, t.Bound, t.QuadraticForm, t.LossGap, conv)
			bound.X, bound.Y = append(bound.X, t.LossGap), append(bound.Y, t.Bound)
			quad.X, quad.Y = append(quad.X, t.LossGap), append(quad.Y, t.QuadraticForm)
		}
		ss = append(ss, bound, quad)
	}
	b.WriteString("\n")
	const file = "bound_K.png"
	if err := plotting.WriteScatterPlot(filepath.Join(dir, file), "weight-difference bound against the measured loss gap", "loss gap ℓ(ω~) − ℓ(ω*) (nats)", "½ λmax ‖Δω_b‖² and ½ ΔωᵀHΔω (nats)", ss); err != nil {
		return nil, err
	}
	fmt.Fprintf(b, "![bound and quadratic form against the loss gap](%s)\n\n", file)
	return []string{filepath.Join(dir, file)}, nil
}

// seriesLabel names row r in a plot's legend: "K = 4", or "A = pgd, K = 4"
// when the run has several attacks.
func seriesLabel(rep *Report, r Row) string {
	if len(rep.Attacks) > 1 {
		return fmt.Sprintf("A = %s, K = %d", r.Attack, r.K)
	}
	return fmt.Sprintf("K = %d", r.K)
}
