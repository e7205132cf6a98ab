package diffmodel

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/semirobust/srtool/attacks"
	"github.com/semirobust/srtool/autodiff"
	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
	"github.com/semirobust/srtool/ort"
)

// Classifier runs an image classifier on ONNX Runtime: logits, and per-sample
// loss plus input gradient for each loss head an attack asks for. Gradient
// graphs come from package autodiff and are built once per loss head, on
// first use. It satisfies attacks.Gradienter. Safe for concurrent use.
type Classifier struct {
	model   *onnxio.Model
	opts    ort.Options
	input   string
	output  string
	sample  []int // per-sample input shape (C, H, W)
	classes int

	mu     sync.Mutex
	logits *session
	grads  map[gradKey]*gradSession
	kl     *gradSession

	// overridable names initializers that are also graph inputs, so that
	// params (set by SetParams) replace their stored values on every run.
	overridable map[string][]int64
	params      map[string]ort.Tensor

	// graphs holds the gradient graphs, shared with the workers.
	graphs      *graphCache
	workersOnce sync.Once
	workers     []*Classifier
}

type gradKey struct {
	kind  attacks.LossKind
	clamp bool
	kappa float32
}

type gradSession struct {
	s   *session
	res *autodiff.Result
}

// NewClassifier prepares a classifier for m, which must have one image input
// [batch, ...] with a fixed per-sample shape and one logits output
// [batch, classes]. m is not modified; the classifier keeps a reference.
func NewClassifier(m *onnxio.Model, opts ort.Options) (*Classifier, error) {
	return NewClassifierWithParams(m, opts, nil)
}

// NewClassifierWithParams is NewClassifier for a model whose initializers
// named in params can be replaced on every run (SetParams) without building
// new sessions: they become graph inputs whose stored values are defaults.
// Training loops use it to attack the current weights.
func NewClassifierWithParams(m *onnxio.Model, opts ort.Options, params []string) (*Classifier, error) {
	return newClassifier(m, opts, params, &graphCache{})
}

func newClassifier(m *onnxio.Model, opts ort.Options, params []string, graphs *graphCache) (*Classifier, error) {
	over := map[string][]int64{}
	var defaults map[string]ort.Tensor
	if len(params) > 0 {
		_, d, err := exposeParams(m, params)
		if err != nil {
			return nil, err
		}
		defaults = d
		for k, v := range d {
			over[k] = v.Shape
		}
	}
	ix, err := onnxio.NewIndex(m.Graph())
	if err != nil {
		return nil, err
	}
	if len(ix.Inputs) != 1 || len(ix.Outputs) < 1 {
		return nil, fmt.Errorf("classifier needs one image input and a logits output; the model has %d inputs and %d outputs", len(ix.Inputs), len(ix.Outputs))
	}
	sh, err := onnxio.InferShapes(m)
	if err != nil {
		return nil, err
	}
	c := &Classifier{model: m, opts: opts, input: ix.Inputs[0], output: ix.Outputs[0], grads: map[gradKey]*gradSession{}, overridable: over, params: defaults, graphs: graphs}
	in := sh.Shape(c.input)
	if len(in) < 2 {
		return nil, fmt.Errorf("model input %q has shape %v; want [batch, C, H, W]", c.input, in)
	}
	for _, d := range in[1:] {
		if !d.Known() {
			return nil, fmt.Errorf("model input %q has shape %v; every dimension but the batch must be fixed", c.input, in)
		}
		c.sample = append(c.sample, int(d.Value))
	}
	out := sh.Shape(c.output)
	if len(out) != 2 || !out[1].Known() {
		return nil, fmt.Errorf("model output %q has shape %v; want logits [batch, classes]", c.output, out)
	}
	c.classes = int(out[1].Value)
	lm := m
	if len(over) > 0 {
		if lm, _, err = exposeParams(m, c.paramNames()); err != nil {
			return nil, err
		}
	}
	if c.logits, err = newSession(lm, opts); err != nil {
		return nil, err
	}
	c.logits.pin(c.params)
	return c, nil
}

// NumClasses returns the number of logits per sample.
func (c *Classifier) NumClasses() int { return c.classes }

