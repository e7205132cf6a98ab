package attacks

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// EvalOptions controls Evaluate.
type EvalOptions struct {
	// BatchSize is the most points per attack call (the model's batch); 0:
	// 250 (AutoAttack's bs). Results do not depend on it: every attack draws
	// its random numbers per point (see sampleRands), so only the float
	// rounding of the model's batched kernels could differ.
	BatchSize int `json:"batch_size"`
	// SkipChecks turns off the model checks run before attacking (randomness
	// and softmax output); the zero-gradient and Square flags are always computed.
	SkipChecks bool `json:"skip_checks"`
	// Fingerprint names what the run belongs to beyond what Evaluate sees
	// itself (the caller's model hash, data source, tool version...). It opens
	// the state's fingerprint, before the entries Evaluate adds (data, classes,
	// convention, attacks and their resolved settings).
	Fingerprint Fingerprint `json:"-"`
	// Resume continues from the state of an interrupted Evaluate; nil starts
	// afresh. A state whose fingerprint differs from this run's is refused
	// with a *MismatchError naming the first difference, a state that was
	// modified or is inconsistent with an error; nothing runs then. Evaluate
	// updates the state in place.
	Resume *EvalState `json:"-"`
	// Checkpoint, if set, is called with a consistent, sealed state at least
	// every CheckpointEvery while work goes on, after the clean pass, after
	// every attack, and when Evaluate stops early (so an interruption loses at
	// most the work unit in progress); write it to disk there. An error stops
	// Evaluate. With Checkpoint set, attacks run in work units sized to take
	// about CheckpointEvery/3 (BatchSize points at most), and a checkpoint
	// follows a unit once CheckpointEvery/3 has passed since the last one.
	Checkpoint func(*EvalState) error `json:"-"`
	// CheckpointEvery is the longest time between checkpoints while work
	// goes on; 0: 30 s. One point that takes longer is not split.
	CheckpointEvery time.Duration `json:"-"`
	// Progress, if set, is called after every work unit.
	Progress func(Progress) `json:"-"`
}

// Progress reports where Evaluate is.
type Progress struct {
	Attack string `json:"attack"` // "clean" during the clean pass
	Step   int    `json:"step"`   // 0-based index of the attack
	Steps  int    `json:"steps"`  // number of attacks
	Done   int    `json:"done"`   // points of this stage finished
	Total  int    `json:"total"`  // points of this stage (the clean pass: N; an attack: the points robust at its start)
	Robust int    `json:"robust"` // points not broken so far
	N      int    `json:"n"`
}

// Flag is a warning in the spirit of AutoAttack's checks (checks.py, flags_doc.md).
type Flag struct {
	Check   string `json:"check"` // randomized | softmax-output | zero-gradient | square-beats-white-box | targets-capped
	Message string `json:"message"`
}

// AttackReport summarises one attack of an evaluation.
type AttackReport struct {
	Name    string  `json:"name"`
	Epsilon float32 `json:"epsilon"`
	Norm    Norm    `json:"norm"`
	// Setting is what the attack ran with, every default resolved.
	Setting Setting `json:"settings"`
	// Attacked is how many points the attack ran on (robust before it), Broken how many it broke.
	Attacked int `json:"attacked"`
	Broken   int `json:"broken"`
	// RobustAccuracy is the percentage of all N points still robust after this
	// attack and every attack before it (AutoAttack's log line); set when Done.
	RobustAccuracy float64 `json:"robust_accuracy"`
	Counts         Counts  `json:"counts"`
	ZeroGrad       int     `json:"zero_grad"`
	Done           bool    `json:"done"`
}

// SampleResult is the verdict on one point.
type SampleResult struct {
	Label     int64 `json:"label"`
	CleanPred int64 `json:"clean_pred"`
	AdvPred   int64 `json:"adv_pred"` // prediction at the returned adversarial (clean prediction when not broken)
	// Robust is true when every attack ran on the point and none broke it;
	// false for broken points and for points whose verdict is not final.
	Robust   bool    `json:"robust"`
	BrokenBy string  `json:"broken_by,omitempty"` // "clean", an attack name, or "" when not broken
	Dist     float32 `json:"dist"`                // perturbation norm in the breaking attack's norm
	// Complete is true when the verdict is final: the point was broken
	// (misclassified clean or by an attack) or every attack ran on it.
	Complete bool `json:"complete"`
}

