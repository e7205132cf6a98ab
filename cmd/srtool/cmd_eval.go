package main

import (
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/ort"
	"github.com/semirobust/srtool/report"
)

// evalReport is the JSON document of `srtool eval`. When Complete is false
// (interrupted) the accuracy fields are absent and Evaluated says how many
// samples had been run.
type evalReport struct {
	report.Header
	Model         string   `json:"model"`
	Data          string   `json:"data"`
	N             int      `json:"n"`
	Evaluated     int      `json:"evaluated"`
	Correct       *int     `json:"correct,omitempty"`
	CleanAccuracy *float64 `json:"clean_accuracy,omitempty"` // percent
	Seconds       float64  `json:"seconds"`
	ImagesPerSec  float64  `json:"images_per_second"`
	Device        string   `json:"device"`
	Threads       int      `json:"threads"`
	// Seconds and ImagesPerSec of a merged report add up the shards' times.
	MergedFrom []string `json:"merged_from,omitempty"`
}

// finish sets the counts and accuracy from the number of correct samples
// (no accuracy for an empty shard).
func (r *evalReport) finish(correct int) {
	if r.N == 0 {
		return
	}
	acc := 100 * float64(correct) / float64(r.N)
	r.Correct, r.CleanAccuracy = &correct, &acc
	if r.Seconds > 0 {
		r.ImagesPerSec = float64(r.Evaluated) / r.Seconds
	}
}

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
	sh, fp := sr.shard, sr.fingerprint
	clf, err := ort.NewClassifier(m, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer clf.Close()
	if err := checkInputShape(path, clf.InputShape(), d); err != nil {
		return err
	}
	if err := checkLabels(d, clf.NumClasses(), path); err != nil {
		return err
	}
	rep := evalReport{Header: newHeader(c), Model: path, Data: d.Name, Device: opts.Device.String(), Threads: opts.Threads}
	rep.Fingerprint = fp
	if c.String("shard") != "" {
		lo, hi := sh.Range(d.Len())
		rep.Sharding = &report.Sharding{Shard: sh, Lo: lo, Hi: hi, Total: d.Len()}
		d = d.Slice(lo, hi)
	}
	rep.N = d.Len()
	k := clf.NumClasses()
	dim := d.C * d.H * d.W
	batch := c.Int("batch")
	logits := make([]float32, 0, d.Len()*k)
	bar := newProgress(errw, "eval")
	start := time.Now()
	var runErr error
	for lo := 0; lo < d.Len(); lo += batch {
		hi := min(lo+batch, d.Len())
		out, err := clf.Logits(c.Context, d.X[lo*dim:hi*dim], hi-lo)
		if err != nil {
			runErr = err
			break
		}
		logits = append(logits, out...)
		rep.Evaluated = hi
		bar.update(hi, d.Len())
	}
	rep.Seconds = time.Since(start).Seconds()
	if rep.Seconds > 0 {
		rep.ImagesPerSec = float64(rep.Evaluated) / rep.Seconds
	}
	if runErr != nil {
		if !isCancel(runErr) {
			return fmt.Errorf("%s: %w", path, runErr)
		}
		rep.MarkIncomplete(runErr)
		fmt.Fprintf(w, "clean accuracy: not finished (%d of %d samples evaluated when interrupted)\n", rep.Evaluated, rep.N)
		if err := report.WriteJSON(c.String("json"), rep); err != nil {
			return err
		}
		done := fmt.Sprintf("eval stopped after %d of %d samples; no accuracy reported", rep.Evaluated, rep.N)
		if p := c.String("json"); p != "" {
			done += "; " + p + " says complete: false"
		}
		return interrupted(runErr, done, "run the command again (eval has no resume)")
	}
	correct := 0
	for i, y := range d.Y {
		if argmax(logits[i*k:(i+1)*k]) == int(y) {
			correct++
		}
	}
	rep.finish(correct)
	if p := c.String("save-logits"); p != "" {
		if err := npy.WriteFile(p, npy.FromFloat32(logits, d.Len(), k)); err != nil {
			return err
		}
	}
	if rep.CleanAccuracy == nil {
		fmt.Fprintf(w, "clean accuracy: no samples in shard %s\n", c.String("shard"))
	} else {
		fmt.Fprintf(w, "clean accuracy: %.2f%% (%d/%d) on %s, %.2fs (%.0f images/s, %s)\n", *rep.CleanAccuracy, correct, d.Len(), d.Name, rep.Seconds, rep.ImagesPerSec, rep.Device)
	}
	return report.WriteJSON(c.String("json"), rep)
}

func argmax(v []float32) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}
