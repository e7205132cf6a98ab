package semirobust

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/internal/atomicfile"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/report"
)

// Row is one (attack, K) row of the paper's tables S2–S4, put
// together from the run's work units (AssembleRows). Complete is false
// for a row whose units did not all finish; numbers of its unfinished work
// are absent, never 0.
type Row struct {
	Attack    string     `json:"attack"`
	K         int        `json:"fb_layers"`
	Complete  bool       `json:"complete"`
	Acc       *float64   `json:"acc,omitempty"`         // f under the attack
	AccStar   *float64   `json:"acc_star,omitempty"`    // f*
	AccSR     *float64   `json:"acc_sr,omitempty"`      // (f*_a, f_b) before fine-tuning
	AccTilde  *float64   `json:"acc_tilde,omitempty"`   // (f*_a, f~_b) after: the best trial's best epoch
	Delta     *float64   `json:"delta,omitempty"`       // Acc~ − Acc*
	BestSoFar *BestSoFar `json:"best_so_far,omitempty"` // an unfinished row's best epoch so far
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
	Rhos            []Pair                 `json:"rhos,omitempty"`        // f~ (the best trial's) on attacked test data
	RhosBefore      []Pair                 `json:"rhos_before,omitempty"` // (f*_a, f_b)
	RhosPerTrial    [][]float64            `json:"rhos_per_trial,omitempty"`
	FinetuneHistory []finetune.TrialResult `json:"finetune"`
	Model           string                 `json:"model,omitempty"`
	ModelSHA256     string                 `json:"model_sha256,omitempty"`
	// Cost (--cost) is what the row's fine-tuning cost: trainable
	// parameters, wall time per epoch and to convergence, peak memory.
	Cost *RowCost `json:"cost,omitempty"`
	// Dependence (--dependence) holds each finished trial's measures of
	// the three tails, with the trial's Acc~ − Acc*.
	Dependence []TrialDependence `json:"dependence,omitempty"`
	// BoundPerTrial (--bound) is each finished trial's weight-difference
	// bound of its best model, in trial order.
	BoundPerTrial []TrialBound `json:"bound_per_trial,omitempty"`
	// RhoAtThreshold (--rho-every-epoch) is ρ_n at each stopping threshold
	// k of Thresholds, from the trials' ρ after every epoch.
	RhoAtThreshold []ThresholdRho `json:"rho_at_threshold,omitempty"`
}

// AttackRecord is one evaluation attack as it ran, every default resolved.
type AttackRecord struct {
	Name    string           `json:"name"`
	Setting *attacks.Setting `json:"setting"` // null: clean accuracy
}

