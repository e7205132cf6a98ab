package autodiff

import (
	"fmt"
	"slices"
	"sort"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// LossKind selects the loss head written after the logits.
type LossKind int

const (
	// CrossEntropy is −log softmax(z)_y per sample (PyTorch's F.cross_entropy).
	CrossEntropy LossKind = iota
	// CWMargin is the Carlini–Wagner margin max_{j≠y} z_j − z_y per sample,
	// optionally clamped from above at Spec.Kappa (Spec.Clamp). An attack
	// maximises it; it is positive once the sample is misclassified.
	CWMargin
	// DLR is the difference-of-logits-ratio loss of Croce & Hein (2020),
	// −(z_y − max_{j≠y} z_j) / (z_π1 − z_π3 + 1e-12), as in AutoAttack's APGD-DLR.
	DLR
	// TargetedDLR is AutoAttack's targeted DLR loss
	// −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e-12) with target labels t
	// fed through Result.Targets.
	TargetedDLR
	// KL is KL(p ‖ softmax(z)) = Σ_j p_j (log p_j − log softmax(z)_j) per
	// sample with p fed through Result.TargetProbs (TRADES' robust term;
	// terms with p_j = 0 count as 0).
	KL
	// Dot is Σ_j g_j z_j per sample with g fed through Result.TargetProbs
	// ([batch, classes]): with the Sum reduction its gradients are the
	// vector-Jacobian product of the logits with g, for losses computed
	// outside the graph (TRADES combines clean and adversarial logits).
	Dot
)

func (k LossKind) String() string {
	switch k {
	case CrossEntropy:
		return "cross-entropy"
	case CWMargin:
		return "cw-margin"
	case DLR:
		return "dlr"
	case TargetedDLR:
		return "targeted-dlr"
	case KL:
		return "kl"
	case Dot:
		return "dot"
	}
	return fmt.Sprintf("LossKind(%d)", int(k))
}

// Reduction says how per-sample losses become the loss output.
type Reduction int

const (
	// Mean averages over the batch (PyTorch's default).
	Mean Reduction = iota
	// Sum adds over the batch.
	Sum
	// None outputs the per-sample losses as the loss; gradients are then
	// those of their sum, i.e. every sample's own gradient for the input.
	None
)

func (r Reduction) String() string {
	switch r {
	case Mean:
		return "mean"
	case Sum:
		return "sum"
	case None:
		return "none"
	}
	return fmt.Sprintf("Reduction(%d)", int(r))
}

// Spec says which loss to append and what to differentiate. The zero value
// asks for the mean cross-entropy of the single graph output and no
// gradients.
type Spec struct {
	// Output is the logits tensor, shape [batch, classes]; "" means the
	// graph's single output.
	Output    string
	Loss      LossKind
	Reduction Reduction
	// Kappa is the C&W confidence κ: with Clamp set, the CWMargin loss is
	// min(margin, κ), so its gradient vanishes once margin ≥ κ.
	Kappa float32
	Clamp bool
	// WrtInput adds d loss / d input, where input is the graph's single
	// non-initializer input.
	WrtInput bool
	// WrtParams lists initializers to differentiate. Each becomes a graph
	// input of the same name that must be fed (its current value is in
	// Result.Feeds); the others stay frozen initializers.
	WrtParams []string `json:",omitempty"`
	// TrainBN names BatchNormalization nodes to run in training mode: batch
	// statistics in the forward and backward pass, and outputs for the
	// updated running statistics (whose current values become graph inputs
	// with their initializers as defaults). nil keeps every BN in inference
	// mode. BatchNorms lists a model's BN nodes. Their running statistics
	// become graph inputs too.
	TrainBN []string `json:",omitempty"`
	// Momentum is PyTorch's BN momentum for the running statistics:
	// new = (1 − m)·old + m·batch, the variance unbiased. 0 means
	// 1 − the node's ONNX momentum attribute (ONNX's default 0.9 gives 0.1).
	Momentum float32 `json:",omitempty"`
}

// Result is the gradient model and the names of its inputs and outputs.
type Result struct {
	// Model is a new model; the input model is not modified.
	Model *onnxio.Model
	// Inputs: the image batch (Input), the int64 [batch] labels, the int64
	// [batch] target labels (TargetedDLR only) and the float32
	// [batch, classes] target probabilities (KL) or upstream gradient (Dot);
	// "" when absent.
	Input, Labels, Targets, TargetProbs string
	// Outputs: the reduced loss (the per-sample losses again when the
	// reduction is None), the float32 [batch] per-sample loss, the logits,
	// and d loss / d input ("" unless WrtInput).
	Loss, PerSampleLoss, Logits, InputGrad string
	// ParamGrads maps each name in WrtParams to its gradient output, which
	// has the parameter's shape.
	ParamGrads map[string]string
	// RunningStats maps the running mean and variance inputs of every
	// training-mode BN (e.g. "bn1.running_mean") to the output holding the
	// updated value.
	RunningStats map[string]string
	// Feeds holds the initial values of the graph inputs that were
	// initializers (the WrtParams and the training-mode BN running
	// statistics), keyed by input name. A training loop feeds them on the
	// first step and its own updated values afterwards. Owned by the Result.
	Feeds map[string]*onnxpb.TensorProto
}

// BatchNorms returns the names of the model's BatchNormalization nodes in
// graph order, e.g. to put all of them in Spec.TrainBN.
func BatchNorms(m *onnxio.Model) []string {
	var out []string
	for _, n := range m.Graph().GetNode() {
		if n.GetOpType() == "BatchNormalization" {
			out = append(out, n.GetName())
		}
	}
	return out
}

// Gradient returns a new model that computes the loss head of spec on the
// model's logits and the gradients of the loss with respect to the tensors
// spec names, all in one session run. The input model is not modified.
// Errors: *UnsupportedOpError for an op on the differentiated path without
// a rule, *NoPathError when a requested tensor does not reach the loss
// through floating-point ops, *UnknownTensorError for a bad name in spec,
// *OpsetError when the model's opset cannot be raised to one this package
// emits for.
func Gradient(m *onnxio.Model, spec Spec) (res *Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			res = nil
			if e, ok := r.(error); ok && isOurs(e) {
				err = e
				return
			}
			if be, ok := r.(buildError); ok {
				err = be.err
				return
			}
			err = fmt.Errorf("autodiff: internal error: %v", r)
		}
	}()
	if m == nil || m.Proto.GetGraph() == nil {
		return nil, fmt.Errorf("autodiff: no model")
	}
	out := m.Clone()
	c, err := newCtx(out, spec)
	if err != nil {
		return nil, err
	}
	return c.build()
}

