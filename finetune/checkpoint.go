package finetune

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/semirobust/srtool/dataset"
)

// CheckpointFile is the name of the checkpoint inside Options.CheckpointDir.
const CheckpointFile = "checkpoint.safetensors"

// checkpointFormat names the layout of the metadata; a change that old
// checkpoints cannot be read with bumps the number.
const checkpointFormat = "srtool.finetune/1"

// metaKey is the __metadata__ entry holding the resume record (JSON).
const metaKey = "srtool.finetune"

// checkpointMeta is the resume record stored in the checkpoint's metadata.
type checkpointMeta struct {
	Format string `json:"format"`
	// Options is the run's Options JSON without checkpoint_dir; Resume
	// requires the same.
	Options json.RawMessage `json:"options"`
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
		Format: checkpointFormat, Options: opts,
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

// load restores the run's state from its checkpoint.
func (r *run) load() error {
	path := filepath.Join(r.opt.CheckpointDir, CheckpointFile)
	md, tensors, err := readSafetensors(path)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	var meta checkpointMeta
	if err := json.Unmarshal([]byte(md[metaKey]), &meta); err != nil {
		return fmt.Errorf("resume: %s: metadata: %w", path, err)
	}
	if meta.Format != checkpointFormat {
		return fmt.Errorf("resume: %s: format %q; want %q", path, meta.Format, checkpointFormat)
	}
	opts, err := optionsJSON(r.opt)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	var a, b bytes.Buffer
	if json.Compact(&a, meta.Options) != nil || json.Compact(&b, opts) != nil || a.String() != b.String() {
		return fmt.Errorf("resume: %s was written with options %s; these are %s", path, meta.Options, opts)
	}
	if h := fmt.Sprintf("%016x", r.initHash); h != meta.InitHash {
		return fmt.Errorf("resume: %s: initial parameters differ (fingerprint %s; checkpoint %s)", path, h, meta.InitHash)
	}
	if h := fmt.Sprintf("%016x", r.dataHash); h != meta.DataHash {
		return fmt.Errorf("resume: %s: training data differ (fingerprint %s; checkpoint %s)", path, h, meta.DataHash)
	}
	if len(meta.Trials) == 0 || len(meta.Trials) > r.opt.Trials {
		return fmt.Errorf("resume: %s records %d trials of %d", path, len(meta.Trials), r.opt.Trials)
	}
	take := func(prefix string, like Params) (Params, error) {
		p := Params{}
		for k, v := range tensors {
			if name, ok := strings.CutPrefix(k, prefix); ok {
				p[name] = v
				delete(tensors, k)
			}
		}
		if err := sameShape(fmt.Sprintf("checkpoint tensors %s*", prefix), p, like); err != nil {
			return nil, fmt.Errorf("resume: %s: %w", path, err)
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
		if s.Trainable, err = take(prefix+"trainable/", r.job.Trainable); err != nil {
			return nil, err
		}
		if s.State, err = take(prefix+"state/", initState); err != nil {
			return nil, err
		}
		return s, nil
	}
	cur, err := snapshot("", &snapshotMeta{Trial: len(meta.Trials) - 1, Epoch: len(meta.Trials[len(meta.Trials)-1].Epochs) - 1})
	if err != nil {
		return err
	}
	if r.res.Best, err = snapshot("overall/", meta.Best); err != nil {
		return err
	}
	if r.best, err = snapshot("best/", meta.TrialBest); err != nil {
		return err
	}
	r.ost = OptimizerState{Steps: meta.OptimizerSteps}
	for k, v := range tensors {
		rest, ok := strings.CutPrefix(k, "optim/")
		kind, name, ok2 := strings.Cut(rest, "/")
		if !ok || !ok2 {
			return fmt.Errorf("resume: %s: unexpected tensor %q", path, k)
		}
		if w, ok := r.job.Trainable[name]; !ok || len(w) != len(v) {
			return fmt.Errorf("resume: %s: optimizer buffer %q does not match a trainable tensor", path, k)
		}
		r.ost.buffer(kind)[name] = v
	}
	r.res.Trials, r.res.BestTrial = meta.Trials, meta.BestTrial
	r.trainable, r.state = cur.Trainable, cur.State
	r.schedSteps = meta.ScheduleSteps
	last := &r.res.Trials[len(r.res.Trials)-1]
	if last.Done {
		cur.Acc = last.Epochs[len(last.Epochs)-1].EvalAcc
		r.res.Last = cur
		return nil
	}
	if r.best == nil {
		return fmt.Errorf("resume: %s: trial %d in progress without its best snapshot", path, last.Trial)
	}
	r.startScheduler()
	if lr, mom := r.scheduler.Rates(); lr != meta.LR || mom != meta.Momentum {
		return fmt.Errorf("resume: %s: schedule replayed to lr %v, momentum %v; checkpoint says %v, %v", path, lr, mom, meta.LR, meta.Momentum)
	}
	return nil
}

// writeSafetensors writes float32 tensors (1-D) and string metadata in the
// safetensors format to path, atomically: a temporary file in the same
// folder, synced, then renamed over path.
func writeSafetensors(path string, metadata map[string]string, tensors map[string][]float32) (err error) {
	names := make([]string, 0, len(tensors))
	for k := range tensors {
		names = append(names, k)
	}
	slices.Sort(names)
	header := map[string]any{"__metadata__": metadata}
	off := 0
	for _, k := range names {
		n := 4 * len(tensors[k])
		header[k] = map[string]any{"dtype": "F32", "shape": []int{len(tensors[k])}, "data_offsets": []int{off, off + n}}
		off += n
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(hj)%8 != 0 { // safetensors pads the header with spaces to 8 bytes
		hj = append(hj, ' ')
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	var n8 [8]byte
	binary.LittleEndian.PutUint64(n8[:], uint64(len(hj)))
	w.Write(n8[:])
	w.Write(hj)
	var buf [4096]byte
	for _, k := range names {
		v := tensors[k]
		for len(v) > 0 {
			m := min(len(v), len(buf)/4)
			for i, x := range v[:m] {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
			}
			if _, err := w.Write(buf[:4*m]); err != nil {
				return fmt.Errorf("checkpoint: %w", err)
			}
			v = v[m:]
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable where the OS allows
		d.Sync()
		d.Close()
	}
	return nil
}

// readSafetensors reads a safetensors file of 1-D F32 tensors.
func readSafetensors(path string) (map[string]string, map[string][]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	var n8 [8]byte
	if _, err := io.ReadFull(r, n8[:]); err != nil {
		return nil, nil, fmt.Errorf("%s: header size: %w", path, err)
	}
	hn := binary.LittleEndian.Uint64(n8[:])
	if hn > 1<<30 || int64(hn)+8 > st.Size() {
		return nil, nil, fmt.Errorf("%s: header of %d bytes in a file of %d", path, hn, st.Size())
	}
	hj := make([]byte, hn)
	if _, err := io.ReadFull(r, hj); err != nil {
		return nil, nil, fmt.Errorf("%s: header: %w", path, err)
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(hj, &header); err != nil {
		return nil, nil, fmt.Errorf("%s: header: %w", path, err)
	}
	var md map[string]string
	if m, ok := header["__metadata__"]; ok {
		if err := json.Unmarshal(m, &md); err != nil {
			return nil, nil, fmt.Errorf("%s: metadata: %w", path, err)
		}
		delete(header, "__metadata__")
	}
	type entry struct {
		name    string
		DType   string `json:"dtype"`
		Shape   []int  `json:"shape"`
		Offsets [2]int `json:"data_offsets"`
	}
	entries := make([]entry, 0, len(header))
	for k, raw := range header {
		e := entry{name: k}
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, nil, fmt.Errorf("%s: tensor %q: %w", path, k, err)
		}
		n := 1
		for _, d := range e.Shape {
			n *= d
		}
		if e.DType != "F32" || e.Offsets[1]-e.Offsets[0] != 4*n {
			return nil, nil, fmt.Errorf("%s: tensor %q: %s %v at %v; want F32", path, k, e.DType, e.Shape, e.Offsets)
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b entry) int { return a.Offsets[0] - b.Offsets[0] })
	tensors := make(map[string][]float32, len(entries))
	pos := 0
	var buf [4096]byte
	for _, e := range entries {
		if e.Offsets[0] != pos {
			return nil, nil, fmt.Errorf("%s: tensor %q starts at byte %d; want %d", path, e.name, e.Offsets[0], pos)
		}
		v := make([]float32, (e.Offsets[1]-e.Offsets[0])/4)
		for done := 0; done < len(v); {
			m := min(len(v)-done, len(buf)/4)
			if _, err := io.ReadFull(r, buf[:4*m]); err != nil {
				return nil, nil, fmt.Errorf("%s: tensor %q: %w", path, e.name, err)
			}
			for i := range m {
				v[done+i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
			}
			done += m
		}
		tensors[e.name] = v
		pos = e.Offsets[1]
	}
	if want := st.Size() - 8 - int64(hn); int64(pos) != want {
		return nil, nil, fmt.Errorf("%s: %d data bytes; tensors cover %d", path, want, pos)
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
// and its resume record as JSON, for inspection and export.
func ReadCheckpoint(dir string) (record json.RawMessage, tensors map[string][]float32, err error) {
	md, t, err := readSafetensors(filepath.Join(dir, CheckpointFile))
	if err != nil {
		return nil, nil, err
	}
	return json.RawMessage(md[metaKey]), t, nil
}
