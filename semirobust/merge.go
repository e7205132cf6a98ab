package semirobust

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/semirobust/srtool/estimators"
	"github.com/semirobust/srtool/report"
)

// ShardReport is a semirobust shard report read back for merging: where it
// was read from, its header and the whole document.
type ShardReport struct {
	Path   string
	Header report.Header
	Raw    []byte
}

// shardView reads a semirobust shard report: the estimator is an
// interface in the report, so it is read as JSON and rebuilt by name.
type shardView struct {
	Report
	Estimator json.RawMessage `json:"estimator"`
}

// Merge puts the shards' work units together into the report the
// unsharded run writes: every unit of the grid exactly once, in unit order,
// each finished and of this run; rows assembled by AssembleRows as the
// unsharded run assembles them (which refuses units whose Acc* or Acc_sr
// differ); each row's model copied from its best trial unit beside OUT,
// with report.md and the plots. header is the merged report's header
// (the shards' run, complete) and mergedFrom the shard reports' paths.
func Merge(reps []ShardReport, out string, header report.Header, mergedFrom []string, w io.Writer) error {
	var parts []shardView
	for _, r := range reps {
		var v shardView
		if err := json.Unmarshal(r.Raw, &v); err != nil {
			return fmt.Errorf("%s: %w", r.Path, err)
		}
		parts = append(parts, v)
	}
	m := parts[0].Report
	first := reps[0]
	name, _ := first.Header.Run.Flags["estimator"].(string)
	est, err := estimators.New(name, parts[0].Estimator)
	if err != nil {
		return fmt.Errorf("%s: its estimator %q: %w", first.Path, name, err)
	}
	m.Estimator = est
	var names []string
	for _, a := range m.Attacks {
		names = append(names, a.Name)
	}
	var trials struct {
		Trials int `json:"trials"`
	}
	if err := json.Unmarshal(m.Options, &trials); err != nil || trials.Trials < 1 || len(names) == 0 || len(m.FbLayers) == 0 {
		return fmt.Errorf("%s: no grid of attacks, K values and trials (%v)", first.Path, err)
	}
	grid := UnitGrid(names, m.FbLayers, trials.Trials)
	if t := first.Header.Sharding.Total; t != len(grid) {
		return fmt.Errorf("%s: %d work units, but its grid (attacks %s, K = %s, %d trials) has %d", first.Path, t, strings.Join(names, ","), intList(m.FbLayers), trials.Trials, len(grid))
	}
	units := map[string]*Unit{}
	seconds := 0.0
	for i := range parts {
		r, p := reps[i], &parts[i]
		sh := r.Header.Sharding
		seconds += p.Seconds
		if len(p.WorkUnits) != sh.Hi-sh.Lo {
			return fmt.Errorf("%s (shard %s) holds %d work units; its range [%d,%d) has %d", r.Path, sh.Shard, len(p.WorkUnits), sh.Lo, sh.Hi, sh.Hi-sh.Lo)
		}
		for j := range p.WorkUnits {
			u := &p.WorkUnits[j]
			u.source = fmt.Sprintf("shard %s, %s", sh.Shard, r.Path)
			want := grid[sh.Lo+j]
			if u.Index != sh.Lo+j || u.id() != want {
				return fmt.Errorf("%s (shard %s): work unit %d is %d (%s); the grid has %s there", r.Path, sh.Shard, j+1, u.Index, u.id(), want)
			}
			if u.Fingerprint != r.Header.Fingerprint {
				return fmt.Errorf("%s (shard %s): unit %s belongs to another run (fingerprint %.12s…, the report's %.12s…)", r.Path, sh.Shard, u.Unit, u.Fingerprint, r.Header.Fingerprint)
			}
			if err := u.check(m.FbLayers); err != nil {
				return fmt.Errorf("%s (shard %s): unit %s: %v", r.Path, sh.Shard, u.Unit, err)
			}
			units[u.Unit] = u
		}
	}
	rows, err := AssembleRows(names, m.FbLayers, trials.Trials, units, false)
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	addRhoThresholds(rows)
	dir := filepath.Dir(out)
	if err := PlaceRowModels(dir, rows); err != nil {
		return err
	}
	m.Header = header
	m.Rows, m.WorkUnits, m.CheckpointDir = rows, nil, ""
	m.MergedFrom = mergedFrom
	m.Seconds = seconds
	for _, r := range rows {
		if r.Cost != nil {
			m.MemoryNote = MemoryNote
		}
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%s K=%d: Acc %.2f  Acc* %.2f  Acc_sr %.2f  Acc~ %.2f (trial %d of %d)  Δ %+.2f\n",
			r.Attack, r.K, *r.Acc, *r.AccStar, *r.AccSR, *r.AccTilde, r.BestTrial, r.Trials, *r.Delta)
	}
	if err := WriteReport(dir, out, &m); err != nil {
		return err
	}
	fmt.Fprintf(w, "report: %s (merged from %d shards, %d work units)\n", filepath.Join(dir, "report.md"), len(reps), len(grid))
	return nil
}

// MergePieces merges the semirobust shard reports read by report.ReadPieces
// and checked by report.CheckPieces into out (Merge), with the merged
// header (report.MergedHeader) and the pieces' paths.
func MergePieces(pieces []report.Piece, out string, w io.Writer) error {
	reps := make([]ShardReport, len(pieces))
	for i, p := range pieces {
		reps[i] = ShardReport(p)
	}
	return Merge(reps, out, report.MergedHeader(pieces), report.Paths(pieces), w)
}
