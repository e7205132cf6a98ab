package main

import (
	"io"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/semirobust"
)

// mergeSemirobust merges semirobust shard reports into OUT
// (semirobust.Merge): the report the unsharded run writes, with report.md,
// the plots and each row's model beside it.
func mergeSemirobust(c *cli.Context, out string, reps []shardReport, w io.Writer) error {
	parts := make([]semirobust.ShardReport, len(reps))
	for i, r := range reps {
		parts[i] = semirobust.ShardReport{Path: r.path, Header: r.head, Raw: r.raw}
	}
	return semirobust.Merge(parts, out, mergedHeader(reps), shardPaths(reps), w)
}
