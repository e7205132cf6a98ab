package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// semirobustRow is one (attack, K) row of the paper's tables S2–S4.
type semirobustRow struct {
	Attack          string                 `json:"attack"`
	K               int                    `json:"fb_layers"`
	Acc             float64                `json:"acc"`                  // f under the attack
	AccStar         float64                `json:"acc_star"`             // f*
	AccSR           float64                `json:"acc_sr"`               // (f*_a, f_b) before fine-tuning
	AccTilde        float64                `json:"acc_tilde"`            // (f*_a, f~_b) after
	Delta           float64                `json:"delta"`                // Acc~ − Acc*
	AccLinear       *float64               `json:"acc_linear,omitempty"` // Algorithm S1 on f*\'s head
	MeanEpochs      float64                `json:"mean_epochs_to_converge"`
	Converged       int                    `json:"trials_converged"`
	Trials          int                    `json:"trials"`
	Seconds         float64                `json:"seconds"`
	Rhos            []rhoPair              `json:"rhos"`        // f~ on attacked test data
	RhosBefore      []rhoPair              `json:"rhos_before"` // (f*_a, f_b)
	FinetuneHistory []finetune.TrialResult `json:"finetune"`
	Model           string                 `json:"model"`
}

type semirobustReport struct {
	Normal    string               `json:"normal"`
	Robust    string               `json:"robust"`
	Train     string               `json:"train_data"`
	Test      string               `json:"eval_data"`
	Eps       float64              `json:"eps"`
	Norm      string               `json:"norm"`
	HeadBN    string               `json:"head_bn"`
	Adv       *attacks.PGD         `json:"adversarial_finetuning,omitempty"`
	TRADES    *ort.TRADES          `json:"trades_finetuning,omitempty"`
	Estimator estimators.Estimator `json:"estimator"`
	Units     string               `json:"units"`
	Options   finetune.Options     `json:"finetune_options"`
	Layers    int                  `json:"layers"`
	Rows      []semirobustRow      `json:"rows"`
	Seconds   float64              `json:"seconds"`
}

