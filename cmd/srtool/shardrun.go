package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/report"
	"github.com/semirobust/srtool/shard"
)

// shardFlags are the flags of commands whose work splits over shards.
func shardFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "shard", Usage: "run piece `I/N` of the work (0 ≤ I < N; samples split by global index into contiguous ranges), or auto: Slurm array task / Kubernetes Indexed Job (auto/N with the Job's completions); combine the pieces with `srtool merge`"},
		&cli.BoolFlag{Name: "skip-done", Usage: "exit at once when --json already holds a complete report of this same run and shard (array-task retries)"},
	}
}

// resolveShard reads --shard (usage error when invalid).
func resolveShard(c *cli.Context) (shard.Shard, error) {
	s, err := shard.Parse(c.String("shard"), os.Getenv)
	if err != nil {
		return shard.Shard{}, usageError{err.Error()}
	}
	return s, nil
}

// shardRun is a sample-sharded command's piece: which shard, and the
// fingerprint of the whole run.
type shardRun struct {
	shard       shard.Shard
	fingerprint string
}

// startShard reads --shard, fingerprints the run (files and the whole data
// selection d) and, with --skip-done, reports whether --json already holds
// this piece's complete report (then it has said so on w).
func startShard(c *cli.Context, w io.Writer, files []string, d *dataset.Dataset) (sr shardRun, skip bool, err error) {
	if sr.shard, err = resolveShard(c); err != nil {
		return sr, false, err
	}
	if sr.fingerprint, err = report.Fingerprint(newRunInfo(c), files, d); err != nil {
		return sr, false, err
	}
	if c.Bool("skip-done") && report.AlreadyDone(c.String("json"), sr.fingerprint, sr.shard) {
		fmt.Fprintf(w, "%s: %s already holds this run's complete report (shard %s); skipped\n", c.Command.Name, c.String("json"), sr.shard)
		return sr, true, nil
	}
	return sr, false, nil
}