// InputShape returns the per-sample input shape, e.g. [3 32 32].
func (c *Classifier) InputShape() []int { return append([]int(nil), c.sample...) }

// InputName and OutputName return the graph's input and logits names.
func (c *Classifier) InputName() string  { return c.input }
func (c *Classifier) OutputName() string { return c.output }

func (c *Classifier) batchShape(n int) []int64 {
	s := []int64{int64(n)}
	for _, d := range c.sample {
		s = append(s, int64(d))
	}
	return s
}

func (c *Classifier) sampleSize() int {
	d := 1
	for _, v := range c.sample {
		d *= v
	}
	return d
}

// Logits returns the n×classes logits of x (n samples); the result is owned by the caller.
func (c *Classifier) Logits(ctx context.Context, x []float32, n int) ([]float32, error) {
	if len(x) != n*c.sampleSize() {
		return nil, fmt.Errorf("logits: %d values for %d samples of shape %v", len(x), n, c.sample)
	}
	feeds := map[string]ort.Tensor{c.input: {Shape: c.batchShape(n), Float32: x}}
	c.addParams(feeds)
	c.mu.Lock()
	s := c.logits
	c.mu.Unlock()
	if s == nil {
		return nil, ort.ErrClosed
	}
	out, err := s.Run(ctx, feeds, []string{c.output})
	if err != nil {
		return nil, err
	}
	return out[c.output].Float32, nil
}

// LossGrad returns every sample's loss, the gradient of each sample's loss
// with respect to its input (the gradient of their sum), and the logits.
func (c *Classifier) LossGrad(ctx context.Context, x []float32, n int, loss attacks.Loss) (perSample, grad, logits []float32, err error) {
	if len(x) != n*c.sampleSize() {
		return nil, nil, nil, fmt.Errorf("loss gradient: %d values for %d samples of shape %v", len(x), n, c.sample)
	}
	if len(loss.Labels) != n {
		return nil, nil, nil, fmt.Errorf("loss gradient: %d labels for %d samples", len(loss.Labels), n)
	}
	for i, y := range loss.Labels {
		if y < 0 || int(y) >= c.classes {
			return nil, nil, nil, fmt.Errorf("loss gradient: label %d of sample %d is outside 0..%d", y, i, c.classes-1)
		}
	}
	gs, err := c.gradSession(loss)
	if err != nil {
		return nil, nil, nil, err
	}
	feeds := map[string]ort.Tensor{gs.res.Input: {Shape: c.batchShape(n), Float32: x}}
	if gs.res.Labels != "" {
		feeds[gs.res.Labels] = ort.Tensor{Shape: []int64{int64(n)}, Int64: loss.Labels}
	}
	if gs.res.Targets != "" || loss.Kind == attacks.LogitDiff {
		if len(loss.Targets) != n {
			return nil, nil, nil, fmt.Errorf("loss gradient: %d target labels for %d samples", len(loss.Targets), n)
		}
	}
	if gs.res.Targets != "" {
		feeds[gs.res.Targets] = ort.Tensor{Shape: []int64{int64(n)}, Int64: loss.Targets}
	}
	if loss.Kind == attacks.LogitDiff {
		// z_t − z_y is the Dot head with g = e_t − e_y.
		g := make([]float32, n*c.classes)
		for i, t := range loss.Targets {
			if t < 0 || int(t) >= c.classes {
				return nil, nil, nil, fmt.Errorf("loss gradient: target %d of sample %d is outside 0..%d", t, i, c.classes-1)
			}
			g[i*c.classes+int(t)] += 1
			g[i*c.classes+int(loss.Labels[i])] -= 1
		}
		feeds[gs.res.TargetProbs] = ort.Tensor{Shape: []int64{int64(n), int64(c.classes)}, Float32: g}
	}
	c.addParams(feeds)
	out, err := gs.s.Run(ctx, feeds, []string{gs.res.PerSampleLoss, gs.res.InputGrad, gs.res.Logits})
	if err != nil {
		return nil, nil, nil, err
	}
	return out[gs.res.PerSampleLoss].Float32, out[gs.res.InputGrad].Float32, out[gs.res.Logits].Float32, nil
}

