package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/report"
)

func mergeCommand() *cli.Command {
	return &cli.Command{
		Name:      "merge",
		Usage:     "combine the reports of a sharded run (--shard I/N) into the report the unsharded run writes",
		ArgsUsage: "OUT.json SHARD.json… (or folders of shard reports)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "save-logits", Usage: "eval: also concatenate the shards' --save-logits files into `FILE.npy`"},
			&cli.StringFlag{Name: "save-adv", Usage: "attack: also concatenate the shards' --save-adv files into `FILE.npy`, in sample order"},
			&cli.StringFlag{Name: "per-sample", Usage: "attack: also concatenate the shards' --per-sample files into `FILE.jsonl`, in sample order"},
			&cli.StringFlag{Name: "plot", Usage: "mi: also draw the merged ρ as `F.png` (as mi --plot does)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 2 {
				return usagef("merge needs OUT.json and at least one shard report (or a folder of them)")
			}
			return runMerge(c, c.Args().First(), c.Args().Tail(), c.App.Writer)
		},
	}
}

// shardReport is one piece read back for merging.
type shardReport struct {
	path string
	head report.Header
	raw  []byte
}

// readShardReports expands folders (every *.json in them) and reads each
// report's header.
func readShardReports(args []string, out string) ([]shardReport, error) {
	var paths []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			paths = append(paths, a)
			continue
		}
		m, err := filepath.Glob(filepath.Join(a, "*.json"))
		if err != nil {
			return nil, err
		}
		sort.Strings(m)
		paths = append(paths, m...)
	}
	var reps []shardReport
	for _, p := range paths {
		if same, _ := sameFile(p, out); same {
			continue // a folder that also holds the output
		}
		b, err := onnxio.ReadRegular(p, report.MaxBytes)
		if err != nil {
			return nil, err
		}
		var h report.Header
		if err := json.Unmarshal(b, &h); err != nil {
			return nil, fmt.Errorf("shard report %s: %w", p, err)
		}
		reps = append(reps, shardReport{path: p, head: h, raw: b})
	}
	if len(reps) == 0 {
		return nil, fmt.Errorf("no shard reports in %s", strings.Join(args, ", "))
	}
	return reps, nil
}

func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

