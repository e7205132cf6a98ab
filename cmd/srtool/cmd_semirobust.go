package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

// semirobustRow is one (attack, K) row of the paper's tables S2–S4.
// Complete is false for the row that was running when the run stopped;
// numbers of its unfinished work are absent, never 0.
type semirobustRow struct {
	Attack    string     `json:"attack"`
	K         int        `json:"fb_layers"`
	Complete  bool       `json:"complete"`
	Acc       *float64   `json:"acc,omitempty"`         // f under the attack
	AccStar   *float64   `json:"acc_star,omitempty"`    // f*
	AccSR     *float64   `json:"acc_sr,omitempty"`      // (f*_a, f_b) before fine-tuning
	AccTilde  *float64   `json:"acc_tilde,omitempty"`   // (f*_a, f~_b) after
	Delta     *float64   `json:"delta,omitempty"`       // Acc~ − Acc*
	BestSoFar *bestSoFar `json:"best_so_far,omitempty"` // an unfinished row's best epoch so far
	AccLinear *float64   `json:"acc_linear,omitempty"`  // Algorithm S1 on f*'s head
	// MeanEpochs is the mean number of epochs to reach Acc* − k over the
	// trials that reached it (absent when none did).
	MeanEpochs *float64 `json:"mean_epochs_to_converge,omitempty"`
	Converged  int      `json:"trials_converged"`
	Trials     int      `json:"trials"` // finished trials
	Seconds    float64  `json:"seconds"`
	// ResumedFrom says where a checkpoint left the row's fine-tuning.
	ResumedFrom     string                 `json:"resumed_from,omitempty"`
	Rhos            []rhoPair              `json:"rhos,omitempty"`        // f~ on attacked test data
	RhosBefore      []rhoPair              `json:"rhos_before,omitempty"` // (f*_a, f_b)
	FinetuneHistory []finetune.TrialResult `json:"finetune"`
	Model           string                 `json:"model,omitempty"`
	ModelSHA256     string                 `json:"model_sha256,omitempty"`
}

// attackRecord is one evaluation attack as it ran, every default resolved.
type attackRecord struct {
	Name    string           `json:"name"`
	Setting *attacks.Setting `json:"setting"` // null: clean accuracy
}

type semirobustReport struct {
	reportHeader
	Normal    string               `json:"normal"`
	Robust    string               `json:"robust"`
	Train     string               `json:"train_data"`
	Test      string               `json:"eval_data"`
	Eps       float64              `json:"eps"`
	Norm      string               `json:"norm"`
	HeadBN    string               `json:"head_bn"`
	Attacks   []attackRecord       `json:"attacks"`
	Adv       *attacks.PGD         `json:"adversarial_finetuning,omitempty"`
	TRADES    *ort.TRADES          `json:"trades_finetuning,omitempty"`
	Estimator estimators.Estimator `json:"estimator"`
	Units     string               `json:"units"`
	// BNExport says what ρ taps: "preserve" (conv outputs before
	// BatchNorm), "folded" (conv+BN outputs) or "none" (no BatchNorm nodes).
	BNExport     bnExport `json:"bn_export"`
	BNExportNote string   `json:"bn_export_note"`
	// Options are the fine-tuning options; each row's target is its Acc*.
	Options finetune.Options `json:"finetune_options"`
	Target  string           `json:"target"`
	Layers  int              `json:"layers"`
	// Rows holds every finished row and, when the run stopped, the row it
	// stopped in (complete false).
	Rows          []semirobustRow `json:"rows"`
	CheckpointDir string          `json:"checkpoint_dir,omitempty"`
	// Outputs holds the SHA-256 of every file this report describes
	// (models, plots, report.md), by path; report.json is written last.
	Outputs map[string]string `json:"outputs,omitempty"`
	Seconds float64           `json:"seconds"`
}

