package finetune

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/internal/atomicfile"
)

// CheckpointFile is the name of the checkpoint inside Options.CheckpointDir.
const CheckpointFile = "checkpoint.safetensors"

// checkpointFormat names the layout of the metadata; a change that old
// checkpoints cannot be read with bumps the number (2: trials and epochs
// count from 1, Identity and Measured).
const checkpointFormat = "srtool.finetune/2"

// metaKey is the __metadata__ entry holding the resume record (JSON).
const metaKey = "srtool.finetune"

// checkpointMeta is the resume record stored in the checkpoint's metadata.
type checkpointMeta struct {
	Format string `json:"format"`
	// Options is the run's Options JSON without checkpoint_dir; Resume
	// requires the same.
	Options json.RawMessage `json:"options"`
	// Identity is Job.Identity; Resume requires the same.
	Identity []Setting `json:"identity,omitempty"`
	// Measured is Job.Measured, kept for the resumed run.
	Measured map[string]float64 `json:"measured,omitempty"`
	// InitHash and DataHash are CRC-64 (ECMA) fingerprints of the Job's
	// initial parameters and training set, in hex.
	InitHash string `json:"init_hash"`
	DataHash string `json:"data_hash"`
	// Trials and BestTrial are the Result so far; the last trial is the
	// current one (Done when it has finished).
	Trials    []TrialResult `json:"trials"`
	BestTrial int           `json:"best_trial"`
	// ScheduleSteps is the number of scheduler.step() calls in the current
	// trial, and LR and Momentum the rates they lead to (a check).
	ScheduleSteps int     `json:"schedule_steps"`
	LR            float64 `json:"lr"`
	Momentum      float64 `json:"momentum"`
	// OptimizerSteps is OptimizerState.Steps of the current trial.
	OptimizerSteps int64 `json:"optimizer_steps"`
	// TrialBest and Best describe the snapshots stored under "best/" (the
	// current trial's best so far, absent once the trial is done) and
	// "overall/" (Result.Best).
	TrialBest *snapshotMeta `json:"trial_best,omitempty"`
	Best      *snapshotMeta `json:"best,omitempty"`
}

type snapshotMeta struct {
	Trial int     `json:"trial"`
	Epoch int     `json:"epoch"`
	Acc   float64 `json:"acc"`
}

func metaOf(s *Snapshot) *snapshotMeta {
	if s == nil {
		return nil
	}
	return &snapshotMeta{s.Trial, s.Epoch, s.Acc}
}

// save writes the run's state atomically to CheckpointDir/CheckpointFile.
func (r *run) save() error {
	opts, err := optionsJSON(r.opt)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	cur := &r.res.Trials[len(r.res.Trials)-1]
	lr, mom := r.scheduler.Rates()
	meta := checkpointMeta{
		Format: checkpointFormat, Options: opts, Identity: r.job.Identity, Measured: r.measured,
		InitHash: fmt.Sprintf("%016x", r.initHash), DataHash: fmt.Sprintf("%016x", r.dataHash),
		Trials: r.res.Trials, BestTrial: r.res.BestTrial,
		ScheduleSteps: r.schedSteps, LR: lr, Momentum: mom, OptimizerSteps: r.ost.Steps,
		Best: metaOf(r.res.Best),
	}
	tensors := map[string][]float32{}
	add := func(prefix string, p Params) {
		for k, v := range p {
			tensors[prefix+k] = v
		}
	}
	add("trainable/", r.trainable)
	add("state/", r.state)
	if !cur.Done {
		for kind, p := range r.ost.Buffers {
			add("optim/"+kind+"/", p)
		}
		meta.TrialBest = metaOf(r.best)
		add("best/trainable/", r.best.Trainable)
		add("best/state/", r.best.State)
	}
	if r.res.Best != nil {
		add("overall/trainable/", r.res.Best.Trainable)
		add("overall/state/", r.res.Best.State)
	}
	mj, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return writeSafetensors(filepath.Join(r.opt.CheckpointDir, CheckpointFile), map[string]string{"format": checkpointFormat, metaKey: string(mj)}, tensors)
}

