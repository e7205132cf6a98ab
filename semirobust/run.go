package semirobust

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/diffmodel"
	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/report"
	"github.com/semirobust/srtool/shard"
)

// Options are the inputs and settings of a semirobust run (Run), as
// `srtool semirobust` fills them from its flags; the flags' defaults are
// noted in brackets. Every field without a note is required.
type Options struct {
	// Normal and Robust are f and f*, read from NormalPath and RobustPath
	// (the report names the paths; the run's identity hashes the files).
	NormalPath, RobustPath string
	Normal, Robust         *onnxio.Model
	// Train is the fine-tuning data, whose first sample is sample
	// TrainOffset of its source; Test is the evaluation data, whose first
	// RhoN samples [1000] are the ρ data (and Algorithm S1's).
	Train, Test *dataset.Dataset
	TrainOffset int
	RhoN        int
	// Attacks are the evaluation attacks A, in the report's order; a nil
	// Attack is clean evaluation (named "clean").
	Attacks []NamedAttack
	// Ks are the K values (weight layers in the tail), in order.
	Ks []int
	// HeadBN is the frozen head's BatchNorm during fine-tuning: "eval"
	// (also "") or "train".
	HeadBN finetune.BNMode
	// Finetune are the loop's options: Trials (≥ 1) trials per (A, K),
	// Tolerance (the paper's k), CheckpointDir (resumable per trial unit,
	// "" for none), the optimiser and schedule. Adv or TRADES, if set,
	// fine-tune adversarially [PGD-10].
	Finetune finetune.Options
	Adv      *attacks.PGD
	TRADES   *diffmodel.TRADES
	// Eps and Norm are the attacks' radius and norm, as the report records them.
	Eps  float64
	Norm string
	// Engine and Batch run the models (Batch: inference batch size).
	Engine ort.Options
	Batch  int
	// Estimator measures ρ in Units ("bits" or "nats", EstimatorUnits for
	// --dependence's estimators), per class, with Permutations [0]
	// permutation-null repetitions; Seed seeds them and --untrained-fb.
	Estimator      estimators.Estimator
	Units          string
	EstimatorUnits estimators.Units
	Permutations   int
	Seed           uint64
	// Linear also runs Algorithm S1; Cost records what each K costs;
	// UntrainedTail measures f*_a with a freshly initialised tail;
	// ReferenceAdvTraining (with Cost, unsharded, Adv set) adversarially
	// trains all of f as the reference cost; Dependence lists measures of
	// DependenceMeasures to take per trial. All off by default.
	Linear, Cost, UntrainedTail, ReferenceAdvTraining bool
	Dependence                                        []string
	// Bound computes, per K and trial, the weight-difference bound of the
	// trial's best model against f* on the ρ data's clean inputs
	// (TrialBound); it is part of the run's fingerprint and identity, so
	// units written without it are not taken over. Off by default.
	Bound bool
	// RhoEveryEpoch measures ρ of the trial's tail pairs (Estimator, on
	// the ρ data attacked with the row's attack) after every epoch of every
	// trial, the authors' trial rhos, into each epoch's metrics
	// (rho_PARENT:CHILD), and the report adds ρ_n per epoch and at each
	// stopping threshold k. Part of the fingerprint and identity, as Bound.
	// Off by default.
	RhoEveryEpoch bool
	// FeatureCacheMiB bounds the frozen head's cached features for clean
	// fine-tuning [2048]; 0 turns the cache off.
	FeatureCacheMiB int
	// Dir is the run folder (report.md, report.json, plots, models, and
	// the work units in Dir/units). JSON, if set, also receives the report.
	Dir  string
	JSON string
	// Sharded runs piece Shard of the work units and writes the shard
	// report (to JSON, else Dir/shard-I-of-N.json) instead of the report.
	Sharded bool
	Shard   shard.Shard
	// Resume takes finished units over and continues trial units from
	// their checkpoints. SkipDone returns at once when the run's (or
	// shard's) complete report is already there, and takes finished units
	// over otherwise.
	Resume, SkipDone bool
	// Header opens the report; its Run (the command line and resolved
	// flags) is what the fingerprint and the identity record.
	Header report.Header
	// Start is when the run began (the report's seconds count from it);
	// zero: when Run is called.
	Start time.Time
	// Progress reports the stages' progress; EpochProgress, if set, makes
	// the callback of one fine-tuning job (a trial unit, the reference).
	Progress      Progress
	EpochProgress func() func(finetune.Progress)
}

