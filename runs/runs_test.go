package runs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/report"
	"github.com/semirobust/srtool/shard"
)

// linear is a pure-Go classifier z = W x with the cross-entropy gradient:
// enough for FGSM and PGD. cancelAfter, when > 0, cancels cancel after that
// many Logits calls.
type linear struct {
	w           []float64 // k×d
	k, d        int
	calls       int
	cancelAfter int
	cancel      context.CancelFunc
}

func (m *linear) NumClasses() int   { return m.k }
func (m *linear) InputShape() []int { return []int{1, 1, m.d} }

func (m *linear) Logits(ctx context.Context, x []float32, n int) ([]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.calls++
	if m.cancelAfter > 0 && m.calls >= m.cancelAfter {
		m.cancel()
	}
	out := make([]float32, n*m.k)
	for j := range n {
		for c := range m.k {
			s := 0.0
			for i := range m.d {
				s += m.w[c*m.d+i] * float64(x[j*m.d+i])
			}
			out[j*m.k+c] = float32(s)
		}
	}
	return out, nil
}

func (m *linear) LossGrad(ctx context.Context, x []float32, n int, loss attacks.Loss) ([]float32, []float32, []float32, error) {
	if loss.Kind != attacks.CrossEntropy {
		return nil, nil, nil, errors.New("fake model: cross-entropy only")
	}
	z, err := m.Logits(ctx, x, n)
	if err != nil {
		return nil, nil, nil, err
	}
	ls, g := make([]float32, n), make([]float32, n*m.d)
	for j := range n {
		zj := z[j*m.k : (j+1)*m.k]
		mx := math.Inf(-1)
		for _, v := range zj {
			mx = max(mx, float64(v))
		}
		sum := 0.0
		for _, v := range zj {
			sum += math.Exp(float64(v) - mx)
		}
		y := int(loss.Labels[j])
		ls[j] = float32(mx + math.Log(sum) - float64(zj[y]))
		for i := range m.d {
			s := 0.0
			for c := range m.k {
				p := math.Exp(float64(zj[c])-mx) / sum
				if c == y {
					p--
				}
				s += m.w[c*m.d+i] * p
			}
			g[j*m.d+i] = float32(s)
		}
	}
	return ls, g, z, nil
}

