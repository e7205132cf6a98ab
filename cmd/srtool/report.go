package main

import (
	"os"

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
	var command string
	var args []string
	if c != nil && c.Command != nil {
		command = c.Command.FullName()
	}
	if c != nil && c.App != nil {
		if a, ok := c.App.Metadata[metaArgs].([]string); ok {
			args = append([]string(nil), a...)
		}
	}
	if args == nil {
		args = append([]string(nil), os.Args...)
	}
	return report.NewRunInfo(version, command, args, resolvedFlags(c))
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

// toolVersion is srtool's version (report.Version).
func toolVersion() string { return report.Version(version) }
