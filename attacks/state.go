package attacks

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// stateFormat is the version of EvalState's JSON. Format 2 added the
// fingerprint, the checksum and progress counted in points; states of
// format 1 cannot be resumed.
const stateFormat = 2

// EvalState is the resumable state of Evaluate; it marshals to JSON. It
// belongs to one run: Fingerprint names the model, data, attacks and settings
// it was made with, and Checksum seals the rest, so that a state from another
// run or one modified by hand is refused rather than resumed. Rows of the
// adversarial examples found so far are kept (little-endian float32).
type EvalState struct {
	Format      int         `json:"format"`
	Fingerprint Fingerprint `json:"fingerprint"`
	N           int         `json:"n"` // points
	D           int         `json:"d"` // values per point
	// Cleaned is how many points (a prefix) the clean pass has classified.
	Cleaned   int     `json:"cleaned"`
	CleanPred []int64 `json:"clean_pred"`
	AdvPred   []int64 `json:"adv_pred"`
	// BrokenBy[i] is −1 for a point nothing has broken (yet), 0 for a point
	// misclassified clean, and s+1 when attack s broke it.
	BrokenBy []int          `json:"broken_by"`
	Dist     []float32      `json:"dist"`
	Adv      map[int][]byte `json:"adv"`  // the adversarial rows of the points attacks broke
	Step     int            `json:"step"` // attack in progress; len(Reports) when all finished
	// Queue lists, ascending, the points attack Step runs on (those robust at
	// its start); nil before it starts.
	Queue   []int          `json:"queue"`
	Done    int            `json:"done"` // points of Queue finished
	Reports []AttackReport `json:"reports"`
	Flags   []Flag         `json:"flags"`
	// Checksum is the SHA-256 of the state's JSON with Checksum empty.
	Checksum string `json:"checksum"`
}

// Fingerprint identifies the run a state belongs to: named values in a fixed
// order, compared entry by entry on resume.
type Fingerprint []FingerprintEntry

// FingerprintEntry is one named value of a Fingerprint.
type FingerprintEntry struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// MismatchError says that a resume state belongs to another run: Name is the
// first fingerprint entry that differs, State and Run its two values.
type MismatchError struct {
	Name, State, Run string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("the resume state belongs to another run: its %s is %s, this run's is %s", e.Name, e.State, e.Run)
}