// toy is 3 classes over 3 inputs: class c is the largest input; samples
// with a small margin flip under a small ε.
func toy(n int) (*linear, *dataset.Dataset) {
	m := &linear{w: []float64{1, 0, 0, 0, 1, 0, 0, 0, 1}, k: 3, d: 3}
	d := &dataset.Dataset{Name: "toy", C: 1, H: 1, W: 3, Classes: 3}
	for i := range n {
		y := i % 3
		x := []float32{0.3, 0.3, 0.3}
		x[y] += 0.02 + 0.1*float32(i%4) // margins 0.02 .. 0.32
		d.X = append(d.X, x...)
		d.Y = append(d.Y, int64(y))
	}
	return m, d
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func TestEval(t *testing.T) {
	m, d := toy(10)
	d.Y[1] = 0 // one wrong label
	dir := t.TempDir()
	o := EvalOptions{Model: "toy.onnx", Header: report.New(report.RunInfo{Command: "eval"}), Batch: 3,
		JSON: filepath.Join(dir, "r.json"), SaveLogits: filepath.Join(dir, "z.npy")}
	var done []int
	o.Progress = func(n, total int) { done = append(done, n) }
	var w bytes.Buffer
	rep, err := Eval(context.Background(), m, d, o, &w)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Complete || *rep.Correct != 9 || *rep.CleanAccuracy != 90 || rep.Evaluated != 10 {
		t.Errorf("report: complete %v, correct %d, accuracy %v, evaluated %d; want true, 9, 90, 10", rep.Complete, *rep.Correct, *rep.CleanAccuracy, rep.Evaluated)
	}
	if len(done) != 4 || done[3] != 10 {
		t.Errorf("progress %v; want 4 batches ending at 10", done)
	}
	if !strings.HasPrefix(w.String(), "clean accuracy: 90.00% (9/10) on toy") {
		t.Errorf("summary %q", w.String())
	}
	var got EvalReport
	readJSON(t, o.JSON, &got)
	if got.Correct == nil || *got.Correct != 9 {
		t.Errorf("written report: correct %v", got.Correct)
	}
	if _, err := os.Stat(o.SaveLogits); err != nil {
		t.Errorf("logits: %v", err)
	}
}

// TestEvalInterrupted: a cancelled run writes a report with complete: false
// and no accuracy, no logits, and returns a *report.Interrupted that wraps
// the cancellation.
func TestEvalInterrupted(t *testing.T) {
	m, d := toy(10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.cancelAfter, m.cancel = 2, cancel
	dir := t.TempDir()
	o := EvalOptions{Model: "toy.onnx", Batch: 3, JSON: filepath.Join(dir, "r.json"), SaveLogits: filepath.Join(dir, "z.npy")}
	var w bytes.Buffer
	_, err := Eval(ctx, m, d, o, &w)
	var ie *report.Interrupted
	if !errors.As(err, &ie) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want a report.Interrupted wrapping context.Canceled", err)
	}
	if want := "eval stopped after 6 of 10 samples; no accuracy reported; " + o.JSON + " says complete: false"; ie.Done != want {
		t.Errorf("done = %q; want %q", ie.Done, want)
	}
	var got map[string]any
	readJSON(t, o.JSON, &got)
	if got["complete"] != false || got["clean_accuracy"] != nil || got["incomplete_reason"] != "interrupted" {
		t.Errorf("report %v; want complete false, no accuracy", got)
	}
	if _, err := os.Stat(o.SaveLogits); !os.IsNotExist(err) {
		t.Errorf("logits written by an interrupted run (%v)", err)
	}
}

func fgsm(eps float32) attacks.Attack {
	a, err := attacks.ByName("fgsm", eps, "linf")
	if err != nil {
		panic(err)
	}
	attacks.Configure(a, attacks.Config{Seed: 1})
	return a
}

func TestAttackAA(t *testing.T) {
	m, d := toy(12)
	dir := t.TempDir()
	o := AttackOptions{Model: "toy.onnx", Header: report.New(report.RunInfo{Command: "attack"}), Lo: 100, Batch: 5,
		JSON: filepath.Join(dir, "r.json"), PerSample: filepath.Join(dir, "s.jsonl"), SaveAdv: filepath.Join(dir, "adv.npy")}
	var w, log bytes.Buffer
	o.Log = &log
	rep, err := AttackAA(context.Background(), m, d, []attacks.Attack{fgsm(0.1)}, o, &w)
	if err != nil {
		t.Fatal(err)
	}
	// Margins 0.02 and 0.12 break under ε = 0.1 (the margin shrinks by 2ε),
	// 0.22 and 0.32 do not: half the points stay robust.
	if !rep.Complete || *rep.CleanCorrect != 12 || *rep.RobustPoints != 6 || *rep.RobustAccuracy != 50 {
		t.Errorf("report: complete %v, clean %d, robust %d (%v%%); want true, 12, 6 (50%%)", rep.Complete, *rep.CleanCorrect, *rep.RobustPoints, *rep.RobustAccuracy)
	}
	if rep.Outputs.PerSample != o.PerSample || rep.Outputs.Adv != o.SaveAdv {
		t.Errorf("outputs %+v", rep.Outputs)
	}
	f, err := os.Open(o.PerSample)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	i := 0
	for sc.Scan() {
		var row sampleRow
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatal(err)
		}
		if row.Index != 100+i || !row.Complete || row.Robust == nil || *row.Robust != (i%4 >= 2) {
			t.Errorf("row %d: %+v; want index %d, robust %v", i, row, 100+i, i%4 >= 2)
		}
		i++
	}
	if i != 12 {
		t.Errorf("%d per-sample rows; want 12", i)
	}
	if !strings.Contains(w.String(), "robust accuracy:  50.00%") {
		t.Errorf("summary %q", w.String())
	}
}