// checkShards refuses pieces that do not make exactly one run: another
// command or fingerprint (naming the first differing setting), unfinished
// pieces, a different shard count, missing, duplicate or overlapping
// pieces. It returns the pieces in shard order.
func checkShards(reps []shardReport) ([]shardReport, error) {
	first := reps[0]
	for _, r := range reps {
		if r.head.Sharding == nil {
			return nil, fmt.Errorf("%s is not a shard report (no \"sharding\"; was it run with --shard?)", r.path)
		}
		if r.head.Run.Command != first.head.Run.Command {
			return nil, fmt.Errorf("%s is a %q report but %s is a %q report", r.path, r.head.Run.Command, first.path, first.head.Run.Command)
		}
		if r.head.Fingerprint == "" || r.head.Fingerprint != first.head.Fingerprint {
			return nil, fmt.Errorf("%s (shard %s) belongs to another run than %s (shard %s): %s", r.path, r.head.Sharding.Shard, first.path, first.head.Sharding.Shard, fingerprintDiff(first.head, r.head))
		}
		if !r.head.Complete {
			return nil, fmt.Errorf("%s (shard %s) is not complete (%s); rerun that shard (it resumes from its own state where the command supports it)", r.path, r.head.Sharding.Shard, r.head.Incomplete)
		}
		if r.head.Sharding.Shard.Count != first.head.Sharding.Shard.Count || r.head.Sharding.Total != first.head.Sharding.Total {
			return nil, fmt.Errorf("%s is shard %s of %d items but %s is shard %s of %d", r.path, r.head.Sharding.Shard, r.head.Sharding.Total, first.path, first.head.Sharding.Shard, first.head.Sharding.Total)
		}
	}
	n := first.head.Sharding.Shard.Count
	byIndex := make([]*shardReport, n)
	for i := range reps {
		r := &reps[i]
		k := r.head.Sharding.Shard.Index
		if k < 0 || k >= n {
			return nil, fmt.Errorf("%s: shard %s is out of range", r.path, r.head.Sharding.Shard)
		}
		if byIndex[k] != nil {
			return nil, fmt.Errorf("shard %s appears twice: %s and %s", r.head.Sharding.Shard, byIndex[k].path, r.path)
		}
		byIndex[k] = r
	}
	var missing []string
	for k, r := range byIndex {
		if r == nil {
			missing = append(missing, fmt.Sprintf("%d/%d", k, n))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing shard(s) %s of the %d", strings.Join(missing, ", "), n)
	}
	out := make([]shardReport, n)
	next := 0
	for k, r := range byIndex {
		sh := r.head.Sharding
		if lo, hi := sh.Shard.Range(sh.Total); sh.Lo != lo || sh.Hi != hi || sh.Lo != next {
			return nil, fmt.Errorf("%s: shard %s covers [%d,%d); want [%d,%d) (overlapping or edited shard)", r.path, sh.Shard, sh.Lo, sh.Hi, lo, hi)
		}
		next = sh.Hi
		out[k] = *r
	}
	return out, nil
}

// fingerprintDiff names the first result-changing flag that differs, or
// says that the inputs (model or data bytes, version) differ.
func fingerprintDiff(a, b report.Header) string {
	var names []string
	for k := range a.Run.Flags {
		names = append(names, k)
	}
	for k := range b.Run.Flags {
		if _, ok := a.Run.Flags[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		if fingerprintIgnore[k] {
			continue
		}
		if !reflect.DeepEqual(a.Run.Flags[k], b.Run.Flags[k]) {
			return fmt.Sprintf("--%s is %v in one and %v in the other", k, a.Run.Flags[k], b.Run.Flags[k])
		}
	}
	if a.Run.Version != b.Run.Version {
		return fmt.Sprintf("srtool version %s vs %s", a.Run.Version, b.Run.Version)
	}
	return "the model or data bytes differ"
}

func runMerge(c *cli.Context, out string, args []string, w io.Writer) error {
	reps, err := readShardReports(args, out)
	if err != nil {
		return err
	}
	if reps, err = checkShards(reps); err != nil {
		return err
	}
	switch cmd := reps[0].head.Run.Command; cmd {
	case "eval":
		return mergeEval(c, out, reps, w)
	case "attack":
		return mergeAttack(c, out, reps, w)
	case "mi":
		return mergeMI(c, out, reps, w)
	case "semirobust":
		return mergeSemirobust(c, out, reps, w)
	default:
		return fmt.Errorf("merge: %s reports (%s) cannot be merged", cmd, reps[0].path)
	}
}

// mergedHeader is the header of a merged report: the shards' run, complete,
// no sharding, and the pieces it came from.
func mergedHeader(reps []shardReport) report.Header {
	h := reps[0].head
	h.Sharding = nil
	h.Complete = true
	h.Incomplete = ""
	flags := make(map[string]any, len(h.Run.Flags))
	for k, v := range h.Run.Flags {
		flags[k] = v
	}
	flags["shard"] = ""
	h.Run.Flags = flags
	return h
}

// concatNPY concatenates the shards' .npy files named by each report's
// flag along the first axis into out, in shard order.
func concatNPY(reps []shardReport, flag, out string) error {
	var paths []string
	for _, r := range reps {
		p, _ := r.head.Run.Flags[flag].(string)
		if p == "" {
			return fmt.Errorf("%s (shard %s) was run without --%s", r.path, r.head.Sharding.Shard, flag)
		}
		paths = append(paths, p)
	}
	return concatNPYPaths(reps, paths, out)
}

// concatNPYPaths concatenates one array per shard along the first axis,
// checking each has its shard's rows and the same dtype and row shape.
func concatNPYPaths(reps []shardReport, paths []string, out string) error {
	var parts []*npy.Array
	for i, r := range reps {
		p := paths[i]
		a, err := npy.ReadFile(p)
		if err != nil {
			return fmt.Errorf("shard %s: %w", r.head.Sharding.Shard, err)
		}
		if want := r.head.Sharding.Hi - r.head.Sharding.Lo; len(a.Shape) == 0 || a.Shape[0] != want {
			return fmt.Errorf("%s (shard %s) has shape %v; want %d rows", p, r.head.Sharding.Shard, a.Shape, want)
		}
		if len(parts) > 0 && (a.DType != parts[0].DType || !slices.Equal(a.Shape[1:], parts[0].Shape[1:])) {
			return fmt.Errorf("%s (shard %s) is %s %v, unlike the first shard's %s %v", p, r.head.Sharding.Shard, a.DType, a.Shape, parts[0].DType, parts[0].Shape)
		}
		parts = append(parts, a)
	}
	merged := &npy.Array{DType: parts[0].DType, Shape: append([]int{0}, parts[0].Shape[1:]...)}
	for _, a := range parts {
		merged.Shape[0] += a.Shape[0]
		merged.Data = append(merged.Data, a.Data...)
	}
	return npy.WriteFile(out, merged)
}

// mergeEval adds the shards' counts: the merged accuracy is computed from
// the summed counts exactly as the unsharded run computes it.
func mergeEval(c *cli.Context, out string, reps []shardReport, w io.Writer) error {
	merged := evalReport{Header: mergedHeader(reps)}
	correct := 0
	for i, r := range reps {
		var e evalReport
		if err := json.Unmarshal(r.raw, &e); err != nil {
			return fmt.Errorf("%s: %w", r.path, err)
		}
		if i == 0 {
			merged.Model, merged.Data, merged.Device, merged.Threads = e.Model, e.Data, e.Device, e.Threads
		}
		if e.Evaluated != e.N || (e.N > 0 && e.Correct == nil) {
			return fmt.Errorf("%s (shard %s) evaluated %d of its %d samples", r.path, r.head.Sharding.Shard, e.Evaluated, e.N)
		}
		merged.N += e.N
		merged.Evaluated += e.Evaluated
		if e.Correct != nil {
			correct += *e.Correct
		}
		merged.Seconds += e.Seconds
	}
	merged.MergedFrom = shardPaths(reps)
	merged.finish(correct)
	if p := c.String("save-logits"); p != "" {
		if err := concatNPY(reps, "save-logits", p); err != nil {
			return err
		}
	}
	if merged.CleanAccuracy != nil {
		fmt.Fprintf(w, "clean accuracy: %.2f%% (%d/%d) on %s, merged from %d shards\n", *merged.CleanAccuracy, correct, merged.N, merged.Data, len(reps))
	}
	return report.WriteJSON(out, merged)
}

func shardPaths(reps []shardReport) []string {
	out := make([]string, len(reps))
	for i, r := range reps {
		out[i] = r.path
	}
	return out
}

// mergeAttack adds the shards' counts per attack and recomputes every
// accuracy from the sums exactly as the unsharded run computes it. Call
// counts (grad_calls, forward_calls) are summed too; they depend on how
// points were batched, so they are the one number that may differ from an
// unsharded run (samples counts do not). Warnings are the union of the
// shards' (each check once, the first shard's message).
func mergeAttack(c *cli.Context, out string, reps []shardReport, w io.Writer) error {
	var conv struct {
		Convention string `json:"convention"`
	}
	if err := json.Unmarshal(reps[0].raw, &conv); err != nil {
		return fmt.Errorf("%s: %w", reps[0].path, err)
	}
	if conv.Convention == "adv-acc" {
		return mergeAdvAcc(c, out, reps, w)
	}
	var parts []attackReport
	for _, r := range reps {
		var a attackReport
		if err := json.Unmarshal(r.raw, &a); err != nil {
			return fmt.Errorf("%s: %w", r.path, err)
		}
		if a.CleanCorrect == nil || a.RobustPoints == nil || len(a.Pending) > 0 {
			return fmt.Errorf("%s (shard %s) has no final counts", r.path, r.head.Sharding.Shard)
		}
		if len(a.PerAttack) != len(parts0(parts, a).PerAttack) {
			return fmt.Errorf("%s (shard %s) has %d attacks, shard 0 has %d", r.path, r.head.Sharding.Shard, len(a.PerAttack), len(parts[0].PerAttack))
		}
		parts = append(parts, a)
	}
	m := parts[0]
	m.Header = mergedHeader(reps)
	m.MergedFrom = shardPaths(reps)
	m.PerAttack = append([]attacks.AttackReport(nil), m.PerAttack...)
	clean, robust := *m.CleanCorrect, *m.RobustPoints
	seen := map[string]bool{}
	for _, f := range m.Warnings {
		seen[f.Check] = true
	}
	for _, p := range parts[1:] {
		m.N += p.N
		clean += *p.CleanCorrect
		robust += *p.RobustPoints
		m.Counts.Add(p.Counts)
		m.Seconds += p.Seconds
		for i, a := range p.PerAttack {
			t := &m.PerAttack[i]
			if a.Name != t.Name {
				return fmt.Errorf("shard attacks differ: %s vs %s", a.Name, t.Name)
			}
			t.Attacked += a.Attacked
			t.Broken += a.Broken
			t.Counts.Add(a.Counts)
			t.ZeroGrad += a.ZeroGrad
		}
		for _, f := range p.Warnings {
			if !seen[f.Check] {
				seen[f.Check] = true
				m.Warnings = append(m.Warnings, f)
			}
		}
	}
	ca, ra := percentOf(clean, m.N), percentOf(robust, m.N)
	m.CleanCorrect, m.RobustPoints, m.CleanAccuracy, m.RobustAccuracy = &clean, &robust, &ca, &ra
	left := clean
	for i := range m.PerAttack {
		left -= m.PerAttack[i].Broken
		m.PerAttack[i].RobustAccuracy = percentOf(left, m.N)
	}
	if left != robust {
		return fmt.Errorf("the shards' counts disagree: %d clean-correct points minus the broken ones leave %d, but %d are robust", clean, left, robust)
	}
	m.Outputs = attackOutputs{}
	if p := c.String("save-adv"); p != "" {
		if err := concatNPYFiles(reps, func(a attackReport) string { return a.Outputs.Adv }, "--save-adv", p); err != nil {
			return err
		}
		m.Outputs.Adv = p
	}
	if p := c.String("per-sample"); p != "" {
		if err := concatFiles(reps, func(a attackReport) string { return a.Outputs.PerSample }, "--per-sample", p); err != nil {
			return err
		}
		m.Outputs.PerSample = p
	}
	fmt.Fprintf(w, "clean accuracy:  %6.2f%%  (%d samples, %s)\n", ca, m.N, m.Data)
	for _, a := range m.PerAttack {
		fmt.Fprintf(w, "after %-12s %6.2f%%  (broke %d of %d)\n", a.Name+":", a.RobustAccuracy, a.Broken, a.Attacked)
	}
	fmt.Fprintf(w, "robust accuracy: %6.2f%%  (merged from %d shards)\n", ra, len(reps))
	return report.WriteJSON(out, m)
}

func parts0(parts []attackReport, a attackReport) attackReport {
	if len(parts) == 0 {
		return a
	}
	return parts[0]
}

// percentOf is attacks' percentage of n (0 for n = 0), the same float
// arithmetic as the unsharded run's.
func percentOf(a, n int) float64 {
	if n == 0 {
		return 0
	}
	return 100 * float64(a) / float64(n)
}

// mergeAdvAcc merges --convention adv-acc shards: correct counts per attack
// and overall.
func mergeAdvAcc(c *cli.Context, out string, reps []shardReport, w io.Writer) error {
	var m advAccReport
	clean, robust := 0, 0
	for i, r := range reps {
		var a advAccReport
		if err := json.Unmarshal(r.raw, &a); err != nil {
			return fmt.Errorf("%s: %w", r.path, err)
		}
		if a.CleanCorrect == nil || a.RobustPoints == nil {
			return fmt.Errorf("%s (shard %s) has no final counts", r.path, r.head.Sharding.Shard)
		}
		if i == 0 {
			m = a
			m.PerAttack = nil
			for _, p := range a.PerAttack {
				cp := *p
				m.PerAttack = append(m.PerAttack, &cp)
			}
			clean, robust = *a.CleanCorrect, *a.RobustPoints
			continue
		}
		if len(a.PerAttack) != len(m.PerAttack) {
			return fmt.Errorf("%s (shard %s) has %d attacks, shard 0 has %d", r.path, r.head.Sharding.Shard, len(a.PerAttack), len(m.PerAttack))
		}
		m.N += a.N
		clean += *a.CleanCorrect
		robust += *a.RobustPoints
		m.Seconds += a.Seconds
		for j, p := range a.PerAttack {
			t := m.PerAttack[j]
			t.Correct += p.Correct
			t.N += p.N
			t.Counts.Add(p.Counts)
		}
	}
	m.Header = mergedHeader(reps)
	m.MergedFrom = shardPaths(reps)
	for _, t := range m.PerAttack {
		t.Accuracy = percentOf(t.Correct, t.N)
	}
	ca, ra := percentOf(clean, m.N), percentOf(robust, m.N)
	m.CleanCorrect, m.RobustPoints, m.CleanAccuracy, m.RobustAccuracy = &clean, &robust, &ca, &ra
	m.Outputs = attackOutputs{}
	if p := c.String("save-adv"); p != "" {
		if err := concatNPYFiles(reps, func(a attackReport) string { return a.Outputs.Adv }, "--save-adv", p); err != nil {
			return err
		}
		m.Outputs.Adv = p
	}
	fmt.Fprintf(w, "robust accuracy: %6.2f%%  (adv-acc, merged from %d shards)\n", ra, len(reps))
	return report.WriteJSON(out, m)
}

// outputOf reads the attack report's outputs of a shard.
func outputOf(r shardReport, pick func(attackReport) string, flag string) (string, error) {
	var a attackReport
	if err := json.Unmarshal(r.raw, &a); err != nil {
		return "", fmt.Errorf("%s: %w", r.path, err)
	}
	p := pick(a)
	if p == "" {
		return "", fmt.Errorf("%s (shard %s) was run without %s", r.path, r.head.Sharding.Shard, flag)
	}
	return p, nil
}

// concatNPYFiles concatenates the shards' arrays along the first axis.
func concatNPYFiles(reps []shardReport, pick func(attackReport) string, flag, out string) error {
	var paths []string
	for _, r := range reps {
		p, err := outputOf(r, pick, flag)
		if err != nil {
			return err
		}
		paths = append(paths, p)
	}
	return concatNPYPaths(reps, paths, out)
}

// concatFiles concatenates the shards' text files (JSON lines) in order.
func concatFiles(reps []shardReport, pick func(attackReport) string, flag, out string) error {
	var all []byte
	for _, r := range reps {
		p, err := outputOf(r, pick, flag)
		if err != nil {
			return err
		}
		b, err := onnxio.ReadRegular(p, report.MaxStateBytes)
		if err != nil {
			return fmt.Errorf("shard %s: %w", r.head.Sharding.Shard, err)
		}
		if n := bytes.Count(b, []byte("\n")); n != r.head.Sharding.Hi-r.head.Sharding.Lo {
			return fmt.Errorf("%s (shard %s) has %d lines; want %d", p, r.head.Sharding.Shard, n, r.head.Sharding.Hi-r.head.Sharding.Lo)
		}
		all = append(all, b...)
	}
	return onnxio.WriteFileAtomic(out, all)
}

// mergeMI puts the shards' layer pairs together in pair order; everything
// else is shard 0's (the fingerprint made sure the shards agree on it).
func mergeMI(c *cli.Context, out string, reps []shardReport, w io.Writer) error {
	var doc map[string]json.RawMessage
	var table miModelReport // for the console and the plot
	for i, r := range reps {
		var p struct {
			Pairs     []rhoPair `json:"pairs"`
			Estimator string    `json:"estimator"`
			Units     string    `json:"units"`
			Inputs    string    `json:"inputs"`
		}
		if err := json.Unmarshal(r.raw, &p); err != nil {
			return fmt.Errorf("%s: %w", r.path, err)
		}
		if want := r.head.Sharding.Hi - r.head.Sharding.Lo; len(p.Pairs) != want {
			return fmt.Errorf("%s (shard %s) holds %d layer pairs; want %d", r.path, r.head.Sharding.Shard, len(p.Pairs), want)
		}
		if i == 0 {
			if err := json.Unmarshal(r.raw, &doc); err != nil {
				return fmt.Errorf("%s: %w", r.path, err)
			}
			table.Estimator, table.Units, table.Inputs = p.Estimator, p.Units, p.Inputs
		}
		table.Pairs = append(table.Pairs, p.Pairs...)
	}
	if err := setHeader(doc, mergedHeader(reps), shardPaths(reps)); err != nil {
		return err
	}
	pairs, err := json.Marshal(table.Pairs)
	if err != nil {
		return err
	}
	doc["pairs"] = pairs
	printRhoTable(w, table)
	if p := c.String("plot"); p != "" {
		layers := 0
		for _, r := range table.Pairs {
			layers = max(layers, r.Child)
		}
		matrix := reps[0].head.Run.Flags["pairs"] == "matrix"
		if err := plotRhos(p, table, matrix, layers); err != nil {
			return err
		}
	}
	return report.WriteJSON(out, doc)
}

// setHeader replaces the header fields of a report decoded as a map and
// records the shards it was merged from.
func setHeader(doc map[string]json.RawMessage, h report.Header, from []string) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	for _, k := range []string{"complete", "incomplete_reason", "run", "fingerprint", "sharding"} {
		delete(doc, k)
	}
	for k, v := range fields {
		doc[k] = v
	}
	if doc["merged_from"], err = json.Marshal(from); err != nil {
		return err
	}
	return nil
}
