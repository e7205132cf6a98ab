package runs

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/dataset"
	"github.com/semirobust/srtool/npy"
	"github.com/semirobust/srtool/report"
)

// EvalReport is the JSON document of `srtool eval`. When Complete is false
// (interrupted) the accuracy fields are absent and Evaluated says how many
// samples had been run.
type EvalReport struct {
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
func (r *EvalReport) finish(correct int) {
	if r.N == 0 {
		return
	}
	acc := 100 * float64(correct) / float64(r.N)
	r.Correct, r.CleanAccuracy = &correct, &acc
	if r.Seconds > 0 {
		r.ImagesPerSec = float64(r.Evaluated) / r.Seconds
	}
}

// EvalOptions are Eval's settings.
type EvalOptions struct {
	Model   string        // the model's path, for the report and messages
	Header  report.Header // the report's header (fingerprint and sharding set)
	Batch   int           // samples per forward pass (0 = 128)
	Device  string        // recorded in the report
	Threads int           // recorded in the report
	// JSON and SaveLogits are the report and logits (.npy) files; "" = none.
	JSON       string
	SaveLogits string
	// Shard names the shard in the message of an empty shard.
	Shard    string
	Progress func(done, total int) // samples finished; may be nil
}

// Eval measures the clean accuracy of m on d, writes the report (and the
// logits) and a one-line summary on w. Interrupted, it writes a report with
// complete: false and no logits.
func Eval(ctx context.Context, m attacks.Model, d *dataset.Dataset, o EvalOptions, w io.Writer) (*EvalReport, error) {
	batch := o.Batch
	if batch < 1 {
		batch = 128
	}
	rep := &EvalReport{Header: o.Header, Model: o.Model, Data: d.Name, Device: o.Device, Threads: o.Threads, N: d.Len()}
	k := m.NumClasses()
	dim := d.C * d.H * d.W
	logits := make([]float32, 0, d.Len()*k)
	start := time.Now()
	var runErr error
	for lo := 0; lo < d.Len(); lo += batch {
		hi := min(lo+batch, d.Len())
		out, err := m.Logits(ctx, d.X[lo*dim:hi*dim], hi-lo)
		if err != nil {
			runErr = err
			break
		}
		logits = append(logits, out...)
		rep.Evaluated = hi
		if o.Progress != nil {
			o.Progress(hi, d.Len())
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	if rep.Seconds > 0 {
		rep.ImagesPerSec = float64(rep.Evaluated) / rep.Seconds
	}
	if runErr != nil {
		if !report.IsCancel(runErr) {
			return nil, fmt.Errorf("%s: %w", o.Model, runErr)
		}
		rep.MarkIncomplete(runErr)
		fmt.Fprintf(w, "clean accuracy: not finished (%d of %d samples evaluated when interrupted)\n", rep.Evaluated, rep.N)
		if err := report.WriteJSON(o.JSON, rep); err != nil {
			return rep, err
		}
		done := fmt.Sprintf("eval stopped after %d of %d samples; no accuracy reported", rep.Evaluated, rep.N)
		if o.JSON != "" {
			done += "; " + o.JSON + " says complete: false"
		}
		return rep, report.Interrupt(runErr, done, "run the command again (eval has no resume)")
	}
	correct := 0
	for i, y := range d.Y {
		if attacks.Argmax(logits[i*k:(i+1)*k]) == int(y) {
			correct++
		}
	}
	rep.finish(correct)
	if o.SaveLogits != "" {
		if err := npy.WriteFile(o.SaveLogits, npy.FromFloat32(logits, d.Len(), k)); err != nil {
			return rep, err
		}
	}
	if rep.CleanAccuracy == nil {
		fmt.Fprintf(w, "clean accuracy: no samples in shard %s\n", o.Shard)
	} else {
		fmt.Fprintf(w, "clean accuracy: %.2f%% (%d/%d) on %s, %.2fs (%.0f images/s, %s)\n", *rep.CleanAccuracy, correct, d.Len(), d.Name, rep.Seconds, rep.ImagesPerSec, rep.Device)
	}
	return rep, report.WriteJSON(o.JSON, rep)
}
