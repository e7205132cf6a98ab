package diffmodel

import (
	"context"
	"fmt"
	"sort"

	"github.com/semirobust/srtool/autodiff"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
	"github.com/semirobust/srtool/ort"
)

// TrainerOptions selects what a Trainer trains.
type TrainerOptions struct {
	// Trainable names the initializers (PyTorch names) that get gradients;
	// every other initializer stays a frozen constant.
	Trainable []string
	// TrainBN names the BatchNormalization nodes that run in training mode
	// (batch statistics, running statistics updated with PyTorch's rule);
	// the others use their running statistics.
	TrainBN []string
	// HeadBN is recorded for finetune's consistency check: "eval" when the
	// frozen head's BN nodes are not in TrainBN, "train" when they are.
	HeadBN finetune.BNMode
	// TRADES, if set, trains with the TRADES loss (Zhang et al. 2019) instead
	// of cross-entropy; every step then makes its own adversarial inputs.
	TRADES *TRADES
}

// TRADES configures TRADES training. The zero value is the official
// CIFAR-10 setting: β = 6, ε = 0.031, step 0.007, 10 steps (L∞).
type TRADES struct {
	Beta     float32 `json:"beta"`
	Epsilon  float32 `json:"epsilon"`
	StepSize float32 `json:"step_size"`
	Steps    int     `json:"steps"`
}

func (o TRADES) withDefaults() TRADES {
	if o.Beta == 0 {
		o.Beta = 6
	}
	if o.Epsilon == 0 {
		o.Epsilon = 0.031
	}
	if o.StepSize == 0 {
		o.StepSize = 0.007
	}
	if o.Steps == 0 {
		o.Steps = 10
	}
	return o
}

// Trainer runs one training step per call: mean cross-entropy, gradients of
// the trainable parameters and updated BN running statistics, in one session
// run. It implements finetune.Stepper. Parameters are fed as graph inputs, so
// the caller's optimizer can change them freely between steps.
type Trainer struct {
	sess   *session
	res    *autodiff.Result
	sample []int
	k      int
	shapes map[string][]int64 // every fed parameter and statistic
	// statOut maps state names (running_mean/var inputs) to their outputs.
	statOut   map[string]string
	trainable []string
	headBN    finetune.BNMode

	trades *TRADES     // nil: cross-entropy
	clf    *Classifier // TRADES: the model with the current parameters, BN in inference mode
	fwd    *session    // TRADES: the training graph cut to its logits (training-mode BN, no backward)
	// fwdTakes names the inputs fwd takes.
	fwdTakes map[string]bool
}

