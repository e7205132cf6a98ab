package runs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/internal/atomicfile"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/report"
)

// AttackReport is the JSON document of `srtool attack --convention aa`.
// Numbers of unfinished work are null, never 0 or 100: CleanAccuracy until
// the clean pass finished, RobustAccuracy unless the run is complete;
// PerAttack holds the finished attacks only, Pending the others.
type AttackReport struct {
	report.Header
	Model string `json:"model"`
	// ModelSHA256 is the hash of the model as it ran: the ONNX bytes after
	// --mean/--std normalisation was prepended.
	ModelSHA256    string   `json:"model_sha256"`
	Data           string   `json:"data"`
	Offset         int      `json:"offset"`
	N              int      `json:"n"`
	Convention     string   `json:"convention"`
	CleanAccuracy  *float64 `json:"clean_accuracy"`
	RobustAccuracy *float64 `json:"robust_accuracy"`
	// CleanCorrect and RobustPoints are the counts behind the accuracies
	// (what merging adds up); null when not measured.
	CleanCorrect *int                    `json:"clean_correct"`
	RobustPoints *int                    `json:"robust_points"`
	PerAttack    []attacks.AttackReport  `json:"per_attack"`
	Pending      []attacks.PendingAttack `json:"pending,omitempty"`
	// Settings are every attack of the command line with its resolved settings.
	Settings []attacks.Setting `json:"settings"`
	Counts   attacks.Counts    `json:"counts"`
	Warnings []attacks.Flag    `json:"warnings"`
	Outputs  AttackOutputs     `json:"outputs"`
	Seconds  float64           `json:"seconds"`
	Device   string            `json:"device"`
	// MergedFrom lists the shard reports of a merged report; Seconds and
	// call counts are then the shards' sums.
	MergedFrom []string `json:"merged_from,omitempty"`
}

// AttackOutputs are the files a run wrote; names ending in .partial hold an
// unfinished run's results.
type AttackOutputs struct {
	ResumeState string `json:"resume_state,omitempty"`
	PerSample   string `json:"per_sample,omitempty"`
	Adv         string `json:"adv,omitempty"`
}

// PartialSuffix marks per-sample and adversarial-input files of an
// unfinished run.
const PartialSuffix = ".partial"

// AttackOptions are the settings of AttackAA and AttackAdvAcc.
type AttackOptions struct {
	Model       string        // the model's path, for the report and messages
	ModelSHA256 string        // of the model as it runs (after normalisation was prepended)
	Header      report.Header // the report's header (fingerprint and sharding set)
	// Offset is the index of the selection's first sample in its source
	// (--offset); Lo is the index of d's first sample in the selection (a
	// shard's start). Both enter the resume fingerprint and per-sample rows.
	Offset, Lo int
	Seed       int64  // part of the resume fingerprint
	Version    string // srtool's version, part of the resume fingerprint
	Batch      int    // samples per batch (0 = each function's default)
	Device     string // recorded in the report
	// JSON, Resume, PerSample and SaveAdv are the report, resume state,
	// per-sample JSON lines and adversarial inputs (.npy) files; "" = none.
	// Resume, PerSample: AttackAA only.
	JSON, Resume, PerSample, SaveAdv string
	Start                            time.Time // when the command started (the report's seconds)
	// Progress sees every progress report (may be nil); Log gets notes for
	// the user (resumed states, warnings), nil for none.
	Progress func(attacks.Progress)
	Log      io.Writer
}

func (o AttackOptions) log() io.Writer {
	if o.Log == nil {
		return io.Discard
	}
	return o.Log
}

// AttackSettings are every attack of list with its resolved settings.
func AttackSettings(list []attacks.Attack, classes int, convention string) []attacks.Setting {
	out := make([]attacks.Setting, len(list))
	for i, a := range list {
		out[i] = attacks.SettingOf(a, classes)
		out[i].Convention = convention
	}
	return out
}

// fingerprint is what a run adds to Evaluate's fingerprint of a resume
// state: the model, which samples of the source, the seed and the tool
// version (Evaluate adds the data's count and hash, the classes and every
// attack's resolved settings). The batch size is not part of it: results
// do not depend on it.
func (o AttackOptions) fingerprint(n int) attacks.Fingerprint {
	return attacks.Fingerprint{
		{Name: "model sha256", Value: o.ModelSHA256},
		{Name: "data offset", Value: strconv.Itoa(o.Offset)},
		{Name: "data first index", Value: strconv.Itoa(o.Offset + o.Lo)},
		{Name: "data last index", Value: strconv.Itoa(o.Offset + o.Lo + n - 1)},
		{Name: "seed", Value: strconv.FormatInt(o.Seed, 10)},
		{Name: "tool version", Value: o.Version},
	}
}

