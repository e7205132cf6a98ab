package attacks

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// TestBatchIndependence: every attack's result for a point is the same
// whether the point is attacked alone, in a pair or with all the others, so
// Evaluate may size its work units by time without changing results.
func TestBatchIndependence(t *testing.T) {
	m := newMLP(11, 3, 6, 16, 10)
	x, y := data(m, 13, 12, 0)
	d := m.dim()
	const eps = 0.05
	list := []Attack{
		&FGSM{Epsilon: eps},
		&PGD{Epsilon: eps, Steps: 5, Restarts: 2, Seed: 4},
		&PGD{Epsilon: 0.5, Norm: L2, Steps: 5, Seed: 4},
		&PGD{Epsilon: 2, Norm: L1, Steps: 5, Seed: 4},
		&MIFGSM{Epsilon: eps, Steps: 5},
		&APGD{Epsilon: eps, Steps: 10, Restarts: 2, Seed: 4},
		&APGD{Epsilon: 0.5, Norm: L2, Steps: 10, Loss: DLR, Seed: 4},
		&APGDT{Epsilon: eps, Steps: 5, Targets: 2, Restarts: 2, Seed: 4},
		&FAB{Epsilon: eps, Steps: 5, Targets: 2, Restarts: 2, Seed: 4},
		&FAB{Epsilon: 0.5, Norm: L2, Steps: 5, Untargeted: true, Restarts: 2, Seed: 4},
		&Square{Epsilon: eps, Queries: 60, Restarts: 2, Seed: 4},
		&Square{Epsilon: 0.5, Norm: L2, Queries: 60, Seed: 4},
		&CW{Steps: 10},
	}
	for _, a := range list {
		whole, err := a.Run(bg, m, x, y)
		if err != nil {
			t.Fatalf("%s: %v", a.Name(), err)
		}
		for _, size := range []int{1, 5} {
			for lo := 0; lo < len(y); lo += size {
				hi := min(lo+size, len(y))
				part, err := a.Run(bg, m, x[lo*d:hi*d], y[lo:hi])
				if err != nil {
					t.Fatalf("%s: %v", a.Name(), err)
				}
				if !slices.Equal(part.Adv, whole.Adv[lo*d:hi*d]) || !slices.Equal(part.Pred, whole.Pred[lo:hi]) {
					t.Errorf("%s (%s): points %d..%d in batches of %d differ from one batch of %d", a.Name(), SettingOf(a, 10), lo, hi-1, size, len(y))
					break
				}
			}
		}
	}
}

// stateFixture is a small evaluation whose states the tests and the fuzz
// target edit: 8 points of an MLP (one labelled wrongly), FGSM then PGD.
func stateFixture() (Gradienter, []float32, []int64, []Attack) {
	m := newMLP(2, 1, 3, 6, 10)
	x, y := data(m, 3, 8, 5)
	return m, x, y, []Attack{&FGSM{Epsilon: 0.15}, &PGD{Epsilon: 0.25, Steps: 3, Seed: 1}}
}

var fixtureFingerprint = Fingerprint{{"model sha256", "0123abcd"}, {"tool version", "test"}}