// Report is the run's report (report.json) or, with Sharding
// set, one shard's: a shard report holds its work units' results (Units)
// and no rows; srtool merge puts the shards' units together into the rows
// of the unsharded run's report.
type Report struct {
	report.Header
	Normal    string               `json:"normal"`
	Robust    string               `json:"robust"`
	Train     string               `json:"train_data"`
	Test      string               `json:"eval_data"`
	Eps       float64              `json:"eps"`
	Norm      string               `json:"norm"`
	HeadBN    finetune.BNMode      `json:"head_bn"`
	Attacks   []AttackRecord       `json:"attacks"`
	Adv       *attacks.PGD         `json:"adversarial_finetuning,omitempty"`
	TRADES    *diffmodel.TRADES    `json:"trades_finetuning,omitempty"`
	Estimator estimators.Estimator `json:"estimator"`
	Units     string               `json:"units"`
	// BNExport says what ρ taps: "preserve" (conv outputs before
	// BatchNorm), "folded" (conv+BN outputs) or "none" (no BatchNorm nodes).
	BNExport     BNExport `json:"bn_export"`
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
	Rows []Row `json:"rows,omitempty"`
	// WorkUnits are a shard report's units, in unit order (the unit in
	// progress last, complete false, when the shard stopped).
	WorkUnits     []Unit `json:"work_units,omitempty"`
	CheckpointDir string `json:"checkpoint_dir,omitempty"`
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
	DependenceCorrelations []RankCorrelation `json:"dependence_correlations,omitempty"`
	Reference              *ReferenceCost    `json:"reference_adv_training,omitempty"`
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
type UnitID struct {
	Attack string
	K      int // 0: the attack unit
	Trial  int // from 1; 0: the attack unit
}

func (u UnitID) String() string {
	if u.K == 0 {
		return "attack " + u.Attack
	}
	return fmt.Sprintf("%s K=%d trial %d", u.Attack, u.K, u.Trial)
}

// file is the unit's file name without extension (DIR/units/FILE.json, the
// trial's model FILE.onnx, its checkpoint folder FILE).
func (u UnitID) file() string {
	if u.K == 0 {
		return u.Attack
	}
	return fmt.Sprintf("%s_K%d_t%d", u.Attack, u.K, u.Trial)
}

// UnitGrid lists the work units of a grid, in unit order.
func UnitGrid(attackNames []string, ks []int, trials int) []UnitID {
	var out []UnitID
	for _, a := range attackNames {
		out = append(out, UnitID{Attack: a})
		for _, k := range ks {
			for t := 1; t <= trials; t++ {
				out = append(out, UnitID{Attack: a, K: k, Trial: t})
			}
		}
	}
	return out
}

const unitFormat = "srtool.semirobust-unit/1"

// Unit is a work unit's result, as DIR/units/FILE.json and a
// shard report record it. An attack unit sets Acc, AccStar and Starts; a
// trial unit AccStar and AccSR (as it measured them, or took them from its
// checkpoint), Finetune, Rhos and Model. A unit that stopped (Complete
// false) holds only what it measured.
type Unit struct {
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
	Starts  []UnitStart `json:"starts,omitempty"`

	AccSR       *float64              `json:"acc_sr,omitempty"`
	Finetune    *finetune.TrialResult `json:"finetune,omitempty"`
	BestSoFar   *BestSoFar            `json:"best_so_far,omitempty"`
	Rhos        []Pair                `json:"rhos,omitempty"`
	Model       string                `json:"model,omitempty"`
	ModelSHA256 string                `json:"model_sha256,omitempty"`
	ResumedFrom string                `json:"resumed_from,omitempty"`
	Cost        *UnitCost             `json:"cost,omitempty"` // --cost
	Dependence  []DependenceValue     `json:"dependence,omitempty"`
	Bound       *TrialBound           `json:"bound,omitempty"` // --bound
	Seconds     float64               `json:"seconds"`

	source string // where it was read from, for messages
}

// UnitStart is what an attack unit measures for one K before fine-tuning.
type UnitStart struct {
	K          int      `json:"fb_layers"`
	AccSR      *float64 `json:"acc_sr"`
	RhosBefore []Pair   `json:"rhos_before"`
	AccLinear  *float64 `json:"acc_linear,omitempty"`
	// AccUntrained (--untrained-fb) is the zero-shot accuracy of f*_a with
	// a freshly initialised tail (untrainedTail, seed --seed).
	AccUntrained *float64 `json:"acc_untrained,omitempty"`
}

func (u *Unit) id() UnitID { return UnitID{Attack: u.Attack, K: u.K, Trial: u.Trial} }

// where names the unit and where it came from in messages.
func (u *Unit) where() string {
	if u.source == "" {
		return "unit " + u.Unit
	}
	return fmt.Sprintf("unit %s (%s)", u.Unit, u.source)
}

// check checks a finished unit's record: it names itself, and every number
// it must hold is there and in range.
func (u *Unit) check(ks []int) error {
	pct := func(v *float64) bool { return v != nil && *v >= 0 && *v <= 100 }
	switch {
	case u.Format != unitFormat:
		return fmt.Errorf("format %q; this srtool reads %q", u.Format, unitFormat)
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

// AssembleRows puts the units' results together into the report's rows,
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
// caller copies it beside the report (PlaceRowModels).
func AssembleRows(names []string, ks []int, trials int, units map[string]*Unit, partial bool) ([]Row, error) {
	var rows []Row
	same := func(what string, a, b *Unit, x, y *float64) error {
		if x != nil && y != nil && *x != *y {
			return fmt.Errorf("%s measured %s %v but %s %v: the units did not compute the same numbers (another device, thread count or ONNX Runtime build?)",
				a.where(), what, *x, b.where(), *y)
		}
		return nil
	}
	for _, name := range names {
		au := units[UnitID{Attack: name}.String()]
		if au != nil && !au.Complete {
			au = nil
		}
		for _, k := range ks {
			var start *UnitStart
			if au != nil {
				for i := range au.Starts {
					if au.Starts[i].K == k {
						start = &au.Starts[i]
					}
				}
			}
			tus := make([]*Unit, 0, trials)
			complete, missing := au != nil && start != nil, ""
			if !complete {
				missing = UnitID{Attack: name}.String()
			}
			for t := 1; t <= trials; t++ {
				id := UnitID{Attack: name, K: k, Trial: t}
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
			row := Row{Attack: name, K: k, Complete: complete}
			if au != nil {
				row.Acc, row.AccStar = au.Acc, au.AccStar
			}
			if start != nil {
				row.AccSR, row.RhosBefore, row.AccLinear, row.AccUntrained = start.AccSR, start.RhosBefore, start.AccLinear, start.AccUntrained
			}
			var best *Unit
			var resumed []string
			var costs []*UnitCost
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
					row.Dependence = append(row.Dependence, TrialDependence{Trial: tu.Trial, Delta: f.BestAcc - *tu.AccStar, Values: tu.Dependence})
				}
				if tu.Bound != nil {
					row.BoundPerTrial = append(row.BoundPerTrial, *tu.Bound)
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
					row.BestSoFar = &BestSoFar{Acc: best.Finetune.BestAcc, Trial: best.Trial, Epoch: best.Finetune.BestEpoch}
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

// PlaceRowModels copies each complete row's model (its best trial unit's)
// beside the report as DIR/semirobust_ATTACK_KK.onnx, checking it is the
// file the unit wrote, and points the row at the copy.
func PlaceRowModels(dir string, rows []Row) error {
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
		if same, _ := report.SameFile(r.Model, dst); !same {
			if err := atomicfile.WriteFile(dst, b); err != nil {
				return err
			}
		}
		r.Model = dst
	}
	return nil
}

// runFile, in DIR/units, records the run the units belong to:
// taking finished units over (--resume, --skip-done) is refused for a
// folder of another run, naming the first difference.
const (
	runFile   = "run.json"
	runFormat = "srtool.semirobust-run/1"
)

type runRecord struct {
	Format      string             `json:"format"`
	Fingerprint string             `json:"fingerprint"`
	Identity    []finetune.Setting `json:"identity"`
}
