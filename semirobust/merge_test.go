package semirobust

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/report"
	"github.com/semirobust/srtool/shard"
)

// shardReports splits the units of gridUnits(48, 52) (grid: attack pgd,
// K = 2, two trials) over two shard reports in dir, each trial's model a
// file there; it returns them with the run's header. edit, if given,
// changes the units first.
func shardReports(t *testing.T, dir string, edit ...func(map[string]*Unit)) ([]ShardReport, report.Header) {
	t.Helper()
	units := gridUnits(48, 52)
	for _, e := range edit {
		e(units)
	}
	grid := UnitGrid([]string{"pgd"}, []int{2}, 2)
	for i, id := range grid {
		u := units[id.String()]
		u.Index, u.Fingerprint = i, "fp"
		if id.K > 0 {
			u.Model = filepath.Join(dir, id.file()+".onnx")
			b := []byte("model of " + id.String())
			if err := os.WriteFile(u.Model, b, 0o644); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			u.ModelSHA256 = hex.EncodeToString(sum[:])
		}
	}
	h := report.New(report.RunInfo{Command: "semirobust", Flags: map[string]any{"estimator": "edge"}})
	h.Fingerprint = "fp"
	var reps []ShardReport
	for i, r := range [][2]int{{0, 1}, {1, 3}} {
		sh := h
		sh.Sharding = &report.Sharding{Shard: shard.Shard{Index: i, Count: 2}, Lo: r[0], Hi: r[1], Total: len(grid)}
		rep := Report{Header: sh, Attacks: []AttackRecord{{Name: "pgd"}}, FbLayers: []int{2}, Estimator: estimators.EDGE{}, Units: "bits",
			Options: json.RawMessage(`{"trials":2}`), Seconds: 1}
		for _, id := range grid[r[0]:r[1]] {
			rep.WorkUnits = append(rep.WorkUnits, *units[id.String()])
		}
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		reps = append(reps, ShardReport{Path: filepath.Join(dir, "shard.json"), Header: sh, Raw: b})
	}
	return reps, h
}

