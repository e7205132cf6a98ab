package attacks

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
)

// EvalOptions controls Evaluate.
type EvalOptions struct {
	// BatchSize is the number of points per model call; 0: 250 (AutoAttack's bs).
	BatchSize int `json:"batch_size"`
	// SkipChecks turns off the model checks run before attacking (randomness
	// and softmax output); the zero-gradient and Square flags are always computed.
	SkipChecks bool `json:"skip_checks"`
	// Resume continues from the state of an interrupted Evaluate with the same
	// model, data and attacks (and its batch size, whatever BatchSize says);
	// nil starts afresh. Evaluate updates it in place.
	Resume *EvalState `json:"-"`
	// Checkpoint, if set, is called with the state after the clean pass and
	// after every finished batch; write it to disk there. An error stops Evaluate.
	Checkpoint func(*EvalState) error `json:"-"`
	// Progress, if set, is called after the clean pass and after every batch.
	Progress func(Progress) `json:"-"`
}

// Progress reports where Evaluate is.
type Progress struct {
	Attack  string `json:"attack"`  // "clean" during the clean pass
	Step    int    `json:"step"`    // 0-based index of the attack
	Steps   int    `json:"steps"`   // number of attacks
	Batch   int    `json:"batch"`   // batches of this attack finished
	Batches int    `json:"batches"` // batches of this attack
	Robust  int    `json:"robust"`  // points still robust
	N       int    `json:"n"`
}

// Flag is a warning in the spirit of AutoAttack's checks (checks.py, flags_doc.md).
type Flag struct {
	Check   string `json:"check"` // randomized | softmax-output | zero-gradient | square-beats-white-box | targets-capped
	Message string `json:"message"`
}

// EvalState is the resumable state of Evaluate; it marshals to JSON. Rows of
// the adversarial examples found so far are kept (little-endian float32).
type EvalState struct {
	Format    int      `json:"format"`
	Attacks   []string `json:"attacks"`
	N         int      `json:"n"`
	D         int      `json:"d"`
	DataHash  uint64   `json:"data_hash"`
	BatchSize int      `json:"batch_size"`
	CleanDone bool     `json:"clean_done"`
	CleanPred []int64  `json:"clean_pred"`
	AdvPred   []int64  `json:"adv_pred"`
	Robust    []bool   `json:"robust"`
	// BrokenBy[i] is −1 for a robust point, 0 for a point misclassified
	// clean, and s+1 when attack s broke it.
	BrokenBy []int          `json:"broken_by"`
	Dist     []float32      `json:"dist"`
	Adv      map[int][]byte `json:"adv"`
	Step     int            `json:"step"`  // attack in progress
	Queue    []int          `json:"queue"` // points that attack is running on (robust at its start)
	Batch    int            `json:"batch"` // batches of Queue finished
	Reports  []AttackReport `json:"reports"`
	Flags    []Flag         `json:"flags"`
}

// AttackReport summarises one attack of an evaluation.
type AttackReport struct {
	Name    string  `json:"name"`
	Epsilon float32 `json:"epsilon"`
	Norm    Norm    `json:"norm"`
	// Attacked is how many points the attack ran on (robust before it), Broken how many it broke.
	Attacked int `json:"attacked"`
	Broken   int `json:"broken"`
	// RobustAccuracy is the percentage of all N points still robust after this
	// attack and every attack before it (AutoAttack's log line).
	RobustAccuracy float64 `json:"robust_accuracy"`
	Counts         Counts  `json:"counts"`
	ZeroGrad       int     `json:"zero_grad"`
	Done           bool    `json:"done"`
}

// SampleResult is the verdict on one point.
type SampleResult struct {
	Label     int64   `json:"label"`
	CleanPred int64   `json:"clean_pred"`
	AdvPred   int64   `json:"adv_pred"` // prediction at the returned adversarial (clean prediction when robust)
	Robust    bool    `json:"robust"`
	BrokenBy  string  `json:"broken_by,omitempty"` // "clean", an attack name, or "" when robust
	Dist      float32 `json:"dist"`                // perturbation norm in the breaking attack's norm
}

// EvalResult is what Evaluate returns. Accuracies are percentages of N.
type EvalResult struct {
	N              int            `json:"n"`
	CleanAccuracy  float64        `json:"clean_accuracy"`
	RobustAccuracy float64        `json:"robust_accuracy"`
	Attacks        []AttackReport `json:"attacks"`
	Samples        []SampleResult `json:"samples"`
	Counts         Counts         `json:"counts"`
	Flags          []Flag         `json:"flags"`
	// Adv holds N×d inputs: the adversarial example for broken points, the
	// clean input otherwise.
	Adv []float32 `json:"-"`
	// State is the final (or, after an error, the last consistent) state.
	State *EvalState `json:"-"`
}

