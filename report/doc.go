// Package report holds what every srtool JSON report shares: the Header that
// opens it (complete or why not, the run's build, command line and resolved
// flags, the fingerprint and shard of sharded runs), digests of the files a
// report describes, and atomic writing of the report itself.
//
// Reports are honest: a run that stopped early says so (Complete false and a
// reason) and leaves unfinished numbers out rather than writing 0 or 100.
package report