func isOurs(e error) bool {
	switch e.(type) {
	case *UnsupportedOpError, *NoPathError, *UnknownTensorError, *OpsetError:
		return true
	}
	return false
}

// ctx holds the state of one gradient-graph construction.
type ctx struct {
	m      *onnxio.Model
	g      *onnxpb.GraphProto
	spec   Spec
	opset  int64
	b      *onnxio.Builder
	shapes *onnxio.Shapes
	init   map[string]*onnxpb.TensorProto
	consts map[string]string // cache of small constants
	res    *Result

	fwd      []*onnxpb.NodeProto // forward nodes in topological order
	producer map[string]*onnxpb.NodeProto
	trainBN  map[*onnxpb.NodeProto]*bnSaved
	batchSym string
}

func newCtx(m *onnxio.Model, spec Spec) (*ctx, error) {
	c := &ctx{m: m, g: m.Graph(), spec: spec, consts: map[string]string{}, trainBN: map[*onnxpb.NodeProto]*bnSaved{}}
	if err := upgradeOpset(m); err != nil {
		return nil, err
	}
	c.opset = m.Opset()
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("autodiff: %w", err)
	}
	c.res = &Result{Model: m, ParamGrads: map[string]string{}, RunningStats: map[string]string{}, Feeds: map[string]*onnxpb.TensorProto{}}
	return c, nil
}