const stateFormat = 1

// Evaluate measures clean and robust accuracy of m on x (len(y) points) under
// a list of attacks applied as AutoAttack applies its ensemble: points the
// model gets wrong are never attacked; each attack runs, in batches of
// BatchSize, only on the points still robust, from the clean input; a point is
// robust when no attack broke it. An AutoAttack in the list is expanded into
// its components so each gets its own report.
//
// On error (including a cancelled ctx) Evaluate returns the partial result
// with its State, from which a later call with Resume continues exactly
// where this one stopped: finished batches are not repeated.
func Evaluate(ctx context.Context, m Model, x []float32, y []int64, attacks []Attack, opts EvalOptions) (*EvalResult, error) {
	steps, err := expand(attacks)
	if err != nil {
		return nil, err
	}
	if len(steps) == 0 {
		return nil, errors.New("evaluate: no attacks")
	}
	e, n, err := begin("evaluate", m, false, x, y)
	if err != nil {
		return nil, err
	}
	d := e.d
	bs := opts.BatchSize
	if bs < 0 {
		return nil, fmt.Errorf("evaluate: batch size %d", bs)
	}
	if bs == 0 {
		bs = 250
	}
	names := make([]string, len(steps))
	for s, a := range steps {
		names[s] = a.Name()
		// An empty batch checks settings and class counts without model calls.
		if _, err := a.Run(ctx, m, nil, nil); err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
	}
	hash := dataHash(x, y)
	st := opts.Resume
	if st == nil {
		st = newState(names, n, d, hash, bs, steps)
	} else if err := st.compatible(names, n, d, hash); err != nil {
		return nil, err
	}
	bs = st.BatchSize
	res := &EvalResult{N: n, State: st}
	save := func() error {
		if opts.Checkpoint != nil {
			if err := opts.Checkpoint(st); err != nil {
				return fmt.Errorf("evaluate: checkpoint: %w", err)
			}
		}
		return nil
	}
	progress := func(name string, s, b, nb int) {
		if opts.Progress != nil {
			opts.Progress(Progress{Attack: name, Step: s, Steps: len(steps), Batch: b, Batches: nb, Robust: countTrue(st.Robust), N: n})
		}
	}
	fail := func(err error) (*EvalResult, error) {
		st.fill(res, x, y, steps)
		return res, err
	}
	if !st.CleanDone {
		if !opts.SkipChecks && n > 0 {
			flags, err := modelChecks(ctx, e, x[:min(n, bs)*d], min(n, bs), steps)
			if err != nil {
				return fail(err)
			}
			st.Flags = append(st.Flags, flags...)
		}
		nb := (n + bs - 1) / bs
		for b := range nb {
			lo, hi := b*bs, min((b+1)*bs, n)
			z, err := e.logits(ctx, x[lo*d:hi*d], hi-lo)
			if err != nil {
				return fail(err)
			}
			for j, p := range argmaxRows(z, e.k) {
				i := lo + j
				st.CleanPred[i], st.AdvPred[i] = p, p
				st.Robust[i] = p == y[i]
				if !st.Robust[i] {
					st.BrokenBy[i] = 0
				}
			}
		}
		st.CleanDone = true
		if err := save(); err != nil {
			return fail(err)
		}
		progress("clean", 0, nb, nb)
	}
	for st.Step < len(steps) {
		s := st.Step
		a := steps[s]
		rep := &st.Reports[s]
		if st.Queue == nil {
			st.Queue = indicesOf(st.Robust)
			if st.Queue == nil {
				st.Queue = []int{}
			}
			st.Batch = 0
			rep.Attacked = len(st.Queue)
		}
		nb := (len(st.Queue) + bs - 1) / bs
		for st.Batch < nb {
			idx := st.Queue[st.Batch*bs : min((st.Batch+1)*bs, len(st.Queue))]
			xs := gather(x, idx, d)
			r, err := a.Run(ctx, m, xs, gatherLabels(y, idx))
			if err != nil {
				return fail(fmt.Errorf("evaluate: %s: %w", a.Name(), err))
			}
			for j, i := range idx {
				if !r.Success[j] {
					continue
				}
				st.Robust[i] = false
				st.BrokenBy[i] = s + 1
				st.AdvPred[i] = r.Pred[j]
				st.Dist[i] = r.Dist[j]
				st.Adv[i] = floatsToBytes(r.Adv[j*d : (j+1)*d])
				rep.Broken++
			}
			rep.Counts.Add(r.Counts)
			rep.ZeroGrad += r.ZeroGrad
			st.Batch++
			rep.RobustAccuracy = percent(countTrue(st.Robust), n)
			if err := save(); err != nil {
				return fail(err)
			}
			progress(a.Name(), s, st.Batch, nb)
		}
		rep.RobustAccuracy = percent(countTrue(st.Robust), n)
		rep.Done = true
		st.Step++
		st.Queue, st.Batch = nil, 0
		if err := save(); err != nil {
			return fail(err)
		}
	}
	st.Flags = append(st.Flags, afterChecks(st, steps)...)
	st.fill(res, x, y, steps)
	return res, nil
}

