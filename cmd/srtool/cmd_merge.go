package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/report"
	"github.com/semirobust/srtool/runs"
	"github.com/semirobust/srtool/semirobust"
)

func mergeCommand() *cli.Command {
	return &cli.Command{
		Name:      "merge",
		Usage:     "combine the reports of a sharded run (--shard I/N) into the report the unsharded run writes",
		ArgsUsage: "OUT.json SHARD.json… (or folders of shard reports)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "save-logits", Usage: "eval: also concatenate the shards' --save-logits files into `FILE.npy`"},
			&cli.StringFlag{Name: "save-adv", Usage: "attack: also concatenate the shards' --save-adv files into `FILE.npy`, in sample order"},
			&cli.StringFlag{Name: "per-sample", Usage: "attack: also concatenate the shards' --per-sample files into `FILE.jsonl`, in sample order"},
			&cli.StringFlag{Name: "plot", Usage: "mi: also draw the merged ρ as `F.png` (as mi --plot does)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 2 {
				return usagef("merge needs OUT.json and at least one shard report (or a folder of them)")
			}
			return runMerge(c, c.Args().First(), c.Args().Tail(), c.App.Writer)
		},
	}
}

// shardReport is one piece read back for merging, as mergeSemirobust reads it.
type shardReport struct {
	path string
	head report.Header
	raw  []byte
}

// sameFile reports whether a and b name the same existing file.
var sameFile = report.SameFile

func runMerge(c *cli.Context, out string, args []string, w io.Writer) error {
	pieces, err := report.ReadPieces(args, out)
	if err != nil {
		return err
	}
	if pieces, err = report.CheckPieces(pieces); err != nil {
		return err
	}
	o := runs.MergeOptions{SaveLogits: c.String("save-logits"), SaveAdv: c.String("save-adv"), PerSample: c.String("per-sample")}
	switch cmd := pieces[0].Header.Run.Command; cmd {
	case "eval":
		_, err := runs.MergeEval(out, pieces, o, w)
		return err
	case "attack":
		return runs.MergeAttack(out, pieces, o, w)
	case "mi":
		return mergeMI(c, out, pieces, w)
	case "semirobust":
		reps := make([]shardReport, len(pieces))
		for i, p := range pieces {
			reps[i] = shardReport{path: p.Path, head: p.Header, raw: p.Raw}
		}
		return mergeSemirobust(c, out, reps, w)
	default:
		return fmt.Errorf("merge: %s reports (%s) cannot be merged", cmd, pieces[0].Path)
	}
}

// mergedHeader is the header of a merged report (report.MergedHeader).
func mergedHeader(reps []shardReport) report.Header {
	return report.MergedHeader(pieces(reps))
}

func shardPaths(reps []shardReport) []string { return report.Paths(pieces(reps)) }

func pieces(reps []shardReport) []report.Piece {
	out := make([]report.Piece, len(reps))
	for i, r := range reps {
		out[i] = report.Piece{Path: r.path, Header: r.head, Raw: r.raw}
	}
	return out
}

// mergeMI puts the shards' layer pairs together in pair order; everything
// else is shard 0's (the fingerprint made sure the shards agree on it).
func mergeMI(c *cli.Context, out string, reps []report.Piece, w io.Writer) error {
	var doc map[string]json.RawMessage
	var table miModelReport // for the console and the plot
	for i, r := range reps {
		var p struct {
			Pairs     []semirobust.Pair `json:"pairs"`
			Estimator string            `json:"estimator"`
			Units     string            `json:"units"`
			Inputs    string            `json:"inputs"`
		}
		if err := json.Unmarshal(r.Raw, &p); err != nil {
			return fmt.Errorf("%s: %w", r.Path, err)
		}
		if want := r.Header.Sharding.Hi - r.Header.Sharding.Lo; len(p.Pairs) != want {
			return fmt.Errorf("%s (shard %s) holds %d layer pairs; want %d", r.Path, r.Header.Sharding.Shard, len(p.Pairs), want)
		}
		if i == 0 {
			if err := json.Unmarshal(r.Raw, &doc); err != nil {
				return fmt.Errorf("%s: %w", r.Path, err)
			}
			table.Estimator, table.Units, table.Inputs = p.Estimator, p.Units, p.Inputs
		}
		table.Pairs = append(table.Pairs, p.Pairs...)
	}
	if err := setHeader(doc, report.MergedHeader(reps), report.Paths(reps)); err != nil {
		return err
	}
	pairs, err := json.Marshal(table.Pairs)
	if err != nil {
		return err
	}
	doc["pairs"] = pairs
	printRhoTable(w, table)
	if p := c.String("plot"); p != "" {
		layers := 0
		for _, r := range table.Pairs {
			layers = max(layers, r.Child)
		}
		matrix := reps[0].Header.Run.Flags["pairs"] == "matrix"
		if err := plotRhos(p, table, matrix, layers); err != nil {
			return err
		}
	}
	return report.WriteJSON(out, doc)
}

// setHeader replaces the header fields of a report decoded as a map and
// records the shards it was merged from.
func setHeader(doc map[string]json.RawMessage, h report.Header, from []string) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	for _, k := range []string{"complete", "incomplete_reason", "run", "fingerprint", "sharding"} {
		delete(doc, k)
	}
	for k, v := range fields {
		doc[k] = v
	}
	if doc["merged_from"], err = json.Marshal(from); err != nil {
		return err
	}
	return nil
}