// Checkpoint is a checkpoint file read by OpenCheckpoint and found
// consistent in itself.
type Checkpoint struct {
	// Path is the file it was read from.
	Path    string
	meta    checkpointMeta
	tensors map[string][]float32
}

// OpenCheckpoint reads dir/CheckpointFile and checks it for consistency:
// trials and epochs numbered from 1 in order, only the last trial
// unfinished, best epochs and best trial agreeing with the accuracies
// recorded, every number finite and in range, and the tensor groups
// (current, best, overall, optimizer buffers) agreeing in names and
// lengths. A missing file is an error wrapping fs.ErrNotExist. Whether the
// checkpoint belongs to a given run is Check's question.
func OpenCheckpoint(dir string) (*Checkpoint, error) {
	path := filepath.Join(dir, CheckpointFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("checkpoint %s is not a regular file", path)
	}
	return decodeCheckpoint(bufio.NewReaderSize(f, 1<<20), st.Size(), path)
}

// decodeCheckpoint reads a checkpoint of size bytes from r; path names it
// in errors.
func decodeCheckpoint(r io.Reader, size int64, path string) (*Checkpoint, error) {
	md, tensors, err := decodeSafetensors(r, size)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	raw, ok := md[metaKey]
	if !ok {
		return nil, fmt.Errorf("checkpoint %s has no %q record: it was not written by srtool's fine-tuning", path, metaKey)
	}
	if f := md["format"]; f != checkpointFormat {
		return nil, fmt.Errorf("checkpoint %s has format %q; this srtool reads %q (start the run again without resuming)", path, f, checkpointFormat)
	}
	c := &Checkpoint{Path: path, tensors: tensors}
	if err := json.Unmarshal([]byte(raw), &c.meta); err != nil {
		return nil, fmt.Errorf("checkpoint %s: resume record: %w", path, err)
	}
	if c.meta.Format != checkpointFormat {
		return nil, fmt.Errorf("checkpoint %s: resume record has format %q; want %q", path, c.meta.Format, checkpointFormat)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("checkpoint %s is inconsistent: %w", path, err)
	}
	return c, nil
}

// Identity returns the Job.Identity the checkpoint was written with.
func (c *Checkpoint) Identity() []Setting { return slices.Clone(c.meta.Identity) }

// Measured returns the Job.Measured values the checkpoint was written with.
func (c *Checkpoint) Measured() map[string]float64 { return maps.Clone(c.meta.Measured) }

// Trials returns the trial records so far; the last may be unfinished.
func (c *Checkpoint) Trials() []TrialResult { return slices.Clone(c.meta.Trials) }

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// accuracy reports whether v is an accuracy in percent or −1 (not measured).
func accuracy(v float64) bool { return v == -1 || v >= 0 && v <= 100 }

