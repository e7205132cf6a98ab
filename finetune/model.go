package finetune

import "context"

// Stepper runs one forward and backward pass of the training graph. The lead
// implementation is an ONNX Runtime train-step session; tests use pure-Go
// models with analytic gradients.
type Stepper interface {
	// Step evaluates the training loss on the n samples x (n×C×H×W float32,
	// pixels in [0,1]) with labels y, for the given trainable parameters and
	// state (BatchNorm running statistics). trainable, state and x are
	// read-only and must not be kept after Step returns (the loop updates
	// them in place); the returned maps and slices belong to the caller.
	Step(ctx context.Context, trainable, state Params, x []float32, n int, y []int64) (StepResult, error)
}

// StepResult is what one training step computes.
type StepResult struct {
	// Loss is the batch's mean training loss (cross-entropy for plain or
	// PGD adversarial training, the TRADES objective for TRADES).
	Loss float32
	// Grads holds ∂Loss/∂p for every trainable tensor p: the same names and
	// lengths as trainable.
	Grads Params
	// State holds the state after the step (BatchNorm running statistics
	// updated by PyTorch's rule), the same names and lengths as state; nil
	// means the state did not change.
	State Params
	// Correct counts the samples of the batch whose training-mode logits
	// have their maximum at the label.
	Correct int
}

// Evaluator measures the model after each epoch: accuracy in percent
// (0–100) of the given parameters on held-out data, clean or under the
// evaluation attack of Algorithm 1. trainable and state are read-only.
type Evaluator interface {
	Evaluate(ctx context.Context, trainable, state Params) (acc float64, err error)
}

// AdvGenerator makes adversarial training inputs (PGD-10 in the paper's
// adversarial fine-tuning). Perturb returns a new slice of n inputs, owned
// by the caller, for the model with the given (read-only) parameters,
// drawing every random choice from seed, which the loop derives from
// Options.Seed, the trial, the epoch and the batch so that a resumed run
// sees the same inputs. TRADES, whose loss needs clean and adversarial
// inputs together, belongs inside a Stepper instead.
type AdvGenerator interface {
	Perturb(ctx context.Context, trainable, state Params, x []float32, n int, y []int64, seed uint64) ([]float32, error)
}

// HeadBNReporter is implemented by a Stepper that can say how it treats
// the frozen head's BatchNorm layers ("eval" or "train", see
// Options.HeadBN); the loop then refuses a Stepper that disagrees with the
// options it records.
type HeadBNReporter interface {
	HeadBN() BNMode
}