func semirobustCommand() *cli.Command {
	return &cli.Command{
		Name:  "semirobust",
		Usage: "the paper's experiment: Acc, Acc*, Acc_sr, Acc~ and ρ for each attack and K, as Markdown, JSON and plots",
		Flags: append(append(append(append(commonFlags(), trainDataFlags()...), attackParamFlags()...), trainFlags(10, "pgd")...),
			&cli.StringFlag{Name: "normal", Required: true, Usage: "normally trained model f (`NORMAL.onnx`)"},
			&cli.StringFlag{Name: "robust", Required: true, Usage: "adversarially trained model f* (`ROBUST.onnx`)"},
			&cli.StringFlag{Name: "fb-layers", Value: "4", Usage: "comma-separated K values (weight layers in the tail)"},
			&cli.StringFlag{Name: "attacks", Value: "pgd", Usage: "evaluation attacks A, comma-separated: none, fgsm, pgd, cw, autoattack, … (with --eps/--norm/--steps/--alpha/--restarts)"},
			&cli.StringFlag{Name: "head-bn", Value: "eval", Usage: "frozen head's BatchNorm during fine-tuning: eval or train"},
			&cli.Float64Flag{Name: "tolerance", Value: 0, Usage: "the paper's k, ≥ 0: stop at Acc* − k"},
			&cli.IntFlag{Name: "trials", Value: 1, Usage: "trials per setting, at least 1 (the paper: 10)"},
			&cli.StringFlag{Name: "estimator", Value: "edge", Usage: "estimator for ρ"},
			&cli.IntFlag{Name: "permutations", Value: 0, Usage: "permutation-null repetitions for ρ (0 = none)"},
			&cli.IntFlag{Name: "rho-n", Value: 1000, Usage: "attacked test samples for ρ (and for --linear); every class needs the estimator's minimum (edge: 20), checked before training"},
			&cli.BoolFlag{Name: "linear", Usage: "also run Algorithm S1: accuracy of the least-squares linear predictor from f*'s head-layer outputs"},
			&cli.StringFlag{Name: "o", Aliases: []string{"out"}, Required: true, Usage: "run `DIR` for report.md, report.json, plots and models (an unfinished run writes a partial report, marked)"},
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

// semirobustStateFile, in --checkpoint-dir, holds the finished rows and the
// measured accuracies of a semirobust run; each row's fine-tuning keeps
// its checkpoint in the folder ATTACK_KK beside it.
const (
	semirobustStateFile   = "semirobust.json"
	semirobustStateFormat = "srtool.semirobust/1"
)

// semirobustState is what a resumed semirobust run takes over.
type semirobustState struct {
	Format   string             `json:"format"`
	Identity []finetune.Setting `json:"identity"`
	Attacks  []attackAccuracies `json:"attacks"`
	Rows     []semirobustRow    `json:"rows"`
}

// attackAccuracies are Acc and Acc* under one evaluation attack.
type attackAccuracies struct {
	Attack  string  `json:"attack"`
	Acc     float64 `json:"acc"`
	AccStar float64 `json:"acc_star"`
}

func (s *semirobustState) accuracies(attack string) *attackAccuracies {
	for i := range s.Attacks {
		if s.Attacks[i].Attack == attack {
			return &s.Attacks[i]
		}
	}
	return nil
}

func (s *semirobustState) row(attack string, k int) *semirobustRow {
	for i := range s.Rows {
		if s.Rows[i].Attack == attack && s.Rows[i].K == k {
			return &s.Rows[i]
		}
	}
	return nil
}

func (s *semirobustState) save(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, semirobustStateFile), s)
}

// rowCheckpointDir is the folder of one row's fine-tuning checkpoint.
func rowCheckpointDir(dir, attack string, k int) string {
	return filepath.Join(dir, fmt.Sprintf("%s_K%d", attack, k))
}

// loadSemirobustState reads and checks the state of the run in dir: it must
// have identity id, and its rows must be finished rows of the grid, in the
// grid's order, with every number in range and their models unchanged. A
// missing state is (nil, nil).
func loadSemirobustState(dir string, id []finetune.Setting, names []string, ks []int) (*semirobustState, error) {
	path := filepath.Join(dir, semirobustStateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	var st semirobustState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("resume: %s: %w", path, err)
	}
	if st.Format != semirobustStateFormat {
		return nil, fmt.Errorf("resume: %s has format %q; this srtool reads %q", path, st.Format, semirobustStateFormat)
	}
	if err := finetune.CompareIdentity(st.Identity, id); err != nil {
		return nil, fmt.Errorf("resume: %s belongs to another run: %w", path, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("resume: %s is inconsistent: %s; run without --resume to start over", path, fmt.Sprintf(format, a...))
	}
	pct := func(v *float64) bool { return v != nil && *v >= 0 && *v <= 100 }
	for _, a := range st.Attacks {
		if !slices.Contains(names, a.Attack) || !pct(&a.Acc) || !pct(&a.AccStar) {
			return nil, bad("attack %q with Acc %v, Acc* %v", a.Attack, a.Acc, a.AccStar)
		}
	}
	i := 0
	for _, name := range names {
		for _, k := range ks {
			if i == len(st.Rows) {
				break
			}
			r := &st.Rows[i]
			if r.Attack != name || r.K != k {
				return nil, bad("row %d is %s K=%d; the run's grid has %s K=%d there", i+1, r.Attack, r.K, name, k)
			}
			a := st.accuracies(name)
			switch {
			case !r.Complete:
				return nil, bad("row %s K=%d is not finished", name, k)
			case a == nil || !pct(r.Acc) || !pct(r.AccStar) || *r.Acc != a.Acc || *r.AccStar != a.AccStar:
				return nil, bad("row %s K=%d: Acc and Acc* do not match the measured ones", name, k)
			case !pct(r.AccSR) || !pct(r.AccTilde) || r.Delta == nil || *r.Delta != *r.AccTilde-*r.AccStar:
				return nil, bad("row %s K=%d: Acc_sr, Acc~ or Δ missing or out of range", name, k)
			case len(r.Rhos) != k || len(r.RhosBefore) != k || r.Trials < 1 || r.Converged > r.Trials || len(r.FinetuneHistory) != r.Trials:
				return nil, bad("row %s K=%d: %d ρ values for K = %d, %d of %d trials", name, k, len(r.Rhos), k, r.Converged, r.Trials)
			}
			d, err := fileDigests(r.Model)
			if err != nil {
				return nil, bad("row %s K=%d: its model: %v", name, k, err)
			}
			if d[r.Model] != r.ModelSHA256 {
				return nil, bad("row %s K=%d: its model %s changed since it was written", name, k, r.Model)
			}
			i++
		}
	}
	if i != len(st.Rows) {
		return nil, bad("%d rows for a grid of %d", len(st.Rows), len(names)*len(ks))
	}
	return &st, nil
}

func runSemirobust(c *cli.Context, w, errw io.Writer) error {
	start := time.Now()
	tc, err := readTrainingFlags(c)
	if err != nil {
		return err
	}
	eng, fo, adv, trades := tc.Engine, tc.Options, tc.PGD, tc.TRADES
	fo.Trials, fo.Tolerance = c.Int("trials"), c.Float64("tolerance")
	switch {
	case c.Int("feature-cache-mb") < 0:
		return usagef("--feature-cache-mb must not be negative")
	case fo.Trials < 1:
		return usagef("--trials %d: must be at least 1", fo.Trials)
	case !(fo.Tolerance >= 0) || math.IsInf(fo.Tolerance, 0):
		return usagef("--tolerance %v: must not be negative", fo.Tolerance)
	case c.Int("rho-n") < 1:
		return usagef("--rho-n %d: must be at least 1", c.Int("rho-n"))
	case c.Int("permutations") < 0:
		return usagef("--permutations %d: must not be negative", c.Int("permutations"))
	case c.IsSet("eval-attack"):
		return usagef("semirobust does not take --eval-attack (the evaluation attacks are --attacks)")
	}
	var ks []int
	for _, s := range strings.Split(c.String("fb-layers"), ",") {
		k, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || k < 1 {
			return usagef("--fb-layers %q: want positive integers", c.String("fb-layers"))
		}
		if slices.Contains(ks, k) {
			return usagef("--fb-layers %q names K = %d twice", c.String("fb-layers"), k)
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
		if a == nil {
			name = "clean"
		}
		if slices.Contains(atkNames, name) {
			return usagef("--attacks %q names %s twice", c.String("attacks"), name)
		}
		atks = append(atks, a)
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
	setups := map[int]*semirobustSetup{}
	maxK := 0
	for _, k := range ks {
		if setups[k], err = newSemirobust(robust, normal, 0, k, c.String("head-bn")); err != nil {
			return err
		}
		if _, err := tailPairs(setups[k].Layers, k); err != nil {
			return err
		}
		maxK = max(maxK, k)
	}
	an := setups[maxK].Analysis
	rhoTest := test.Slice(0, min(test.Len(), c.Int("rho-n")))
	// Sample-size requirements, before any training: the largest K's pairs
	// include every smaller K's.
	pairsMax, _ := tailPairs(setups[maxK].Layers, maxK)
	if err := checkRhoSamples(est, an, pairsMax, rhoTest, "--rho-n", errw); err != nil {
		return err
	}
	if c.Bool("linear") {
		for _, k := range ks {
			if err := checkLinearSize(an, setups[k].Cut.After, rhoTest.Len()); err != nil {
				return err
			}
		}
	}
	bn := bnExportOf(an)
	if msg := bn.warning(); msg != "" {
		fmt.Fprintln(errw, "warning: "+msg)
	}
	classes := modelClasses(an)
	var records []attackRecord
	for i, a := range atks {
		records = append(records, attackRecord{Name: atkNames[i], Setting: attackSetting(a, classes)})
	}
	dir, ckdir := c.String("o"), fo.CheckpointDir
	state := &semirobustState{Format: semirobustStateFormat}
	rowCks := map[string]*finetune.Checkpoint{}
	rowKey := func(name string, k int) string { return fmt.Sprintf("%s K=%d", name, k) }
	rowIdentity := func(name string, k int) []finetune.Setting {
		if state.Identity == nil {
			return nil
		}
		return append(slices.Clone(state.Identity), finetune.Setting{Name: "row", Value: rowKey(name, k)})
	}
	if ckdir != "" {
		state.Identity, err = runIdentity(c, [][2]string{{"normal model", c.String("normal")}, {"robust model", c.String("robust")}},
			[]identityData{{"training data", train, c.Int("offset")}, {"evaluation data", test, 0}},
			[]finetune.Setting{settingJSON("adversarial fine-tuning", adv), settingJSON("TRADES fine-tuning", trades),
				settingJSON("evaluation attacks", records), settingJSON("estimator", est), {Name: "units", Value: units}}, "o")
		if err != nil {
			return err
		}
	}
	if c.Bool("resume") {
		st, err := loadSemirobustState(ckdir, state.Identity, atkNames, ks)
		if err != nil {
			return err
		}
		if st == nil {
			fmt.Fprintf(w, "--resume: no checkpoint in %s yet: starting fresh\n", ckdir)
		} else {
			state = st
			// Every unfinished row's checkpoint must belong to this run too.
			for _, name := range atkNames {
				for _, k := range ks {
					if state.row(name, k) != nil {
						continue
					}
					ck, err := finetune.OpenCheckpoint(rowCheckpointDir(ckdir, name, k))
					if errors.Is(err, fs.ErrNotExist) {
						continue
					}
					if err != nil {
						return fmt.Errorf("resume: %w", err)
					}
					a := state.accuracies(name)
					if a == nil {
						return fmt.Errorf("resume: %s has a checkpoint for %s but %s records no Acc* for it; run without --resume to start over", ckdir, rowKey(name, k), semirobustStateFile)
					}
					if _, ok := ck.Measured()[measuredAccSR]; !ok {
						return fmt.Errorf("resume: %s does not record Acc_sr", ck.Path)
					}
					check, _ := jobOptions(setups[k], fo, trades, a.AccStar)
					check.CheckpointDir = rowCheckpointDir(ckdir, name, k)
					if err := ck.Check(check, rowIdentity(name, k)); err != nil {
						return fmt.Errorf("resume: %w", err)
					}
					rowCks[rowKey(name, k)] = ck
				}
			}
		}
	} else if ckdir != "" {
		// A fresh run: checkpoints of an earlier run in the folder go.
		for _, name := range atkNames {
			for _, k := range ks {
				if err := removeStale(filepath.Join(rowCheckpointDir(ckdir, name, k), finetune.CheckpointFile)); err != nil {
					return err
				}
			}
		}
		if err := state.save(ckdir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	eps, _ := parseNumber(c.String("eps"))
	rep := semirobustReport{reportHeader: newHeader(c), Normal: c.String("normal"), Robust: c.String("robust"), Train: train.Name, Test: test.Name,
		Eps: eps, Norm: c.String("norm"), HeadBN: setups[ks[0]].HeadBN, Attacks: records, Adv: adv, TRADES: trades, Estimator: est, Units: units,
		BNExport: bn, BNExportNote: bn.describe(), Options: fo, Layers: setups[ks[0]].Layers, CheckpointDir: ckdir}
	rep.Options.HeadBN = setups[ks[0]].HeadBN
	rep.Options = rep.Options.Resolved()
	rep.Options.CheckpointDir = ""
	rep.Target = "each row's Acc* (finetune_options.target is per row)"
	ro := rhoOptions{Estimator: est, PerClass: true, Permutations: c.Int("permutations"), Seed: uint64(c.Int64("seed")), Batch: c.Int("batch"), Engine: eng, ErrW: errw}
	batch := c.Int("batch")
	var cur *semirobustRow // the row in progress
	// Rows finished before an error or Ctrl-C are written to the report,
	// with the row in progress marked unfinished.
	loopErr := func() error {
		normalClf, err := ort.NewClassifier(normal, eng)
		if err != nil {
			return err
		}
		defer normalClf.Close()
		for ai, atk := range atks {
			name := atkNames[ai]
			accs := state.accuracies(name)
			if accs == nil {
				acc, err := accuracy(c.Context, normalClf, test, atk, batch, progressTo(errw, "Acc (normal model, "+name+")"))
				if err != nil {
					return err
				}
				robustClf, err := ort.NewClassifier(robust, eng)
				if err != nil {
					return err
				}
				accStar, err := accuracy(c.Context, robustClf, test, atk, batch, progressTo(errw, "Acc* (robust model, "+name+")"))
				robustClf.Close()
				if err != nil {
					return err
				}
				state.Attacks = append(state.Attacks, attackAccuracies{Attack: name, Acc: acc, AccStar: accStar})
				if err := state.save(ckdir); err != nil {
					return err
				}
				accs = state.accuracies(name)
			}
			for _, k := range ks {
				setup := setups[k]
				if row := state.row(name, k); row != nil {
					fmt.Fprintf(w, "== attack %s, K = %d: finished before, taken from %s\n", name, k, filepath.Join(ckdir, semirobustStateFile))
					rep.Rows = append(rep.Rows, *row)
					continue
				}
				cur = &semirobustRow{Attack: name, K: k, Acc: f64(accs.Acc), AccStar: f64(accs.AccStar)}
				fmt.Fprintf(w, "== attack %s, K = %d (head: layers 1..%d, tail: last %d of %d)\n", name, k, setup.Cut.After, k, setup.Layers)
				rfo := fo
				if ckdir != "" {
					rfo.CheckpointDir = rowCheckpointDir(ckdir, name, k)
				}
				run := finetuneRun{Setup: setup, Train: train, Test: test, EvalAttack: atk, Adv: adv, TRADES: trades, AccStar: f64(accs.AccStar), Options: rfo,
					Engine: eng, Batch: batch, Progress: epochPrinter(w, errw), ErrW: errw, AutoTarget: true, Identity: rowIdentity(name, k),
					FeatureCacheMiB: c.Int("feature-cache-mb"), Note: func(s string) { fmt.Fprintln(w, s) }}
				if ck := rowCks[rowKey(name, k)]; ck != nil {
					sr := ck.Measured()[measuredAccSR]
					run.Checkpoint, run.AccSR = ck, &sr
				}
				out, err := runFinetuneJob(c.Context, run)
				cur.AccSR, cur.Seconds, cur.ResumedFrom = out.AccSR, out.Seconds, out.ResumedFrom
				if out.Result != nil {
					cur.FinetuneHistory = out.Result.Trials
					for _, t := range out.Result.Trials {
						if t.Done {
							cur.Trials++
						}
					}
				}
				if err != nil {
					cur.BestSoFar = out.BestSoFar
					return err
				}
				cur.AccTilde, cur.Delta = out.AccTilde, out.Delta
				sum := 0
				for _, t := range out.Result.Trials {
					if t.Converged {
						cur.Converged++
						sum += t.EpochsToConverge
					}
				}
				if cur.Converged > 0 {
					cur.MeanEpochs = f64(float64(sum) / float64(cur.Converged))
				}
				model := filepath.Join(dir, fmt.Sprintf("semirobust_%s_K%d.onnx", name, k))
				if err := writeModel(model, out.Final); err != nil {
					return err
				}
				d, err := fileDigests(model)
				if err != nil {
					return err
				}
				cur.Model, cur.ModelSHA256 = model, d[model]
				pairs, err := tailPairs(setup.Layers, k)
				if err != nil {
					return err
				}
				if cur.Rhos, err = rhosOnAttacked(c.Context, out.Final, rhoTest, atk, pairs, ro); err != nil {
					return err
				}
				if cur.RhosBefore, err = rhosOnAttacked(c.Context, setup.Start, rhoTest, atk, pairs, ro); err != nil {
					return err
				}
				if c.Bool("linear") {
					xs := rhoTest.X
					if atk != nil {
						rc, err := ort.NewClassifier(robust, eng)
						if err != nil {
							return err
						}
						r, err := attacks.AdversarialAccuracy(c.Context, rc, rhoTest.X, rhoTest.Y, atk, batch, progressTo(errw, "Algorithm S1 data ("+name+")"))
						rc.Close()
						if err != nil {
							return err
						}
						xs = r.Adv
					}
					acc, err := linearS1(c.Context, robust, xs, rhoTest, setup.Cut.After, batch, eng)
					if err != nil {
						return err
					}
					cur.AccLinear = &acc
					fmt.Fprintf(w, "Algorithm S1 (linear predictor from layers 1..%d of f*): %.2f%%\n", setup.Cut.After, acc)
				}
				cur.Complete = true
				ep := "–"
				if cur.MeanEpochs != nil {
					ep = fmt.Sprintf("%.1f", *cur.MeanEpochs)
				}
				fmt.Fprintf(w, "Acc %.2f  Acc* %.2f  Acc_sr %.2f  Acc~ %.2f  Δ %+.2f  epochs %s  ρ_n %.3f %s\n",
					*cur.Acc, *cur.AccStar, *cur.AccSR, *cur.AccTilde, *cur.Delta, ep, cur.Rhos[len(cur.Rhos)-1].Value, units)
				rep.Rows = append(rep.Rows, *cur)
				state.Rows = append(state.Rows, *cur)
				cur = nil
				if err := state.save(ckdir); err != nil {
					return err
				}
			}
		}
		return nil
	}()
	if loopErr != nil {
		rep.markIncomplete(loopErr)
		if cur != nil {
			rep.Rows = append(rep.Rows, *cur)
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	if err := writeSemirobustReport(dir, &rep); err != nil {
		return err
	}
	if err := writeJSON(c.String("json"), rep); err != nil {
		return err
	}
	if loopErr == nil {
		fmt.Fprintf(w, "report: %s\n", filepath.Join(dir, "report.md"))
		return nil
	}
	finished := 0
	for _, r := range rep.Rows {
		if r.Complete {
			finished++
		}
	}
	done := fmt.Sprintf("%d of %d rows finished", finished, len(atks)*len(ks))
	if cur != nil {
		done += fmt.Sprintf("; %s K=%d stopped", cur.Attack, cur.K)
		if cur.FinetuneHistory != nil {
			done += ": " + finishedWorkOf(cur.FinetuneHistory, fo.Epochs, cur.BestSoFar)
		}
	}
	done += fmt.Sprintf("; partial report written to %s (complete: false)", filepath.Join(dir, "report.md"))
	if isCancel(loopErr) {
		return interrupted(loopErr, done, resumeHint(c))
	}
	return fmt.Errorf("%w; %s", loopErr, done)
}

// finishedWorkOf is finishedWork for a row's trial records.
func finishedWorkOf(trials []finetune.TrialResult, epochs int, best *bestSoFar) string {
	s := finishedWork(&finetune.Result{Trials: trials}, epochs)
	if best != nil && !strings.Contains(s, "best so far") {
		s += " (" + best.String() + ")"
	}
	return s
}

// accuracySeries are the accuracy plot's lines for a row: one per trial,
// from Acc_sr at epoch 0 (before fine-tuning) through each epoch's
// evaluation accuracy, and Acc* as a level line over the same epochs.
func accuracySeries(r semirobustRow) []series {
	var ss []series
	last := 1
	for _, t := range r.FinetuneHistory {
		s := series{Name: fmt.Sprintf("trial %d", t.Trial)}
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
		ss = append(ss, series{Name: "Acc* (robust f*)", X: []float64{0, float64(last)}, Y: []float64{*r.AccStar, *r.AccStar}})
	}
	return ss
}

// writeSemirobustReport writes report.md, the plots and, last,
// report.json with the SHA-256 of every other file it describes. An
// unfinished report says so at the top and in every cell it lacks.
func writeSemirobustReport(dir string, rep *semirobustReport) error {
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
	if msg := rep.BNExport.warning(); msg != "" {
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
		if r.AccLinear != nil {
			fmt.Fprintf(&b, "\nAlgorithm S1, A = %s, K = %d: the least-squares linear predictor from the outputs of f*'s head layers reaches %.2f %% (Acc* %s %%).\n", r.Attack, r.K, *r.AccLinear, pct(r.AccStar))
		}
	}
	fmt.Fprintf(&b, "\nAccuracies in percent (accuracy on the attack's adversarial examples of every test point, as the paper's torchattacks evaluation). Epochs: mean epochs to reach Acc* − k over converged trials; trials and epochs count from 1, epoch 0 of the plots is Acc_sr, before fine-tuning.\n\n")
	var written []string
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
			if err := writeLinePlot(filepath.Join(dir, acc), fmt.Sprintf("fine-tuning, A = %s, K = %d", r.Attack, r.K), "epoch (0: Acc_sr, before fine-tuning)", "accuracy (%)", accuracySeries(r)); err != nil {
				return err
			}
			written = append(written, filepath.Join(dir, acc))
			fmt.Fprintf(&b, "![accuracy under %s per epoch (epoch 0: Acc_sr)](%s)\n", r.Attack, acc)
		}
		if len(r.Rhos) > 0 {
			rho := fmt.Sprintf("rho_%s_K%d.png", r.Attack, r.K)
			before, after := series{Name: "before (f*_a, f_b)"}, series{Name: "after (f*_a, f~_b)"}
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
			if err := writeLinePlot(filepath.Join(dir, rho), fmt.Sprintf("ρ per layer pair, A = %s, K = %d", r.Attack, r.K), "weight-layer pair (parent:child; · = not connected)", rep.Units, []series{before, after}, ticks...); err != nil {
				return err
			}
			written = append(written, filepath.Join(dir, rho))
			fmt.Fprintf(&b, "![ρ per layer pair](%s)\n", rho)
		}
		b.WriteString("\n")
	}
	md := filepath.Join(dir, "report.md")
	if err := onnxio.WriteFileAtomic(md, []byte(b.String())); err != nil {
		return err
	}
	written = append(written, md)
	for _, r := range rep.Rows {
		if r.Model != "" {
			written = append(written, r.Model)
		}
	}
	digests, err := fileDigests(written...)
	if err != nil {
		return err
	}
	rep.Outputs = digests
	return writeJSON(filepath.Join(dir, "report.json"), rep)
}