// AttackAA runs attacks.Evaluate (AutoAttack's convention: attacks in
// sequence on still-robust points), resuming from and saving o.Resume, and
// writes the outputs, the summary on w and the report. A stopped run writes
// .partial outputs and a report with complete: false.
func AttackAA(ctx context.Context, m attacks.Model, d *dataset.Dataset, list []attacks.Attack, o AttackOptions, w io.Writer) (*AttackReport, error) {
	eo := attacks.EvalOptions{BatchSize: o.Batch, Fingerprint: o.fingerprint(d.Len())}
	statePath := o.Resume
	if statePath != "" {
		b, err := onnxio.ReadRegular(statePath, report.MaxStateBytes)
		switch {
		case err == nil:
			st, err := attacks.ParseEvalState(b)
			if err != nil {
				return nil, fmt.Errorf("--resume %s: %w; nothing was run (delete the file to start over)", statePath, err)
			}
			eo.Resume = st
		case errors.Is(err, os.ErrNotExist):
		default:
			return nil, fmt.Errorf("--resume %s: %w", statePath, err)
		}
		eo.Checkpoint = func(st *attacks.EvalState) error {
			b, err := json.Marshal(st)
			if err != nil {
				return err
			}
			return atomicfile.WriteFile(statePath, b)
		}
	}
	announce := eo.Resume != nil // said once the state is accepted
	eo.Progress = func(p attacks.Progress) {
		if announce {
			fmt.Fprintf(o.log(), "resumed from %s\n", statePath)
			announce = false
		}
		if o.Progress != nil {
			o.Progress(p)
		}
	}
	res, runErr := attacks.Evaluate(ctx, m, d.X, d.Y, list, eo)
	if res == nil {
		if statePath != "" && eo.Resume != nil {
			return nil, fmt.Errorf("--resume %s: %w; nothing was run (pass another --resume file, or delete this one to start over)", statePath, runErr)
		}
		return nil, runErr
	}
	if announce {
		fmt.Fprintf(o.log(), "resumed from %s, which had finished\n", statePath)
	}
	complete := res.Complete && runErr == nil
	rep := &AttackReport{Header: o.Header, Model: o.Model, ModelSHA256: o.ModelSHA256, Data: d.Name, Offset: o.Offset, N: res.N,
		Convention: "aa", PerAttack: res.Attacks, Pending: res.Pending, Settings: AttackSettings(list, m.NumClasses(), "aa"), Counts: res.Counts, Warnings: res.Flags,
		Device: o.Device}
	if !complete {
		rep.MarkIncomplete(runErr)
		if runErr == nil {
			rep.Incomplete = "stopped early"
		}
	}
	if res.CleanDone {
		rep.CleanAccuracy = &res.CleanAccuracy
		correct := 0
		for _, s := range res.Samples {
			if s.CleanPred == s.Label {
				correct++
			}
		}
		rep.CleanCorrect = &correct
	}
	if complete {
		rep.RobustAccuracy = &res.RobustAccuracy
		robust := 0
		for _, s := range res.Samples {
			if s.Robust {
				robust++
			}
		}
		rep.RobustPoints = &robust
	}
	if rep.PerAttack == nil {
		rep.PerAttack = []attacks.AttackReport{}
	}
	if rep.Warnings == nil {
		rep.Warnings = []attacks.Flag{}
	}
	rep.Outputs.ResumeState = statePath

	// Outputs first, so that the report can name them.
	var outErr error
	if p := o.PerSample; p != "" {
		rep.Outputs.PerSample, outErr = WriteOutput(p, complete, func(path string) error { return writePerSample(path, res, o.Lo) })
	}
	if p := o.SaveAdv; p != "" && outErr == nil {
		rep.Outputs.Adv, outErr = WriteOutput(p, complete, func(path string) error {
			return npy.WriteFile(path, npy.FromFloat32(res.Adv, d.Len(), d.C, d.H, d.W))
		})
	}
	rep.Seconds = time.Since(o.Start).Seconds()
	rep.writeSummary(w, o.log(), res, d.Name)
	if err := report.WriteJSON(o.JSON, rep); err != nil {
		return rep, err
	}
	if outErr != nil {
		return rep, outErr
	}
	if runErr == nil {
		return rep, nil
	}
	done := evalDone(res) + written(o.JSON, rep.Outputs, complete)
	if report.IsCancel(runErr) {
		resume := "nothing was saved to resume from: run the command again (add --resume FILE to make a run resumable)"
		if statePath != "" {
			resume = fmt.Sprintf("resume with the same command (--resume %s)", statePath)
		}
		return rep, report.Interrupt(runErr, done, resume)
	}
	return rep, fmt.Errorf("%w (%s)", runErr, done)
}

