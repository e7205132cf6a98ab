package main

import (
	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/runs"
)

// dataFlags are the flags of commands that read a data set.
func dataFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "data", Usage: "data `SPEC`: cifar10:DIR, cifar100:DIR, mnist:DIR, fashion-mnist:DIR, npz:FILE, npy:X.npy,Y.npy, folder:DIR"},
		&cli.StringFlag{Name: "split", Value: "test", Usage: "train or test"},
		&cli.IntFlag{Name: "n", Usage: "use the first N samples (0 = all)"},
		&cli.IntFlag{Name: "offset", Usage: "skip the first N samples"},
		&cli.IntFlag{Name: "batch", Value: 128, Usage: "batch size"},
		&cli.StringFlag{Name: "mean", Usage: "per-channel mean the model expects, e.g. 0.4914,0.4822,0.4465 (prepended to the graph)"},
		&cli.StringFlag{Name: "std", Usage: "per-channel std the model expects (prepended to the graph)"},
	}
}

// engineOptions collects the device flags.
func engineOptions(c *cli.Context) (ort.Options, error) {
	dev, err := ort.ParseDevice(c.String("device"))
	if err != nil {
		return ort.Options{}, usagef("%v", err)
	}
	if err := runs.CheckThreads(c.Int("threads")); err != nil {
		return ort.Options{}, usageOf(err)
	}
	return ort.Options{Device: dev, Threads: c.Int("threads"), StandardOpsOnly: c.Bool("standard-ops")}, nil
}

// loadModel reads a model and prepends --mean/--std normalisation
// (runs.LoadModel).
func loadModel(c *cli.Context, path string) (*onnxio.Model, error) {
	m, err := runs.LoadModel(path, c.String("mean"), c.String("std"))
	return m, usageOf(err)
}

// dataSelection reads --data with --split/--n/--offset/--batch.
func dataSelection(c *cli.Context) dataset.Selection {
	return dataset.Selection{Spec: c.String("data"), Split: c.String("split"), N: c.Int("n"), Offset: c.Int("offset"), Batch: c.Int("batch")}
}

// loadData loads the data selection (dataset.Selection.Load); invalid
// values are usage errors.
func loadData(c *cli.Context) (*dataset.Dataset, error) {
	d, err := dataSelection(c).Load()
	return d, usageOf(err)
}