// TestMerge: two shards merge into the unsharded run's rows, the best
// trial's model copied beside the report, with report.md and the plots;
// a unit of another run or out of its place, and a missing shard, are
// refused.
func TestMerge(t *testing.T) {
	dir := t.TempDir()
	reps, h := shardReports(t, dir)
	out := filepath.Join(dir, "merged", "report.json")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Merge(reps, out, h, []string{"a", "b"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Rows    []Row             `json:"rows"`
		Seconds float64           `json:"seconds"`
		Outputs map[string]string `json:"outputs"`
		From    []string          `json:"merged_from"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	rows := raw.Rows
	if len(rows) != 1 || !rows[0].Complete || *rows[0].AccTilde != 52 || rows[0].BestTrial != 2 || raw.Seconds != 2 || len(raw.From) != 2 {
		t.Fatalf("merged rows %+v, seconds %v, from %v; want one complete row, Acc~ 52 from trial 2, 2 s, 2 shards", rows, raw.Seconds, raw.From)
	}
	model := filepath.Join(dir, "merged", "semirobust_pgd_K2.onnx")
	if m, err := os.ReadFile(model); err != nil || string(m) != "model of pgd K=2 trial 2" || rows[0].Model != model {
		t.Errorf("row model %q (%q, %v); want the copy of trial 2's", rows[0].Model, m, err)
	}
	for _, f := range []string{"report.md", "accuracy_pgd_K2.png", "rho_pgd_K2.png"} {
		if _, ok := raw.Outputs[filepath.Join(dir, "merged", f)]; !ok {
			t.Errorf("outputs %v lack %s", raw.Outputs, f)
		}
	}

	// A shard whose unit is from another run.
	reps, h = shardReports(t, t.TempDir())
	var v map[string]any
	if err := json.Unmarshal(reps[1].Raw, &v); err != nil {
		t.Fatal(err)
	}
	v["work_units"].([]any)[0].(map[string]any)["fingerprint"] = "other"
	reps[1].Raw, _ = json.Marshal(v)
	if err := Merge(reps, out, h, nil, io.Discard); err == nil || !strings.Contains(err.Error(), "belongs to another run") {
		t.Errorf("a unit of another run: %v; want a refusal", err)
	}
	// A missing shard: its units have no result.
	reps, h = shardReports(t, t.TempDir())
	if err := Merge(reps[1:], out, h, nil, io.Discard); err == nil || !strings.Contains(err.Error(), "no finished result for unit attack pgd") {
		t.Errorf("without shard 1: %v; want a refusal naming its unit", err)
	}
	// A unit out of its place in the grid.
	reps, h = shardReports(t, t.TempDir())
	if err := json.Unmarshal(reps[1].Raw, &v); err != nil {
		t.Fatal(err)
	}
	v["work_units"].([]any)[0].(map[string]any)["index"] = 2
	reps[1].Raw, _ = json.Marshal(v)
	if err := Merge(reps, out, h, nil, io.Discard); err == nil || !strings.Contains(err.Error(), "the grid has") {
		t.Errorf("a unit out of place: %v; want a refusal", err)
	}
}

// TestMergePieces: pieces as report.ReadPieces gives them merge with the
// merged header and the pieces' paths as merged_from.
func TestMergePieces(t *testing.T) {
	dir := t.TempDir()
	reps, _ := shardReports(t, dir)
	pieces := make([]report.Piece, len(reps))
	for i, r := range reps {
		pieces[i] = report.Piece{Path: filepath.Join(dir, fmt.Sprintf("shard%d.json", i)), Header: r.Header, Raw: r.Raw}
	}
	out := filepath.Join(dir, "merged.json")
	if err := MergePieces(pieces, out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		From []string `json:"merged_from"`
	}
	b, err := os.ReadFile(out)
	if err == nil {
		err = json.Unmarshal(b, &raw)
	}
	if err != nil || len(raw.From) != 2 || raw.From[1] != pieces[1].Path {
		t.Errorf("merged_from %v (%v); want the two pieces' paths", raw.From, err)
	}
}

// TestMergeBound: the trial units' weight-difference bounds (--bound)
// become the merged row's bound_per_trial, in trial order, with the
// report.md section and bound_K.png.
func TestMergeBound(t *testing.T) {
	dir := t.TempDir()
	reps, h := shardReports(t, dir, func(units map[string]*Unit) {
		for tr := 1; tr <= 2; tr++ {
			units[UnitID{Attack: "pgd", K: 2, Trial: tr}.String()].Bound = &TrialBound{Trial: tr, LambdaMaxTail: 2, LambdaMaxAll: 3,
				WeightDiffSq: float64(tr), Bound: float64(tr), QuadraticForm: 0.1 * float64(tr), LossGap: 0.05 * float64(tr), Converged: true}
		}
	})
	out := filepath.Join(dir, "merged", "report.json")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Merge(reps, out, h, []string{"a", "b"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Rows    []Row             `json:"rows"`
		Outputs map[string]string `json:"outputs"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Rows) != 1 || len(raw.Rows[0].BoundPerTrial) != 2 || raw.Rows[0].BoundPerTrial[0].Trial != 1 || raw.Rows[0].BoundPerTrial[1].Bound != 2 {
		t.Fatalf("merged rows %+v; want both trials' bounds in trial order", raw.Rows)
	}
	if _, ok := raw.Outputs[filepath.Join(dir, "merged", "bound_K.png")]; !ok {
		t.Errorf("outputs %v lack bound_K.png", raw.Outputs)
	}
	md, err := os.ReadFile(filepath.Join(dir, "merged", "report.md"))
	if err != nil || !strings.Contains(string(md), "## Weight-difference bound") || !strings.Contains(string(md), "| pgd | 2 | 2 | 2 | 3 | 2 | 2 | 0.2 | 0.1 | yes |") {
		t.Errorf("report.md (%v) lacks the bound section or trial 2's row:\n%s", err, md)
	}
	// Without bounds: no section, no plot.
	reps, h = shardReports(t, t.TempDir())
	out2 := filepath.Join(t.TempDir(), "report.json")
	if err := Merge(reps, out2, h, nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	if md, _ := os.ReadFile(filepath.Join(filepath.Dir(out2), "report.md")); strings.Contains(string(md), "Weight-difference bound") {
		t.Error("a run without bounds has a bound section")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(out2), "bound_K.png")); err == nil {
		t.Error("a run without bounds wrote bound_K.png")
	}
}