// build runs the whole construction; it may panic with buildError or one of
// the typed errors, which Gradient recovers.
func (c *ctx) build() (*Result, error) {
	g := c.g
	c.init = map[string]*onnxpb.TensorProto{}
	for _, t := range g.GetInitializer() {
		c.init[t.GetName()] = t
	}
	// Logits.
	logits := c.spec.Output
	if logits == "" {
		if len(g.GetOutput()) != 1 {
			return nil, &UnknownTensorError{Name: "", Reason: fmt.Sprintf("the model has %d outputs; set Spec.Output to the logits", len(g.GetOutput()))}
		}
		logits = g.GetOutput()[0].GetName()
	}
	// Graph input.
	var inputs []string
	for _, in := range g.GetInput() {
		if c.init[in.GetName()] == nil {
			inputs = append(inputs, in.GetName())
		}
	}
	if len(inputs) == 1 {
		c.res.Input = inputs[0]
	}
	if c.spec.WrtInput && len(inputs) != 1 {
		return nil, &UnknownTensorError{Name: "input", Reason: fmt.Sprintf("the model has %d non-initializer inputs %v, want exactly one", len(inputs), inputs)}
	}
	needParams := len(c.spec.WrtParams) > 0 || len(c.spec.TrainBN) > 0
	if needParams {
		c.splitSharedInitializers()
	}
	// Parameters to differentiate must be float initializers.
	seen := map[string]bool{}
	for _, p := range c.spec.WrtParams {
		t := c.init[p]
		switch {
		case seen[p]:
			return nil, &UnknownTensorError{Name: p, Reason: "listed twice in WrtParams"}
		case t == nil:
			return nil, &UnknownTensorError{Name: p, Reason: "not an initializer of the model"}
		case t.GetDataType() != onnxio.Float:
			return nil, &UnknownTensorError{Name: p, Reason: fmt.Sprintf("has element type %s, not float32", onnxpb.TensorProto_DataType(t.GetDataType()))}
		}
		seen[p] = true
	}
	// Train-mode BN nodes.
	bnByName := map[string]*onnxpb.NodeProto{}
	for _, n := range g.GetNode() {
		if n.GetOpType() == "BatchNormalization" {
			bnByName[n.GetName()] = n
		}
	}
	for _, name := range c.spec.TrainBN {
		n := bnByName[name]
		if n == nil {
			return nil, &UnknownTensorError{Name: name, Reason: "not a BatchNormalization node of the model"}
		}
		if _, dup := c.trainBN[n]; dup {
			return nil, &UnknownTensorError{Name: name, Reason: "listed twice in TrainBN"}
		}
		c.trainBN[n] = nil
	}

	shapes, err := onnxio.InferShapes(c.m)
	if err != nil {
		return nil, fmt.Errorf("autodiff: %w", err)
	}
	c.shapes = shapes
	lt := shapes.Types[logits]
	if lt.Shape == nil {
		if _, ok := c.producerOf(logits); !ok && c.init[logits] == nil && !slices.Contains(inputs, logits) {
			return nil, &UnknownTensorError{Name: logits, Reason: "no such tensor in the graph"}
		}
		return nil, fmt.Errorf("autodiff: logits %q: shape unknown (shape inference does not cover %v)", logits, shapes.Unknown)
	}
	if len(lt.Shape) != 2 || !lt.Shape[1].Known() {
		return nil, fmt.Errorf("autodiff: logits %q have shape %v, want [batch, classes] with a fixed class count", logits, lt.Shape)
	}
	c.batchSym = "batch"
	if d := lt.Shape[0]; d.Param != "" && d.Param != "?" {
		c.batchSym = d.Param
	}

	c.fwd = g.GetNode()
	c.producer = map[string]*onnxpb.NodeProto{}
	for _, n := range c.fwd {
		for _, o := range n.GetOutput() {
			if o != "" {
				c.producer[o] = n
			}
		}
	}
	if _, ok := c.producer[logits]; !ok {
		return nil, &UnknownTensorError{Name: logits, Reason: "not computed by any node"}
	}

	// Which tensors carry gradients.
	var wrt []string
	if c.spec.WrtInput {
		wrt = append(wrt, c.res.Input)
	}
	wrt = append(wrt, c.spec.WrtParams...)
	active, needed := c.analyse(wrt, logits)
	for _, w := range wrt {
		if !c.reaches(w, needed, logits) {
			return nil, &NoPathError{Wrt: w, Loss: logits}
		}
	}

	c.b = onnxio.NewBuilder(g, "grad/")

	// Trainable parameters and running statistics become graph inputs.
	for _, p := range c.spec.WrtParams {
		c.makeInput(p)
	}
	// Rewrite training-mode BN nodes in place (forward).
	if len(c.trainBN) > 0 {
		old := g.Node
		g.Node = make([]*onnxpb.NodeProto, 0, len(old))
		for _, n := range old {
			if _, ok := c.trainBN[n]; ok {
				c.trainBN[n] = c.emitTrainBN(n)
				continue
			}
			g.Node = append(g.Node, n)
		}
	}

	// Loss head.
	dz := c.lossHead(logits)
	c.res.Logits = logits

	// Backward.
	grads := map[string][]string{logits: {dz}}
	for i := len(c.fwd) - 1; i >= 0; i-- {
		n := c.fwd[i]
		if !needed[n] {
			continue
		}
		dys := make([]string, len(n.GetOutput()))
		any := false
		for j, o := range n.GetOutput() {
			if o != "" && len(grads[o]) > 0 {
				dys[j] = c.sum(grads[o])
				grads[o] = []string{dys[j]}
				any = true
			}
		}
		if !any {
			continue
		}
		need := make([]bool, len(n.GetInput()))
		anyNeed := false
		for j, in := range n.GetInput() {
			need[j] = in != "" && active[in]
			anyNeed = anyNeed || need[j]
		}
		if !anyNeed {
			continue
		}
		rule := rules[n.GetOpType()]
		if rule == nil {
			panic(&UnsupportedOpError{Op: n.GetOpType(), Node: n.GetName()})
		}
		dxs := rule(c, n, dys, need)
		for j, dx := range dxs {
			if dx != "" && j < len(need) && need[j] {
				in := n.GetInput()[j]
				grads[in] = append(grads[in], dx)
			}
		}
	}

	// Outputs.
	if c.spec.WrtInput {
		c.res.InputGrad = c.output(c.sumOrZero(grads[c.res.Input], c.res.Input), "grad_"+c.res.Input, c.shapes.Shape(c.res.Input))
	}
	for _, p := range c.spec.WrtParams {
		c.res.ParamGrads[p] = c.output(c.sumOrZero(grads[p], p), "grad_"+p, onnxio.ShapeOf(c.init[p].GetDims()...))
	}
	c.prune()
	return c.res, nil
}

