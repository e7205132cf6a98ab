package finetune

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Result is the record of a fine-tuning run: what ran (Options, defaults
// filled in) and what happened in every trial and epoch. It marshals to
// JSON; the parameters it carries do not.
//
// A run that stopped early (cancelled, or failed) returns its Result with
// Complete false: Trials then holds every trial that finished at least one
// epoch, the last one possibly unfinished (Done false), and Partial the
// unfinished trial's best epoch so far.
type Result struct {
	// Complete is set when every trial has finished.
	Complete bool          `json:"complete"`
	Options  Options       `json:"options"`
	Trials   []TrialResult `json:"trials"`
	// BestTrial is the finished trial whose best evaluation accuracy is
	// highest (the earliest on ties), counting from 1; 0 (omitted) before
	// any trial has finished.
	BestTrial int `json:"best_trial,omitempty"`
	// Best holds the parameters of trial BestTrial at its best epoch.
	Best *Snapshot `json:"-"`
	// Partial holds, when the run stopped inside a trial, that trial's best
	// epoch so far (nil otherwise).
	Partial *Snapshot `json:"-"`
	// Last holds the parameters at the end of the last trial that finished.
	Last *Snapshot `json:"-"`
}

// BestSoFar returns the best snapshot the run reached: Best, or Partial
// where that is better (or the only one). It is nil before any epoch
// finished.
func (r *Result) BestSoFar() *Snapshot {
	if r == nil {
		return nil
	}
	switch {
	case r.Best == nil:
		return r.Partial
	case r.Partial == nil || r.Best.Acc >= r.Partial.Acc:
		return r.Best
	}
	return r.Partial
}

// Snapshot is a copy of the model's parameters at the end of an epoch.
// Trial and Epoch count from 1.
type Snapshot struct {
	Trial, Epoch     int
	Acc              float64 // evaluation accuracy in percent, −1 without an Evaluator
	Trainable, State Params
}

func (s *Snapshot) clone() *Snapshot {
	if s == nil {
		return nil
	}
	c := *s
	c.Trainable, c.State = s.Trainable.Clone(), s.State.Clone()
	return &c
}

// TrialResult records one trial: it restarts from the job's initial
// parameters and draws its batches from seed Options.Seed + Trial − 1.
// Trial counts from 1.
type TrialResult struct {
	Trial  int           `json:"trial"`
	Seed   uint64        `json:"seed"`
	Epochs []EpochResult `json:"epochs"`
	// Converged is set when the best evaluation accuracy reached Target −
	// Tolerance (Algorithm 1's stopping rule), and EpochsToConverge is then
	// the number of epochs that took (0 and omitted otherwise: never
	// reached, no Target, or the trial has not finished).
	Converged        bool `json:"converged"`
	EpochsToConverge int  `json:"epochs_to_converge,omitempty"`
	// BestAcc is the highest evaluation accuracy in percent over the
	// epochs so far (−1 without an Evaluator) and BestEpoch the epoch,
	// from 1, where it was first reached (the last epoch without an
	// Evaluator).
	BestAcc   float64 `json:"best_acc"`
	BestEpoch int     `json:"best_epoch"`
	// Seconds is the wall time of the trial's epochs, summed over resumes.
	Seconds float64 `json:"seconds"`
	// Done is set once the trial has stopped or run all its epochs.
	Done bool `json:"done"`
}

// EpochResult records one epoch; Epoch counts from 1.
type EpochResult struct {
	Epoch int `json:"epoch"`
	// Loss is the mean training loss over the epoch's samples.
	Loss float64 `json:"loss"`
	// TrainAcc is the percentage of training samples (adversarial ones in
	// adversarial training) classified correctly during the epoch.
	TrainAcc float64 `json:"train_acc"`
	// EvalAcc is the Evaluator's accuracy in percent after the epoch, −1
	// without an Evaluator.
	EvalAcc float64 `json:"eval_acc"`
	// LR is the learning rate of the epoch's last optimizer step.
	LR float64 `json:"lr"`
	// Seconds is the wall time of the epoch's training, evaluation and
	// metrics (not of writing its checkpoint).
	Seconds float64 `json:"seconds"`
	// Extra holds the Job's EpochMetrics (e.g. the trial ρ values).
	Extra Metrics `json:"extra,omitempty"`
}

// Metrics are named per-epoch measurements. In JSON a NaN or ±Inf value is
// written as null and read back as NaN.
type Metrics map[string]float64

// MarshalJSON writes m with non-finite values as null.
func (m Metrics) MarshalJSON() ([]byte, error) {
	if m == nil {
		return []byte("null"), nil
	}
	out := make(map[string]*float64, len(m))
	for k, v := range m {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[k] = &v
		} else {
			out[k] = nil
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads m, null values as NaN.
func (m *Metrics) UnmarshalJSON(b []byte) error {
	var in map[string]*float64
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	if in == nil {
		*m = nil
		return nil
	}
	*m = make(Metrics, len(in))
	for k, v := range in {
		if v == nil {
			(*m)[k] = math.NaN()
		} else {
			(*m)[k] = *v
		}
	}
	return nil
}

// Progress reports the loop's position to Job.Progress: once after every
// batch (Finished == nil), and once after every epoch, when its evaluation
// and checkpoint are done (Finished set). Trial and Epoch count from 1.
type Progress struct {
	Trial, Epoch int
	// Batch is the number of the epoch's batches finished (1..Batches),
	// Samples the number of its training samples finished (1..EpochSamples).
	Batch, Batches        int
	Samples, EpochSamples int
	Loss                  float32
	LR                    float64
	Finished              *EpochResult
	Stopped               bool // the stopping rule ended the trial after this epoch
}

// ErrDiverged is wrapped by the error returned when the loss or a gradient
// stops being finite.
var ErrDiverged = errors.New("training diverged")

// DivergedError says where training diverged: the loss of batch Batch of
// epoch Epoch of trial Trial (all counting from 1) was NaN or ±Inf, or, when
// Tensor is set, the gradient of that trainable tensor was.
type DivergedError struct {
	Trial, Epoch, Batch int
	Loss                float32
	Tensor              string
}

func (e *DivergedError) Error() string {
	what := fmt.Sprintf("loss %v", e.Loss)
	if e.Tensor != "" {
		what = fmt.Sprintf("non-finite gradient of %q (loss %v)", e.Tensor, e.Loss)
	}
	return fmt.Sprintf("trial %d epoch %d batch %d: %s: %v", e.Trial, e.Epoch, e.Batch, what, ErrDiverged)
}

// Unwrap returns ErrDiverged.
func (e *DivergedError) Unwrap() error { return ErrDiverged }