// NewTrainer builds the training graph of m and returns the trainer with the
// initial values of the trainable parameters and of the BN running
// statistics (the state), keyed by name. m is not modified.
func NewTrainer(m *onnxio.Model, opts ort.Options, to TrainerOptions) (*Trainer, finetune.Params, finetune.Params, error) {
	if len(to.Trainable) == 0 {
		return nil, nil, nil, fmt.Errorf("trainer: no trainable parameter (the split leaves nothing to train)")
	}
	sh, err := onnxio.InferShapes(m)
	if err != nil {
		return nil, nil, nil, err
	}
	spec := autodiff.Spec{Loss: autodiff.CrossEntropy, Reduction: autodiff.Mean, WrtParams: to.Trainable, TrainBN: to.TrainBN}
	if to.TRADES != nil {
		// The TRADES loss mixes clean and adversarial logits; the graph takes
		// its gradient with respect to the logits (Dot head) and returns the
		// vector-Jacobian product.
		spec.Loss, spec.Reduction = autodiff.Dot, autodiff.Sum
	}
	res, err := autodiff.Gradient(m, spec)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("trainer: %w", err)
	}
	t := &Trainer{res: res, shapes: map[string][]int64{}, statOut: map[string]string{}, trainable: append([]string(nil), to.Trainable...), headBN: to.HeadBN}
	in := sh.Shape(res.Input)
	if len(in) < 2 {
		return nil, nil, nil, fmt.Errorf("trainer: model input has shape %v; want [batch, C, H, W]", in)
	}
	for _, d := range in[1:] {
		if !d.Known() {
			return nil, nil, nil, fmt.Errorf("trainer: model input has shape %v; every dimension but the batch must be fixed", in)
		}
		t.sample = append(t.sample, int(d.Value))
	}
	if out := sh.Shape(res.Logits); len(out) == 2 && out[1].Known() {
		t.k = int(out[1].Value)
	} else {
		return nil, nil, nil, fmt.Errorf("trainer: logits have shape %v; want [batch, classes]", out)
	}
	trainable, state := finetune.Params{}, finetune.Params{}
	for name, tp := range res.Feeds {
		v, err := onnxio.Float32s(tp)
		if err != nil {
			return nil, nil, nil, err
		}
		t.shapes[name] = append([]int64(nil), tp.GetDims()...)
		if _, isStat := res.RunningStats[name]; isStat {
			state[name] = v
		} else {
			trainable[name] = v
		}
	}
	for name, out := range res.RunningStats {
		t.statOut[name] = out
	}
	for _, p := range to.Trainable {
		if _, ok := trainable[p]; !ok {
			return nil, nil, nil, fmt.Errorf("trainer: parameter %q is not fed by the training graph", p)
		}
	}
	if t.sess, err = newSession(res.Model, opts); err != nil {
		return nil, nil, nil, err
	}
	// Gradients and new statistics have the shapes of their parameters.
	for _, g := range res.ParamGrads {
		t.sess.Preallocate(g)
	}
	for _, o := range res.RunningStats {
		t.sess.Preallocate(o)
	}
	if to.TRADES != nil {
		tr := to.TRADES.withDefaults()
		t.trades = &tr
		names := make([]string, 0, len(trainable)+len(state))
		for k := range trainable {
			names = append(names, k)
		}
		for k := range state {
			names = append(names, k)
		}
		sort.Strings(names)
		if t.clf, err = NewClassifierWithParams(m, opts, names); err != nil {
			t.Close()
			return nil, nil, nil, err
		}
		fm, err := logitsOnly(res)
		if err != nil {
			t.Close()
			return nil, nil, nil, err
		}
		if t.fwd, err = newSession(fm, opts); err != nil {
			t.Close()
			return nil, nil, nil, err
		}
		t.fwdTakes = map[string]bool{}
		for _, name := range t.fwd.InputNames() {
			t.fwdTakes[name] = true
		}
	}
	return t, trainable, state, nil
}

// logitsOnly returns the training graph of res cut down to what its logits
// need: the forward pass with training-mode BatchNorm, without the loss,
// the backward pass or the new running statistics.
func logitsOnly(res *autodiff.Result) (*onnxio.Model, error) {
	m := res.Model.Clone()
	g := m.Graph()
	ix, err := onnxio.NewIndex(g)
	if err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	keep := ix.Ancestors([]string{res.Logits})
	used := map[string]bool{}
	var nodes []*onnxpb.NodeProto
	for i, n := range g.GetNode() {
		if keep[i] {
			nodes = append(nodes, n)
			for _, in := range n.GetInput() {
				used[in] = true
			}
		}
	}
	g.Node = nodes
	var inputs []*onnxpb.ValueInfoProto
	for _, in := range g.GetInput() {
		if used[in.GetName()] || in.GetName() == res.Input {
			inputs = append(inputs, in)
		}
	}
	g.Input = inputs
	var inits []*onnxpb.TensorProto
	for _, t := range g.GetInitializer() {
		if used[t.GetName()] {
			inits = append(inits, t)
		}
	}
	g.Initializer = inits
	var outs []*onnxpb.ValueInfoProto
	for _, o := range g.GetOutput() {
		if o.GetName() == res.Logits {
			outs = append(outs, o)
		}
	}
	if len(outs) != 1 {
		return nil, fmt.Errorf("trainer: the training graph does not output its logits %q", res.Logits)
	}
	g.Output = outs
	return m, nil
}

// HeadBN reports how the frozen head's BatchNorm runs ("eval" or "train").
func (t *Trainer) HeadBN() finetune.BNMode { return t.headBN }

// NumClasses returns the number of logits per sample.
func (t *Trainer) NumClasses() int { return t.k }

