package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/plotting"
	"github.com/semirobust/srtool/report"
)

// semirobustRow is one (attack, K) row of the paper's tables S2–S4, put
// together from the run's work units (semirobustRows). Complete is false
// for a row whose units did not all finish; numbers of its unfinished work
// are absent, never 0.
type semirobustRow struct {
	Attack    string     `json:"attack"`
	K         int        `json:"fb_layers"`
	Complete  bool       `json:"complete"`
	Acc       *float64   `json:"acc,omitempty"`         // f under the attack
	AccStar   *float64   `json:"acc_star,omitempty"`    // f*
	AccSR     *float64   `json:"acc_sr,omitempty"`      // (f*_a, f_b) before fine-tuning
	AccTilde  *float64   `json:"acc_tilde,omitempty"`   // (f*_a, f~_b) after: the best trial's best epoch
	Delta     *float64   `json:"delta,omitempty"`       // Acc~ − Acc*
	BestSoFar *bestSoFar `json:"best_so_far,omitempty"` // an unfinished row's best epoch so far
	AccLinear *float64   `json:"acc_linear,omitempty"`  // Algorithm S1 on f*'s head
	// AccUntrained (--untrained-fb): f*_a with a freshly initialised tail.
	AccUntrained *float64 `json:"acc_untrained,omitempty"`
	// MeanEpochs is the mean number of epochs to reach Acc* − k over the
	// trials that reached it (absent when none did).
	MeanEpochs *float64 `json:"mean_epochs_to_converge,omitempty"`
	Converged  int      `json:"trials_converged"`
	Trials     int      `json:"trials"` // finished trials
	// BestTrial is the trial whose best accuracy is highest (the earliest
	// on ties): Acc~, ρ and the model are its.
	BestTrial int     `json:"best_trial,omitempty"`
	Seconds   float64 `json:"seconds"`
	// ResumedFrom says where checkpoints left the row's trials.
	ResumedFrom     string                 `json:"resumed_from,omitempty"`
	Rhos            []rhoPair              `json:"rhos,omitempty"`        // f~ (the best trial's) on attacked test data
	RhosBefore      []rhoPair              `json:"rhos_before,omitempty"` // (f*_a, f_b)
	RhosPerTrial    [][]float64            `json:"rhos_per_trial,omitempty"`
	FinetuneHistory []finetune.TrialResult `json:"finetune"`
	Model           string                 `json:"model,omitempty"`
	ModelSHA256     string                 `json:"model_sha256,omitempty"`
	// Cost (--cost) is what the row's fine-tuning cost: trainable
	// parameters, wall time per epoch and to convergence, peak memory.
	Cost *rowCost `json:"cost,omitempty"`
	// Dependence (--dependence) holds each finished trial's measures of
	// the three tails, with the trial's Acc~ − Acc*.
	Dependence []trialDependence `json:"dependence,omitempty"`
}

// attackRecord is one evaluation attack as it ran, every default resolved.
type attackRecord struct {
	Name    string           `json:"name"`
	Setting *attacks.Setting `json:"setting"` // null: clean accuracy
}

// semirobustReport is the run's report (report.json) or, with Sharding
// set, one shard's: a shard report holds its work units' results (Units)
// and no rows; srtool merge puts the shards' units together into the rows
// of the unsharded run's report.
type semirobustReport struct {
	report.Header
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
	// Options are the fine-tuning options (finetune.Options, resolved, as
	// JSON); each row's target is its Acc*.
	Options json.RawMessage `json:"finetune_options"`
	Target  string          `json:"target"`
	Layers  int             `json:"layers"`
	// FbLayers are the K values of the grid, in order.
	FbLayers []int `json:"fb_layers"`
	// Rows holds every finished row and, when the run stopped, the rows it
	// stopped in (complete false).
	Rows []semirobustRow `json:"rows,omitempty"`
	// WorkUnits are a shard report's units, in unit order (the unit in
	// progress last, complete false, when the shard stopped).
	WorkUnits     []semirobustUnit `json:"work_units,omitempty"`
	CheckpointDir string           `json:"checkpoint_dir,omitempty"`
	// MergedFrom lists the shard reports of a merged report.
	MergedFrom []string `json:"merged_from,omitempty"`
	// Outputs holds the SHA-256 of every file this report describes
	// (models, plots, report.md), by path; report.json is written last.
	Outputs map[string]string `json:"outputs,omitempty"`
	// MemoryNote (--cost) says what the memory columns measure, and
	// Reference (--reference-adv-training) is the cost of full adversarial
	// training of f on the same data and epochs.
	MemoryNote string `json:"memory_note,omitempty"`
	// DependenceMeasures (--dependence) and the rank correlations of each
	// measure with Acc~ − Acc* and Acc_sr across attacks, K and trials.
	DependenceMeasures     []string          `json:"dependence_measures,omitempty"`
	DependenceCorrelations []rankCorrelation `json:"dependence_correlations,omitempty"`
	Reference              *referenceCost    `json:"reference_adv_training,omitempty"`
	Seconds                float64           `json:"seconds"`
}

// The work units of a semirobust run, in order: for each attack A, the
// attack unit (Acc and Acc* under A and, for each K, Acc_sr, ρ of the
// unfine-tuned (f*_a, f_b) and Algorithm S1), then one trial unit per K and
// trial (one trial of Algorithm 1's fine-tuning, and ρ of its best model).
// --shard I/N runs the units of range I of N (shard.Range); the numbers a
// trial unit needs from its attack unit (Acc* as the target, Acc_sr) are
// deterministic, so a shard that does not hold the attack unit measures
// them itself, and srtool merge checks that every unit measured the same.
type unitID struct {
	Attack string
	K      int // 0: the attack unit
	Trial  int // from 1; 0: the attack unit
}

func (u unitID) String() string {
	if u.K == 0 {
		return "attack " + u.Attack
	}
	return fmt.Sprintf("%s K=%d trial %d", u.Attack, u.K, u.Trial)
}

// file is the unit's file name without extension (DIR/units/FILE.json, the
// trial's model FILE.onnx, its checkpoint folder FILE).
func (u unitID) file() string {
	if u.K == 0 {
		return u.Attack
	}
	return fmt.Sprintf("%s_K%d_t%d", u.Attack, u.K, u.Trial)
}