// evalDone says what an unfinished Evaluate finished.
func evalDone(res *attacks.EvalResult) string {
	if !res.CleanDone {
		return fmt.Sprintf("the clean pass stopped at %d of %d points", res.State.Cleaned, res.N)
	}
	var names []string
	for _, a := range res.Attacks {
		names = append(names, a.Name)
	}
	s := "the clean pass"
	if len(names) > 0 {
		s += " and " + strings.Join(names, ", ")
	}
	s += " finished"
	if len(res.Pending) > 0 && res.Pending[0].Total >= 0 {
		p := res.Pending[0]
		s += fmt.Sprintf(", %s stopped at %d of %d points", p.Name, p.Done, p.Total)
	}
	return s
}

// written lists the files an unfinished run wrote, for the interrupted: line.
func written(jsonPath string, out AttackOutputs, complete bool) string {
	var parts []string
	if jsonPath != "" {
		parts = append(parts, fmt.Sprintf("report written to %s (complete: %v)", jsonPath, complete))
	}
	if out.PerSample != "" {
		parts = append(parts, "per-sample verdicts in "+out.PerSample)
	}
	if out.Adv != "" {
		parts = append(parts, "adversarial inputs in "+out.Adv)
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, ", ")
}

// WriteOutput writes an output file with write: to path when the run is
// complete (removing an older path.partial), else to path.partial. It
// returns the name written.
func WriteOutput(path string, complete bool, write func(string) error) (string, error) {
	if !complete {
		path += PartialSuffix
		return path, write(path)
	}
	if err := write(path); err != nil {
		return "", err
	}
	if err := os.Remove(path + PartialSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
		return path, err
	}
	return path, nil
}

// writeSummary prints the accuracies on w and the warnings on log.
func (rep *AttackReport) writeSummary(w, log io.Writer, res *attacks.EvalResult, data string) {
	if rep.CleanAccuracy != nil {
		fmt.Fprintf(w, "clean accuracy:  %6.2f%%  (%d samples, %s)\n", *rep.CleanAccuracy, rep.N, data)
	} else {
		fmt.Fprintf(w, "clean accuracy:  not finished (%d of %d samples classified)\n", res.State.Cleaned, rep.N)
	}
	for _, a := range res.Attacks {
		fmt.Fprintf(w, "after %-12s %6.2f%%  (%s; broke %d of %d, %d gradient calls)\n", a.Name+":", a.RobustAccuracy, a.Setting, a.Broken, a.Attacked, a.Counts.GradCalls)
	}
	for _, p := range res.Pending {
		if p.Total >= 0 {
			fmt.Fprintf(w, "%-18s not finished (%d of %d points attacked)\n", p.Name+":", p.Done, p.Total)
		} else {
			fmt.Fprintf(w, "%-18s not finished (not started)\n", p.Name+":")
		}
	}
	if rep.RobustAccuracy != nil {
		fmt.Fprintf(w, "robust accuracy: %6.2f%%  (aa convention: worst case over the attacks, misclassified points count as broken; %.1fs)\n", *rep.RobustAccuracy, rep.Seconds)
	} else {
		fmt.Fprintf(w, "robust accuracy: not finished\n")
	}
	for _, f := range rep.Warnings {
		fmt.Fprintf(log, "warning: %s: %s\n", f.Check, f.Message)
	}
}

// sampleRow is one line of the per-sample file. Values not measured are
// null: robust, adv_pred and dist until the point's verdict is final,
// clean_pred until the clean pass reached it.
type sampleRow struct {
	Index     int      `json:"index"`
	Label     int64    `json:"label"`
	CleanPred *int64   `json:"clean_pred"`
	AdvPred   *int64   `json:"adv_pred"`
	Robust    *bool    `json:"robust"`
	BrokenBy  string   `json:"broken_by,omitempty"`
	Dist      *float32 `json:"dist"`
	Complete  bool     `json:"complete"`
}

// writePerSample writes res's verdicts; lo is the global index of the first
// sample (a shard's start).
func writePerSample(path string, res *attacks.EvalResult, lo int) error {
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	enc := json.NewEncoder(bw)
	for i, s := range res.Samples {
		row := sampleRow{Index: lo + i, Label: s.Label, BrokenBy: s.BrokenBy, Complete: s.Complete}
		if i < res.State.Cleaned {
			row.CleanPred = &s.CleanPred
		}
		if s.Complete {
			row.AdvPred, row.Robust, row.Dist = &s.AdvPred, &s.Robust, &s.Dist
		}
		if err := enc.Encode(row); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b.Bytes())
}
