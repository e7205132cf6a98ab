package main

import (
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
		return runs.MergeMI(out, pieces, c.String("plot"), w)
	case "semirobust":
		return semirobust.MergePieces(pieces, out, w)
	default:
		return fmt.Errorf("merge: %s reports (%s) cannot be merged", cmd, pieces[0].Path)
	}
}