// validate checks the record and the tensors against each other.
func (c *Checkpoint) validate() error {
	m := &c.meta
	if len(m.Trials) == 0 {
		return errors.New("no trial recorded")
	}
	done := 0
	first := m.Trials[0].Trial // a run may start at a later trial (Options.FirstTrial)
	if first < 1 {
		return fmt.Errorf("trial record 1 is numbered %d", first)
	}
	for i := range m.Trials {
		tr := &m.Trials[i]
		if tr.Trial != first+i {
			return fmt.Errorf("trial record %d is numbered %d; want %d", i+1, tr.Trial, first+i)
		}
		if !tr.Done && i != len(m.Trials)-1 {
			return fmt.Errorf("trial %d is unfinished but trial %d follows it", tr.Trial, tr.Trial+1)
		}
		if err := checkTrial(tr); err != nil {
			return fmt.Errorf("trial %d: %w", tr.Trial, err)
		}
		if tr.Done {
			done++
		}
	}
	// The best trial: the highest best accuracy, the earliest on ties; the
	// last finished trial without an evaluator (accuracies −1).
	wi := -1 // index of the best trial
	for i := range done {
		a := m.Trials[i].BestAcc
		if wi < 0 || a == -1 || a > m.Trials[wi].BestAcc {
			wi = i
		}
	}
	want := 0
	if wi >= 0 {
		want = m.Trials[wi].Trial
	}
	if m.BestTrial != want {
		return fmt.Errorf("best trial %d recorded; the trials' accuracies make it %d", m.BestTrial, want)
	}
	if want == 0 {
		if m.Best != nil {
			return errors.New("a best snapshot is recorded before any trial finished")
		}
	} else if b, tr := m.Best, &m.Trials[wi]; b == nil || b.Trial != want || b.Epoch != tr.BestEpoch || b.Acc != tr.BestAcc {
		return fmt.Errorf("the best snapshot %+v does not match trial %d's best epoch %d (%v%%)", b, want, tr.BestEpoch, tr.BestAcc)
	}
	last := &m.Trials[len(m.Trials)-1]
	if last.Done {
		if m.TrialBest != nil {
			return fmt.Errorf("trial %d is finished but its best-so-far snapshot is recorded", last.Trial)
		}
	} else if b := m.TrialBest; b == nil || b.Trial != last.Trial || b.Epoch != last.BestEpoch || b.Acc != last.BestAcc {
		return fmt.Errorf("trial %d's best-so-far snapshot %+v does not match its best epoch %d (%v%%)", last.Trial, b, last.BestEpoch, last.BestAcc)
	}
	if m.ScheduleSteps < 0 || m.OptimizerSteps < 0 || !finite(m.LR) || !finite(m.Momentum) {
		return fmt.Errorf("schedule steps %d, optimizer steps %d, lr %v, momentum %v", m.ScheduleSteps, m.OptimizerSteps, m.LR, m.Momentum)
	}
	for k, v := range m.Measured {
		if !finite(v) {
			return fmt.Errorf("measured %q is %v", k, v)
		}
	}
	return c.validateTensors()
}

// checkTrial checks one trial record: epochs numbered in order, numbers in
// range, the best epoch and the stopping record agreeing with them.
func checkTrial(tr *TrialResult) error {
	if len(tr.Epochs) == 0 {
		return errors.New("no epoch recorded")
	}
	bestEpoch, bestAcc := 0, -1.0
	measured := 0
	for j, e := range tr.Epochs {
		if e.Epoch != j+1 {
			return fmt.Errorf("epoch record %d is numbered %d", j+1, e.Epoch)
		}
		if !finite(e.Loss) || !(e.TrainAcc >= 0 && e.TrainAcc <= 100) || !accuracy(e.EvalAcc) || !(e.LR >= 0) || !finite(e.LR) || !(e.Seconds >= 0) || !finite(e.Seconds) {
			return fmt.Errorf("epoch %d: loss %v, train accuracy %v%%, evaluation accuracy %v%%, lr %v, %v s out of range", e.Epoch, e.Loss, e.TrainAcc, e.EvalAcc, e.LR, e.Seconds)
		}
		if e.EvalAcc != -1 {
			measured++
		}
		if e.EvalAcc == -1 || bestEpoch == 0 || e.EvalAcc > bestAcc {
			bestEpoch, bestAcc = e.Epoch, e.EvalAcc
		}
	}
	if measured != 0 && measured != len(tr.Epochs) {
		return errors.New("some epochs were evaluated and others not")
	}
	if tr.BestEpoch != bestEpoch || tr.BestAcc != bestAcc {
		return fmt.Errorf("best epoch %d (%v%%) recorded; the epochs make it %d (%v%%)", tr.BestEpoch, tr.BestAcc, bestEpoch, bestAcc)
	}
	if tr.Converged && (!tr.Done || tr.EpochsToConverge != len(tr.Epochs)) || !tr.Converged && tr.EpochsToConverge != 0 {
		return fmt.Errorf("converged %v after %d epochs recorded for %d epochs (done %v)", tr.Converged, tr.EpochsToConverge, len(tr.Epochs), tr.Done)
	}
	if !(tr.Seconds >= 0) || !finite(tr.Seconds) {
		return fmt.Errorf("%v seconds", tr.Seconds)
	}
	return nil
}

// tensorGroups are the prefixes of the checkpoint's tensor names, besides
// "optim/KIND/".
var tensorGroups = []string{"trainable/", "state/", "best/trainable/", "best/state/", "overall/trainable/", "overall/state/"}

// optimizerBuffers are the optimizer state kinds SGD and AdamW keep.
var optimizerBuffers = []string{"momentum_buffer", "exp_avg", "exp_avg_sq"}

