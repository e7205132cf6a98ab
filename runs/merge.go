package runs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/internal/atomicfile"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/report"
)

// MergeOptions name the merged companion files to write ("" = none): the
// shards' logits (eval), adversarial inputs and per-sample lines (attack),
// each concatenated in sample order.
type MergeOptions struct {
	SaveLogits string
	SaveAdv    string
	PerSample  string
}

// MergeEval adds the eval shards' counts (pieces checked and in shard
// order, report.CheckPieces) and writes the report the unsharded run writes
// to out: the merged accuracy is computed from the summed counts exactly as
// the unsharded run computes it.
func MergeEval(out string, reps []report.Piece, o MergeOptions, w io.Writer) (*EvalReport, error) {
	merged := &EvalReport{Header: report.MergedHeader(reps)}
	correct := 0
	for i, r := range reps {
		var e EvalReport
		if err := json.Unmarshal(r.Raw, &e); err != nil {
			return nil, fmt.Errorf("%s: %w", r.Path, err)
		}
		if i == 0 {
			merged.Model, merged.Data, merged.Device, merged.Threads = e.Model, e.Data, e.Device, e.Threads
		}
		if e.Evaluated != e.N || (e.N > 0 && e.Correct == nil) {
			return nil, fmt.Errorf("%s (shard %s) evaluated %d of its %d samples", r.Path, r.Header.Sharding.Shard, e.Evaluated, e.N)
		}
		merged.N += e.N
		merged.Evaluated += e.Evaluated
		if e.Correct != nil {
			correct += *e.Correct
		}
		merged.Seconds += e.Seconds
	}
	merged.MergedFrom = report.Paths(reps)
	merged.finish(correct)
	if p := o.SaveLogits; p != "" {
		if err := report.ConcatNPYFlag(reps, "save-logits", p); err != nil {
			return nil, err
		}
	}
	if merged.CleanAccuracy != nil {
		fmt.Fprintf(w, "clean accuracy: %.2f%% (%d/%d) on %s, merged from %d shards\n", *merged.CleanAccuracy, correct, merged.N, merged.Data, len(reps))
	}
	return merged, report.WriteJSON(out, merged)
}