// analyse marks the float tensors that depend on wrt (active) and the nodes
// on a path from them to the logits (needed).
func (c *ctx) analyse(wrt []string, logits string) (active map[string]bool, needed map[*onnxpb.NodeProto]bool) {
	active = map[string]bool{}
	for _, w := range wrt {
		active[w] = true
	}
	for _, n := range c.fwd {
		if nonDiff[n.GetOpType()] {
			continue
		}
		on := false
		for _, in := range n.GetInput() {
			if active[in] {
				on = true
			}
		}
		if !on {
			continue
		}
		for _, o := range n.GetOutput() {
			if o != "" && c.isFloat(o) {
				active[o] = true
			}
		}
	}
	// Nodes needed for the logits' gradient.
	needed = map[*onnxpb.NodeProto]bool{}
	want := map[string]bool{logits: true}
	for i := len(c.fwd) - 1; i >= 0; i-- {
		n := c.fwd[i]
		hit := false
		for _, o := range n.GetOutput() {
			if want[o] && active[o] {
				hit = true
			}
		}
		if !hit {
			continue
		}
		needed[n] = true
		for _, in := range n.GetInput() {
			if active[in] {
				want[in] = true
			}
		}
	}
	return active, needed
}

// reaches reports whether tensor w feeds a needed node (or is the logits).
func (c *ctx) reaches(w string, needed map[*onnxpb.NodeProto]bool, logits string) bool {
	if w == logits {
		return true
	}
	for n := range needed {
		if slices.Contains(n.GetInput(), w) {
			return true
		}
	}
	return false
}