// semirobustUnits lists the work units of a grid, in unit order.
func semirobustUnits(attackNames []string, ks []int, trials int) []unitID {
	var out []unitID
	for _, a := range attackNames {
		out = append(out, unitID{Attack: a})
		for _, k := range ks {
			for t := 1; t <= trials; t++ {
				out = append(out, unitID{Attack: a, K: k, Trial: t})
			}
		}
	}
	return out
}

const semirobustUnitFormat = "srtool.semirobust-unit/1"

// semirobustUnit is a work unit's result, as DIR/units/FILE.json and a
// shard report record it. An attack unit sets Acc, AccStar and Starts; a
// trial unit AccStar and AccSR (as it measured them, or took them from its
// checkpoint), Finetune, Rhos and Model. A unit that stopped (Complete
// false) holds only what it measured.
type semirobustUnit struct {
	Format      string `json:"format"`
	Fingerprint string `json:"fingerprint"`
	Index       int    `json:"index"` // in the run's unit order, from 0
	Unit        string `json:"unit"`
	Attack      string `json:"attack"`
	K           int    `json:"fb_layers,omitempty"`
	Trial       int    `json:"trial,omitempty"`
	Complete    bool   `json:"complete"`

	Acc     *float64    `json:"acc,omitempty"`
	AccStar *float64    `json:"acc_star,omitempty"`
	Starts  []unitStart `json:"starts,omitempty"`

	AccSR       *float64              `json:"acc_sr,omitempty"`
	Finetune    *finetune.TrialResult `json:"finetune,omitempty"`
	BestSoFar   *bestSoFar            `json:"best_so_far,omitempty"`
	Rhos        []rhoPair             `json:"rhos,omitempty"`
	Model       string                `json:"model,omitempty"`
	ModelSHA256 string                `json:"model_sha256,omitempty"`
	ResumedFrom string                `json:"resumed_from,omitempty"`
	Cost        *unitCost             `json:"cost,omitempty"` // --cost
	Dependence  []dependenceValue     `json:"dependence,omitempty"`
	Seconds     float64               `json:"seconds"`

	source string // where it was read from, for messages
}

// unitStart is what an attack unit measures for one K before fine-tuning.
type unitStart struct {
	K          int       `json:"fb_layers"`
	AccSR      *float64  `json:"acc_sr"`
	RhosBefore []rhoPair `json:"rhos_before"`
	AccLinear  *float64  `json:"acc_linear,omitempty"`
	// AccUntrained (--untrained-fb) is the zero-shot accuracy of f*_a with
	// a freshly initialised tail (untrainedTail, seed --seed).
	AccUntrained *float64 `json:"acc_untrained,omitempty"`
}

func (u *semirobustUnit) id() unitID { return unitID{Attack: u.Attack, K: u.K, Trial: u.Trial} }

// where names the unit and where it came from in messages.
func (u *semirobustUnit) where() string {
	if u.source == "" {
		return "unit " + u.Unit
	}
	return fmt.Sprintf("unit %s (%s)", u.Unit, u.source)
}

// check checks a finished unit's record: it names itself, and every number
// it must hold is there and in range.
func (u *semirobustUnit) check(ks []int) error {
	pct := func(v *float64) bool { return v != nil && *v >= 0 && *v <= 100 }
	switch {
	case u.Format != semirobustUnitFormat:
		return fmt.Errorf("format %q; this srtool reads %q", u.Format, semirobustUnitFormat)
	case !u.Complete:
		return errors.New("not finished")
	case u.Unit != u.id().String():
		return fmt.Errorf("names itself %q but holds %s", u.Unit, u.id())
	case !pct(u.AccStar):
		return errors.New("Acc* missing or out of range")
	}
	if u.K == 0 {
		if !pct(u.Acc) || len(u.Starts) != len(ks) {
			return fmt.Errorf("Acc missing or %d K values for %d", len(u.Starts), len(ks))
		}
		for i, s := range u.Starts {
			if s.K != ks[i] || !pct(s.AccSR) || len(s.RhosBefore) != s.K || (s.AccLinear != nil && !pct(s.AccLinear)) {
				return fmt.Errorf("K = %d (want %d): Acc_sr, %d ρ values or Algorithm S1 missing or out of range", s.K, ks[i], len(s.RhosBefore))
			}
		}
		return nil
	}
	switch f := u.Finetune; {
	case !pct(u.AccSR):
		return errors.New("Acc_sr missing or out of range")
	case f == nil || !f.Done || f.Trial != u.Trial || len(f.Epochs) == 0:
		return errors.New("no finished fine-tuning record of its trial")
	case len(u.Rhos) != u.K || u.Model == "" || u.ModelSHA256 == "":
		return fmt.Errorf("%d ρ values for K = %d, or no model", len(u.Rhos), u.K)
	}
	return nil
}

// rowKey names an (attack, K) row.
func rowKey(attack string, k int) string { return fmt.Sprintf("%s K=%d", attack, k) }

