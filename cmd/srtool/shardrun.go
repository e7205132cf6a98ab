package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/onnxio"
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

// fingerprintIgnore lists flags that do not change a run's results: where
// output goes, how it is split, resumed or parallelised.
var fingerprintIgnore = map[string]bool{
	"json": true, "shard": true, "skip-done": true, "threads": true, "resume": true,
	"save-logits": true, "save-adv": true, "per-sample": true, "checkpoint-dir": true,
	"o": true, "plot": true, "safetensors": true, "device": true,
}

// runFingerprint is the hex SHA-256 of what determines a run's results: the
// command, the tool version, the bytes of each input file, the data actually
// used (the whole selection, before sharding) and every flag except those
// in fingerprintIgnore. Two pieces of one run have the same fingerprint.
func runFingerprint(c *cli.Context, files []string, d *dataset.Dataset) (string, error) {
	h := sha256.New()
	ri := newRunInfo(c)
	fmt.Fprintf(h, "command %s\nversion %s\n", ri.Command, ri.Version)
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "file %d\n", len(p))
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("fingerprint %s: %w", p, err)
		}
	}
	if d != nil {
		fmt.Fprintf(h, "data %d %d %d %d %d\n", d.Len(), d.C, d.H, d.W, d.Classes)
		var b [8]byte
		for _, v := range d.X {
			binary.LittleEndian.PutUint32(b[:4], math.Float32bits(v))
			h.Write(b[:4])
		}
		for _, y := range d.Y {
			binary.LittleEndian.PutUint64(b[:], uint64(y))
			h.Write(b[:])
		}
	}
	names := make([]string, 0, len(ri.Flags))
	for k := range ri.Flags {
		if !fingerprintIgnore[k] {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		v, _ := json.Marshal(ri.Flags[k])
		fmt.Fprintf(h, "flag %s=%s\n", k, v)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
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
	if sr.fingerprint, err = runFingerprint(c, files, d); err != nil {
		return sr, false, err
	}
	if c.Bool("skip-done") && alreadyDone(c.String("json"), sr.fingerprint, sr.shard) {
		fmt.Fprintf(w, "%s: %s already holds this run's complete report (shard %s); skipped\n", c.Command.Name, c.String("json"), sr.shard)
		return sr, true, nil
	}
	return sr, false, nil
}

// alreadyDone reports whether path holds a complete report with this
// fingerprint and shard (for --skip-done).
func alreadyDone(path, fingerprint string, s shard.Shard) bool {
	if path == "" {
		return false
	}
	b, err := onnxio.ReadRegular(path, report.MaxBytes)
	if err != nil {
		return false
	}
	var h struct {
		Complete    bool             `json:"complete"`
		Fingerprint string           `json:"fingerprint"`
		Shard       *report.Sharding `json:"sharding"`
	}
	if json.Unmarshal(b, &h) != nil || !h.Complete || h.Fingerprint != fingerprint {
		return false
	}
	if h.Shard == nil {
		return s.IsWhole()
	}
	return h.Shard.Shard == s
}
