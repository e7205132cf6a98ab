package report

import (
	"context"
	"errors"
	"strings"

	"github.com/semirobust/srtool/shard"
)

// Limits on the files srtool reads back (reports, resume states): larger
// is not a file srtool wrote, and is refused before it is read.
const (
	MaxBytes      = 1 << 30 // JSON reports
	MaxStateBytes = 8 << 30 // resume states and per-sample files (they hold adversarial rows)
)

// Header opens every JSON report. Complete is false when the command
// stopped early (interrupted or failed after some work): numbers of unfinished
// work are then absent from the report, never 0 or 100. Run records what ran.
type Header struct {
	Complete bool `json:"complete"`
	// Incomplete says why Complete is false ("interrupted", or the error).
	Incomplete string  `json:"incomplete_reason,omitempty"`
	Run        RunInfo `json:"run"`
	// Fingerprint identifies the run's inputs and result-changing settings
	// in commands that shard or resume; Sharding is set when the report is
	// one piece of a sharded run.
	Fingerprint string    `json:"fingerprint,omitempty"`
	Sharding    *Sharding `json:"sharding,omitempty"`
}

// RunInfo is the build, the command line and every flag's resolved value.
type RunInfo struct {
	Tool        string         `json:"tool"`
	Version     string         `json:"version"`
	GoVersion   string         `json:"go_version"`
	Command     string         `json:"command"`
	CommandLine []string       `json:"command_line"`
	Flags       map[string]any `json:"flags"`
}

// Sharding marks a report as one piece of a sharded run. The header's
// Fingerprint binds the pieces together: merging refuses pieces whose
// fingerprints differ.
type Sharding struct {
	Shard shard.Shard `json:"shard"`
	// Lo and Hi are the global sample (or work-unit) range of this piece,
	// of Total in the whole run.
	Lo    int `json:"lo"`
	Hi    int `json:"hi"`
	Total int `json:"total"`
}

// New is the header of a run described by ri; Complete is true until
// MarkIncomplete.
func New(ri RunInfo) Header {
	return Header{Complete: true, Run: ri}
}

// MarkIncomplete records that the command did not finish and why: err nil or
// a cancellation is "interrupted", any other error its text on one line.
func (h *Header) MarkIncomplete(err error) {
	h.Complete = false
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		h.Incomplete = "interrupted"
		return
	}
	h.Incomplete = strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

// SetShard records that the run is piece s of total samples (or work
// units) and returns the piece's range [lo, hi).
func (h *Header) SetShard(s shard.Shard, total int) (lo, hi int) {
	lo, hi = s.Range(total)
	h.Sharding = &Sharding{Shard: s, Lo: lo, Hi: hi, Total: total}
	return lo, hi
}