// semirobustRows puts the units' results together into the report's rows,
// in the grid's order. With partial false every unit must be there and
// finished. With partial true (a stopped run) a row appears once one of its
// trial units has results, and a row with a missing or unfinished unit is
// marked unfinished and holds only what was measured. The units of a row
// must have measured the same Acc* and Acc_sr bit for bit (they are
// deterministic); a difference is an error naming both units.
//
// Acc~ is the best trial's best accuracy (the highest, the earliest trial
// on ties), and Rhos and Model are that trial's, as for a run of all trials
// in one process. A complete row's Model is the unit's model file; the
// caller copies it beside the report (placeRowModels).
func semirobustRows(names []string, ks []int, trials int, units map[string]*semirobustUnit, partial bool) ([]semirobustRow, error) {
	var rows []semirobustRow
	same := func(what string, a, b *semirobustUnit, x, y *float64) error {
		if x != nil && y != nil && *x != *y {
			return fmt.Errorf("%s measured %s %v but %s %v: the units did not compute the same numbers (another device, thread count or ONNX Runtime build?)",
				a.where(), what, *x, b.where(), *y)
		}
		return nil
	}
	for _, name := range names {
		au := units[unitID{Attack: name}.String()]
		if au != nil && !au.Complete {
			au = nil
		}
		for _, k := range ks {
			var start *unitStart
			if au != nil {
				for i := range au.Starts {
					if au.Starts[i].K == k {
						start = &au.Starts[i]
					}
				}
			}
			tus := make([]*semirobustUnit, 0, trials)
			complete, missing := au != nil && start != nil, ""
			if !complete {
				missing = unitID{Attack: name}.String()
			}
			for t := 1; t <= trials; t++ {
				id := unitID{Attack: name, K: k, Trial: t}
				tu := units[id.String()]
				if tu == nil || !tu.Complete {
					complete = false
					if missing == "" {
						missing = id.String()
					}
				}
				if tu != nil {
					tus = append(tus, tu)
				}
			}
			if !complete && !partial {
				return nil, fmt.Errorf("no finished result for unit %s", missing)
			}
			if !complete && len(tus) == 0 {
				continue
			}
			row := semirobustRow{Attack: name, K: k, Complete: complete}
			if au != nil {
				row.Acc, row.AccStar = au.Acc, au.AccStar
			}
			if start != nil {
				row.AccSR, row.RhosBefore, row.AccLinear, row.AccUntrained = start.AccSR, start.RhosBefore, start.AccLinear, start.AccUntrained
			}
			var best *semirobustUnit
			var resumed []string
			var costs []*unitCost
			var histories []*finetune.TrialResult
			sum := 0
			for _, tu := range tus {
				if au != nil {
					if err := same("Acc*", tu, au, tu.AccStar, au.AccStar); err != nil {
						return nil, err
					}
					if start != nil {
						if err := same("Acc_sr", tu, au, tu.AccSR, start.AccSR); err != nil {
							return nil, err
						}
					}
				}
				if row.AccStar == nil {
					row.AccStar = tu.AccStar
				} else if err := same("Acc*", tu, tus[0], tu.AccStar, tus[0].AccStar); err != nil {
					return nil, err
				}
				if row.AccSR == nil {
					row.AccSR = tu.AccSR
				}
				if tu.Finetune != nil {
					row.FinetuneHistory = append(row.FinetuneHistory, *tu.Finetune)
				}
				row.Seconds += tu.Seconds
				if tu.ResumedFrom != "" {
					resumed = append(resumed, tu.ResumedFrom)
				}
				if !tu.Complete {
					continue
				}
				f := tu.Finetune
				costs, histories = append(costs, tu.Cost), append(histories, f)
				if len(tu.Dependence) > 0 && tu.AccStar != nil {
					row.Dependence = append(row.Dependence, trialDependence{Trial: tu.Trial, Delta: f.BestAcc - *tu.AccStar, Values: tu.Dependence})
				}
				row.Trials++
				if f.Converged {
					row.Converged++
					sum += f.EpochsToConverge
				}
				if best == nil || f.BestAcc > best.Finetune.BestAcc {
					best = tu
				}
				vals := make([]float64, len(tu.Rhos))
				for i, r := range tu.Rhos {
					vals[i] = r.Value
				}
				row.RhosPerTrial = append(row.RhosPerTrial, vals)
			}
			row.ResumedFrom = strings.Join(resumed, "; ")
			row.Cost = costOfTrials(costs, histories)
			if complete {
				acc := best.Finetune.BestAcc
				row.AccTilde, row.Delta = f64(acc), f64(acc-*row.AccStar)
				row.BestTrial, row.Rhos = best.Trial, best.Rhos
				row.Model, row.ModelSHA256 = best.Model, best.ModelSHA256
				if row.Converged > 0 {
					row.MeanEpochs = f64(float64(sum) / float64(row.Converged))
				}
			} else {
				if best != nil {
					row.BestSoFar = &bestSoFar{Acc: best.Finetune.BestAcc, Trial: best.Trial, Epoch: best.Finetune.BestEpoch}
				}
				for _, tu := range tus {
					if !tu.Complete && tu.BestSoFar != nil && (row.BestSoFar == nil || tu.BestSoFar.Acc > row.BestSoFar.Acc) {
						row.BestSoFar = tu.BestSoFar
					}
				}
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// placeRowModels copies each complete row's model (its best trial unit's)
// beside the report as DIR/semirobust_ATTACK_KK.onnx, checking it is the
// file the unit wrote, and points the row at the copy.
func placeRowModels(dir string, rows []semirobustRow) error {
	for i := range rows {
		r := &rows[i]
		if !r.Complete {
			continue
		}
		b, err := onnxio.ReadRegular(r.Model, 2<<30)
		if err != nil {
			return fmt.Errorf("model of %s trial %d: %w", rowKey(r.Attack, r.K), r.BestTrial, err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != r.ModelSHA256 {
			return fmt.Errorf("model of %s trial %d: %s changed since its unit wrote it (SHA-256 %s recorded)", rowKey(r.Attack, r.K), r.BestTrial, r.Model, r.ModelSHA256)
		}
		dst := filepath.Join(dir, fmt.Sprintf("semirobust_%s_K%d.onnx", r.Attack, r.K))
		if same, _ := sameFile(r.Model, dst); !same {
			if err := onnxio.WriteFileAtomic(dst, b); err != nil {
				return err
			}
		}
		r.Model = dst
	}
	return nil
}

func semirobustCommand() *cli.Command {
	return &cli.Command{
		Name:  "semirobust",
		Usage: "the paper's experiment: Acc, Acc*, Acc_sr, Acc~ and ρ for each attack and K, as Markdown, JSON and plots",
		Flags: append(append(append(append(append(commonFlags(), trainDataFlags()...), attackParamFlags()...), trainFlags(10, "pgd")...), semirobustShardFlags()...),
			&cli.StringFlag{Name: "normal", Required: true, Usage: "normally trained model f (`NORMAL.onnx`)"},
			&cli.StringFlag{Name: "robust", Required: true, Usage: "adversarially trained model f* (`ROBUST.onnx`)"},
			&cli.StringFlag{Name: "fb-layers", Value: "4", Usage: "K values (weight layers in the tail): comma-separated integers and ranges, e.g. 1-12 or 2,4,6-8"},
			&cli.StringFlag{Name: "dependence", Usage: "also measure, per K and trial, each of these (comma-separated: edge, ksg, gauss, cka, hsic, nocco, corr, sensitivity) of the normal, fine-tuned and robust tails under f*'s head, on the ρ data clean and attacked; report their rank correlations (Spearman, Kendall τ_b) with Acc~ − Acc* and Acc_sr, and plots"},
			&cli.BoolFlag{Name: "untrained-fb", Usage: "also measure, per attack and K, the zero-shot accuracy of f*'s head with a freshly initialised tail (PyTorch's default initialisation, seed --seed)"},
			&cli.BoolFlag{Name: "cost", Usage: "report what each K costs: trainable parameters, wall time per epoch and to convergence, peak memory (report.json rows' cost, a table and cost_K.png)"},
			&cli.BoolFlag{Name: "reference-adv-training", Usage: "with --cost: also adversarially train all of f (from its weights) on the same data, epochs and --adv, as the reference cost (not with --shard)"},
			&cli.StringFlag{Name: "attacks", Value: "pgd", Usage: "evaluation attacks A, comma-separated: none, fgsm, pgd, cw, autoattack, … (with --eps/--norm/--steps/--alpha/--restarts)"},
			&cli.StringFlag{Name: "head-bn", Value: "eval", Usage: "frozen head's BatchNorm during fine-tuning: eval or train"},
			&cli.Float64Flag{Name: "tolerance", Value: 0, Usage: "the paper's k, ≥ 0: stop at Acc* − k"},
			&cli.IntFlag{Name: "trials", Value: 1, Usage: "trials per setting, at least 1 (the paper: 10); trial t draws from seed --seed + t − 1"},
			&cli.StringFlag{Name: "estimator", Value: "edge", Usage: "estimator for ρ"},
			&cli.IntFlag{Name: "permutations", Value: 0, Usage: "permutation-null repetitions for ρ (0 = none)"},
			&cli.IntFlag{Name: "rho-n", Value: 1000, Usage: "attacked test samples for ρ (and for --linear); every class needs the estimator's minimum (edge: 20), checked before training"},
			&cli.BoolFlag{Name: "linear", Usage: "also run Algorithm S1: accuracy of the least-squares linear predictor from f*'s head-layer outputs"},
			&cli.StringFlag{Name: "o", Aliases: []string{"out"}, Required: true, Usage: "run `DIR` for report.md, report.json, plots and models, and the work units' results in DIR/units (an unfinished run writes a partial report, marked)"},
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

// semirobustShardFlags are shardFlags as semirobust reads them: over work
// units, and --skip-done also takes finished units over.
func semirobustShardFlags() []cli.Flag {
	fs := shardFlags()
	for i, f := range fs {
		switch f.Names()[0] {
		case "shard":
			fs[i] = &cli.StringFlag{Name: "shard", Usage: "run piece `I/N` of the work units (per attack: Acc and Acc*, then one unit per K and trial; N contiguous ranges, a shard with no unit writes an empty shard report) and write the shard report (--json, else DIR/shard-I-of-N.json) instead of the report; or auto: Slurm array task / Kubernetes Indexed Job (auto/N); combine the shard reports with `srtool merge`"}
		case "skip-done":
			fs[i] = &cli.BoolFlag{Name: "skip-done", Usage: "exit at once when the report (--json, else DIR's) already holds this run's complete report of this shard; otherwise take over the units already finished in DIR/units (array-task retries)"}
		}
	}
	return fs
}

// semirobustRunFile, in DIR/units, records the run the units belong to:
// taking finished units over (--resume, --skip-done) is refused for a
// folder of another run, naming the first difference.
const (
	semirobustRunFile   = "run.json"
	semirobustRunFormat = "srtool.semirobust-run/1"
)

type semirobustRunRecord struct {
	Format      string             `json:"format"`
	Fingerprint string             `json:"fingerprint"`
	Identity    []finetune.Setting `json:"identity"`
}

// semirobustFingerprint is runFingerprint over both models, the training
// data and every result-changing flag, with the evaluation data's
// fingerprint added.
func semirobustFingerprint(c *cli.Context, train, test *dataset.Dataset) (string, error) {
	fp, err := runFingerprint(c, []string{c.String("normal"), c.String("robust")}, train)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", fp)
	for _, s := range (identityData{Role: "evaluation data", D: test}).settings() {
		fmt.Fprintf(h, "%s=%s\n", s.Name, s.Value)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// semirobustRun holds what the work units of one run share. accStar and
// accSR memoise the deterministic numbers trial units need (by attack, and
// by row), so a process measures each once.
type semirobustRun struct {
	ctx        context.Context
	w, errw    io.Writer
	eng        ort.Options
	normal     *onnxio.Model
	robust     *onnxio.Model
	train      *dataset.Dataset
	test       *dataset.Dataset
	rhoTest    *dataset.Dataset
	attacks    map[string]attacks.Attack
	ks         []int
	setups     map[int]*semirobustSetup
	fo         finetune.Options
	adv        *attacks.PGD
	trades     *ort.TRADES
	ro         rhoOptions
	units      string
	batch      int
	linear     bool
	cost       bool
	untrained  bool
	dependence []string
	estUnits   estimators.Units
	depCache   map[string][]dependenceValue // normal and robust tails' measures, by attack, K and tail
	cacheMiB   int
	fp         string
	unitsDir   string
	ckdir      string
	identity   []finetune.Setting
	accStar    map[string]float64
	accSR      map[string]float64
	announced  map[string]bool // rows whose header was printed
}

// accuracyOf is model m's accuracy on the evaluation data under atk
// (clean when nil); the attack unit and a trial unit measuring Acc* or
// Acc_sr for itself use this same computation.
func (r *semirobustRun) accuracyOf(m *onnxio.Model, atk attacks.Attack, label string) (float64, error) {
	clf, err := ort.NewClassifier(m, r.eng)
	if err != nil {
		return 0, err
	}
	defer clf.Close()
	return accuracy(r.ctx, clf, r.test, atk, r.batch, progressTo(r.errw, label))
}

func (r *semirobustRun) unitFile(id unitID) string {
	return filepath.Join(r.unitsDir, id.file()+".json")
}

// unitOptions are the fine-tuning options of trial unit id: one trial,
// numbered id.Trial, with its own checkpoint folder.
func (r *semirobustRun) unitOptions(id unitID) finetune.Options {
	o := r.fo
	o.Trials, o.FirstTrial = 1, id.Trial
	o.CheckpointDir = ""
	if r.ckdir != "" {
		o.CheckpointDir = filepath.Join(r.ckdir, id.file())
	}
	return o
}

// unitIdentity is what trial unit id's checkpoint records.
func (r *semirobustRun) unitIdentity(id unitID) []finetune.Setting {
	return append(slices.Clone(r.identity), finetune.Setting{Name: "unit", Value: id.String()})
}

// loadUnit reads a finished unit of this run from DIR/units (nil when
// there is none); a record of another run or one that is not consistent is
// an error, and so is a trial unit whose model changed.
func (r *semirobustRun) loadUnit(id unitID, index int) (*semirobustUnit, error) {
	path := r.unitFile(id)
	b, err := onnxio.ReadRegular(path, report.MaxBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s: %s; run without --resume and --skip-done to start over", path, fmt.Sprintf(format, a...))
	}
	var u semirobustUnit
	if err := json.Unmarshal(b, &u); err != nil {
		return nil, bad("not a unit record: %v", err)
	}
	u.source = path
	if u.Fingerprint != r.fp {
		return nil, bad("belongs to another run (fingerprint %.12s…, this run's %.12s…)", u.Fingerprint, r.fp)
	}
	if u.Index != index || u.id() != id {
		return nil, bad("holds unit %d (%s); this run's unit %d is %s", u.Index, u.id(), index, id)
	}
	if err := u.check(r.ks); err != nil {
		return nil, bad("%v", err)
	}
	if u.K > 0 {
		d, err := report.FileDigests(u.Model)
		if err != nil {
			return nil, bad("its model: %v", err)
		}
		if d[u.Model] != u.ModelSHA256 {
			return nil, bad("its model %s changed since it was written", u.Model)
		}
	}
	return &u, nil
}

// noteUnit memoises the numbers a finished unit measured.
func (r *semirobustRun) noteUnit(u *semirobustUnit) {
	if u.AccStar != nil {
		if _, ok := r.accStar[u.Attack]; !ok {
			r.accStar[u.Attack] = *u.AccStar
		}
	}
	for _, s := range u.Starts {
		r.accSR[rowKey(u.Attack, s.K)] = *s.AccSR
	}
	if u.K > 0 && u.AccSR != nil {
		if _, ok := r.accSR[rowKey(u.Attack, u.K)]; !ok {
			r.accSR[rowKey(u.Attack, u.K)] = *u.AccSR
		}
	}
}

// attackUnit measures Acc and Acc* under the unit's attack and, for each K,
// Acc_sr, ρ of (f*_a, f_b) and Algorithm S1.
func (r *semirobustRun) attackUnit(u *semirobustUnit) error {
	name, atk := u.Attack, r.attacks[u.Attack]
	start := time.Now()
	defer func() { u.Seconds = time.Since(start).Seconds() }()
	fmt.Fprintf(r.w, "== attack %s: Acc and Acc*; Acc_sr and ρ before fine-tuning for K = %s\n", name, intList(r.ks))
	acc, err := r.accuracyOf(r.normal, atk, "Acc (normal model, "+name+")")
	if err != nil {
		return err
	}
	u.Acc = &acc
	accStar, err := r.accuracyOf(r.robust, atk, "Acc* (robust model, "+name+")")
	if err != nil {
		return err
	}
	u.AccStar = &accStar
	r.accStar[name] = accStar
	fmt.Fprintf(r.w, "Acc %.2f  Acc* %.2f\n", acc, accStar)
	var s1x []float32 // Algorithm S1's inputs: the ρ data attacked against f*, the same for every K
	for _, k := range r.ks {
		setup := r.setups[k]
		st := unitStart{K: k}
		sr, err := r.accuracyOf(setup.Start, atk, fmt.Sprintf("Acc_sr (semirobust start, K = %d, %s)", k, name))
		if err != nil {
			return err
		}
		st.AccSR = &sr
		pairs, err := tailPairs(setup.Layers, k)
		if err != nil {
			return err
		}
		if st.RhosBefore, err = rhosOnAttacked(r.ctx, setup.Start, r.rhoTest, atk, pairs, r.ro); err != nil {
			return err
		}
		if r.linear {
			if s1x == nil {
				s1x = r.rhoTest.X
				if atk != nil {
					rc, err := ort.NewClassifier(r.robust, r.eng)
					if err != nil {
						return err
					}
					res, err := attacks.AdversarialAccuracy(r.ctx, rc, r.rhoTest.X, r.rhoTest.Y, atk, r.batch, progressTo(r.errw, "Algorithm S1 data ("+name+")"))
					rc.Close()
					if err != nil {
						return err
					}
					s1x = res.Adv
				}
			}
			acc, err := linearS1(r.ctx, r.robust, s1x, r.rhoTest, setup.Cut.After, r.batch, r.eng)
			if err != nil {
				return err
			}
			st.AccLinear = &acc
			fmt.Fprintf(r.w, "K = %d: Algorithm S1 (linear predictor from layers 1..%d of f*): %.2f%%\n", k, setup.Cut.After, acc)
		}
		if r.untrained {
			m, err := untrainedTail(setup, r.ro.Seed)
			if err != nil {
				return err
			}
			acc, err := r.accuracyOf(m, atk, fmt.Sprintf("Acc with an untrained tail (K = %d, %s)", k, name))
			if err != nil {
				return err
			}
			st.AccUntrained = &acc
			fmt.Fprintf(r.w, "K = %d: zero-shot accuracy with an untrained tail %.2f%%\n", k, acc)
		}
		r.accSR[rowKey(name, k)] = sr
		u.Starts = append(u.Starts, st)
		fmt.Fprintf(r.w, "K = %d: Acc_sr %.2f  ρ_n before fine-tuning %.3f %s\n", k, sr, st.RhosBefore[len(st.RhosBefore)-1].Value, r.units)
	}
	return nil
}

// trialUnit runs one trial of Algorithm 1 (or continues it from ck) and
// measures ρ of its best model. Acc* (the target) and Acc_sr come from the
// attack unit when this process ran or took it over, else from the
// checkpoint, else they are measured here, the same way.
func (r *semirobustRun) trialUnit(u *semirobustUnit, ck *finetune.Checkpoint) error {
	id := u.id()
	name, atk, setup := id.Attack, r.attacks[id.Attack], r.setups[id.K]
	key := rowKey(name, id.K)
	run := finetuneRun{Setup: setup, Train: r.train, Test: r.test, EvalAttack: atk, Adv: r.adv, TRADES: r.trades, Options: r.unitOptions(id),
		Engine: r.eng, Batch: r.batch, Progress: epochPrinter(r.w, r.errw), ErrW: r.errw, AutoTarget: true, Identity: r.unitIdentity(id),
		FeatureCacheMiB: r.cacheMiB, Note: func(s string) { fmt.Fprintln(r.w, s) }}
	if ck != nil {
		m := ck.Measured()
		star, sr := m[measuredAccStar], m[measuredAccSR]
		run.Checkpoint, run.AccStar, run.AccSR = ck, &star, &sr
	} else {
		star, ok := r.accStar[name]
		if !ok {
			var err error
			if star, err = r.accuracyOf(r.robust, atk, "Acc* (robust model, "+name+"), for this shard's units"); err != nil {
				return err
			}
			r.accStar[name] = star
			fmt.Fprintf(r.w, "Acc* %.2f (measured for this shard's units; the attack unit reports it)\n", star)
		}
		sr, ok := r.accSR[key]
		if !ok {
			var err error
			if sr, err = r.accuracyOf(setup.Start, atk, fmt.Sprintf("Acc_sr (semirobust start, K = %d, %s), for this shard's units", id.K, name)); err != nil {
				return err
			}
			r.accSR[key] = sr
		}
		run.AccStar, run.AccSR = &star, &sr
	}
	var costDone func() *unitCost
	if r.cost {
		params, err := tailParamCount(setup)
		if err != nil {
			return err
		}
		costDone = measureCost(params)
	}
	out, err := runFinetuneJob(r.ctx, run)
	if costDone != nil {
		u.Cost = costDone()
	}
	u.AccStar, u.AccSR, u.Seconds, u.ResumedFrom = out.AccStar, out.AccSR, out.Seconds, out.ResumedFrom
	if out.Result != nil && len(out.Result.Trials) > 0 {
		rec := out.Result.Trials[0]
		u.Finetune = &rec
	}
	if err != nil {
		u.BestSoFar = out.BestSoFar
		return err
	}
	start := time.Now()
	model := filepath.Join(r.unitsDir, id.file()+".onnx")
	if err := writeModel(model, out.Final); err != nil {
		return err
	}
	d, err := report.FileDigests(model)
	if err != nil {
		return err
	}
	u.Model, u.ModelSHA256 = model, d[model]
	pairs, err := tailPairs(setup.Layers, id.K)
	if err != nil {
		return err
	}
	if u.Rhos, err = rhosOnAttacked(r.ctx, out.Final, r.rhoTest, atk, pairs, r.ro); err != nil {
		return err
	}
	if len(r.dependence) > 0 {
		for _, t := range []struct {
			tail string
			m    *onnxio.Model
		}{{"normal", setup.Start}, {"finetuned", out.Final}, {"robust", r.robust}} {
			key := fmt.Sprintf("%s/%s", key, t.tail)
			vals, ok := r.depCache[key]
			if !ok {
				fmt.Fprintf(r.w, "trial %d: --dependence %s of the %s tail\n", id.Trial, strings.Join(r.dependence, ","), t.tail)
				if vals, err = r.measureDependence(t.m, t.tail, id.K, setup.Layers, atk); err != nil {
					return err
				}
				if t.tail != "finetuned" {
					r.depCache[key] = vals
				}
			}
			u.Dependence = append(u.Dependence, vals...)
		}
	}
	u.Seconds += time.Since(start).Seconds()
	f := u.Finetune
	conv := "did not reach Acc*"
	if f.Converged {
		conv = fmt.Sprintf("reached Acc* − k after %d epochs", f.EpochsToConverge)
	}
	fmt.Fprintf(r.w, "trial %d: best %.2f%% at epoch %d, %s; ρ_n %.3f %s\n", id.Trial, f.BestAcc, f.BestEpoch, conv, u.Rhos[len(u.Rhos)-1].Value, r.units)
	return nil
}

// intList is "4,12".
func intList(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
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
	sh, err := resolveShard(c)
	if err != nil {
		return err
	}
	sharded := c.String("shard") != ""
	ks, err := parseKList(c.String("fb-layers"))
	if err != nil {
		return usagef("%v", err)
	}
	switch {
	case c.Bool("reference-adv-training") && !c.Bool("cost"):
		return usagef("--reference-adv-training needs --cost")
	case c.Bool("reference-adv-training") && sharded:
		return usagef("--reference-adv-training does not run with --shard (run it unsharded)")
	case c.Bool("reference-adv-training") && adv == nil:
		return usagef("--reference-adv-training needs --adv pgd (full adversarial training)")
	}
	atks := map[string]attacks.Attack{}
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
		atks[name] = a
		atkNames = append(atkNames, name)
	}
	est, units, err := newEstimator(c)
	if err != nil {
		return err
	}
	dependence, err := parseDependence(c.String("dependence"))
	if err != nil {
		return usagef("%v", err)
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
	dir, ckdir := c.String("o"), fo.CheckpointDir
	fp, err := semirobustFingerprint(c, train, test)
	if err != nil {
		return err
	}
	// The report a finished run (or shard) leaves, which --skip-done looks for.
	reportPath := c.String("json")
	if reportPath == "" {
		reportPath = filepath.Join(dir, "report.json")
		if sharded {
			reportPath = filepath.Join(dir, fmt.Sprintf("shard-%d-of-%d.json", sh.Index, sh.Count))
		}
	}
	if c.Bool("skip-done") && alreadyDone(reportPath, fp, sh) {
		fmt.Fprintf(w, "semirobust: %s already holds this run's complete report (shard %s); skipped\n", reportPath, sh)
		return nil
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
	estUnits := estimators.Bits
	if c.Bool("nats") {
		estUnits = estimators.Nats
	}
	for _, m := range dependence {
		if m == "sensitivity" {
			continue
		}
		de, err := dependenceEstimator(m, uint64(c.Int64("seed")), estUnits)
		if err != nil {
			return usagef("--dependence: %v", err)
		}
		if err := checkRhoSamples(de, an, pairsMax, rhoTest, "--rho-n (for --dependence "+m+")", errw); err != nil {
			return err
		}
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
	for _, name := range atkNames {
		records = append(records, attackRecord{Name: name, Setting: attackSetting(atks[name], classes)})
	}
	identity, err := runIdentity(c, [][2]string{{"normal model", c.String("normal")}, {"robust model", c.String("robust")}},
		[]identityData{{"training data", train, c.Int("offset")}, {"evaluation data", test, 0}},
		[]finetune.Setting{settingJSON("adversarial fine-tuning", adv), settingJSON("TRADES fine-tuning", trades),
			settingJSON("evaluation attacks", records), settingJSON("estimator", est), {Name: "units", Value: units}})
	if err != nil {
		return err
	}
	r := &semirobustRun{ctx: c.Context, w: w, errw: errw, eng: eng, normal: normal, robust: robust, train: train, test: test, rhoTest: rhoTest,
		attacks: atks, ks: ks, setups: setups, fo: fo, adv: adv, trades: trades, units: units, batch: c.Int("batch"), linear: c.Bool("linear"), cost: c.Bool("cost"), untrained: c.Bool("untrained-fb"), dependence: dependence, estUnits: estUnits, depCache: map[string][]dependenceValue{},
		cacheMiB: c.Int("feature-cache-mb"), fp: fp, unitsDir: filepath.Join(dir, "units"), ckdir: ckdir, identity: identity,
		accStar: map[string]float64{}, accSR: map[string]float64{}, announced: map[string]bool{}}
	r.ro = rhoOptions{Estimator: est, PerClass: true, Permutations: c.Int("permutations"), Seed: uint64(c.Int64("seed")), Batch: r.batch, Engine: eng, ErrW: errw}

	grid := semirobustUnits(atkNames, ks, fo.Trials)
	lo, hi := sh.Range(len(grid))
	done := map[string]*semirobustUnit{}
	cks := map[string]*finetune.Checkpoint{}
	runPath := filepath.Join(r.unitsDir, semirobustRunFile)
	if c.Bool("resume") || c.Bool("skip-done") {
		// Take the finished units of this shard over, and check every
		// unfinished trial unit's checkpoint, before any work.
		b, err := onnxio.ReadRegular(runPath, report.MaxBytes)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if c.Bool("resume") {
				fmt.Fprintf(w, "--resume: nothing finished in %s yet: starting fresh\n", r.unitsDir)
			}
		case err != nil:
			return err
		default:
			var rec semirobustRunRecord
			if err := json.Unmarshal(b, &rec); err != nil || rec.Format != semirobustRunFormat {
				return fmt.Errorf("%s is not a semirobust run record (%v); run without --resume and --skip-done to start over", runPath, err)
			}
			if err := finetune.CompareIdentity(rec.Identity, identity); err != nil {
				return fmt.Errorf("%s belongs to another run: %w; use another -o, or run without --resume and --skip-done to start over", runPath, err)
			}
			for i := lo; i < hi; i++ {
				u, err := r.loadUnit(grid[i], i)
				if err != nil {
					return err
				}
				if u != nil {
					done[u.Unit] = u
				}
			}
		}
		if c.Bool("resume") {
			for i := lo; i < hi; i++ {
				id := grid[i]
				if id.K == 0 || done[id.String()] != nil {
					continue
				}
				o := r.unitOptions(id)
				ck, err := finetune.OpenCheckpoint(o.CheckpointDir)
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil {
					return fmt.Errorf("resume: %w", err)
				}
				m := ck.Measured()
				_, star := m[measuredAccStar]
				if _, sr := m[measuredAccSR]; !star || !sr {
					return fmt.Errorf("resume: %s does not record Acc* and Acc_sr", ck.Path)
				}
				check, _ := jobOptions(setups[id.K], o, trades, m[measuredAccStar])
				if err := ck.Check(check, r.unitIdentity(id)); err != nil {
					return fmt.Errorf("resume: %w", err)
				}
				cks[id.String()] = ck
			}
		}
	} else {
		// A fresh run: this shard's units and checkpoints of an earlier run go.
		for i := lo; i < hi; i++ {
			stale := []string{r.unitFile(grid[i])}
			if grid[i].K > 0 {
				stale = append(stale, filepath.Join(r.unitsDir, grid[i].file()+".onnx"))
				if ckdir != "" {
					stale = append(stale, filepath.Join(r.unitOptions(grid[i]).CheckpointDir, finetune.CheckpointFile))
				}
			}
			for _, p := range stale {
				if err := removeStale(p); err != nil {
					return err
				}
			}
		}
	}
	if err := os.MkdirAll(r.unitsDir, 0o755); err != nil {
		return err
	}
	if err := report.WriteJSON(runPath, semirobustRunRecord{Format: semirobustRunFormat, Fingerprint: fp, Identity: identity}); err != nil {
		return err
	}
	eps, _ := parseNumber(c.String("eps"))
	rep := semirobustReport{Header: newHeader(c), Normal: c.String("normal"), Robust: c.String("robust"), Train: train.Name, Test: test.Name,
		Eps: eps, Norm: c.String("norm"), HeadBN: setups[ks[0]].HeadBN, Attacks: records, Adv: adv, TRADES: trades, Estimator: est, Units: units,
		BNExport: bn, BNExportNote: bn.describe(), Layers: setups[ks[0]].Layers, FbLayers: ks, CheckpointDir: ckdir,
		DependenceMeasures: dependence}
	rep.Fingerprint = fp
	opts := fo
	opts.HeadBN = setups[ks[0]].HeadBN
	opts = opts.Resolved()
	opts.CheckpointDir = ""
	if rep.Options, err = json.Marshal(opts); err != nil {
		return err
	}
	rep.Target = "each row's Acc* (finetune_options.target is per row)"
	if sharded {
		rep.Sharding = &report.Sharding{Shard: sh, Lo: lo, Hi: hi, Total: len(grid)}
		if lo == hi {
			fmt.Fprintf(w, "shard %s: no work unit (the run has %d); writing an empty shard report\n", sh, len(grid))
		} else {
			fmt.Fprintf(w, "shard %s: units %d..%d of %d (%s … %s)\n", sh, lo+1, hi, len(grid), grid[lo], grid[hi-1])
		}
	}

	var cur *semirobustUnit // the unit in progress
	loopErr := func() error {
		for i := lo; i < hi; i++ {
			id := grid[i]
			if id.K > 0 && !r.announced[rowKey(id.Attack, id.K)] {
				r.announced[rowKey(id.Attack, id.K)] = true
				allDone := true
				for j := i; j < hi && grid[j].Attack == id.Attack && grid[j].K == id.K; j++ {
					allDone = allDone && done[grid[j].String()] != nil
				}
				if allDone {
					fmt.Fprintf(w, "== attack %s, K = %d: finished before, taken from %s\n", id.Attack, id.K, r.unitsDir)
				} else {
					s := setups[id.K]
					fmt.Fprintf(w, "== attack %s, K = %d (head: layers 1..%d, tail: last %d of %d)\n", id.Attack, id.K, s.Cut.After, id.K, s.Layers)
				}
			}
			if u := done[id.String()]; u != nil {
				if id.K == 0 {
					fmt.Fprintf(w, "== attack %s: finished before, taken from %s\n", id.Attack, u.source)
				}
				r.noteUnit(u)
				continue
			}
			cur = &semirobustUnit{Format: semirobustUnitFormat, Fingerprint: fp, Index: i, Unit: id.String(), Attack: id.Attack, K: id.K, Trial: id.Trial}
			var err error
			if id.K == 0 {
				err = r.attackUnit(cur)
			} else {
				err = r.trialUnit(cur, cks[id.String()])
			}
			if err != nil {
				return err
			}
			cur.Complete = true
			if err := report.WriteJSON(r.unitFile(id), cur); err != nil {
				return err
			}
			cur.source = r.unitFile(id)
			done[id.String()] = cur
			cur = nil
			if id.K > 0 && (i+1 == hi || grid[i+1].K != id.K || grid[i+1].Attack != id.Attack) {
				printRowSummary(w, fo.Trials, done, id, units)
			}
		}
		return nil
	}()
	if loopErr != nil {
		rep.MarkIncomplete(loopErr)
	}
	all := map[string]*semirobustUnit{}
	for k, u := range done {
		all[k] = u
	}
	if cur != nil {
		all[cur.Unit] = cur
	}
	if sharded {
		for i := lo; i < hi; i++ {
			if u := all[grid[i].String()]; u != nil {
				rep.WorkUnits = append(rep.WorkUnits, *u)
			}
		}
		rep.Seconds = time.Since(start).Seconds()
		if err := report.WriteJSON(reportPath, rep); err != nil {
			return err
		}
		if loopErr == nil {
			fmt.Fprintf(w, "shard report: %s (merge the shards' reports with srtool merge)\n", reportPath)
			return nil
		}
		finished := 0
		for i := lo; i < hi; i++ {
			if done[grid[i].String()] != nil {
				finished++
			}
		}
		msg := fmt.Sprintf("%d of %d units of shard %s finished", finished, hi-lo, sh)
		if cur != nil {
			msg += fmt.Sprintf("; unit %s stopped", cur.Unit)
			if cur.Finetune != nil {
				msg += ": " + finishedWorkOf([]finetune.TrialResult{*cur.Finetune}, fo.Epochs, cur.BestSoFar)
			}
		}
		msg += fmt.Sprintf("; partial shard report written to %s (complete: false)", reportPath)
		if isCancel(loopErr) {
			return interrupted(loopErr, msg, resumeHint(c))
		}
		return fmt.Errorf("%w; %s", loopErr, msg)
	}
	rows, err := semirobustRows(atkNames, ks, fo.Trials, all, loopErr != nil)
	if err != nil {
		return err
	}
	if err := placeRowModels(dir, rows); err != nil {
		return err
	}
	rep.Rows = rows
	if loopErr == nil && c.Bool("cost") {
		rep.MemoryNote = memoryNote
	}
	if loopErr == nil && c.Bool("reference-adv-training") {
		name := atkNames[0]
		fmt.Fprintf(w, "== reference: full adversarial training of f (every layer), target Acc* %.2f under %s\n", r.accStar[name], name)
		if rep.Reference, err = r.referenceAdvTraining(c.Context, name, r.accStar[name]); err != nil {
			return err
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	if err := writeSemirobustReport(dir, filepath.Join(dir, "report.json"), &rep); err != nil {
		return err
	}
	if err := report.WriteJSON(c.String("json"), rep); err != nil {
		return err
	}
	if loopErr == nil {
		fmt.Fprintf(w, "report: %s\n", filepath.Join(dir, "report.md"))
		return nil
	}
	finished := 0
	var stopped *semirobustRow // the row of the unit in progress, else the first unfinished one
	for i, row := range rows {
		switch {
		case row.Complete:
			finished++
		case cur != nil && cur.K > 0 && row.Attack == cur.Attack && row.K == cur.K:
			stopped = &rows[i]
		case stopped == nil && (cur == nil || cur.K == 0):
			stopped = &rows[i]
		}
	}
	msg := fmt.Sprintf("%d of %d rows finished", finished, len(atkNames)*len(ks))
	switch {
	case cur != nil && cur.K == 0:
		msg += fmt.Sprintf("; %s stopped", cur.Unit)
	case stopped != nil:
		msg += fmt.Sprintf("; %s K=%d stopped", stopped.Attack, stopped.K)
		if stopped.FinetuneHistory != nil {
			msg += ": " + finishedWorkOf(stopped.FinetuneHistory, fo.Epochs, stopped.BestSoFar)
		}
	}
	msg += fmt.Sprintf("; partial report written to %s (complete: false)", filepath.Join(dir, "report.md"))
	if isCancel(loopErr) {
		return interrupted(loopErr, msg, resumeHint(c))
	}
	return fmt.Errorf("%w; %s", loopErr, msg)
}

// printRowSummary prints the summary line of the row of unit id once its
// units have all finished in this process.
func printRowSummary(w io.Writer, trials int, done map[string]*semirobustUnit, id unitID, units string) {
	rows, err := semirobustRows([]string{id.Attack}, []int{id.K}, trials, done, true)
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
func accuracySeries(r semirobustRow) []plotting.Series {
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

// writeSemirobustReport writes report.md and the plots into dir and, last,
// the report JSON (jsonPath; dir/report.json for a run) with the SHA-256
// of every other file it describes. An unfinished report says so at the
// top and in every cell it lacks.
func writeSemirobustReport(dir, jsonPath string, rep *semirobustReport) error {
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
	rep.DependenceCorrelations = dependenceCorrelations(rep.Rows)
	depPlots, err := writeDependenceSection(&b, dir, rep)
	if err != nil {
		return err
	}
	costPlots = append(costPlots, depPlots...)
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
	if err := onnxio.WriteFileAtomic(md, []byte(b.String())); err != nil {
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