// Step runs forward and backward on x (n samples) with labels y using the
// given parameter values; see finetune.Stepper.
func (t *Trainer) Step(ctx context.Context, trainable, state finetune.Params, x []float32, n int, y []int64) (finetune.StepResult, error) {
	size := 1
	for _, d := range t.sample {
		size *= d
	}
	if len(x) != n*size || len(y) != n {
		return finetune.StepResult{}, fmt.Errorf("trainer: %d values and %d labels for %d samples of shape %v", len(x), len(y), n, t.sample)
	}
	for i, v := range y {
		if v < 0 || int(v) >= t.k {
			return finetune.StepResult{}, fmt.Errorf("trainer: label %d of sample %d is outside 0..%d", v, i, t.k-1)
		}
	}
	shape := []int64{int64(n)}
	for _, d := range t.sample {
		shape = append(shape, int64(d))
	}
	if t.trades != nil {
		return t.tradesStep(ctx, trainable, state, x, n, y, shape)
	}
	feeds := map[string]ort.Tensor{
		t.res.Input:  {Shape: shape, Float32: x},
		t.res.Labels: {Shape: []int64{int64(n)}, Int64: y},
	}
	if err := t.feedParams(feeds, trainable, state); err != nil {
		return finetune.StepResult{}, err
	}
	got, err := t.sess.Run(ctx, feeds, t.outputs())
	if err != nil {
		return finetune.StepResult{}, fmt.Errorf("trainer: %w", err)
	}
	r := t.collect(got)
	r.Loss = got[t.res.Loss].Float32[0]
	r.Correct = countCorrect(got[t.res.Logits].Float32, y, t.k)
	return r, nil
}

// feedParams adds every fed parameter and statistic to feeds.
func (t *Trainer) feedParams(feeds map[string]ort.Tensor, trainable, state finetune.Params) error {
	for name, dims := range t.shapes {
		v, ok := trainable[name]
		if !ok {
			v, ok = state[name]
		}
		if !ok {
			return fmt.Errorf("trainer: no value for %q", name)
		}
		feeds[name] = ort.Tensor{Shape: dims, Float32: v}
	}
	return nil
}

// outputs lists what a step reads: loss, logits, gradients, statistics.
func (t *Trainer) outputs() []string {
	outs := []string{t.res.Loss, t.res.Logits}
	for _, p := range t.trainable {
		outs = append(outs, t.res.ParamGrads[p])
	}
	statNames := make([]string, 0, len(t.statOut))
	for name := range t.statOut {
		statNames = append(statNames, name)
	}
	sort.Strings(statNames)
	for _, name := range statNames {
		outs = append(outs, t.statOut[name])
	}
	return outs
}

// collect reads gradients and updated statistics from a run's outputs.
func (t *Trainer) collect(got map[string]ort.Tensor) finetune.StepResult {
	statNames := make([]string, 0, len(t.statOut))
	for name := range t.statOut {
		statNames = append(statNames, name)
	}
	sort.Strings(statNames)
	r := finetune.StepResult{Grads: finetune.Params{}}
	for _, p := range t.trainable {
		r.Grads[p] = got[t.res.ParamGrads[p]].Float32
	}
	if len(statNames) > 0 {
		r.State = finetune.Params{}
		for _, name := range statNames {
			r.State[name] = got[t.statOut[name]].Float32
		}
	}
	return r
}

func countCorrect(logits []float32, y []int64, k int) int {
	correct := 0
	for i := range y {
		best := 0
		for j := 1; j < k; j++ {
			if logits[i*k+j] > logits[i*k+best] {
				best = j
			}
		}
		if int64(best) == y[i] {
			correct++
		}
	}
	return correct
}

// Close releases the session; safe to call twice.
func (t *Trainer) Close() error {
	if t == nil {
		return nil
	}
	var err error
	if t.sess != nil {
		err = t.sess.Close()
		t.sess = nil
	}
	if t.clf != nil {
		if e := t.clf.Close(); err == nil {
			err = e
		}
		t.clf = nil
	}
	if t.fwd != nil {
		if e := t.fwd.Close(); err == nil {
			err = e
		}
		t.fwd = nil
	}
	return err
}

var _ finetune.Stepper = (*Trainer)(nil)
