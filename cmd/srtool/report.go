package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/onnxio"
)

// Limits on the files srtool reads back (reports, resume states): larger
// is not a file srtool wrote, and is refused before it is read.
const (
	maxReportBytes = 1 << 30 // JSON reports
	maxStateBytes  = 8 << 30 // resume states and per-sample files (they hold adversarial rows)
)

// metaArgs is the cli.App.Metadata key of the command line as given.
const metaArgs = "args"

// reportHeader opens every JSON report. Complete is false when the command
// stopped early (interrupted or failed after some work): numbers of unfinished
// work are then absent from the report, never 0 or 100. Run records what ran.
type reportHeader struct {
	Complete bool `json:"complete"`
	// Incomplete says why Complete is false ("interrupted", or the error).
	Incomplete string  `json:"incomplete_reason,omitempty"`
	Run        runInfo `json:"run"`
	// Fingerprint identifies the run's inputs and result-changing settings
	// (runFingerprint) in commands that shard or resume; Sharding is set
	// when the report is one piece of a sharded run.
	Fingerprint string       `json:"fingerprint,omitempty"`
	Sharding    *shardHeader `json:"sharding,omitempty"`
}

// runInfo is the build, the command line and every flag's resolved value.
type runInfo struct {
	Tool        string         `json:"tool"`
	Version     string         `json:"version"`
	GoVersion   string         `json:"go_version"`
	Command     string         `json:"command"`
	CommandLine []string       `json:"command_line"`
	Flags       map[string]any `json:"flags"`
}

// newHeader fills a report header for the running command; Complete is true
// until markIncomplete.
func newHeader(c *cli.Context) reportHeader {
	return reportHeader{Complete: true, Run: newRunInfo(c)}
}

// markIncomplete records that the command did not finish and why.
func (h *reportHeader) markIncomplete(err error) {
	h.Complete = false
	if err == nil {
		h.Incomplete = "interrupted"
		return
	}
	if isCancel(err) {
		h.Incomplete = "interrupted"
		return
	}
	h.Incomplete = oneLine(err.Error())
}

func newRunInfo(c *cli.Context) runInfo {
	ri := runInfo{Tool: "srtool", Version: toolVersion(), Flags: resolvedFlags(c)}
	if bi, ok := debug.ReadBuildInfo(); ok {
		ri.GoVersion = bi.GoVersion
	}
	if c != nil && c.Command != nil {
		ri.Command = c.Command.FullName()
	}
	if c != nil && c.App != nil {
		if args, ok := c.App.Metadata[metaArgs].([]string); ok {
			ri.CommandLine = append([]string(nil), args...)
		}
	}
	if ri.CommandLine == nil {
		ri.CommandLine = append([]string(nil), os.Args...)
	}
	return ri
}

// resolvedFlags is every flag of the running command with the value it had,
// given or default, by its first name.
func resolvedFlags(c *cli.Context) map[string]any {
	out := map[string]any{}
	if c == nil || c.Command == nil {
		return out
	}
	for _, f := range c.Command.Flags {
		names := f.Names()
		if len(names) == 0 || names[0] == "help" {
			continue
		}
		out[names[0]] = c.Value(names[0])
	}
	return out
}

// version is set by `make build` (-ldflags "-X main.version=…") to the
// commit the binary was built from; empty in other builds.
var version = ""

// toolVersion is srtool's version: the one `make build` stamped, else the
// module version from the build info (a tagged module), else "devel" plus the
// VCS revision when the build recorded it ("-dirty" when the tree had changes).
func toolVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	var rev string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += "+" + rev
		if dirty {
			v += "-dirty"
		}
	}
	return v
}

// fileDigests returns the hex SHA-256 of each file by path. Reports that
// have companion outputs (models, weights) record them and are written last,
// so a reader can check that the files on disk are the set the report
// describes (a kill between two renames leaves a mix of old and new).
func fileDigests(paths ...string) (map[string]string, error) {
	out := make(map[string]string, len(paths))
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("hash %s: %w", p, err)
		}
		out[p] = hex.EncodeToString(h.Sum(nil))
	}
	return out, nil
}

// writeJSON writes v as indented JSON to path atomically ("" = do nothing).
func writeJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	return onnxio.WriteFileAtomic(path, append(b, '\n'))
}