// nonDiff lists ops whose outputs never carry a gradient (integer, boolean
// or piecewise-constant results).
var nonDiff = map[string]bool{
	"Shape": true, "Size": true, "ArgMax": true, "ArgMin": true, "Equal": true, "Greater": true,
	"Less": true, "GreaterOrEqual": true, "LessOrEqual": true, "Not": true, "And": true, "Or": true,
	"NonZero": true, "Floor": true, "Ceil": true, "Round": true, "Sign": true, "ConstantOfShape": true,
	"Range": true, "OneHot": true, "IsNaN": true, "IsInf": true,
}

func (c *ctx) isFloat(name string) bool {
	t, ok := c.shapes.Types[name]
	if !ok || t.Elem == 0 {
		return true // unknown: let the rule lookup decide
	}
	return t.Elem == onnxio.Float
}

func (c *ctx) producerOf(name string) (*onnxpb.NodeProto, bool) {
	for _, n := range c.g.GetNode() {
		if slices.Contains(n.GetOutput(), name) {
			return n, true
		}
	}
	return nil, false
}

// splitSharedInitializers replaces every Identity node that copies an
// initializer (the TorchScript exporter's deduplication of equal tensors) by
// an initializer of its own, so that parameters with equal initial values
// are trained independently, as in PyTorch.
func (c *ctx) splitSharedInitializers() {
	g := c.g
	aliases := onnxio.InitializerAliases(g)
	kept := g.Node[:0]
	for _, n := range g.Node {
		if n.GetOpType() == "Identity" && len(n.GetOutput()) == 1 {
			if root, ok := aliases[n.GetOutput()[0]]; ok && !c.isGraphOutput(n.GetOutput()[0]) {
				cp := cloneTensor(c.init[root])
				cp.Name = n.GetOutput()[0]
				g.Initializer = append(g.Initializer, cp)
				c.init[cp.GetName()] = cp
				continue
			}
		}
		kept = append(kept, n)
	}
	g.Node = kept
}

func (c *ctx) isGraphOutput(name string) bool {
	for _, o := range c.g.GetOutput() {
		if o.GetName() == name {
			return true
		}
	}
	return false
}

// makeInput turns initializer name into a graph input without a default
// (ONNX Runtime lists inputs with initializers as constants, not inputs)
// and records its value in Result.Feeds.
func (c *ctx) makeInput(name string) {
	if _, done := c.res.Feeds[name]; done {
		return
	}
	t := c.init[name]
	c.res.Feeds[name] = t
	inits := c.g.Initializer[:0]
	for _, x := range c.g.Initializer {
		if x != t {
			inits = append(inits, x)
		}
	}
	c.g.Initializer = inits
	declared := false
	for _, in := range c.g.GetInput() {
		declared = declared || in.GetName() == name
	}
	if !declared {
		c.g.Input = append(c.g.Input, onnxio.ValueInfo(name, t.GetDataType(), onnxio.ShapeOf(t.GetDims()...)))
	}
}