func semirobustCommand() *cli.Command {
	return &cli.Command{
		Name:  "semirobust",
		Usage: "the paper's experiment: Acc, Acc*, Acc_sr, Acc~ and ρ for each attack and K, as Markdown, JSON and plots",
		Flags: append(append(append(append(commonFlags(), dataFlags()...), attackParamFlags()...), trainFlags(10)...),
			&cli.StringFlag{Name: "normal", Required: true, Usage: "normally trained model f (`NORMAL.onnx`)"},
			&cli.StringFlag{Name: "robust", Required: true, Usage: "adversarially trained model f* (`ROBUST.onnx`)"},
			&cli.StringFlag{Name: "fb-layers", Value: "4", Usage: "comma-separated K values (weight layers in the tail)"},
			&cli.StringFlag{Name: "attacks", Value: "pgd", Usage: "evaluation attacks A, comma-separated: none, fgsm, pgd, cw, autoattack, …"},
			&cli.StringFlag{Name: "head-bn", Value: "eval", Usage: "frozen head's BatchNorm during fine-tuning: eval or train"},
			&cli.Float64Flag{Name: "tolerance", Usage: "the paper's k: stop at Acc* − k"},
			&cli.IntFlag{Name: "trials", Value: 1, Usage: "trials per setting (the paper: 10)"},
			&cli.StringFlag{Name: "estimator", Value: "edge", Usage: "estimator for ρ"},
			&cli.IntFlag{Name: "permutations", Usage: "permutation-null repetitions for ρ (0 = none)"},
			&cli.IntFlag{Name: "rho-n", Value: 1000, Usage: "attacked test samples for ρ (and for --linear)"},
			&cli.BoolFlag{Name: "linear", Usage: "also run Algorithm S1: accuracy of the least-squares linear predictor from f*'s head-layer outputs"},
			&cli.StringFlag{Name: "o", Aliases: []string{"out"}, Required: true, Usage: "run `DIR` for report.md, report.json, plots and models"},
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

func runSemirobust(c *cli.Context, w, errw io.Writer) error {
	start := time.Now()
	tc, err := readTrainingFlags(c)
	if err != nil {
		return err
	}
	eng, fo, adv, trades := tc.Engine, tc.Options, tc.PGD, tc.TRADES
	fo.Trials, fo.Tolerance = c.Int("trials"), c.Float64("tolerance")
	if c.Int("feature-cache-mb") < 0 {
		return usagef("--feature-cache-mb must not be negative")
	}
	if fo.Trials < 1 {
		return usagef("--trials must be positive")
	}
	for _, f := range []string{"eval-attack", "checkpoint-dir", "resume"} {
		if c.IsSet(f) {
			return usagef("semirobust does not take --%s (the evaluation attacks are --attacks)", f)
		}
	}
	var ks []int
	for _, s := range strings.Split(c.String("fb-layers"), ",") {
		k, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || k < 1 {
			return usagef("--fb-layers %q: want positive integers", c.String("fb-layers"))
		}
		ks = append(ks, k)
	}
	var atks []attacks.Attack
	var atkNames []string
	for _, name := range strings.Split(c.String("attacks"), ",") {
		name = strings.TrimSpace(name)
		a, err := evalAttack(c, name)
		if err != nil {
			return err
		}
		atks = append(atks, a)
		if a == nil {
			name = "clean"
		}
		atkNames = append(atkNames, name)
	}
	est, units, err := newEstimator(c)
	if err != nil {
		return err
	}
	normal, err := loadModel(c, c.String("normal"))
	if err != nil {
		return err
	}
	robust, err := loadModel(c, c.String("robust"))
	if err != nil {
		return err
	}
	train, err := trainData(c)
	if err != nil {
		return err
	}
	test, err := evalData(c)
	if err != nil {
		return err
	}
	dir := c.String("o")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	eps, _ := parseNumber(c.String("eps"))
	rep := semirobustReport{Normal: c.String("normal"), Robust: c.String("robust"), Train: train.Name, Test: test.Name, Eps: eps, Norm: c.String("norm"),
		HeadBN: c.String("head-bn"), Adv: adv, TRADES: trades, Estimator: est, Units: units, Options: fo}
	normalClf, err := ort.NewClassifier(normal, eng)
	if err != nil {
		return err
	}
	defer normalClf.Close()
	rhoTest := test.Slice(0, min(test.Len(), c.Int("rho-n")))
	ro := rhoOptions{Estimator: est, PerClass: true, Permutations: c.Int("permutations"), Seed: uint64(c.Int64("seed")), Batch: c.Int("batch"), Engine: eng}
	// Rows finished before an error or Ctrl-C are still written to the report.
	loopErr := func() error {
		for ai, atk := range atks {
			acc, err := accuracy(c.Context, normalClf, test, atk, c.Int("batch"))
			if err != nil {
				return err
			}
			robustClf, err := ort.NewClassifier(robust, eng)
			if err != nil {
				return err
			}
			accStar, err := accuracy(c.Context, robustClf, test, atk, c.Int("batch"))
			robustClf.Close()
			if err != nil {
				return err
			}
			for _, k := range ks {
				setup, err := newSemirobust(robust, normal, 0, k, c.String("head-bn"))
				if err != nil {
					return err
				}
				rep.Layers = setup.Layers
				rep.HeadBN = setup.HeadBN
				fmt.Fprintf(w, "== attack %s, K = %d (head: layers 1..%d, tail: last %d of %d)\n", atkNames[ai], k, setup.Cut.After, k, setup.Layers)
				run := finetuneRun{Setup: setup, Train: train, Test: test, EvalAttack: atk, Adv: adv, TRADES: trades, AccStar: &accStar, Options: fo, Engine: eng, Batch: c.Int("batch"),
					Progress: epochPrinter(w, errw), FeatureCacheMiB: c.Int("feature-cache-mb"), Note: func(s string) { fmt.Fprintln(w, s) }}
				out, err := runFinetuneJob(c, run, 0, true)
				if err != nil {
					return err
				}
				row := semirobustRow{Attack: atkNames[ai], K: k, Acc: acc, AccStar: out.AccStar, AccSR: out.AccSR, AccTilde: out.AccTilde, Delta: out.Delta,
					Trials: len(out.Result.Trials), Seconds: out.Seconds, FinetuneHistory: out.Result.Trials}
				sum := 0
				for _, t := range out.Result.Trials {
					if t.Converged {
						row.Converged++
						sum += t.EpochsToConverge
					}
				}
				row.MeanEpochs = -1
				if row.Converged > 0 {
					row.MeanEpochs = float64(sum) / float64(row.Converged)
				}
				row.Model = filepath.Join(dir, fmt.Sprintf("semirobust_%s_K%d.onnx", atkNames[ai], k))
				if err := writeModel(row.Model, out.Final); err != nil {
					return err
				}
				pairs, err := tailPairs(setup.Layers, k)
				if err != nil {
					return err
				}
				if row.Rhos, err = rhosOnAttacked(c, out.Final, rhoTest, atk, pairs, ro); err != nil {
					return err
				}
				if row.RhosBefore, err = rhosOnAttacked(c, setup.Start, rhoTest, atk, pairs, ro); err != nil {
					return err
				}
				if c.Bool("linear") {
					xs := rhoTest.X
					if atk != nil {
						rc, err := ort.NewClassifier(robust, eng)
						if err != nil {
							return err
						}
						r, err := attacks.AdversarialAccuracy(c.Context, rc, rhoTest.X, rhoTest.Y, atk, c.Int("batch"), nil)
						rc.Close()
						if err != nil {
							return err
						}
						xs = r.Adv
					}
					acc, err := linearS1(c.Context, robust, xs, rhoTest, setup.Cut.After, c.Int("batch"), eng)
					if err != nil {
						return err
					}
					row.AccLinear = &acc
					fmt.Fprintf(w, "Algorithm S1 (linear predictor from layers 1..%d of f*): %.2f%%\n", setup.Cut.After, acc)
				}
				fmt.Fprintf(w, "Acc %.2f  Acc* %.2f  Acc_sr %.2f  Acc~ %.2f  Δ %+.2f  epochs %.1f  ρ_n %.3f %s\n",
					row.Acc, row.AccStar, row.AccSR, row.AccTilde, row.Delta, row.MeanEpochs, row.Rhos[len(row.Rhos)-1].Value, units)
				rep.Rows = append(rep.Rows, row)
			}
		}
		return nil
	}()
	rep.Seconds = time.Since(start).Seconds()
	if loopErr != nil && len(rep.Rows) == 0 {
		return loopErr
	}
	if err := writeSemirobustReport(dir, &rep); err != nil {
		return err
	}
	fmt.Fprintf(w, "report: %s\n", filepath.Join(dir, "report.md"))
	if err := writeJSON(c.String("json"), rep); err != nil {
		return err
	}
	if loopErr != nil {
		return fmt.Errorf("stopped after %d rows (written to the report): %w", len(rep.Rows), loopErr)
	}
	return nil
}

// rhosOnAttacked measures ρ on test data attacked with atk against m (clean when atk is nil).
func rhosOnAttacked(c *cli.Context, m *onnxio.Model, d *dataset.Dataset, atk attacks.Attack, pairs [][2]int, o rhoOptions) ([]rhoPair, error) {
	x := d.X
	if atk != nil {
		clf, err := ort.NewClassifier(m, o.Engine)
		if err != nil {
			return nil, err
		}
		r, err := attacks.AdversarialAccuracy(c.Context, clf, d.X, d.Y, atk, o.Batch, nil)
		clf.Close()
		if err != nil {
			return nil, err
		}
		x = r.Adv
	}
	return measureRhos(c.Context, m, x, d.Y, []int{d.C, d.H, d.W}, pairs, o)
}

// writeSemirobustReport writes report.md, report.json and the plots.
func writeSemirobustReport(dir string, rep *semirobustReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Semirobust fine-tuning report\n\n")
	fmt.Fprintf(&b, "- normal model f: `%s`\n- robust model f*: `%s`\n- fine-tuning data: %s; evaluation data: %s\n", rep.Normal, rep.Robust, rep.Train, rep.Test)
	fmt.Fprintf(&b, "- ε = %g (%s, pixel units); frozen head BatchNorm: %s; ", rep.Eps, rep.Norm, rep.HeadBN)
	if rep.Adv != nil {
		fmt.Fprintf(&b, "adversarial fine-tuning: PGD-%d, step %g\n", rep.Adv.Steps, rep.Adv.StepSize)
	} else if rep.TRADES != nil {
		fmt.Fprintf(&b, "TRADES fine-tuning: β %g, ε %g, %d steps of %g\n", rep.TRADES.Beta, rep.TRADES.Epsilon, rep.TRADES.Steps, rep.TRADES.StepSize)
	} else {
		fmt.Fprintf(&b, "clean fine-tuning\n")
	}
	fmt.Fprintf(&b, "- ρ: %s (%s), per class, on the evaluation data attacked with A; pairs (j−1, j) of the last K weight layers\n\n", rep.Estimator.Name(), rep.Units)
	fmt.Fprintf(&b, "| attack A | K | Acc | Acc* | Acc_sr | Acc~ | Acc~ − Acc* | epochs | converged | ρ_n | ρ_{n−3} | ρ_{n−7} | ρ_{n−11} |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.Rows {
		rho := func(back int) string {
			i := len(r.Rhos) - 1 - back
			if i < 0 {
				return "–"
			}
			return fmt.Sprintf("%.3f", r.Rhos[i].Value)
		}
		ep := "–"
		if r.MeanEpochs >= 0 {
			ep = fmt.Sprintf("%.1f", r.MeanEpochs)
		}
		fmt.Fprintf(&b, "| %s | %d | %.2f | %.2f | %.2f | %.2f | %+.2f | %s | %d/%d | %s | %s | %s | %s |\n",
			r.Attack, r.K, r.Acc, r.AccStar, r.AccSR, r.AccTilde, r.Delta, ep, r.Converged, r.Trials, rho(0), rho(3), rho(7), rho(11))
	}
	for _, r := range rep.Rows {
		if r.AccLinear != nil {
			fmt.Fprintf(&b, "\nAlgorithm S1, A = %s, K = %d: the least-squares linear predictor from the outputs of f*'s head layers reaches %.2f %% (Acc* %.2f %%).\n", r.Attack, r.K, *r.AccLinear, r.AccStar)
		}
	}
	fmt.Fprintf(&b, "\nAccuracies in percent (accuracy on the attack's adversarial examples of every test point, as the paper's torchattacks evaluation). Epochs: mean epochs to reach Acc* − k over converged trials.\n\n")
	for _, r := range rep.Rows {
		fmt.Fprintf(&b, "## A = %s, K = %d\n\n| pair | before fine-tuning | after |\n|---|---|---|\n", r.Attack, r.K)
		for i := range r.Rhos {
			fmt.Fprintf(&b, "| %d:%d | %.3f | %.3f |\n", r.Rhos[i].Parent, r.Rhos[i].Child, r.RhosBefore[i].Value, r.Rhos[i].Value)
		}
		acc := fmt.Sprintf("accuracy_%s_K%d.png", r.Attack, r.K)
		rho := fmt.Sprintf("rho_%s_K%d.png", r.Attack, r.K)
		fmt.Fprintf(&b, "\n![robust accuracy per epoch](%s)\n![ρ per layer pair](%s)\n\n", acc, rho)
		var ss []series
		for _, t := range r.FinetuneHistory {
			s := series{Name: fmt.Sprintf("trial %d", t.Trial)}
			for _, e := range t.Epochs {
				s.X, s.Y = append(s.X, float64(e.Epoch)), append(s.Y, e.EvalAcc)
			}
			ss = append(ss, s)
		}
		line := series{Name: "Acc*", X: []float64{1, float64(max(1, len(r.FinetuneHistory[0].Epochs)))}, Y: []float64{r.AccStar, r.AccStar}}
		ss = append(ss, line)
		if err := writeLinePlot(filepath.Join(dir, acc), fmt.Sprintf("fine-tuning, A = %s, K = %d", r.Attack, r.K), "epoch", "accuracy (%)", ss); err != nil {
			return err
		}
		before, after := series{Name: "before (f*_a, f_b)"}, series{Name: "after (f*_a, f~_b)"}
		var ticks []string
		for i := range r.Rhos {
			x := float64(i)
			ticks = append(ticks, fmt.Sprintf("%d:%d", r.Rhos[i].Parent, r.Rhos[i].Child))
			before.X, before.Y = append(before.X, x), append(before.Y, r.RhosBefore[i].Value)
			after.X, after.Y = append(after.X, x), append(after.Y, r.Rhos[i].Value)
		}
		if err := writeLinePlot(filepath.Join(dir, rho), fmt.Sprintf("ρ per layer pair, A = %s, K = %d", r.Attack, r.K), "weight-layer pair (parent:child)", rep.Units, []series{before, after}, ticks...); err != nil {
			return err
		}
	}
	if err := onnxio.WriteFileAtomic(filepath.Join(dir, "report.md"), []byte(b.String())); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, "report.json"), rep)
}