// TestAttackAAInterrupted: a stopped run writes its outputs as .partial, a
// report with complete: false and no robust accuracy, and says what finished.
func TestAttackAAInterrupted(t *testing.T) {
	m, d := toy(12)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.cancelAfter, m.cancel = 2, cancel
	dir := t.TempDir()
	o := AttackOptions{Model: "toy.onnx", Batch: 5, JSON: filepath.Join(dir, "r.json"), PerSample: filepath.Join(dir, "s.jsonl")}
	var w bytes.Buffer
	rep, err := AttackAA(ctx, m, d, []attacks.Attack{fgsm(0.1)}, o, &w)
	var ie *report.Interrupted
	if !errors.As(err, &ie) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want a report.Interrupted wrapping context.Canceled", err)
	}
	if rep.Complete || rep.RobustAccuracy != nil || rep.Outputs.PerSample != o.PerSample+PartialSuffix {
		t.Errorf("report: complete %v, robust %v, per-sample %q", rep.Complete, rep.RobustAccuracy, rep.Outputs.PerSample)
	}
	if _, err := os.Stat(o.PerSample + PartialSuffix); err != nil {
		t.Errorf("partial per-sample file: %v", err)
	}
	if !strings.Contains(ie.Resume, "add --resume FILE") || !strings.Contains(ie.Done, "report written to "+o.JSON+" (complete: false)") {
		t.Errorf("interrupted: %q", ie.Error())
	}
}

func TestAttackAdvAcc(t *testing.T) {
	m, d := toy(12)
	var w bytes.Buffer
	var seen []attacks.Progress
	o := AttackOptions{Batch: 5, Progress: func(p attacks.Progress) { seen = append(seen, p) }}
	rep, err := AttackAdvAcc(context.Background(), m, d, []attacks.Attack{fgsm(0.1), fgsm(0.01)}, o, &w)
	if err != nil {
		t.Fatal(err)
	}
	if *rep.RobustPoints != 6 || len(rep.PerAttack) != 2 || rep.PerAttack[0].Accuracy != 50 || rep.PerAttack[1].Accuracy != 100 {
		t.Errorf("robust %d, per attack %+v", *rep.RobustPoints, rep.PerAttack)
	}
	if len(seen) == 0 || seen[len(seen)-1].Step != 1 || seen[len(seen)-1].Steps != 2 {
		t.Errorf("progress %+v; want the second of 2 steps last", seen)
	}
}

// TestMergeEval: two eval shards merge into the counts of the whole run.
func TestMergeEval(t *testing.T) {
	m, d := toy(10)
	d.Y[1] = 0
	dir := t.TempDir()
	var pieces []report.Piece
	for i := range 2 {
		s := shard.Shard{Index: i, Count: 2}
		lo, hi := s.Range(d.Len())
		h := report.New(report.RunInfo{Command: "eval", Flags: map[string]any{"shard": s.String()}})
		h.Fingerprint, h.Sharding = "fp", &report.Sharding{Shard: s, Lo: lo, Hi: hi, Total: d.Len()}
		p := filepath.Join(dir, s.String()[:1]+".json")
		if _, err := Eval(context.Background(), m, d.Slice(lo, hi), EvalOptions{Header: h, JSON: p}, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		pieces = append(pieces, report.Piece{Path: p, Header: h})
		pieces[i].Raw, _ = os.ReadFile(p)
	}
	pieces, err := report.CheckPieces(pieces)
	if err != nil {
		t.Fatal(err)
	}
	var w bytes.Buffer
	rep, err := MergeEval(filepath.Join(dir, "all.json"), pieces, MergeOptions{}, &w)
	if err != nil {
		t.Fatal(err)
	}
	if rep.N != 10 || *rep.Correct != 9 || *rep.CleanAccuracy != 90 || rep.Sharding != nil || rep.Run.Flags["shard"] != "" {
		t.Errorf("merged: n %d, correct %d, accuracy %v, sharding %v, shard flag %q", rep.N, *rep.Correct, *rep.CleanAccuracy, rep.Sharding, rep.Run.Flags["shard"])
	}
}