// NamedAttack is an evaluation attack and the name the report gives it.
type NamedAttack struct {
	Name   string
	Attack attacks.Attack // nil: clean
}

// StoppedError is Run's error when the run stopped in its work units,
// after it wrote its partial report: Err is why (a cancelled context
// included), Done says what finished and where the partial report is.
type StoppedError struct {
	Err  error
	Done string
}

func (e *StoppedError) Error() string { return e.Err.Error() + "; " + e.Done }
func (e *StoppedError) Unwrap() error { return e.Err }

// Run runs the paper's experiment: for each attack A the attack unit (Acc,
// Acc*, and per K Acc_sr, ρ before fine-tuning, Algorithm S1), then per K
// and trial one trial of Algorithm 1 and ρ of its best model; it writes
// each unit's result to Dir/units, then the report (report.md, plots,
// report.json) or, sharded, the shard report. Progress lines go to w,
// warnings to errw. A run that stopped in its units returns its partial
// report with a *StoppedError; an error in the settings wraps ErrOption. A
// run SkipDone skips returns nil and no error.
func Run(ctx context.Context, o Options, w, errw io.Writer) (*Report, error) {
	o.Header = headerWithoutOptInsOff(o.Header, map[string]bool{"bound": o.Bound, "rho-every-epoch": o.RhoEveryEpoch})
	start := o.Start
	if start.IsZero() {
		start = time.Now()
	}
	dir, ckdir := o.Dir, o.Finetune.CheckpointDir
	sh, sharded := o.Shard, o.Sharded
	fp, err := fingerprint(o)
	if err != nil {
		return nil, err
	}
	// The report a finished run (or shard) leaves, which SkipDone looks for.
	reportPath := o.JSON
	if reportPath == "" {
		reportPath = filepath.Join(dir, "report.json")
		if sharded {
			reportPath = filepath.Join(dir, fmt.Sprintf("shard-%d-of-%d.json", sh.Index, sh.Count))
		}
	}
	if o.SkipDone && report.AlreadyDone(reportPath, fp, sh) {
		fmt.Fprintf(w, "semirobust: %s already holds this run's complete report (shard %s); skipped\n", reportPath, sh)
		return nil, nil
	}
	setups := map[int]*Setup{}
	maxK := 0
	for _, k := range o.Ks {
		if setups[k], err = NewSetup(o.Robust, o.Normal, 0, k, o.HeadBN); err != nil {
			return nil, err
		}
		if _, err := TailPairs(setups[k].Layers, k); err != nil {
			return nil, err
		}
		maxK = max(maxK, k)
	}
	an := setups[maxK].Analysis
	rhoTest := o.Test.Slice(0, min(o.Test.Len(), o.RhoN))
	// Sample-size requirements, before any training: the largest K's pairs
	// include every smaller K's.
	pairsMax, _ := TailPairs(setups[maxK].Layers, maxK)
	if err := CheckRhoSamples(o.Estimator, an, pairsMax, rhoTest, "--rho-n", errw); err != nil {
		return nil, err
	}
	for _, m := range o.Dependence {
		if m == "sensitivity" {
			continue
		}
		de, err := DependenceEstimator(m, o.Seed, o.EstimatorUnits)
		if err != nil {
			return nil, optionf("--dependence: %v", err)
		}
		if err := CheckRhoSamples(de, an, pairsMax, rhoTest, "--rho-n (for --dependence "+m+")", errw); err != nil {
			return nil, err
		}
	}
	if o.Linear {
		for _, k := range o.Ks {
			if err := CheckLinearSize(an, setups[k].Cut.After, rhoTest.Len()); err != nil {
				return nil, err
			}
		}
	}
	bn := BNExportOf(an)
	if msg := bn.Warning(); msg != "" {
		fmt.Fprintln(errw, "warning: "+msg)
	}
	classes := ModelClasses(an)
	var records []AttackRecord
	atks := map[string]attacks.Attack{}
	var atkNames []string
	for _, a := range o.Attacks {
		records = append(records, AttackRecord{Name: a.Name, Setting: AttackSetting(a.Attack, classes)})
		atks[a.Name] = a.Attack
		atkNames = append(atkNames, a.Name)
	}
	identity, err := RunIdentity(o.Header.Run, [][2]string{{"normal model", o.NormalPath}, {"robust model", o.RobustPath}},
		[]IdentityData{{"training data", o.Train, o.TrainOffset}, {"evaluation data", o.Test, 0}},
		[]finetune.Setting{SettingJSON("adversarial fine-tuning", o.Adv), SettingJSON("TRADES fine-tuning", o.TRADES),
			SettingJSON("evaluation attacks", records), SettingJSON("estimator", o.Estimator), {Name: "units", Value: o.Units}})
	if err != nil {
		return nil, err
	}
	identity = append(identity, optInSettings(o.Bound, o.RhoEveryEpoch)...)
	r := &runner{ctx: ctx, w: w, errw: errw, progress: o.Progress, epochProgress: o.EpochProgress, eng: o.Engine, normal: o.Normal, robust: o.Robust, train: o.Train, test: o.Test, rhoTest: rhoTest,
		attacks: atks, ks: o.Ks, setups: setups, fo: o.Finetune, adv: o.Adv, trades: o.TRADES, units: o.Units, batch: o.Batch, linear: o.Linear, cost: o.Cost, untrained: o.UntrainedTail, dependence: o.Dependence, bound: o.Bound, rhoEveryEpoch: o.RhoEveryEpoch, robustPath: o.RobustPath, seed: o.Seed, estUnits: o.EstimatorUnits, depCache: map[string][]DependenceValue{},
		cacheMiB: o.FeatureCacheMiB, fp: fp, unitsDir: filepath.Join(dir, "units"), ckdir: ckdir, identity: identity,
		accStar: map[string]float64{}, accSR: map[string]float64{}, announced: map[string]bool{}}
	r.ro = RhoOptions{Estimator: o.Estimator, PerClass: true, Permutations: o.Permutations, Seed: o.Seed, Batch: r.batch, Engine: o.Engine, Progress: o.Progress}

	grid := UnitGrid(atkNames, o.Ks, o.Finetune.Trials)
	lo, hi := sh.Range(len(grid))
	done := map[string]*Unit{}
	cks := map[string]*finetune.Checkpoint{}
	runPath := filepath.Join(r.unitsDir, runFile)
	if o.Resume || o.SkipDone {
		// Take the finished units of this shard over, and check every
		// unfinished trial unit's checkpoint, before any work.
		b, err := onnxio.ReadRegular(runPath, report.MaxBytes)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if o.Resume {
				fmt.Fprintf(w, "--resume: nothing finished in %s yet: starting fresh\n", r.unitsDir)
			}
		case err != nil:
			return nil, err
		default:
			var rec runRecord
			if err := json.Unmarshal(b, &rec); err != nil || rec.Format != runFormat {
				return nil, fmt.Errorf("%s is not a semirobust run record (%v); run without --resume and --skip-done to start over", runPath, err)
			}
			if err := finetune.CompareIdentity(rec.Identity, identity); err != nil {
				return nil, fmt.Errorf("%s belongs to another run: %w; use another -o, or run without --resume and --skip-done to start over", runPath, err)
			}
			for i := lo; i < hi; i++ {
				u, err := r.loadUnit(grid[i], i)
				if err != nil {
					return nil, err
				}
				if u != nil {
					done[u.Unit] = u
				}
			}
		}
		if o.Resume {
			for i := lo; i < hi; i++ {
				id := grid[i]
				if id.K == 0 || done[id.String()] != nil {
					continue
				}
				uo := r.unitOptions(id)
				ck, err := finetune.OpenCheckpoint(uo.CheckpointDir)
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil {
					return nil, fmt.Errorf("resume: %w", err)
				}
				m := ck.Measured()
				_, star := m[MeasuredAccStar]
				if _, sr := m[MeasuredAccSR]; !star || !sr {
					return nil, fmt.Errorf("resume: %s does not record Acc* and Acc_sr", ck.Path)
				}
				check, _ := JobOptions(setups[id.K], uo, o.TRADES, m[MeasuredAccStar])
				if err := ck.Check(check, r.unitIdentity(id)); err != nil {
					return nil, fmt.Errorf("resume: %w", err)
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
				if err := RemoveStale(p); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := os.MkdirAll(r.unitsDir, 0o755); err != nil {
		return nil, err
	}
	if err := report.WriteJSON(runPath, runRecord{Format: runFormat, Fingerprint: fp, Identity: identity}); err != nil {
		return nil, err
	}
	ks := o.Ks
	rep := Report{Header: o.Header, Normal: o.NormalPath, Robust: o.RobustPath, Train: o.Train.Name, Test: o.Test.Name,
		Eps: o.Eps, Norm: o.Norm, HeadBN: setups[ks[0]].HeadBN, Attacks: records, Adv: o.Adv, TRADES: o.TRADES, Estimator: o.Estimator, Units: o.Units,
		BNExport: bn, BNExportNote: bn.Describe(), Layers: setups[ks[0]].Layers, FbLayers: ks, CheckpointDir: ckdir,
		DependenceMeasures: o.Dependence}
	rep.Fingerprint = fp
	opts := o.Finetune
	opts.HeadBN = setups[ks[0]].HeadBN
	opts = opts.Resolved()
	opts.CheckpointDir = ""
	if rep.Options, err = json.Marshal(opts); err != nil {
		return nil, err
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

	var cur *Unit // the unit in progress
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
			cur = &Unit{Format: unitFormat, Fingerprint: fp, Index: i, Unit: id.String(), Attack: id.Attack, K: id.K, Trial: id.Trial}
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
				printRowSummary(w, o.Finetune.Trials, done, id, o.Units)
			}
		}
		return nil
	}()
	if loopErr != nil {
		rep.MarkIncomplete(loopErr)
	}
	all := map[string]*Unit{}
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
			return nil, err
		}
		if loopErr == nil {
			fmt.Fprintf(w, "shard report: %s (merge the shards' reports with srtool merge)\n", reportPath)
			return &rep, nil
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
				msg += ": " + finishedWorkOf([]finetune.TrialResult{*cur.Finetune}, o.Finetune.Epochs, cur.BestSoFar)
			}
		}
		msg += fmt.Sprintf("; partial shard report written to %s (complete: false)", reportPath)
		return &rep, &StoppedError{Err: loopErr, Done: msg}
	}
	rows, err := AssembleRows(atkNames, ks, o.Finetune.Trials, all, loopErr != nil)
	if err != nil {
		return nil, err
	}
	addRhoThresholds(rows)
	if err := PlaceRowModels(dir, rows); err != nil {
		return nil, err
	}
	rep.Rows = rows
	if loopErr == nil && o.Cost {
		rep.MemoryNote = MemoryNote
	}
	if loopErr == nil && o.ReferenceAdvTraining {
		name := atkNames[0]
		fmt.Fprintf(w, "== reference: full adversarial training of f (every layer), target Acc* %.2f under %s\n", r.accStar[name], name)
		if rep.Reference, err = r.referenceAdvTraining(ctx, name, r.accStar[name]); err != nil {
			return nil, err
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	if err := WriteReport(dir, filepath.Join(dir, "report.json"), &rep); err != nil {
		return nil, err
	}
	if err := report.WriteJSON(o.JSON, rep); err != nil {
		return nil, err
	}
	if loopErr == nil {
		fmt.Fprintf(w, "report: %s\n", filepath.Join(dir, "report.md"))
		return &rep, nil
	}
	finished := 0
	var stopped *Row // the row of the unit in progress, else the first unfinished one
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
			msg += ": " + finishedWorkOf(stopped.FinetuneHistory, o.Finetune.Epochs, stopped.BestSoFar)
		}
	}
	msg += fmt.Sprintf("; partial report written to %s (complete: false)", filepath.Join(dir, "report.md"))
	return &rep, &StoppedError{Err: loopErr, Done: msg}
}