// groups splits the tensors by prefix.
func (c *Checkpoint) groups() (map[string]Params, error) {
	g := map[string]Params{}
	for k, v := range c.tensors {
		prefix := ""
		for _, p := range tensorGroups {
			if strings.HasPrefix(k, p) {
				prefix = p
				break
			}
		}
		if prefix == "" {
			rest, ok := strings.CutPrefix(k, "optim/")
			kind, _, ok2 := strings.Cut(rest, "/")
			if !ok || !ok2 || !slices.Contains(optimizerBuffers, kind) {
				return nil, fmt.Errorf("unexpected tensor %q", k)
			}
			prefix = "optim/" + kind + "/"
		}
		name := strings.TrimPrefix(k, prefix)
		if name == "" {
			return nil, fmt.Errorf("tensor %q has no name after its group", k)
		}
		if g[prefix] == nil {
			g[prefix] = Params{}
		}
		g[prefix][name] = v
	}
	return g, nil
}

func (c *Checkpoint) validateTensors() error {
	g, err := c.groups()
	if err != nil {
		return err
	}
	trainable, state := g["trainable/"], g["state/"]
	if len(trainable) == 0 {
		return errors.New("no trainable tensor")
	}
	if state == nil {
		state = Params{}
	}
	unfinished := !c.meta.Trials[len(c.meta.Trials)-1].Done
	for _, s := range []struct {
		prefix  string
		present bool
	}{{"best/", c.meta.TrialBest != nil}, {"overall/", c.meta.Best != nil}} {
		tr, st := g[s.prefix+"trainable/"], g[s.prefix+"state/"]
		if !s.present {
			if len(tr)+len(st) > 0 {
				return fmt.Errorf("%s tensors without their snapshot record", s.prefix)
			}
			continue
		}
		if st == nil {
			st = Params{}
		}
		if err := sameShape(s.prefix+"trainable tensors", tr, trainable); err != nil {
			return err
		}
		if err := sameShape(s.prefix+"state tensors", st, state); err != nil {
			return err
		}
	}
	for prefix, p := range g {
		if !strings.HasPrefix(prefix, "optim/") {
			continue
		}
		if !unfinished {
			return fmt.Errorf("optimizer buffers %s* of a finished trial", prefix)
		}
		for name, v := range p {
			if w, ok := trainable[name]; !ok || len(w) != len(v) {
				return fmt.Errorf("optimizer buffer %s%s does not match a trainable tensor", prefix, name)
			}
		}
	}
	return nil
}

// Check reports whether the checkpoint belongs to a run with Options o and
// Job.Identity identity, and could have been written by it: the first
// setting that differs (identity first, then options) is named in the
// error; then the record is checked against o (trials, epochs, seeds, the
// stopping rule). Check does not compare the initial tensors and the
// training data; Resume does.
func (c *Checkpoint) Check(o Options, identity []Setting) error {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return err
	}
	if err := CompareIdentity(c.meta.Identity, identity); err != nil {
		return fmt.Errorf("%s belongs to another run: %w", c.Path, err)
	}
	opts, err := optionsJSON(o)
	if err != nil {
		return err
	}
	if err := compareJSON(c.meta.Options, opts); err != nil {
		return fmt.Errorf("%s belongs to another run: %w", c.Path, err)
	}
	if err := c.checkRecord(o); err != nil {
		return fmt.Errorf("checkpoint %s is inconsistent with its options: %w", c.Path, err)
	}
	return nil
}

