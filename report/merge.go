package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
)

// Piece is one shard report read back for merging: its path, header and
// the whole document.
type Piece struct {
	Path   string
	Header Header
	Raw    []byte
}

// ReadPieces reads the reports named by args, expanding folders (every
// *.json in them, in name order) and skipping the file out itself.
func ReadPieces(args []string, out string) ([]Piece, error) {
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
	var reps []Piece
	for _, p := range paths {
		if same, _ := SameFile(p, out); same {
			continue // a folder that also holds the output
		}
		b, err := onnxio.ReadRegular(p, MaxBytes)
		if err != nil {
			return nil, err
		}
		var h Header
		if err := json.Unmarshal(b, &h); err != nil {
			return nil, fmt.Errorf("shard report %s: %w", p, err)
		}
		reps = append(reps, Piece{Path: p, Header: h, Raw: b})
	}
	if len(reps) == 0 {
		return nil, fmt.Errorf("no shard reports in %s", strings.Join(args, ", "))
	}
	return reps, nil
}

// SameFile reports whether a and b name the same existing file.
func SameFile(a, b string) (bool, error) {
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

// CheckPieces refuses pieces that do not make exactly one run: another
// command or fingerprint (naming the first differing setting), unfinished
// pieces, a different shard count, missing, duplicate or overlapping
// pieces. It returns the pieces in shard order.
func CheckPieces(reps []Piece) ([]Piece, error) {
	first := reps[0]
	for _, r := range reps {
		if r.Header.Sharding == nil {
			return nil, fmt.Errorf("%s is not a shard report (no \"sharding\"; was it run with --shard?)", r.Path)
		}
		if r.Header.Run.Command != first.Header.Run.Command {
			return nil, fmt.Errorf("%s is a %q report but %s is a %q report", r.Path, r.Header.Run.Command, first.Path, first.Header.Run.Command)
		}
		if r.Header.Fingerprint == "" || r.Header.Fingerprint != first.Header.Fingerprint {
			return nil, fmt.Errorf("%s (shard %s) belongs to another run than %s (shard %s): %s", r.Path, r.Header.Sharding.Shard, first.Path, first.Header.Sharding.Shard, fingerprintDiff(first.Header, r.Header))
		}
		if !r.Header.Complete {
			return nil, fmt.Errorf("%s (shard %s) is not complete (%s); rerun that shard (it resumes from its own state where the command supports it)", r.Path, r.Header.Sharding.Shard, r.Header.Incomplete)
		}
		if r.Header.Sharding.Shard.Count != first.Header.Sharding.Shard.Count || r.Header.Sharding.Total != first.Header.Sharding.Total {
			return nil, fmt.Errorf("%s is shard %s of %d items but %s is shard %s of %d", r.Path, r.Header.Sharding.Shard, r.Header.Sharding.Total, first.Path, first.Header.Sharding.Shard, first.Header.Sharding.Total)
		}
	}
	n := first.Header.Sharding.Shard.Count
	byIndex := make([]*Piece, n)
	for i := range reps {
		r := &reps[i]
		k := r.Header.Sharding.Shard.Index
		if k < 0 || k >= n {
			return nil, fmt.Errorf("%s: shard %s is out of range", r.Path, r.Header.Sharding.Shard)
		}
		if byIndex[k] != nil {
			return nil, fmt.Errorf("shard %s appears twice: %s and %s", r.Header.Sharding.Shard, byIndex[k].Path, r.Path)
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
	out := make([]Piece, n)
	next := 0
	for k, r := range byIndex {
		sh := r.Header.Sharding
		if lo, hi := sh.Shard.Range(sh.Total); sh.Lo != lo || sh.Hi != hi || sh.Lo != next {
			return nil, fmt.Errorf("%s: shard %s covers [%d,%d); want [%d,%d) (overlapping or edited shard)", r.Path, sh.Shard, sh.Lo, sh.Hi, lo, hi)
		}
		next = sh.Hi
		out[k] = *r
	}
	return out, nil
}

// fingerprintDiff names the first result-changing flag that differs, or
// says that the inputs (model or data bytes, version) differ.
func fingerprintDiff(a, b Header) string {
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
		if FingerprintIgnore[k] {
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

// MergedHeader is the header of a merged report: the shards' run, complete,
// no sharding (the shard flag emptied).
func MergedHeader(reps []Piece) Header {
	h := reps[0].Header
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

// Paths are the pieces' paths, in order.
func Paths(reps []Piece) []string {
	out := make([]string, len(reps))
	for i, r := range reps {
		out[i] = r.Path
	}
	return out
}

// ConcatNPY concatenates one array per piece (paths[i] of reps[i]) along
// the first axis into out, checking each has its shard's rows and the same
// dtype and row shape.
func ConcatNPY(reps []Piece, paths []string, out string) error {
	var parts []*npy.Array
	for i, r := range reps {
		p := paths[i]
		a, err := npy.ReadFile(p)
		if err != nil {
			return fmt.Errorf("shard %s: %w", r.Header.Sharding.Shard, err)
		}
		if want := r.Header.Sharding.Hi - r.Header.Sharding.Lo; len(a.Shape) == 0 || a.Shape[0] != want {
			return fmt.Errorf("%s (shard %s) has shape %v; want %d rows", p, r.Header.Sharding.Shard, a.Shape, want)
		}
		if len(parts) > 0 && (a.DType != parts[0].DType || !slices.Equal(a.Shape[1:], parts[0].Shape[1:])) {
			return fmt.Errorf("%s (shard %s) is %s %v, unlike the first shard's %s %v", p, r.Header.Sharding.Shard, a.DType, a.Shape, parts[0].DType, parts[0].Shape)
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

// ConcatNPYFlag concatenates the arrays each piece's run wrote to the file
// of its flag (e.g. save-logits).
func ConcatNPYFlag(reps []Piece, flag, out string) error {
	var paths []string
	for _, r := range reps {
		p, _ := r.Header.Run.Flags[flag].(string)
		if p == "" {
			return fmt.Errorf("%s (shard %s) was run without --%s", r.Path, r.Header.Sharding.Shard, flag)
		}
		paths = append(paths, p)
	}
	return ConcatNPY(reps, paths, out)
}

// SetHeader replaces the header fields of a report decoded as a map with
// h and records the pieces it was merged from (merged_from).
func SetHeader(doc map[string]json.RawMessage, h Header, from []string) error {
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