// ParseEvalState decodes a state written by a checkpoint. It refuses other
// JSON, unknown fields and other formats; Evaluate checks the rest.
func ParseEvalState(b []byte) (*EvalState, error) {
	var head struct {
		Format *int `json:"format"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("not an attack resume state: %w", err)
	}
	if head.Format == nil {
		return nil, errors.New("not an attack resume state: no format field")
	}
	if *head.Format != stateFormat {
		return nil, fmt.Errorf("the resume state has format %d; this srtool resumes format %d only (states without a fingerprint cannot be resumed)", *head.Format, stateFormat)
	}
	st := &EvalState{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(st); err != nil {
		return nil, fmt.Errorf("not an attack resume state: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not an attack resume state: data after the JSON object")
	}
	return st, nil
}

func newState(fp Fingerprint, n, d int, settings []Setting) *EvalState {
	st := &EvalState{
		Format: stateFormat, Fingerprint: fp, N: n, D: d,
		CleanPred: make([]int64, n), AdvPred: make([]int64, n),
		BrokenBy: make([]int, n), Dist: make([]float32, n), Adv: map[int][]byte{},
		Reports: make([]AttackReport, len(settings)),
	}
	for i := range st.BrokenBy {
		st.BrokenBy[i] = -1
	}
	for s, set := range settings {
		st.Reports[s] = AttackReport{Name: set.Name, Epsilon: set.Epsilon, Norm: set.Norm, Setting: set}
	}
	return st
}

// evalFingerprint is what Evaluate itself knows of a run: the convention,
// the data, the model's classes and every attack's resolved settings.
func evalFingerprint(e *engine, x []float32, y []int64, settings []Setting) Fingerprint {
	h := sha256.New()
	buf := make([]byte, 0, 1<<16)
	for _, v := range x {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		if len(buf) >= 1<<16-8 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	for _, v := range y {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(v))
		if len(buf) >= 1<<16-8 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	shape := make([]string, len(e.shape))
	for i, s := range e.shape {
		shape[i] = strconv.Itoa(s)
	}
	names := make([]string, len(settings))
	for i, s := range settings {
		names[i] = s.Name
	}
	fp := Fingerprint{
		{"convention", "aa"},
		{"data points", strconv.Itoa(len(y))},
		{"point shape", strings.Join(shape, "×")},
		{"data sha256", hex.EncodeToString(h.Sum(nil))},
		{"model classes", strconv.Itoa(e.k)},
		{"attacks", strings.Join(names, ",")},
	}
	for i, s := range settings {
		fp = append(fp, s.entries(fmt.Sprintf("attack %d (%s)", i+1, s.Name))...)
	}
	return fp
}

// mismatch returns the first entry of run that state lacks or holds with
// another value, then the first entry state has that run lacks; nil when
// they agree.
func (run Fingerprint) mismatch(state Fingerprint) *MismatchError {
	have := make(map[string]string, len(state))
	for _, e := range state {
		if _, dup := have[e.Name]; !dup {
			have[e.Name] = e.Value
		}
	}
	want := make(map[string]bool, len(run))
	for _, e := range run {
		want[e.Name] = true
		v, ok := have[e.Name]
		if !ok {
			return &MismatchError{Name: e.Name, State: "not recorded", Run: quoteValue(e.Value)}
		}
		if v != e.Value {
			return &MismatchError{Name: e.Name, State: quoteValue(v), Run: quoteValue(e.Value)}
		}
	}
	for _, e := range state {
		if !want[e.Name] {
			return &MismatchError{Name: e.Name, State: quoteValue(e.Value), Run: "not part of it"}
		}
	}
	return nil
}

func quoteValue(v string) string {
	if v == "" {
		return `""`
	}
	return v
}

// digest is the SHA-256 of the state's JSON with Checksum empty.
func (st *EvalState) digest() string {
	c := *st
	c.Checksum = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return ""
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// seal sets Checksum.
func (st *EvalState) seal() { st.Checksum = st.digest() }

// check refuses a resume state that belongs to another run (fingerprint),
// was modified after it was written (checksum) or is inconsistent (validate).
func (st *EvalState) check(run Fingerprint, x []float32, y []int64, k int, steps []Attack, settings []Setting) error {
	if st.Format != stateFormat {
		return fmt.Errorf("evaluate: the resume state has format %d; want %d", st.Format, stateFormat)
	}
	if m := run.mismatch(st.Fingerprint); m != nil {
		return m
	}
	if st.Checksum == "" || st.digest() != st.Checksum {
		return errors.New("evaluate: the resume state was modified after srtool wrote it (its checksum does not match its content)")
	}
	if err := st.validate(x, y, k, settings); err != nil {
		return fmt.Errorf("evaluate: the resume state is inconsistent: %w", err)
	}
	if st.Adv == nil {
		st.Adv = map[int][]byte{}
	}
	return nil
}

// validate checks that the state is one Evaluate can have written for the
// points x (labels y), k classes and these attacks: lengths, ranges, and
// that verdicts, queue and reports agree with each other. It never panics.
func (st *EvalState) validate(x []float32, y []int64, k int, settings []Setting) error {
	n, S := len(y), len(settings)
	if n == 0 {
		return errors.New("no points")
	}
	d := len(x) / n
	switch {
	case st.N != n || st.D != d:
		return fmt.Errorf("it holds %d points of %d values; the data has %d of %d", st.N, st.D, n, d)
	case len(st.CleanPred) != n || len(st.AdvPred) != n || len(st.BrokenBy) != n || len(st.Dist) != n:
		return fmt.Errorf("per-point lists have lengths %d, %d, %d, %d; want %d", len(st.CleanPred), len(st.AdvPred), len(st.BrokenBy), len(st.Dist), n)
	case len(st.Reports) != S:
		return fmt.Errorf("%d attack reports for %d attacks", len(st.Reports), S)
	case st.Cleaned < 0 || st.Cleaned > n:
		return fmt.Errorf("clean pass at %d of %d points", st.Cleaned, n)
	case st.Step < 0 || st.Step > S:
		return fmt.Errorf("attack step %d of %d", st.Step, S)
	case st.Cleaned < n && (st.Step != 0 || st.Queue != nil):
		return errors.New("attacks started before the clean pass finished")
	case st.Step == S && st.Queue != nil:
		return errors.New("a queue after the last attack")
	case st.Queue == nil && st.Done != 0:
		return fmt.Errorf("%d points done of an attack that has not started", st.Done)
	case st.Done < 0 || st.Done > len(st.Queue):
		return fmt.Errorf("%d points done of a queue of %d", st.Done, len(st.Queue))
	}
	started := st.Queue != nil // attack Step has started
	for i := range n {
		b := st.BrokenBy[i]
		if i >= st.Cleaned {
			if b != -1 || st.CleanPred[i] != 0 || st.AdvPred[i] != 0 || st.Dist[i] != 0 {
				return fmt.Errorf("point %d has a verdict before the clean pass reached it", i)
			}
			continue
		}
		cp, ap := st.CleanPred[i], st.AdvPred[i]
		if cp < 0 || cp >= int64(k) || ap < 0 || ap >= int64(k) {
			return fmt.Errorf("point %d: prediction outside the model's %d classes", i, k)
		}
		switch {
		case b < -1 || b > st.Step+1 || (b == st.Step+1 && !started):
			return fmt.Errorf("point %d: broken by attack %d, which has not run", i, b)
		case b == 0 && cp == y[i]:
			return fmt.Errorf("point %d is counted misclassified but its clean prediction is its label", i)
		case b == -1 && cp != y[i]:
			return fmt.Errorf("point %d is counted robust but its clean prediction %d is not its label %d", i, cp, y[i])
		case b <= 0 && (ap != cp || st.Dist[i] != 0):
			return fmt.Errorf("point %d: an adversarial prediction or distance without an attack that broke it", i)
		case b > 0 && ap == y[i]:
			return fmt.Errorf("point %d is counted broken by attack %d but its adversarial prediction is its label", i, b)
		}
	}
	for i, row := range st.Adv {
		if i < 0 || i >= n || st.BrokenBy[i] <= 0 {
			return fmt.Errorf("an adversarial row for point %d, which no attack broke", i)
		}
		if len(row) != 4*d {
			return fmt.Errorf("the adversarial row of point %d has %d bytes; want %d", i, len(row), 4*d)
		}
	}
	adv := make([]float32, d)
	for i, b := range st.BrokenBy {
		if b <= 0 {
			continue
		}
		row, ok := st.Adv[i]
		if !ok {
			return fmt.Errorf("point %d is broken by attack %d but its adversarial row is missing", i, b)
		}
		bytesToFloats(row, adv)
		set := settings[b-1]
		if err := verify(set.Name, x[i*d:(i+1)*d], adv, 1, d, set.Epsilon, set.Norm); err != nil {
			return fmt.Errorf("point %d: %w", i, err)
		}
		dist := distance(adv, x[i*d:(i+1)*d], set.Norm)
		if dd := float64(st.Dist[i]); !(math.Abs(dd-dist) <= 1e-6*(1+dist)) {
			return fmt.Errorf("point %d: recorded distance %g; its adversarial row is at %g", i, dd, dist)
		}
	}
	if started {
		// The queue is exactly the points robust at the attack's start.
		j := 0
		for i, b := range st.BrokenBy {
			if b != -1 && b != st.Step+1 {
				continue
			}
			if j >= len(st.Queue) || st.Queue[j] != i {
				return fmt.Errorf("the queue of attack %d is not the points robust at its start", st.Step+1)
			}
			if j >= st.Done && b != -1 {
				return fmt.Errorf("point %d is broken by attack %d but was not attacked yet", i, b)
			}
			j++
		}
		if j != len(st.Queue) {
			return fmt.Errorf("the queue of attack %d is not the points robust at its start", st.Step+1)
		}
	}
	broken := make([]int, S+1) // broken[s+1]: by attack s; broken[0]: clean
	for i, b := range st.BrokenBy {
		if i < st.Cleaned && b >= 0 {
			broken[b]++
		}
	}
	robustBefore := st.Cleaned - broken[0] // points robust at the start of attack s
	for s, r := range st.Reports {
		if r.Name != settings[s].Name {
			return fmt.Errorf("report %d is of %q; the attack is %s", s+1, r.Name, settings[s].Name)
		}
		c := r.Counts
		if c.GradCalls < 0 || c.GradSamples < 0 || c.ForwardCalls < 0 || c.ForwardSamples < 0 || r.ZeroGrad < 0 {
			return fmt.Errorf("report of %s: negative counts", r.Name)
		}
		switch {
		case s < st.Step:
			after := robustBefore - broken[s+1]
			if !r.Done || r.Attacked != robustBefore || r.Broken != broken[s+1] || math.Abs(r.RobustAccuracy-percent(after, n)) > 1e-9 {
				return fmt.Errorf("the report of finished attack %s disagrees with the verdicts", r.Name)
			}
		case s == st.Step && started:
			if r.Done || r.Attacked != len(st.Queue) || r.Broken != broken[s+1] || r.RobustAccuracy != 0 {
				return fmt.Errorf("the report of attack %s in progress disagrees with the verdicts", r.Name)
			}
		default:
			if r.Done || r.Attacked != 0 || r.Broken != 0 || r.RobustAccuracy != 0 || c != (Counts{}) || r.ZeroGrad != 0 {
				return fmt.Errorf("attack %s has results but has not started", r.Name)
			}
		}
		robustBefore -= broken[s+1]
	}
	return nil
}

// robustSoFar counts the classified points nothing has broken yet.
func (st *EvalState) robustSoFar() int {
	c := 0
	for i, b := range st.BrokenBy {
		if i < st.Cleaned && b < 0 {
			c++
		}
	}
	return c
}

// fill writes the state into res: only measured numbers (see EvalResult).
func (st *EvalState) fill(res *EvalResult, x []float32, y []int64, steps []Attack, settings []Setting) {
	n, d := st.N, st.D
	res.CleanDone = st.Cleaned == n
	res.Complete = res.CleanDone && st.Step == len(steps)
	res.Samples = make([]SampleResult, n)
	res.Adv = append([]float32(nil), x...)
	clean, robust := 0, 0
	for i := range n {
		b := st.BrokenBy[i]
		s := SampleResult{Label: y[i], CleanPred: st.CleanPred[i], AdvPred: st.AdvPred[i], Dist: st.Dist[i]}
		s.Complete = i < st.Cleaned && (b >= 0 || res.Complete)
		s.Robust = res.Complete && b < 0
		switch {
		case i >= st.Cleaned:
		case b == 0:
			s.BrokenBy = "clean"
		case b > 0:
			s.BrokenBy = steps[b-1].Name()
			bytesToFloats(st.Adv[i], res.Adv[i*d:(i+1)*d])
		}
		if i < st.Cleaned && st.CleanPred[i] == y[i] {
			clean++
		}
		if s.Robust {
			robust++
		}
		res.Samples[i] = s
	}
	res.CleanAccuracy, res.RobustAccuracy = 0, 0
	if res.CleanDone {
		res.CleanAccuracy = percent(clean, n)
	}
	if res.Complete {
		res.RobustAccuracy = percent(robust, n)
	}
	res.Attacks, res.Pending, res.Counts = nil, nil, Counts{}
	for s, r := range st.Reports {
		set := settings[s]
		r.Name, r.Epsilon, r.Norm, r.Setting = set.Name, set.Epsilon, set.Norm, set
		res.Counts.Add(r.Counts)
		if r.Done {
			res.Attacks = append(res.Attacks, r)
			continue
		}
		p := PendingAttack{Name: r.Name, Total: -1}
		if s == st.Step && st.Queue != nil {
			p.Done, p.Total = st.Done, len(st.Queue)
		}
		res.Pending = append(res.Pending, p)
	}
	res.Flags = append([]Flag(nil), st.Flags...)
	if res.Complete {
		res.Flags = append(res.Flags, afterChecks(st, steps)...)
	}
}