// output declares tensor t as a graph output, renamed to a readable name
// derived from hint through an Identity node.
func (c *ctx) output(t, hint string, shape onnxio.Shape) string {
	name := hint
	if c.nameUsed(name) {
		name = c.b.Fresh(hint)
	} else {
		c.b.Reserve(name)
	}
	c.g.Node = append(c.g.Node, &onnxpb.NodeProto{Name: c.b.Fresh("Identity"), OpType: "Identity", Input: []string{t}, Output: []string{name}})
	c.g.Output = append(c.g.Output, onnxio.ValueInfo(name, onnxio.Float, shape))
	return name
}

func (c *ctx) nameUsed(name string) bool {
	if c.init[name] != nil {
		return true
	}
	for _, in := range c.g.GetInput() {
		if in.GetName() == name {
			return true
		}
	}
	for _, o := range c.g.GetOutput() {
		if o.GetName() == name {
			return true
		}
	}
	for _, n := range c.g.GetNode() {
		if slices.Contains(n.GetOutput(), name) {
			return true
		}
	}
	return false
}

// prune keeps only the nodes and initializers the outputs need and drops
// the model's other outputs and stale value infos.
func (c *ctx) prune() {
	g := c.g
	keepOut := map[string]bool{c.res.Loss: true, c.res.PerSampleLoss: true, c.res.Logits: true, c.res.InputGrad: true}
	for _, v := range c.res.ParamGrads {
		keepOut[v] = true
	}
	for _, v := range c.res.RunningStats {
		keepOut[v] = true
	}
	var outs []*onnxpb.ValueInfoProto
	seenOut := map[string]bool{}
	for _, o := range g.Output {
		if keepOut[o.GetName()] && !seenOut[o.GetName()] {
			outs = append(outs, o)
			seenOut[o.GetName()] = true
		}
	}
	if !seenOut[c.res.Logits] {
		outs = append(outs, onnxio.ValueInfo(c.res.Logits, onnxio.Float, c.shapes.Shape(c.res.Logits)))
	}
	// Put the outputs in a stable order: loss, per-sample, logits, grads.
	order := map[string]int{c.res.Loss: 0, c.res.PerSampleLoss: 1, c.res.Logits: 2, c.res.InputGrad: 3}
	sort.SliceStable(outs, func(i, j int) bool {
		oi, okI := order[outs[i].GetName()]
		oj, okJ := order[outs[j].GetName()]
		if !okI {
			oi = 4
		}
		if !okJ {
			oj = 4
		}
		return oi < oj
	})
	g.Output = outs
	want := map[string]bool{}
	for _, o := range outs {
		want[o.GetName()] = true
	}
	keep := make([]bool, len(g.Node))
	for i := len(g.Node) - 1; i >= 0; i-- {
		n := g.Node[i]
		for _, o := range n.GetOutput() {
			if want[o] {
				keep[i] = true
				break
			}
		}
		if keep[i] {
			for _, in := range n.GetInput() {
				want[in] = true
			}
		}
	}
	nodes := g.Node[:0]
	for i, n := range g.Node {
		if keep[i] {
			nodes = append(nodes, n)
		}
	}
	g.Node = nodes
	inits := g.Initializer[:0]
	for _, t := range g.Initializer {
		if want[t.GetName()] {
			inits = append(inits, t)
		}
	}
	g.Initializer = inits
	// Drop inputs that only declared (now pruned) initializers; keep the
	// real inputs and the fed parameters even if unused.
	ins := g.Input[:0]
	for _, in := range g.Input {
		_, isInit := c.init[in.GetName()]
		_, fed := c.res.Feeds[in.GetName()]
		if !isInit || fed || want[in.GetName()] {
			ins = append(ins, in)
		}
	}
	g.Input = ins
	g.ValueInfo = nil
}

// isConst reports whether name is an initializer of the gradient model
// (not a fed parameter), so that ONNX Runtime can fold computations on it.
func (c *ctx) isConst(name string) bool {
	_, fed := c.res.Feeds[name]
	return c.init[name] != nil && !fed
}
