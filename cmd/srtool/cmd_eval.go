package main

import (
	"io"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/progress"
	"github.com/semirobust/srtool/runs"
)

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:      "eval",
		Usage:     "clean accuracy of a model on a data set",
		ArgsUsage: "MODEL.onnx",
		Flags: append(append(append(commonFlags(), dataFlags()...), shardFlags()...),
			&cli.StringFlag{Name: "save-logits", Usage: "write the logits to `FILE.npy` (N×classes float32, this shard's rows; not written when interrupted)"}),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("eval needs exactly one MODEL argument")
			}
			return runEval(c, c.Args().First(), c.App.Writer, c.App.ErrWriter)
		},
	}
}

func runEval(c *cli.Context, path string, w, errw io.Writer) error {
	opts, err := engineOptions(c)
	if err != nil {
		return err
	}
	m, err := loadModel(c, path)
	if err != nil {
		return err
	}
	d, err := loadData(c)
	if err != nil {
		return err
	}
	sr, skip, err := startShard(c, w, []string{path}, d)
	if err != nil || skip {
		return err
	}
	clf, err := runs.Classifier(m, path, opts, d)
	if err != nil {
		return err
	}
	defer clf.Close()
	o := runs.EvalOptions{Model: path, Header: newHeader(c), Batch: c.Int("batch"), Device: opts.Device.String(), Threads: opts.Threads,
		JSON: c.String("json"), SaveLogits: c.String("save-logits"), Shard: c.String("shard"), Progress: progress.New(errw, "eval").Update}
	o.Header.Fingerprint = sr.fingerprint
	if c.String("shard") != "" {
		d = d.Slice(o.Header.SetShard(sr.shard, d.Len()))
	}
	_, err = runs.Eval(c.Context, clf, d, o, w)
	return err
}