// expand replaces each AutoAttack by its components.
func expand(attacks []Attack) ([]Attack, error) {
	var out []Attack
	for _, a := range attacks {
		if a == nil {
			return nil, errors.New("evaluate: nil attack")
		}
		if aa, ok := a.(*AutoAttack); ok {
			cs, err := aa.Components()
			if err != nil {
				return nil, err
			}
			out = append(out, cs...)
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

func newState(names []string, n, d int, hash uint64, bs int, steps []Attack) *EvalState {
	st := &EvalState{
		Format: stateFormat, Attacks: names, N: n, D: d, DataHash: hash, BatchSize: bs,
		CleanPred: make([]int64, n), AdvPred: make([]int64, n), Robust: make([]bool, n),
		BrokenBy: make([]int, n), Dist: make([]float32, n), Adv: map[int][]byte{},
		Reports: make([]AttackReport, len(steps)),
	}
	for i := range st.BrokenBy {
		st.BrokenBy[i] = -1
	}
	for s, a := range steps {
		st.Reports[s].Name = a.Name()
		if b, ok := a.(Bounded); ok {
			st.Reports[s].Epsilon, st.Reports[s].Norm = b.Threat()
		}
	}
	return st
}

func (st *EvalState) compatible(names []string, n, d int, hash uint64) error {
	switch {
	case st.Format != stateFormat:
		return fmt.Errorf("evaluate: resume state has format %d; want %d", st.Format, stateFormat)
	case st.N != n || st.D != d:
		return fmt.Errorf("evaluate: resume state is for %d points of size %d; got %d of size %d", st.N, st.D, n, d)
	case st.DataHash != hash:
		return errors.New("evaluate: resume state was made on different data")
	case len(st.Attacks) != len(names):
		return fmt.Errorf("evaluate: resume state ran attacks %v; got %v", st.Attacks, names)
	case len(st.CleanPred) != n || len(st.AdvPred) != n || len(st.Robust) != n || len(st.BrokenBy) != n ||
		len(st.Dist) != n || len(st.Reports) != len(names) || st.BatchSize <= 0:
		return errors.New("evaluate: resume state is damaged")
	}
	for i := range names {
		if st.Attacks[i] != names[i] {
			return fmt.Errorf("evaluate: resume state ran attacks %v; got %v", st.Attacks, names)
		}
	}
	if st.Adv == nil {
		st.Adv = map[int][]byte{}
	}
	return nil
}

// fill writes the state into res.
func (st *EvalState) fill(res *EvalResult, x []float32, y []int64, steps []Attack) {
	n, d := st.N, st.D
	res.Samples = make([]SampleResult, n)
	res.Adv = append([]float32(nil), x...)
	clean := 0
	for i := range n {
		s := SampleResult{Label: y[i], CleanPred: st.CleanPred[i], AdvPred: st.AdvPred[i], Robust: st.Robust[i], Dist: st.Dist[i]}
		if st.CleanDone && st.CleanPred[i] == y[i] {
			clean++
		}
		switch b := st.BrokenBy[i]; {
		case b == 0:
			s.BrokenBy = "clean"
		case b > 0:
			s.BrokenBy = steps[b-1].Name()
			bytesToFloats(st.Adv[i], res.Adv[i*d:(i+1)*d])
		}
		res.Samples[i] = s
	}
	res.CleanAccuracy = percent(clean, n)
	res.RobustAccuracy = percent(countTrue(st.Robust), n)
	if !st.CleanDone {
		res.CleanAccuracy, res.RobustAccuracy = 0, 0 // nothing measured yet (NaN would not marshal)
	}
	res.Attacks = append([]AttackReport(nil), st.Reports...)
	res.Counts = Counts{}
	for _, r := range st.Reports {
		res.Counts.Add(r.Counts)
	}
	res.Flags = append([]Flag(nil), st.Flags...)
}

// modelChecks runs AutoAttack's randomness and output-range checks on one batch.
func modelChecks(ctx context.Context, e *engine, x []float32, n int, steps []Attack) ([]Flag, error) {
	var flags []Flag
	z1, err := e.logits(ctx, x, n)
	if err != nil {
		return nil, err
	}
	randomized := false
	for _, a := range steps {
		if ap, ok := a.(*APGD); ok && ap.EOT > 1 {
			randomized = true // the user already treats the model as random ("rand")
		}
	}
	if !randomized {
		z2, err := e.logits(ctx, x, n)
		if err != nil {
			return nil, err
		}
		k := e.k
		maxDiff := 0.0
		predDiff := false
		for i := range n {
			a, b := z1[i*k:(i+1)*k], z2[i*k:(i+1)*k]
			na, nb := normOf(a, L2)+1e-10, normOf(b, L2)+1e-10
			s := 0.0
			for j := range a {
				t := float64(a[j])/na - float64(b[j])/nb
				s += t * t
			}
			maxDiff = math.Max(maxDiff, math.Sqrt(s))
			predDiff = predDiff || argmax(a) != argmax(b)
		}
		if predDiff || maxDiff > 1e-4 || math.IsNaN(maxDiff) {
			flags = append(flags, Flag{"randomized", fmt.Sprintf(
				"the same input gave different outputs (max normalised logit difference %.3g); the model looks randomised: use AutoAttack version \"rand\" (EOT)", maxDiff)})
		}
	}
	const alpha = 1e-5
	probs := true
	for i := range n {
		s := 0.0
		for _, v := range z1[i*e.k : (i+1)*e.k] {
			if !(v < 1+alpha && v > -alpha) {
				probs = false
			}
			s += float64(v)
		}
		if math.Abs(s-1) >= alpha {
			probs = false
		}
	}
	if probs {
		flags = append(flags, Flag{"softmax-output", "the model's outputs look like probabilities (in [0,1], rows sum to 1); the attacks expect logits"})
	}
	for _, a := range steps {
		raw := 0
		switch t := a.(type) {
		case *APGDT:
			raw = t.Targets
		case *FAB:
			if !t.Untargeted {
				raw = t.Targets
			}
		default:
			continue
		}
		if raw == 0 {
			raw = 9
		}
		if raw != allTargets && raw > e.k-1 {
			flags = append(flags, Flag{"targets-capped", fmt.Sprintf("%s asks for %d target classes but the model has only %d other classes", a.Name(), raw, e.k-1)})
		}
	}
	return flags, nil
}

// afterChecks computes the zero-gradient and Square flags from the reports.
func afterChecks(st *EvalState, steps []Attack) []Flag {
	var flags []Flag
	zero := 0
	for _, r := range st.Reports {
		zero += r.ZeroGrad
	}
	if zero > 0 {
		flags = append(flags, Flag{"zero-gradient", fmt.Sprintf(
			"%d attack runs started at a point with an all-zero loss gradient; gradient-based attacks may be unreliable (gradient masking)", zero)})
	}
	whiteBox := false
	for s, a := range steps {
		if _, ok := a.(*Square); ok {
			if whiteBox && st.N > 0 && float64(st.Reports[s].Broken)/float64(st.N) > 0.002 {
				flags = append(flags, Flag{"square-beats-white-box", fmt.Sprintf(
					"the black-box Square attack lowered robust accuracy by %.2f points after the white-box attacks; the evaluation may be unreliable (gradient masking): try more restarts or an adaptive attack",
					percent(st.Reports[s].Broken, st.N))})
			}
			continue
		}
		whiteBox = true
	}
	return flags
}

func percent(a, n int) float64 {
	if n == 0 {
		return 0
	}
	return 100 * float64(a) / float64(n)
}

func countTrue(b []bool) int {
	c := 0
	for _, v := range b {
		if v {
			c++
		}
	}
	return c
}

func dataHash(x []float32, y []int64) uint64 {
	h := fnv.New64a()
	buf := make([]byte, 0, 4096)
	for _, v := range x {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		if len(buf) >= 4000 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	for _, v := range y {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(v))
		if len(buf) >= 4000 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	return h.Sum64()
}

func floatsToBytes(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, f := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}

func bytesToFloats(b []byte, out []float32) {
	for i := range out {
		if 4*i+4 > len(b) {
			return
		}
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
}
