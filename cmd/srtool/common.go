package main

import (
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/internal/number"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
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
	if err := checkThreads(c.Int("threads")); err != nil {
		return ort.Options{}, err
	}
	return ort.Options{Device: dev, Threads: c.Int("threads"), StandardOpsOnly: c.Bool("standard-ops")}, nil
}

// loadModel reads a model and prepends --mean/--std normalisation.
func loadModel(c *cli.Context, path string) (*onnxio.Model, error) {
	m, err := onnxio.Read(path)
	if err != nil {
		return nil, err
	}
	mean, err := number.Floats(c.String("mean"))
	if err != nil {
		return nil, usagef("--mean: %v", err)
	}
	std, err := number.Floats(c.String("std"))
	if err != nil {
		return nil, usagef("--std: %v", err)
	}
	return analyzer.PrependNormalization(m, mean, std)
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

// checkThreads bounds --threads: 0 (ONNX Runtime's default) to 4 × the CPUs.
func checkThreads(n int) error {
	if limit := 4 * runtime.NumCPU(); n < 0 || n > limit {
		return usagef("--threads %d is outside 0..%d (4 × the %d CPUs; 0 = one per physical core)", n, limit, runtime.NumCPU())
	}
	return nil
}

// modelSignature reads a classifier's per-sample input shape and class
// count from the graph (onnxio.Signature), naming path in errors.
func modelSignature(m *onnxio.Model, path string) (sample []int, classes int, err error) {
	if sample, classes, err = onnxio.Signature(m); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	return sample, classes, nil
}