// PendingAttack is an attack an interrupted Evaluate did not finish.
type PendingAttack struct {
	Name  string `json:"name"`
	Done  int    `json:"done"`  // points attacked so far
	Total int    `json:"total"` // points to attack (robust at its start); −1 when it had not started
}

// EvalResult is what Evaluate returns. Accuracies are percentages of N.
type EvalResult struct {
	N int `json:"n"`
	// Complete is false when Evaluate stopped early (error or cancelled
	// context). Then RobustAccuracy is 0 and not a measurement, Attacks holds
	// only the finished attacks, Pending the others, and each sample's
	// Complete says whether its verdict is final.
	Complete bool `json:"complete"`
	// CleanDone is true when the clean pass finished; CleanAccuracy is 0 and
	// not a measurement before.
	CleanDone      bool            `json:"clean_done"`
	CleanAccuracy  float64         `json:"clean_accuracy"`
	RobustAccuracy float64         `json:"robust_accuracy"`
	Attacks        []AttackReport  `json:"attacks"`
	Pending        []PendingAttack `json:"pending,omitempty"`
	Samples        []SampleResult  `json:"samples"`
	// Counts are all model calls of the attacks, finished or not.
	Counts Counts `json:"counts"`
	Flags  []Flag `json:"flags"`
	// Adv holds N×d inputs: the adversarial example for broken points, the
	// clean input otherwise.
	Adv []float32 `json:"-"`
	// State is the final (or, after an error, the last consistent) state, sealed.
	State *EvalState `json:"-"`
}