// KLGrad returns, for every sample, KL(p ‖ softmax(z)) between the given
// probabilities p (n × classes) and the model's prediction, and the gradient
// of each sample's KL with respect to its input: the inner loss of TRADES.
func (c *Classifier) KLGrad(ctx context.Context, x []float32, n int, p []float32) (perSample, grad []float32, err error) {
	if len(x) != n*c.sampleSize() || len(p) != n*c.classes {
		return nil, nil, fmt.Errorf("kl gradient: %d values and %d probabilities for %d samples", len(x), len(p), n)
	}
	c.mu.Lock()
	gs := c.kl
	if gs == nil {
		res, err := autodiff.Gradient(c.model, autodiff.Spec{Output: c.output, Loss: autodiff.KL, Reduction: autodiff.None, WrtInput: true})
		if err != nil {
			c.mu.Unlock()
			return nil, nil, fmt.Errorf("gradient graph for KL: %w", err)
		}
		gm := res.Model
		if len(c.overridable) > 0 {
			if gm, _, err = exposeParams(gm, c.paramNames()); err != nil {
				c.mu.Unlock()
				return nil, nil, err
			}
		}
		s, err := newSession(gm, c.opts)
		if err != nil {
			c.mu.Unlock()
			return nil, nil, err
		}
		s.pin(c.params)
		gs = &gradSession{s: s, res: res}
		c.kl = gs
	}
	c.mu.Unlock()
	feeds := map[string]ort.Tensor{
		gs.res.Input:       {Shape: c.batchShape(n), Float32: x},
		gs.res.TargetProbs: {Shape: []int64{int64(n), int64(c.classes)}, Float32: p},
	}
	c.addParams(feeds)
	out, err := gs.s.Run(ctx, feeds, []string{gs.res.PerSampleLoss, gs.res.InputGrad})
	if err != nil {
		return nil, nil, err
	}
	return out[gs.res.PerSampleLoss].Float32, out[gs.res.InputGrad].Float32, nil
}

// SetParams replaces the values of overridable initializers (see
// NewClassifierWithParams) for every later run; names not given keep their
// current values. The classifier keeps the slices: do not modify them while
// it may run.
func (c *Classifier) SetParams(p map[string][]float32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := map[string]ort.Tensor{}
	for name, v := range p {
		dims, ok := c.overridable[name]
		if !ok {
			return fmt.Errorf("classifier: %q is not an overridable parameter", name)
		}
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		if int64(len(v)) != n {
			return fmt.Errorf("classifier: parameter %q has %d values; shape %v needs %d", name, len(v), dims, n)
		}
		next[name] = ort.Tensor{Shape: dims, Float32: v}
	}
	for name, v := range c.params {
		if _, ok := next[name]; !ok {
			next[name] = v
		}
	}
	c.params = next
	// Blocked weights of lowered sessions, computed once per SetParams.
	c.logits.pin(next)
	for _, gs := range c.grads {
		gs.s.pin(next)
	}
	if c.kl != nil {
		c.kl.s.pin(next)
	}
	return nil
}