// MergeAttack merges attack shards of either convention (pieces checked and
// in shard order) into out. In the aa convention it adds the shards' counts
// per attack and recomputes every accuracy from the sums exactly as the
// unsharded run computes it. Call counts (grad_calls, forward_calls) are
// summed too; they depend on how points were batched, so they are the one
// number that may differ from an unsharded run (samples counts do not).
// Warnings are the union of the shards' (each check once, the first shard's
// message).
func MergeAttack(out string, reps []report.Piece, o MergeOptions, w io.Writer) error {
	var conv struct {
		Convention string `json:"convention"`
	}
	if err := json.Unmarshal(reps[0].Raw, &conv); err != nil {
		return fmt.Errorf("%s: %w", reps[0].Path, err)
	}
	if conv.Convention == "adv-acc" {
		return mergeAdvAcc(out, reps, o, w)
	}
	var parts []AttackReport
	for _, r := range reps {
		var a AttackReport
		if err := json.Unmarshal(r.Raw, &a); err != nil {
			return fmt.Errorf("%s: %w", r.Path, err)
		}
		if a.CleanCorrect == nil || a.RobustPoints == nil || len(a.Pending) > 0 {
			return fmt.Errorf("%s (shard %s) has no final counts", r.Path, r.Header.Sharding.Shard)
		}
		if len(parts) > 0 && len(a.PerAttack) != len(parts[0].PerAttack) {
			return fmt.Errorf("%s (shard %s) has %d attacks, shard 0 has %d", r.Path, r.Header.Sharding.Shard, len(a.PerAttack), len(parts[0].PerAttack))
		}
		parts = append(parts, a)
	}
	m := parts[0]
	m.Header = report.MergedHeader(reps)
	m.MergedFrom = report.Paths(reps)
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
	m.Outputs = AttackOutputs{}
	if p := o.SaveAdv; p != "" {
		if err := concatNPYFiles(reps, func(a AttackReport) string { return a.Outputs.Adv }, "--save-adv", p); err != nil {
			return err
		}
		m.Outputs.Adv = p
	}
	if p := o.PerSample; p != "" {
		if err := concatFiles(reps, func(a AttackReport) string { return a.Outputs.PerSample }, "--per-sample", p); err != nil {
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

// percentOf is attacks' percentage of n (0 for n = 0), the same float
// arithmetic as the unsharded run's.
func percentOf(a, n int) float64 {
	if n == 0 {
		return 0
	}
	return 100 * float64(a) / float64(n)
}

// mergeAdvAcc merges adv-acc shards: correct counts per attack and overall.
func mergeAdvAcc(out string, reps []report.Piece, o MergeOptions, w io.Writer) error {
	var m AdvAccReport
	clean, robust := 0, 0
	for i, r := range reps {
		var a AdvAccReport
		if err := json.Unmarshal(r.Raw, &a); err != nil {
			return fmt.Errorf("%s: %w", r.Path, err)
		}
		if a.CleanCorrect == nil || a.RobustPoints == nil {
			return fmt.Errorf("%s (shard %s) has no final counts", r.Path, r.Header.Sharding.Shard)
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
			return fmt.Errorf("%s (shard %s) has %d attacks, shard 0 has %d", r.Path, r.Header.Sharding.Shard, len(a.PerAttack), len(m.PerAttack))
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
	m.Header = report.MergedHeader(reps)
	m.MergedFrom = report.Paths(reps)
	for _, t := range m.PerAttack {
		t.Accuracy = percentOf(t.Correct, t.N)
	}
	ca, ra := percentOf(clean, m.N), percentOf(robust, m.N)
	m.CleanCorrect, m.RobustPoints, m.CleanAccuracy, m.RobustAccuracy = &clean, &robust, &ca, &ra
	m.Outputs = AttackOutputs{}
	if p := o.SaveAdv; p != "" {
		if err := concatNPYFiles(reps, func(a AttackReport) string { return a.Outputs.Adv }, "--save-adv", p); err != nil {
			return err
		}
		m.Outputs.Adv = p
	}
	fmt.Fprintf(w, "robust accuracy: %6.2f%%  (adv-acc, merged from %d shards)\n", ra, len(reps))
	return report.WriteJSON(out, m)
}

// outputOf reads the attack report's outputs of a shard.
func outputOf(r report.Piece, pick func(AttackReport) string, flag string) (string, error) {
	var a AttackReport
	if err := json.Unmarshal(r.Raw, &a); err != nil {
		return "", fmt.Errorf("%s: %w", r.Path, err)
	}
	p := pick(a)
	if p == "" {
		return "", fmt.Errorf("%s (shard %s) was run without %s", r.Path, r.Header.Sharding.Shard, flag)
	}
	return p, nil
}

// concatNPYFiles concatenates the shards' arrays along the first axis.
func concatNPYFiles(reps []report.Piece, pick func(AttackReport) string, flag, out string) error {
	var paths []string
	for _, r := range reps {
		p, err := outputOf(r, pick, flag)
		if err != nil {
			return err
		}
		paths = append(paths, p)
	}
	return report.ConcatNPY(reps, paths, out)
}

// concatFiles concatenates the shards' text files (JSON lines) in order.
func concatFiles(reps []report.Piece, pick func(AttackReport) string, flag, out string) error {
	var all []byte
	for _, r := range reps {
		p, err := outputOf(r, pick, flag)
		if err != nil {
			return err
		}
		b, err := onnxio.ReadRegular(p, report.MaxStateBytes)
		if err != nil {
			return fmt.Errorf("shard %s: %w", r.Header.Sharding.Shard, err)
		}
		if n := bytes.Count(b, []byte("\n")); n != r.Header.Sharding.Hi-r.Header.Sharding.Lo {
			return fmt.Errorf("%s (shard %s) has %d lines; want %d", p, r.Header.Sharding.Shard, n, r.Header.Sharding.Hi-r.Header.Sharding.Lo)
		}
		all = append(all, b...)
	}
	return atomicfile.WriteFile(out, all)
}