// Evaluate measures clean and robust accuracy of m on x (len(y) points) under
// a list of attacks applied as AutoAttack applies its ensemble: points the
// model gets wrong are never attacked; each attack runs, in work units of at
// most BatchSize points, only on the points still robust, from the clean
// input; a point is robust when no attack broke it. An AutoAttack in the list
// is expanded into its components so each gets its own report.
//
// On error (including a cancelled ctx) Evaluate returns the partial result
// (Complete false) with its State, from which a later call with Resume
// continues where this one stopped: finished work units are not repeated,
// and the result equals an uninterrupted run's for a deterministic model.
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
	d, k := e.d, e.k
	bs := opts.BatchSize
	if bs < 0 {
		return nil, fmt.Errorf("evaluate: batch size %d", bs)
	}
	if bs == 0 {
		bs = 250
	}
	if opts.CheckpointEvery < 0 {
		return nil, fmt.Errorf("evaluate: checkpoint interval %v", opts.CheckpointEvery)
	}
	every := opts.CheckpointEvery
	if every == 0 {
		every = 30 * time.Second
	}
	settings := make([]Setting, len(steps))
	for s, a := range steps {
		// An empty batch checks settings and class counts without model calls.
		if _, err := a.Run(ctx, m, nil, nil); err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
		settings[s] = SettingOf(a, k)
		settings[s].Convention = "aa"
	}
	fp := append(append(Fingerprint(nil), opts.Fingerprint...), evalFingerprint(e, x, y, settings)...)
	st := opts.Resume
	if st == nil {
		st = newState(fp, n, d, settings)
	} else if err := st.check(fp, x, y, k, steps, settings); err != nil {
		return nil, err
	}
	res := &EvalResult{N: n, State: st}
	lastSave := time.Now()
	saveFailed := false
	save := func(force bool) error {
		if opts.Checkpoint == nil || (!force && time.Since(lastSave) < every/3) {
			return nil
		}
		st.seal()
		lastSave = time.Now()
		if err := opts.Checkpoint(st); err != nil {
			saveFailed = true
			return fmt.Errorf("evaluate: checkpoint: %w", err)
		}
		return nil
	}
	progress := func(name string, s, done, total int) {
		if opts.Progress != nil {
			opts.Progress(Progress{Attack: name, Step: s, Steps: len(steps), Done: done, Total: total, Robust: st.robustSoFar(), N: n})
		}
	}
	fail := func(err error) (*EvalResult, error) {
		// The state is consistent after every work unit: keep what finished.
		if !saveFailed {
			if serr := save(true); serr != nil {
				err = errors.Join(err, serr)
			}
		}
		st.seal()
		st.fill(res, x, y, steps, settings)
		return res, err
	}
	for st.Cleaned < n {
		if st.Cleaned == 0 && !opts.SkipChecks {
			flags, err := modelChecks(ctx, e, x[:min(n, bs)*d], min(n, bs), steps)
			if err != nil {
				return fail(err)
			}
			st.Flags = append(st.Flags, flags...)
		}
		lo, hi := st.Cleaned, min(st.Cleaned+bs, n)
		z, err := e.logits(ctx, x[lo*d:hi*d], hi-lo)
		if err != nil {
			return fail(err)
		}
		for j, p := range argmaxRows(z, k) {
			i := lo + j
			st.CleanPred[i], st.AdvPred[i] = p, p
			if p != y[i] {
				st.BrokenBy[i] = 0
			}
		}
		st.Cleaned = hi
		if err := save(st.Cleaned == n); err != nil {
			return fail(err)
		}
		progress("clean", 0, st.Cleaned, n)
	}
	for st.Step < len(steps) {
		s := st.Step
		a := steps[s]
		rep := &st.Reports[s]
		if st.Queue == nil {
			st.Queue = []int{}
			for i, b := range st.BrokenBy {
				if b < 0 {
					st.Queue = append(st.Queue, i)
				}
			}
			st.Done = 0
			rep.Attacked = len(st.Queue)
		}
		unit := bs
		if opts.Checkpoint != nil {
			unit = min(bs, firstUnit) // a probe: how long does a point take?
		}
		for st.Done < len(st.Queue) {
			idx := st.Queue[st.Done:min(st.Done+unit, len(st.Queue))]
			t0 := time.Now()
			r, err := runSplit(ctx, a, m, gather(x, idx, d), gatherLabels(y, idx))
			if err != nil {
				return fail(fmt.Errorf("evaluate: %s: %w", a.Name(), err))
			}
			for j, i := range idx {
				if !r.Success[j] {
					continue
				}
				st.BrokenBy[i] = s + 1
				st.AdvPred[i] = r.Pred[j]
				st.Dist[i] = r.Dist[j]
				st.Adv[i] = floatsToBytes(r.Adv[j*d : (j+1)*d])
				rep.Broken++
			}
			rep.Counts.Add(r.Counts)
			rep.ZeroGrad += r.ZeroGrad
			st.Done += len(idx)
			if opts.Checkpoint != nil {
				unit = nextUnit(len(idx), time.Since(t0), every/3, bs)
			}
			if err := save(false); err != nil {
				return fail(err)
			}
			progress(a.Name(), s, st.Done, len(st.Queue))
		}
		rep.RobustAccuracy = percent(st.robustSoFar(), n)
		rep.Done = true
		st.Step++
		st.Queue, st.Done = nil, 0
		if err := save(true); err != nil {
			return fail(err)
		}
	}
	st.seal()
	st.fill(res, x, y, steps, settings)
	return res, nil
}

// firstUnit is the size of an attack's first work unit when checkpoints are
// on: small, so that the time per point is known before a large unit starts
// (one Square point alone makes 5000 model calls).
const firstUnit = 4

// nextUnit sizes the next work unit so that it takes about target: the last
// unit of n points took took; growth is limited to 4× per unit.
func nextUnit(n int, took, target time.Duration, bs int) int {
	if n <= 0 {
		return bs
	}
	u := bs
	if took > 0 {
		u = int(float64(target) / float64(took) * float64(n))
	}
	return max(1, min(u, 4*n, bs))
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
			predDiff = predDiff || Argmax(a) != Argmax(b)
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
