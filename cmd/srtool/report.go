package main

import (
	"os"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/report"
)

// metaArgs is the cli.App.Metadata key of the command line as given.
const metaArgs = "args"

// newHeader fills a report header for the running command; Complete is true
// until MarkIncomplete.
func newHeader(c *cli.Context) report.Header {
	return report.New(newRunInfo(c))
}

// newRunInfo is the build, the command line and every flag's resolved value
// of the running command.
func newRunInfo(c *cli.Context) report.RunInfo {
	ri := report.RunInfo{Tool: "srtool", Version: toolVersion(), Flags: resolvedFlags(c)}
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
