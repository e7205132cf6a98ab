package report

import "runtime/debug"

// Version is srtool's version: stamped when the build set one (`make build`
// passes the commit with -ldflags -X), else the module version from the
// build info (a tagged module), else "devel" plus the VCS revision when the
// build recorded it ("-dirty" when the tree had changes).
func Version(stamped string) string {
	if stamped != "" {
		return stamped
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

// NewRunInfo is the RunInfo of the running srtool: its version (Version of
// stamped), the Go version it was built with, the command's full name, the
// command line and the resolved flags.
func NewRunInfo(stamped, command string, commandLine []string, flags map[string]any) RunInfo {
	ri := RunInfo{Tool: "srtool", Version: Version(stamped), Command: command, CommandLine: commandLine, Flags: flags}
	if bi, ok := debug.ReadBuildInfo(); ok {
		ri.GoVersion = bi.GoVersion
	}
	return ri
}