func (c *Classifier) paramNames() []string {
	out := make([]string, 0, len(c.overridable))
	for k := range c.overridable {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// exposeParams returns a copy of m in which the named float initializers (or
// Identity outputs of initializers, the exporter's de-duplication, which
// carry PyTorch names) are plain graph inputs, with their current values.
// ONNX Runtime would treat an initializer that is also an input as a
// constant here, so the tensors are moved out of the initializer list.
func exposeParams(m *onnxio.Model, params []string) (*onnxio.Model, map[string]ort.Tensor, error) {
	m = m.Clone()
	g := m.Graph()
	init := map[string]*onnxpb.TensorProto{}
	for _, t := range g.GetInitializer() {
		init[t.GetName()] = t
	}
	want := map[string]bool{}
	for _, p := range params {
		want[p] = true
	}
	roots := onnxio.InitializerAliases(g)
	alias := map[string]*onnxpb.TensorProto{}
	kept := g.Node[:0]
	for _, n := range g.GetNode() {
		if out := n.GetOutput(); n.GetOpType() == "Identity" && len(out) == 1 && want[out[0]] && init[roots[out[0]]] != nil {
			alias[out[0]] = init[roots[out[0]]]
			continue
		}
		kept = append(kept, n)
	}
	g.Node = kept
	values := map[string]ort.Tensor{}
	drop := map[string]bool{}
	for _, p := range params {
		t := init[p]
		if t == nil {
			t = alias[p]
		} else {
			drop[p] = true
		}
		if t == nil || t.GetDataType() != onnxio.Float {
			return nil, nil, fmt.Errorf("classifier: %q is not a float32 initializer of the model", p)
		}
		v, err := onnxio.Float32s(t)
		if err != nil {
			return nil, nil, err
		}
		dims := append([]int64(nil), t.GetDims()...)
		values[p] = ort.Tensor{Shape: dims, Float32: v}
		g.Input = append(g.Input, onnxio.ValueInfo(p, onnxio.Float, onnxio.ShapeOf(dims...)))
	}
	used := map[string]bool{}
	for _, n := range g.GetNode() {
		for _, in := range n.GetInput() {
			used[in] = true
		}
	}
	inits := g.Initializer[:0]
	for _, t := range g.GetInitializer() {
		if !drop[t.GetName()] && used[t.GetName()] {
			inits = append(inits, t)
		}
	}
	g.Initializer = inits
	return m, values, nil
}

func (c *Classifier) addParams(feeds map[string]ort.Tensor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.params {
		feeds[k] = v
	}
}

// clampLimit: attacks pass a huge Kappa to mean "no clamp".
const clampLimit = 1e29

func (c *Classifier) gradSession(loss attacks.Loss) (*gradSession, error) {
	key := gradKey{kind: loss.Kind, clamp: loss.Kind == attacks.CWMargin && loss.Kappa < clampLimit}
	if key.clamp {
		key.kappa = loss.Kappa
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gs, ok := c.grads[key]; ok {
		return gs, nil
	}
	spec := autodiff.Spec{Output: c.output, Reduction: autodiff.None, WrtInput: true}
	switch loss.Kind {
	case attacks.CrossEntropy:
		spec.Loss = autodiff.CrossEntropy
	case attacks.CWMargin:
		spec.Loss = autodiff.CWMargin
		spec.Clamp, spec.Kappa = key.clamp, loss.Kappa
	case attacks.DLR:
		spec.Loss = autodiff.DLR
	case attacks.TargetedDLR:
		spec.Loss = autodiff.TargetedDLR
	case attacks.LogitDiff:
		spec.Loss = autodiff.Dot
	default:
		return nil, fmt.Errorf("loss gradient: unknown loss kind %v", loss.Kind)
	}
	res, err := c.graphs.get(key, func() (*autodiff.Result, error) { return autodiff.Gradient(c.model, spec) })
	if err != nil {
		return nil, fmt.Errorf("gradient graph for %v: %w", loss.Kind, err)
	}
	gm := res.Model
	if len(c.overridable) > 0 {
		if gm, _, err = exposeParams(gm, c.paramNames()); err != nil {
			return nil, err
		}
	}
	s, err := newSession(gm, c.opts)
	if err != nil {
		return nil, err
	}
	s.pin(c.params)
	gs := &gradSession{s: s, res: res}
	c.grads[key] = gs
	return gs, nil
}

// Close releases every session; safe to call twice.
func (c *Classifier) Close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var first error
	for _, w := range c.workers {
		if err := w.Close(); err != nil && first == nil {
			first = err
		}
	}
	c.workers = nil
	if c.logits != nil {
		if err := c.logits.Close(); err != nil && first == nil {
			first = err
		}
		c.logits = nil
	}
	for k, gs := range c.grads {
		if err := gs.s.Close(); err != nil && first == nil {
			first = err
		}
		delete(c.grads, k)
	}
	if c.kl != nil {
		if err := c.kl.s.Close(); err != nil && first == nil {
			first = err
		}
		c.kl = nil
	}
	return first
}

var _ attacks.Gradienter = (*Classifier)(nil)
