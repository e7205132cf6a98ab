package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/dataset"
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
	if c.Int("threads") < 0 {
		return ort.Options{}, usagef("--threads must not be negative")
	}
	return ort.Options{Device: dev, Threads: c.Int("threads"), StandardOpsOnly: c.Bool("standard-ops")}, nil
}

// loadModel reads a model and prepends --mean/--std normalisation.
func loadModel(c *cli.Context, path string) (*onnxio.Model, error) {
	m, err := onnxio.Read(path)
	if err != nil {
		return nil, err
	}
	mean, err := parseFloats(c.String("mean"))
	if err != nil {
		return nil, usagef("--mean: %v", err)
	}
	std, err := parseFloats(c.String("std"))
	if err != nil {
		return nil, usagef("--std: %v", err)
	}
	return analyzer.PrependNormalization(m, mean, std)
}

// loadData reads --data with --split/--n/--offset.
func loadData(c *cli.Context) (*dataset.Dataset, error) {
	spec := c.String("data")
	if spec == "" {
		return nil, usagef("--data is required")
	}
	if c.Int("batch") < 1 {
		return nil, usagef("--batch must be at least 1")
	}
	d, err := dataset.Load(spec, dataset.Options{Split: c.String("split"), N: c.Int("n"), Offset: c.Int("offset")})
	if err != nil {
		return nil, fmt.Errorf("data %s: %w", spec, err)
	}
	return d, nil
}

func parseFloats(s string) ([]float32, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []float32
	for _, p := range strings.Split(s, ",") {
		v, err := parseNumber(p)
		if err != nil {
			return nil, err
		}
		out = append(out, float32(v))
	}
	return out, nil
}

// parseNumber reads a number written as a decimal or a fraction such as 8/255.
func parseNumber(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if num, den, ok := strings.Cut(s, "/"); ok {
		a, err1 := strconv.ParseFloat(strings.TrimSpace(num), 64)
		b, err2 := strconv.ParseFloat(strings.TrimSpace(den), 64)
		if err1 != nil || err2 != nil || b == 0 {
			return 0, fmt.Errorf("%q is not a number or fraction", s)
		}
		return a / b, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return v, nil
}

// progressBar renders done/total on w when w is a terminal; it prints nothing otherwise.
type progressBar struct {
	w     io.Writer
	label string
	tty   bool
	start time.Time
	last  time.Time
}

func newProgress(w io.Writer, label string) *progressBar {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progressBar{w: w, label: label, tty: tty, start: time.Now()}
}

func (p *progressBar) update(done, total int) {
	if !p.tty || total <= 0 {
		return
	}
	now := time.Now()
	if done < total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	const width = 30
	fill := width * done / total
	fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d %.1fs", p.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), done, total, now.Sub(p.start).Seconds())
	if done >= total {
		fmt.Fprintln(p.w)
	}
}
