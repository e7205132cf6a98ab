// Package progress renders the progress of long work on an io.Writer: a
// bar with rate and ETA redrawn in place when the writer is a terminal, one
// line at most every LogInterval otherwise (logs, CI, cluster jobs).
//
// Library packages report progress through callbacks (done, total int);
// cmd/srtool passes them a Bar's Update, drawn on stderr.
package progress