// fingerprint is report.Fingerprint over both models, the training data
// and every result-changing flag, with the evaluation data's fingerprint
// added: it binds a run's shards and work units together.
func fingerprint(o Options) (string, error) {
	fp, err := report.Fingerprint(o.Header.Run, []string{o.NormalPath, o.RobustPath}, o.Train)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", fp)
	for _, s := range (IdentityData{Role: "evaluation data", D: o.Test}).Settings() {
		fmt.Fprintf(h, "%s=%s\n", s.Name, s.Value)
	}
	for _, s := range optInSettings(o.Bound, o.RhoEveryEpoch) {
		fmt.Fprintf(h, "%s=%s\n", s.Name, s.Value)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// optInSettings is what Options.Bound and Options.RhoEveryEpoch add to a
// run's fingerprint and identity: nothing for one that is off, so runs
// without them keep theirs.
func optInSettings(bound, rhoEveryEpoch bool) []finetune.Setting {
	var s []finetune.Setting
	if bound {
		s = append(s, finetune.Setting{Name: "weight-difference bound", Value: "tol 1e-4, max 100 iterations, seed --seed, clean ρ data"})
	}
	if rhoEveryEpoch {
		s = append(s, finetune.Setting{Name: "ρ after every epoch", Value: "the tail's pairs, ρ data attacked with the row's attack"})
	}
	return s
}

// runner holds what the work units of one run share. accStar and
// accSR memoise the deterministic numbers trial units need (by attack, and
// by row), so a process measures each once.
type runner struct {
	ctx           context.Context
	w, errw       io.Writer
	progress      Progress
	epochProgress func() func(finetune.Progress)
	eng           ort.Options
	normal        *onnxio.Model
	robust        *onnxio.Model
	train         *dataset.Dataset
	test          *dataset.Dataset
	rhoTest       *dataset.Dataset
	attacks       map[string]attacks.Attack
	ks            []int
	setups        map[int]*Setup
	fo            finetune.Options
	adv           *attacks.PGD
	trades        *diffmodel.TRADES
	ro            RhoOptions
	units         string
	batch         int
	linear        bool
	cost          bool
	untrained     bool
	dependence    []string
	bound         bool   // Options.Bound
	rhoEveryEpoch bool   // Options.RhoEveryEpoch
	robustPath    string // f*'s file, as the bound names it
	seed          uint64 // the bound's power-iteration seed
	estUnits      estimators.Units
	depCache      map[string][]DependenceValue // normal and robust tails' measures, by attack, K and tail
	cacheMiB      int
	fp            string
	unitsDir      string
	ckdir         string
	identity      []finetune.Setting
	accStar       map[string]float64
	accSR         map[string]float64
	announced     map[string]bool // rows whose header was printed
}

// epochs is a new epoch progress callback (nil without EpochProgress).
func (r *runner) epochs() func(finetune.Progress) {
	if r.epochProgress == nil {
		return nil
	}
	return r.epochProgress()
}

// accuracyOf is model m's accuracy on the evaluation data under atk
// (clean when nil); the attack unit and a trial unit measuring Acc* or
// Acc_sr for itself use this same computation.
func (r *runner) accuracyOf(m *onnxio.Model, atk attacks.Attack, label string) (float64, error) {
	clf, err := diffmodel.NewClassifier(m, r.eng)
	if err != nil {
		return 0, err
	}
	defer clf.Close()
	return Accuracy(r.ctx, clf, r.test, atk, r.batch, r.progress.samples(label))
}

func (r *runner) unitFile(id UnitID) string {
	return filepath.Join(r.unitsDir, id.file()+".json")
}

// unitOptions are the fine-tuning options of trial unit id: one trial,
// numbered id.Trial, with its own checkpoint folder.
func (r *runner) unitOptions(id UnitID) finetune.Options {
	o := r.fo
	o.Trials, o.FirstTrial = 1, id.Trial
	o.CheckpointDir = ""
	if r.ckdir != "" {
		o.CheckpointDir = filepath.Join(r.ckdir, id.file())
	}
	return o
}

// unitIdentity is what trial unit id's checkpoint records.
func (r *runner) unitIdentity(id UnitID) []finetune.Setting {
	return append(slices.Clone(r.identity), finetune.Setting{Name: "unit", Value: id.String()})
}

// loadUnit reads a finished unit of this run from DIR/units (nil when
// there is none); a record of another run or one that is not consistent is
// an error, and so is a trial unit whose model changed.
func (r *runner) loadUnit(id UnitID, index int) (*Unit, error) {
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
	var u Unit
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
	if r.bound && u.K > 0 && u.Bound == nil {
		return nil, bad("no weight-difference bound (written without --bound)")
	}
	if r.rhoEveryEpoch && u.K > 0 && !hasEpochRhos(u.Finetune) {
		return nil, bad("no ρ after every epoch (written without --rho-every-epoch)")
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
func (r *runner) noteUnit(u *Unit) {
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
func (r *runner) attackUnit(u *Unit) error {
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
		st := UnitStart{K: k}
		sr, err := r.accuracyOf(setup.Start, atk, fmt.Sprintf("Acc_sr (semirobust start, K = %d, %s)", k, name))
		if err != nil {
			return err
		}
		st.AccSR = &sr
		pairs, err := TailPairs(setup.Layers, k)
		if err != nil {
			return err
		}
		if st.RhosBefore, err = RhosOnAttacked(r.ctx, setup.Start, r.rhoTest, atk, pairs, r.ro); err != nil {
			return err
		}
		if r.linear {
			if s1x == nil {
				s1x = r.rhoTest.X
				if atk != nil {
					rc, err := diffmodel.NewClassifier(r.robust, r.eng)
					if err != nil {
						return err
					}
					res, err := attacks.AdversarialAccuracy(r.ctx, rc, r.rhoTest.X, r.rhoTest.Y, atk, r.batch, r.progress.samples("Algorithm S1 data ("+name+")"))
					rc.Close()
					if err != nil {
						return err
					}
					s1x = res.Adv
				}
			}
			acc, err := LinearS1(r.ctx, r.robust, s1x, r.rhoTest, setup.Cut.After, r.batch, r.eng)
			if err != nil {
				return err
			}
			st.AccLinear = &acc
			fmt.Fprintf(r.w, "K = %d: Algorithm S1 (linear predictor from layers 1..%d of f*): %.2f%%\n", k, setup.Cut.After, acc)
		}
		if r.untrained {
			m, err := UntrainedTail(setup, r.ro.Seed)
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
func (r *runner) trialUnit(u *Unit, ck *finetune.Checkpoint) error {
	id := u.id()
	name, atk, setup := id.Attack, r.attacks[id.Attack], r.setups[id.K]
	key := rowKey(name, id.K)
	run := FinetuneJob{Setup: setup, Train: r.train, Test: r.test, EvalAttack: atk, Adv: r.adv, TRADES: r.trades, Options: r.unitOptions(id),
		Engine: r.eng, Batch: r.batch, Progress: r.epochs(), Measure: r.progress, AutoTarget: true, Identity: r.unitIdentity(id),
		FeatureCacheMiB: r.cacheMiB, Note: func(s string) { fmt.Fprintln(r.w, s) }}
	if r.rhoEveryEpoch {
		pairs, err := TailPairs(setup.Layers, id.K)
		if err != nil {
			return err
		}
		run.EpochRho = &EpochRho{Data: r.rhoTest, Pairs: pairs, Options: r.ro}
	}
	if ck != nil {
		m := ck.Measured()
		star, sr := m[MeasuredAccStar], m[MeasuredAccSR]
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
	var costDone func() *UnitCost
	if r.cost {
		params, err := TailParamCount(setup)
		if err != nil {
			return err
		}
		costDone = measureCost(params)
	}
	out, err := RunFinetune(r.ctx, run)
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
	if err := onnxio.Write(model, analyzer.StripNormalization(out.Final)); err != nil {
		return err
	}
	d, err := report.FileDigests(model)
	if err != nil {
		return err
	}
	u.Model, u.ModelSHA256 = model, d[model]
	pairs, err := TailPairs(setup.Layers, id.K)
	if err != nil {
		return err
	}
	if u.Rhos, err = RhosOnAttacked(r.ctx, out.Final, r.rhoTest, atk, pairs, r.ro); err != nil {
		return err
	}
	if r.bound {
		fmt.Fprintf(r.w, "trial %d: weight-difference bound (power iterations on the ρ data)\n", id.Trial)
		bo := TrialBoundOptions(r.robust, out.Final, r.robustPath, model, id.K, r.eng, r.batch, r.seed, r.progress)
		if u.Bound, err = ComputeTrialBound(r.ctx, bo, r.rhoTest, id.Trial); err != nil {
			return err
		}
		b := u.Bound
		fmt.Fprintf(r.w, "trial %d: bound ½λmax‖Δω_b‖² %.6g (λmax tail %.6g, ‖Δω_b‖² %.6g), ½ΔωᵀHΔω %.6g, loss gap %.6g\n", id.Trial, b.Bound, b.LambdaMaxTail, b.WeightDiffSq, b.QuadraticForm, b.LossGap)
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