// checkRecord checks the trial records against o.
func (c *Checkpoint) checkRecord(o Options) error {
	m := &c.meta
	if len(m.Trials) > o.Trials {
		return fmt.Errorf("%d trials recorded for a run of %d", len(m.Trials), o.Trials)
	}
	if f := o.firstTrial(); m.Trials[0].Trial != f {
		return fmt.Errorf("the first trial recorded is trial %d; this run starts at trial %d", m.Trials[0].Trial, f)
	}
	for i := range m.Trials {
		tr := &m.Trials[i]
		if want := o.Seed + uint64(tr.Trial-1); tr.Seed != want {
			return fmt.Errorf("trial %d has seed %d; want %d", tr.Trial, tr.Seed, want)
		}
		if len(tr.Epochs) > o.Epochs {
			return fmt.Errorf("trial %d records %d epochs; --epochs is %d", tr.Trial, len(tr.Epochs), o.Epochs)
		}
		// Replay the stopping rule.
		stop := 0
		best := -1.0
		for j, e := range tr.Epochs {
			best = max(best, e.EvalAcc)
			if o.Target > 0 && best >= o.Target-o.Tolerance {
				stop = j + 1
				break
			}
		}
		switch {
		case stop > 0 && (!tr.Converged || stop != len(tr.Epochs)):
			return fmt.Errorf("trial %d reached the target at epoch %d but records %d epochs (converged %v)", tr.Trial, stop, len(tr.Epochs), tr.Converged)
		case stop == 0 && tr.Converged:
			return fmt.Errorf("trial %d is marked converged but never reached the target %v%% − %v", tr.Trial, o.Target, o.Tolerance)
		case tr.Done && !tr.Converged && len(tr.Epochs) != o.Epochs:
			return fmt.Errorf("trial %d is marked finished after %d of %d epochs without reaching the target", tr.Trial, len(tr.Epochs), o.Epochs)
		case !tr.Done && len(tr.Epochs) == o.Epochs:
			return fmt.Errorf("trial %d ran all %d epochs but is not marked finished", tr.Trial, o.Epochs)
		}
	}
	if last := &m.Trials[len(m.Trials)-1]; !last.Done && o.ScheduleEvery == "epoch" && m.ScheduleSteps != len(last.Epochs) {
		return fmt.Errorf("%d schedule steps recorded after %d epochs", m.ScheduleSteps, len(last.Epochs))
	}
	return nil
}

// CompareIdentity returns nil when two identities are the same, else an
// error naming the first setting that differs between was (a checkpoint's,
// "there") and now (this run's).
func CompareIdentity(was, now []Setting) error {
	for i := range max(len(was), len(now)) {
		switch {
		case i >= len(was):
			return fmt.Errorf("this run has %s %s, which the checkpoint does not record", now[i].Name, clip(now[i].Value))
		case i >= len(now):
			return fmt.Errorf("the checkpoint records %s %s, which this run does not have", was[i].Name, clip(was[i].Value))
		case was[i].Name != now[i].Name:
			return fmt.Errorf("the checkpoint records %s where this run has %s", was[i].Name, now[i].Name)
		case was[i].Value != now[i].Value:
			return fmt.Errorf("%s is %s there but %s in this run", was[i].Name, clip(was[i].Value), clip(now[i].Value))
		}
	}
	return nil
}

// compareJSON names the first option (a JSON path) that differs.
func compareJSON(was, now json.RawMessage) error {
	var a, b bytes.Buffer
	if json.Compact(&a, was) == nil && json.Compact(&b, now) == nil && a.String() == b.String() {
		return nil
	}
	var x, y any
	if err := json.Unmarshal(was, &x); err != nil {
		return fmt.Errorf("its options do not parse: %w", err)
	}
	if err := json.Unmarshal(now, &y); err != nil {
		return err
	}
	if path, u, v, ok := firstDifference("", x, y); ok {
		return fmt.Errorf("option %s is %s there but %s in this run", path, clip(u), clip(v))
	}
	return nil
}

