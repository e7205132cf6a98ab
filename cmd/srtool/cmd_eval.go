package main

import (
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/ort"
)

type evalReport struct {
	Model         string  `json:"model"`
	Data          string  `json:"data"`
	N             int     `json:"n"`
	Correct       int     `json:"correct"`
	CleanAccuracy float64 `json:"clean_accuracy"` // percent
	Seconds       float64 `json:"seconds"`
	ImagesPerSec  float64 `json:"images_per_second"`
	Device        string  `json:"device"`
	Threads       int     `json:"threads"`
}

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:      "eval",
		Usage:     "clean accuracy of a model on a data set",
		ArgsUsage: "MODEL.onnx",
		Flags: append(append(commonFlags(), dataFlags()...),
			&cli.StringFlag{Name: "save-logits", Usage: "write the logits to `FILE.npy` (N×classes float32)"}),
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
	logits, k, secs, err := forwardLogits(c, m, opts, d.X, []int{d.C, d.H, d.W}, errw)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	correct := 0
	for i, y := range d.Y {
		if argmax(logits[i*k:(i+1)*k]) == int(y) {
			correct++
		}
	}
	rep := evalReport{Model: path, Data: d.Name, N: d.Len(), Correct: correct,
		CleanAccuracy: 100 * float64(correct) / float64(d.Len()), Device: opts.Device.String(), Threads: opts.Threads}
	rep.Seconds = secs
	if rep.Seconds > 0 {
		rep.ImagesPerSec = float64(d.Len()) / rep.Seconds
	}
	if p := c.String("save-logits"); p != "" {
		if err := npy.WriteFile(p, npy.FromFloat32(logits, d.Len(), k)); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "clean accuracy: %.2f%% (%d/%d) on %s, %.2fs (%.0f images/s, %s)\n", rep.CleanAccuracy, correct, d.Len(), d.Name, rep.Seconds, rep.ImagesPerSec, rep.Device)
	return writeJSON(c.String("json"), rep)
}

// forwardLogits runs the model over x in batches of --batch and returns the
// logits (n × k), k and the wall time in seconds.
func forwardLogits(c *cli.Context, m *onnxio.Model, opts ort.Options, x []float32, sample []int, errw io.Writer) ([]float32, int, float64, error) {
	b, err := m.Encode()
	if err != nil {
		return nil, 0, 0, err
	}
	s, err := ort.NewSession(b, opts)
	if err != nil {
		return nil, 0, 0, err
	}
	defer s.Close()
	if len(s.InputNames()) != 1 || len(s.OutputNames()) < 1 {
		return nil, 0, 0, fmt.Errorf("model has %d inputs and %d outputs; want one image input and logits", len(s.InputNames()), len(s.OutputNames()))
	}
	bar := newProgress(errw, "forward")
	start := time.Now()
	out, shape, err := ort.Forward(c.Context, s, s.InputNames()[0], s.OutputNames()[0], x, sample, c.Int("batch"), bar.update)
	secs := time.Since(start).Seconds()
	if err != nil {
		return nil, 0, 0, err
	}
	if len(shape) != 2 {
		return nil, 0, 0, fmt.Errorf("model output has shape %v; want [N classes] logits", shape)
	}
	return out, int(shape[1]), secs, nil
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
