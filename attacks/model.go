package attacks

import (
	"context"
	"fmt"
)

// LossKind selects the per-sample loss whose input gradient an attack follows.
type LossKind int

const (
	CrossEntropy LossKind = iota // -log softmax(z)_y
	CWMargin                     // C&W margin on logits: max_{j≠y} z_j − z_y (maximised by the attacker), clamped below at −Kappa
	DLR                          // −(z_y − max_{j≠y} z_j)/(z_π1 − z_π3 + 1e-12)   (Croce & Hein 2020)
	TargetedDLR                  // −(z_y − z_t)/(z_π1 − (z_π3 + z_π4)/2 + 1e-12)
	LogitDiff                    // z_t − z_y (FAB-T's linearised decision boundary; Targets as for TargetedDLR)
)

// String returns the loss name used in reports: "ce", "cw", "dlr", "dlr-t" or "logit-diff".
func (k LossKind) String() string {
	switch k {
	case CrossEntropy:
		return "ce"
	case CWMargin:
		return "cw"
	case DLR:
		return "dlr"
	case TargetedDLR:
		return "dlr-t"
	case LogitDiff:
		return "logit-diff"
	}
	return fmt.Sprintf("LossKind(%d)", int(k))
}

// MarshalText writes the name from String, so option structs record "ce", not 0.
func (k LossKind) MarshalText() ([]byte, error) {
	if k < CrossEntropy || k > LogitDiff {
		return nil, fmt.Errorf("unknown loss kind %d", int(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText reads "ce", "cw", "dlr", "dlr-t" or "logit-diff".
func (k *LossKind) UnmarshalText(b []byte) error {
	for c := CrossEntropy; c <= LogitDiff; c++ {
		if c.String() == string(b) {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("unknown loss %q (want ce, cw, dlr, dlr-t or logit-diff)", b)
}

// Loss describes the loss head for one batch. Labels has one entry per sample; Targets only for TargetedDLR and LogitDiff.
type Loss struct {
	Kind    LossKind
	Labels  []int64
	Targets []int64
	Kappa   float32
}

// Model returns logits for a batch. x is N×(per-sample shape) float32, row-major (NCHW for images), values in [0,1].
// The returned slice has N×NumClasses() entries and is owned by the caller.
type Model interface {
	Logits(ctx context.Context, x []float32, n int) ([]float32, error)
	NumClasses() int
	InputShape() []int // per-sample shape, e.g. [3 32 32]
}

// Gradienter also returns, for every sample, its loss value and the gradient of THAT sample's loss
// with respect to its input (i.e. the gradient of the sum of per-sample losses), and the logits.
type Gradienter interface {
	Model
	LossGrad(ctx context.Context, x []float32, n int, loss Loss) (perSample []float32, grad []float32, logits []float32, err error)
}

// noClamp is the Kappa the attacks pass with CWMargin. They never rely on the
// model's clamp: C&W needs the clamp on the attacker's side (stop once
// max_{j≠y} z_j − z_y ≥ κ), so they ask for the unclamped margin and apply
// the clamp themselves from the returned per-sample values.
const noClamp = 1e30

// Counts records how often an attack called the model. A call is one
// invocation of Logits or LossGrad; samples add up the batch sizes of those
// calls, so GradSamples/N is the per-point cost.
type Counts struct {
	GradCalls      int64 `json:"grad_calls"`
	GradSamples    int64 `json:"grad_samples"`
	ForwardCalls   int64 `json:"forward_calls"`
	ForwardSamples int64 `json:"forward_samples"`
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.GradCalls += o.GradCalls
	c.GradSamples += o.GradSamples
	c.ForwardCalls += o.ForwardCalls
	c.ForwardSamples += o.ForwardSamples
}

// engine wraps a model for one attack run: it checks shapes and the context
// on every call and counts calls.
type engine struct {
	m      Model
	g      Gradienter // nil when m only gives logits
	k, d   int
	shape  []int
	counts Counts
	name   string
}

func newEngine(name string, m Model, needGrad bool) (*engine, error) {
	if m == nil {
		return nil, fmt.Errorf("%s: nil model", name)
	}
	e := &engine{m: m, k: m.NumClasses(), shape: append([]int(nil), m.InputShape()...), name: name}
	if g, ok := m.(Gradienter); ok {
		e.g = g
	} else if needGrad {
		return nil, fmt.Errorf("%s: model gives no gradients (it does not implement attacks.Gradienter)", name)
	}
	if e.k < 2 {
		return nil, fmt.Errorf("%s: model has %d classes; need at least 2", name, e.k)
	}
	e.d = 1
	for _, s := range e.shape {
		if s <= 0 {
			return nil, fmt.Errorf("%s: bad input shape %v", name, e.shape)
		}
		e.d *= s
	}
	if len(e.shape) == 0 {
		return nil, fmt.Errorf("%s: empty input shape", name)
	}
	return e, nil
}

// begin sets up an attack run on a batch: the engine and the number of samples.
func begin(name string, m Model, needGrad bool, x []float32, y []int64) (*engine, int, error) {
	e, err := newEngine(name, m, needGrad)
	if err != nil {
		return nil, 0, err
	}
	n, err := e.check(x, y)
	if err != nil {
		return nil, 0, err
	}
	return e, n, nil
}

// check validates a batch: sizes, labels in range, values in [0,1].
func (e *engine) check(x []float32, y []int64) (int, error) {
	n := len(y)
	if len(x) != n*e.d {
		return 0, fmt.Errorf("%s: x has %d values; want %d labels × %d per sample = %d", e.name, len(x), n, e.d, n*e.d)
	}
	for i, l := range y {
		if l < 0 || int(l) >= e.k {
			return 0, fmt.Errorf("%s: label %d of sample %d out of range [0,%d)", e.name, l, i, e.k)
		}
	}
	for i, v := range x {
		if !(v >= 0 && v <= 1) {
			return 0, fmt.Errorf("%s: input value %g at sample %d is outside [0,1]", e.name, v, i/e.d)
		}
	}
	return n, nil
}

func (e *engine) logits(ctx context.Context, x []float32, n int) ([]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	z, err := e.m.Logits(ctx, x, n)
	if err != nil {
		return nil, fmt.Errorf("%s: logits: %w", e.name, err)
	}
	if len(z) != n*e.k {
		return nil, fmt.Errorf("%s: model returned %d logits for %d samples × %d classes", e.name, len(z), n, e.k)
	}
	e.counts.ForwardCalls++
	e.counts.ForwardSamples += int64(n)
	return z, nil
}

func (e *engine) lossGrad(ctx context.Context, x []float32, n int, loss Loss) (ls, grad, z []float32, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, err
	}
	ls, grad, z, err = e.g.LossGrad(ctx, x, n, loss)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: loss gradient (%v): %w", e.name, loss.Kind, err)
	}
	if len(ls) != n || len(grad) != n*e.d || len(z) != n*e.k {
		return nil, nil, nil, fmt.Errorf("%s: model returned %d losses, %d gradient values, %d logits for %d samples (want %d, %d, %d)",
			e.name, len(ls), len(grad), len(z), n, n, n*e.d, n*e.k)
	}
	e.counts.GradCalls++
	e.counts.GradSamples += int64(n)
	return ls, grad, z, nil
}

// predict returns the argmax of each row of z (first index on ties, like torch.max).
func argmaxRows(z []float32, k int) []int64 {
	n := len(z) / k
	p := make([]int64, n)
	for i := range n {
		p[i] = int64(Argmax(z[i*k : (i+1)*k]))
	}
	return p
}

// Argmax is the index of the largest value of z, the first of equal ones
// (like torch.max); 0 for an empty z.
func Argmax(z []float32) int {
	b := 0
	for j := 1; j < len(z); j++ {
		if z[j] > z[b] {
			b = j
		}
	}
	return b
}