// roundTrip writes a state to JSON and parses it back as a checkpoint file would.
func roundTrip(t testing.TB, st *EvalState) *EvalState {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ParseEvalState(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// stopAt runs the fixture and cancels it at the given progress call; it
// returns the last checkpoint (the state a killed run would leave) and the
// partial result.
func stopAt(t testing.TB, call, batch int) (*EvalState, *EvalResult) {
	m, x, y, atks := stateFixture()
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	calls := 0
	var saved []byte
	opts := EvalOptions{BatchSize: batch, Fingerprint: fixtureFingerprint,
		Checkpoint: func(st *EvalState) error {
			b, err := json.Marshal(st)
			saved = b
			return err
		},
		Progress: func(Progress) {
			if calls++; calls == call {
				cancel()
			}
		}}
	res, err := Evaluate(ctx, m, x, y, atks, opts)
	if call > 0 && !errors.Is(err, context.Canceled) {
		t.Fatalf("stop at progress call %d: err = %v; want context.Canceled", call, err)
	}
	st, perr := ParseEvalState(saved)
	if perr != nil {
		t.Fatal(perr)
	}
	return st, res
}

// TestEvaluateInterrupted: a cancelled Evaluate reports only what finished,
// checkpoints its last consistent state on the way out, and a resume from
// that checkpoint ends exactly where an uninterrupted run ends.
func TestEvaluateInterrupted(t *testing.T) {
	m, x, y, atks := stateFixture()
	full, err := Evaluate(bg, m, x, y, atks, EvalOptions{Fingerprint: fixtureFingerprint})
	if err != nil {
		t.Fatal(err)
	}
	if !full.Complete || full.RobustAccuracy == full.CleanAccuracy || full.RobustAccuracy == 0 {
		t.Fatalf("fixture is uninformative: complete %v, clean %.1f%%, robust %.1f%%", full.Complete, full.CleanAccuracy, full.RobustAccuracy)
	}
	// Batches of 2: progress calls 1–4 are the clean pass, then FGSM, then PGD.
	total := 0
	if _, err := Evaluate(bg, m, x, y, atks, EvalOptions{BatchSize: 2, Progress: func(Progress) { total++ }}); err != nil {
		t.Fatal(err)
	}
	for call := 1; call < total; call++ {
		st, part := stopAt(t, call, 2)
		if part.Complete || part.RobustAccuracy != 0 {
			t.Errorf("stopped at call %d: complete %v, robust accuracy %.1f%%; want incomplete and no robust accuracy", call, part.Complete, part.RobustAccuracy)
		}
		if part.CleanDone != (call >= 4) || (!part.CleanDone && part.CleanAccuracy != 0) {
			t.Errorf("stopped at call %d: clean done %v, clean accuracy %.1f%%", call, part.CleanDone, part.CleanAccuracy)
		}
		if len(part.Attacks)+len(part.Pending) != len(atks) || len(part.Pending) == 0 {
			t.Errorf("stopped at call %d: %d finished and %d pending attacks", call, len(part.Attacks), len(part.Pending))
		}
		for _, r := range part.Attacks {
			if !r.Done {
				t.Errorf("stopped at call %d: unfinished %s reported", call, r.Name)
			}
		}
		for i, s := range part.Samples {
			if s.Robust || (s.Complete && s.BrokenBy == "") {
				t.Errorf("stopped at call %d: sample %d robust %v complete %v broken by %q; an unfinished run decides only broken points", call, i, s.Robust, s.Complete, s.BrokenBy)
			}
		}
		if part.State.Checksum != st.Checksum {
			t.Errorf("stopped at call %d: the last checkpoint is not the returned state", call)
		}
		res, err := Evaluate(bg, m, x, y, atks, EvalOptions{BatchSize: 3, Fingerprint: fixtureFingerprint, Resume: st})
		if err != nil {
			t.Fatalf("resume after call %d: %v", call, err)
		}
		if !res.Complete || !slices.Equal(res.Samples, full.Samples) || !slices.Equal(res.Adv, full.Adv) || res.RobustAccuracy != full.RobustAccuracy {
			t.Errorf("resume after call %d: robust %.1f%%; uninterrupted %.1f%%", call, res.RobustAccuracy, full.RobustAccuracy)
		}
	}
}

// TestResumeRefused: a state from another run, an edited state and an old
// state are each refused with one error before anything runs.
func TestResumeRefused(t *testing.T) {
	m, x, y, atks := stateFixture()
	mid, _ := stopAt(t, 6, 2)
	calls := 0
	counting := countingModel{m, &calls}
	try := func(st *EvalState, a []Attack, fp Fingerprint) error {
		calls = 0
		res, err := Evaluate(bg, counting, x, y, a, EvalOptions{Fingerprint: fp, Resume: st})
		if err != nil && (res != nil || calls != 0) {
			t.Errorf("a refused resume returned a result or called the model %d times", calls)
		}
		return err
	}
	if err := try(roundTrip(t, mid), atks, fixtureFingerprint); err != nil {
		t.Fatalf("the same run: %v", err)
	}
	mismatch := func(name string, err error, want string) {
		var me *MismatchError
		if !errors.As(err, &me) || me.Name != want {
			t.Errorf("%s: err = %v; want a mismatch of %q", name, err, want)
		}
	}
	other := Fingerprint{{"model sha256", "fedc9876"}, {"tool version", "test"}}
	mismatch("another model", try(roundTrip(t, mid), atks, other), "model sha256")
	mismatch("another ε", try(roundTrip(t, mid), []Attack{atks[0], &PGD{Epsilon: 0.3, Steps: 3, Seed: 1}}, fixtureFingerprint), "attack 2 (pgd) epsilon")
	mismatch("another seed", try(roundTrip(t, mid), []Attack{atks[0], &PGD{Epsilon: 0.25, Steps: 3, Seed: 2}}, fixtureFingerprint), "attack 2 (pgd) seed")
	mismatch("another α", try(roundTrip(t, mid), []Attack{atks[0], &PGD{Epsilon: 0.25, Steps: 3, Seed: 1, StepSize: 0.01}}, fixtureFingerprint), "attack 2 (pgd) step size")
	mismatch("other attacks", try(roundTrip(t, mid), atks[:1], fixtureFingerprint), "attacks")
	yy := slices.Clone(y)
	yy[0] = (yy[0] + 1) % 10
	calls = 0
	_, err := Evaluate(bg, counting, x, yy, atks, EvalOptions{Fingerprint: fixtureFingerprint, Resume: roundTrip(t, mid)})
	mismatch("other labels", err, "data sha256")

	// A verdict edited by hand: the checksum no longer matches.
	st := roundTrip(t, mid)
	for i, b := range st.BrokenBy {
		if b > 0 {
			st.BrokenBy[i], st.AdvPred[i], st.Dist[i] = -1, st.CleanPred[i], 0
			delete(st.Adv, i)
			break
		}
	}
	if err := try(st, atks, fixtureFingerprint); err == nil || !strings.Contains(err.Error(), "modified after srtool wrote it") {
		t.Errorf("edited state: err = %v; want a checksum error", err)
	}
	// The same edit, resealed as a forger would: the reports disagree.
	st.seal()
	if err := try(st, atks, fixtureFingerprint); err == nil || !strings.Contains(err.Error(), "inconsistent") {
		t.Errorf("edited and resealed state: err = %v; want an inconsistency", err)
	}
	// States written before fingerprints existed.
	if _, err := ParseEvalState([]byte(`{"format":1,"attacks":["pgd"],"n":8}`)); err == nil || !strings.Contains(err.Error(), "format 1") {
		t.Errorf("format 1 state: err = %v", err)
	}
}

type countingModel struct {
	Gradienter
	calls *int
}

func (c countingModel) Logits(ctx context.Context, x []float32, n int) ([]float32, error) {
	*c.calls++
	return c.Gradienter.Logits(ctx, x, n)
}

func (c countingModel) LossGrad(ctx context.Context, x []float32, n int, l Loss) ([]float32, []float32, []float32, error) {
	*c.calls++
	return c.Gradienter.LossGrad(ctx, x, n, l)
}

// slowModel takes perPoint per sample of every call.
type slowModel struct {
	Gradienter
	perPoint time.Duration
}

func (s slowModel) Logits(ctx context.Context, x []float32, n int) ([]float32, error) {
	time.Sleep(time.Duration(n) * s.perPoint)
	return s.Gradienter.Logits(ctx, x, n)
}

func (s slowModel) LossGrad(ctx context.Context, x []float32, n int, l Loss) ([]float32, []float32, []float32, error) {
	time.Sleep(time.Duration(n) * s.perPoint)
	return s.Gradienter.LossGrad(ctx, x, n, l)
}

// TestCheckpointEvery: with checkpoints on, work units shrink to the time
// budget, so checkpoints come at least every CheckpointEvery even when one
// batch would take much longer, and the result does not change.
func TestCheckpointEvery(t *testing.T) {
	mlp := newMLP(6, 3, 4, 8, 10)
	x, y := data(mlp, 7, 48)
	atks := []Attack{&PGD{Epsilon: 0.04, Steps: 4, Seed: 3}}
	m := slowModel{mlp, time.Millisecond} // PGD-4: about 5 ms per point
	const every = 90 * time.Millisecond
	var mu sync.Mutex
	var saves []time.Time
	var units []int
	prev := 0
	start := time.Now()
	res, err := Evaluate(bg, m, x, y, atks, EvalOptions{BatchSize: 48, CheckpointEvery: every,
		Checkpoint: func(*EvalState) error {
			mu.Lock()
			saves = append(saves, time.Now())
			mu.Unlock()
			return nil
		},
		Progress: func(p Progress) {
			if p.Attack != "clean" {
				units = append(units, p.Done-prev)
				prev = p.Done
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	whole, err := Evaluate(bg, mlp, x, y, atks, EvalOptions{BatchSize: 48})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Samples, whole.Samples) {
		t.Errorf("time-sized work units changed the verdicts")
	}
	if len(units) < 4 || slices.Max(units[1:]) >= 48 {
		t.Errorf("work units %v; want several, each well below the batch of 48 (one batch takes ≈ 240 ms > %v)", units, every)
	}
	last := start
	for _, s := range saves {
		if gap := s.Sub(last); gap > 4*every { // about every/3 + one unit of every/3; slack for a loaded machine
			t.Errorf("%v between checkpoints; want at most about %v (checkpoints %d)", gap, every, len(saves))
		}
		last = s
	}
}

// FuzzEvalState: whatever a resume file holds, Evaluate refuses it with an
// error or resumes it to a complete, consistent result; it never panics.
// The fuzzer's inputs get the fixture's fingerprint and a fresh seal, so
// that they reach the consistency checks (real edits fail the checksum).
func FuzzEvalState(f *testing.F) {
	m, x, y, atks := stateFixture()
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseEvalState(b)
		if err != nil {
			return
		}
		res, err := Evaluate(bg, m, x, y, atks, EvalOptions{BatchSize: 3, Fingerprint: fixtureFingerprint, Resume: resealed(st, atks)})
		if err != nil {
			if res != nil {
				t.Fatalf("refused state (%v) returned a result", err)
			}
			return
		}
		if !res.Complete || len(res.Samples) != len(y) || res.RobustAccuracy > res.CleanAccuracy {
			t.Fatalf("accepted state gave complete %v, %d samples, clean %.1f%%, robust %.1f%%", res.Complete, len(res.Samples), res.CleanAccuracy, res.RobustAccuracy)
		}
	})
}

// resealed gives st the fixture's fingerprint and a valid checksum.
func resealed(st *EvalState, atks []Attack) *EvalState {
	m, x, y, _ := stateFixture()
	e, _ := newEngine("evaluate", m, false)
	settings := make([]Setting, 0, len(atks))
	for _, a := range atks {
		s := SettingOf(a, e.k)
		s.Convention = "aa"
		settings = append(settings, s)
	}
	st.Fingerprint = append(slices.Clone(fixtureFingerprint), evalFingerprint(e, x, y, settings)...)
	st.seal()
	return st
}

// TestFuzzCorpus writes (-update) or checks the seed corpus of
// FuzzEvalState: states of the fixture at several points of a run, and
// edits of them of the kinds that used to crash `srtool attack --resume`.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzEvalState")
	mid, _ := stopAt(t, 6, 2)
	cleaning, _ := stopAt(t, 1, 2)
	done, _ := stopAt(t, 0, 2)
	enc := func(st *EvalState) []byte {
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	edit := func(st *EvalState, f func(*EvalState)) []byte {
		c := roundTrip(t, st)
		f(c)
		return enc(c)
	}
	seeds := map[string][]byte{
		"valid-mid-attack":   enc(mid),
		"valid-clean-pass":   enc(cleaning),
		"valid-finished":     enc(done),
		"queue-out-of-range": edit(mid, func(s *EvalState) { s.Queue = append(s.Queue, 99) }),
		"queue-negative":     edit(mid, func(s *EvalState) { s.Queue[0] = -1 }),
		"step-huge":          edit(mid, func(s *EvalState) { s.Step = 1 << 40 }),
		"done-negative":      edit(mid, func(s *EvalState) { s.Done = -3 }),
		"done-past-queue":    edit(mid, func(s *EvalState) { s.Done = len(s.Queue) + 5 }),
		"short-lists":        edit(mid, func(s *EvalState) { s.BrokenBy = s.BrokenBy[:3] }),
		"broken-by-huge":     edit(mid, func(s *EvalState) { s.BrokenBy[1] = 1 << 30 }),
		"adv-row-short": edit(done, func(s *EvalState) {
			for i := range s.Adv {
				s.Adv[i] = s.Adv[i][:5]
			}
		}),
		"adv-row-stray":   edit(done, func(s *EvalState) { s.Adv[-4] = []byte{1, 2, 3, 4} }),
		"all-robust":      edit(done, func(s *EvalState) { markAllRobust(s) }),
		"reports-missing": edit(done, func(s *EvalState) { s.Reports = nil }),
		"n-huge":          edit(mid, func(s *EvalState) { s.N = 1 << 40 }),
		"format-1":        []byte(`{"format":1,"attacks":["fgsm","pgd"],"n":8,"d":9,"data_hash":1,"batch_size":2,"clean_done":true,"step":9,"queue":[0,100]}`),
		"not-json":        []byte("{\"format\":2,"),
	}
	for name, b := range seeds {
		p := filepath.Join(dir, name)
		want := fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("seed corpus file %s is missing (go test ./attacks -run TestFuzzCorpus -update writes it)", p)
		}
	}
	// The edited seeds are refused, the valid ones resume.
	m, x, y, atks := stateFixture()
	for name, b := range seeds {
		st, err := ParseEvalState(b)
		if err == nil {
			_, err = Evaluate(bg, m, x, y, atks, EvalOptions{Fingerprint: fixtureFingerprint, Resume: resealed(st, atks)})
		}
		if valid := strings.HasPrefix(name, "valid-"); valid != (err == nil) {
			t.Errorf("seed %s: err = %v", name, err)
		}
	}
}

// markAllRobust turns every broken point robust, the edit that made an old
// srtool report 100 % robust accuracy.
func markAllRobust(s *EvalState) {
	for i := range s.BrokenBy {
		s.BrokenBy[i], s.AdvPred[i], s.Dist[i] = -1, s.CleanPred[i], 0
	}
	s.Adv = map[int][]byte{}
}