// firstDifference walks two decoded JSON values in key order and returns
// the path of the first place they differ, with both values as JSON.
func firstDifference(path string, x, y any) (string, string, string, bool) {
	show := func(v any) string {
		if v == nil {
			return "absent"
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	xm, xok := x.(map[string]any)
	ym, yok := y.(map[string]any)
	if xok && yok {
		keys := slices.Sorted(maps.Keys(xm))
		for k := range ym {
			if _, ok := xm[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if q, u, v, ok := firstDifference(p, xm[k], ym[k]); ok {
				return q, u, v, true
			}
		}
		return "", "", "", false
	}
	if show(x) != show(y) {
		if path == "" {
			path = "(all)"
		}
		return path, show(x), show(y), true
	}
	return "", "", "", false
}

// clip shortens a value for an error message.
func clip(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// load restores the run's state from its checkpoint.
func (r *run) load() error {
	c, err := OpenCheckpoint(r.opt.CheckpointDir)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	return r.restore(c)
}

// restore takes the run's state from c after checking that c belongs to
// this run.
func (r *run) restore(c *Checkpoint) error {
	path := c.Path
	if err := c.Check(r.opt, r.job.Identity); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	meta := c.meta
	if h := fmt.Sprintf("%016x", r.initHash); h != meta.InitHash {
		return fmt.Errorf("resume: %s belongs to another run: the initial parameters differ (fingerprint %s there, %s in this run)", path, meta.InitHash, h)
	}
	if h := fmt.Sprintf("%016x", r.dataHash); h != meta.DataHash {
		return fmt.Errorf("resume: %s belongs to another run: the training data differ (fingerprint %s there, %s in this run)", path, meta.DataHash, h)
	}
	last := &meta.Trials[len(meta.Trials)-1]
	if !last.Done && r.opt.ScheduleEvery == "batch" && meta.ScheduleSteps != len(last.Epochs)*r.batches {
		return fmt.Errorf("resume: %s is inconsistent: %d schedule steps recorded after %d epochs of %d batches", path, meta.ScheduleSteps, len(last.Epochs), r.batches)
	}
	tensors := maps.Clone(c.tensors)
	take := func(prefix string, like Params) (Params, error) {
		p := Params{}
		for k, v := range tensors {
			if name, ok := strings.CutPrefix(k, prefix); ok {
				p[name] = slices.Clone(v)
				delete(tensors, k)
			}
		}
		if err := sameShape(fmt.Sprintf("checkpoint tensors %s*", prefix), p, like); err != nil {
			return nil, fmt.Errorf("resume: %s does not fit this model: %w", path, err)
		}
		return p, nil
	}
	initState := r.job.State
	if initState == nil {
		initState = Params{}
	}
	snapshot := func(prefix string, m *snapshotMeta) (*Snapshot, error) {
		if m == nil {
			return nil, nil
		}
		s := &Snapshot{Trial: m.Trial, Epoch: m.Epoch, Acc: m.Acc}
		var err error
		if s.Trainable, err = take(prefix+"trainable/", r.job.Trainable); err != nil {
			return nil, err
		}
		if s.State, err = take(prefix+"state/", initState); err != nil {
			return nil, err
		}
		return s, nil
	}
	// The groups "best/" and "overall/" first: "trainable/" is not a prefix of theirs.
	best, err := snapshot("best/", meta.TrialBest)
	if err != nil {
		return err
	}
	overall, err := snapshot("overall/", meta.Best)
	if err != nil {
		return err
	}
	cur, err := snapshot("", &snapshotMeta{Trial: last.Trial, Epoch: len(last.Epochs)})
	if err != nil {
		return err
	}
	ost := OptimizerState{Steps: meta.OptimizerSteps}
	for k, v := range tensors { // only optimizer buffers are left (validated against trainable/)
		kind, name, _ := strings.Cut(strings.TrimPrefix(k, "optim/"), "/")
		ost.buffer(kind)[name] = slices.Clone(v)
	}
	r.res.Trials, r.res.BestTrial, r.res.Best = meta.Trials, meta.BestTrial, overall
	r.best, r.ost = best, ost
	r.trainable, r.state = cur.Trainable, cur.State
	r.schedSteps = meta.ScheduleSteps
	if r.measured == nil {
		r.measured = maps.Clone(meta.Measured)
	}
	if last.Done {
		cur.Acc = last.Epochs[len(last.Epochs)-1].EvalAcc
		r.res.Last = cur
		return nil
	}
	r.startScheduler()
	if lr, mom := r.scheduler.Rates(); lr != meta.LR || mom != meta.Momentum {
		return fmt.Errorf("resume: %s is inconsistent: the schedule replayed to lr %v, momentum %v; the checkpoint says %v, %v", path, lr, mom, meta.LR, meta.Momentum)
	}
	return nil
}

// writeSafetensors writes float32 tensors (1-D) and string metadata in the
// safetensors format (checkpoint's codec) to path, atomically
// (internal/atomicfile), converting the data as it streams out.
func writeSafetensors(path string, metadata map[string]string, tensors map[string][]float32) error {
	names := slices.Sorted(maps.Keys(tensors))
	entries := make([]checkpoint.SafetensorsEntry, len(names))
	for i, k := range names {
		entries[i] = checkpoint.SafetensorsEntry{Name: k, DType: checkpoint.F32, Shape: []int64{int64(len(tensors[k]))}}
	}
	header, err := checkpoint.EncodeSafetensorsHeader(entries, metadata)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	err = atomicfile.Write(path, func(w io.Writer) error {
		if _, err := w.Write(header); err != nil {
			return err
		}
		var buf [4096]byte
		for _, k := range names {
			v := tensors[k]
			for len(v) > 0 {
				m := min(len(v), len(buf)/4)
				for i, x := range v[:m] {
					binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
				}
				if _, err := w.Write(buf[:4*m]); err != nil {
					return err
				}
				v = v[m:]
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// decodeSafetensors reads a safetensors stream of size bytes holding F32
// tensors (returned flat) and string metadata, with checkpoint's codec:
// every size and offset in the header is checked against size before
// anything is allocated, and the data are converted as they stream in.
func decodeSafetensors(r io.Reader, size int64) (map[string]string, map[string][]float32, error) {
	entries, md, err := checkpoint.ReadSafetensorsHeader(r, size)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		if e.DType != checkpoint.F32 {
			return nil, nil, fmt.Errorf("tensor %q has dtype %q; want F32", e.Name, e.DType)
		}
	}
	tensors := make(map[string][]float32, len(entries))
	var buf [4096]byte
	for _, e := range entries { // in data order
		v := make([]float32, (e.End-e.Begin)/4)
		for done := 0; done < len(v); {
			m := min(len(v)-done, len(buf)/4)
			if _, err := io.ReadFull(r, buf[:4*m]); err != nil {
				return nil, nil, fmt.Errorf("tensor %q: %w", e.Name, err)
			}
			for i := range m {
				v[done+i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
			}
			done += m
		}
		tensors[e.Name] = v
	}
	return md, tensors, nil
}

var crcTable = crc64.MakeTable(crc64.ECMA)

// hashFloats feeds v's bits to h, little-endian.
func hashFloats(h hash.Hash64, v []float32) {
	var buf [4096]byte
	for len(v) > 0 {
		m := min(len(v), len(buf)/4)
		for i, x := range v[:m] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
		}
		h.Write(buf[:4*m])
		v = v[m:]
	}
}

// paramsHash fingerprints initial parameters: names, lengths and bits.
func paramsHash(trainable, state Params) uint64 {
	h := crc64.New(crcTable)
	for i, p := range []Params{trainable, state} {
		for _, k := range p.Names() {
			fmt.Fprintf(h, "%d %q %d\n", i, k, len(p[k]))
			hashFloats(h, p[k])
		}
	}
	return h.Sum64()
}

// dataHash fingerprints a training set: sizes, labels and pixels.
func dataHash(d *dataset.Dataset) uint64 {
	h := crc64.New(crcTable)
	fmt.Fprintf(h, "%d %d %d %d %d\n", d.Len(), d.C, d.H, d.W, d.Classes)
	var buf [4096]byte
	for y := d.Y; len(y) > 0; {
		m := min(len(y), len(buf)/8)
		for i, v := range y[:m] {
			binary.LittleEndian.PutUint64(buf[8*i:], uint64(v))
		}
		h.Write(buf[:8*m])
		y = y[m:]
	}
	hashFloats(h, d.X)
	return h.Sum64()
}

// ReadCheckpoint returns the tensors of the checkpoint in dir (keys
// "trainable/NAME", "state/NAME", "optim/KIND/NAME", "best/…", "overall/…")
// and its resume record as JSON, for inspection and export. The checkpoint
// is checked as OpenCheckpoint checks it.
func ReadCheckpoint(dir string) (record json.RawMessage, tensors map[string][]float32, err error) {
	c, err := OpenCheckpoint(dir)
	if err != nil {
		return nil, nil, err
	}
	record, err = json.Marshal(c.meta)
	if err != nil {
		return nil, nil, err
	}
	return record, c.tensors, nil
}
