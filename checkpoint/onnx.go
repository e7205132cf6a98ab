package checkpoint

import (
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strings"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// ErrFoldedBN reports a model whose weights the exporter renamed
// (onnx::Conv_123 …), which happens when BatchNorm is folded into Conv or a
// weight is constant-folded; such weights have no state_dict name.
var ErrFoldedBN = errors.New("model weights were renamed by the exporter (BatchNorm folded into Conv or constant folding), so they cannot be mapped to state_dict names; re-export with torch.onnx.export(..., training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)")

// shapeInputs lists, per op, the inputs that carry shapes, axes, pads or
// other integer-like parameters rather than learned values. A float
// initializer read only at such positions is an ONNX-side constant.
var shapeInputs = map[string][]int{
	"Reshape": {1}, "Expand": {1}, "Tile": {1}, "ConstantOfShape": {0},
	"Pad": {1, 2, 3}, "Slice": {1, 2, 3, 4}, "Squeeze": {1}, "Unsqueeze": {1},
	"ReduceSum": {1}, "ReduceMean": {1}, "ReduceMax": {1}, "ReduceMin": {1},
	"ReduceProd": {1}, "ReduceL1": {1}, "ReduceL2": {1}, "ReduceLogSumExp": {1}, "ReduceSumSquare": {1},
	"Resize": {1, 2, 3}, "Upsample": {1}, "TopK": {1}, "OneHot": {1}, "Split": {1},
	"Range": {0, 1, 2}, "Shape": {0}, "Size": {0},
}

// param is one state_dict name the model holds: an initializer, or the
// output of an Identity node fed (possibly through other Identities) by one.
type param struct {
	name string
	init *onnxpb.TensorProto // the initializer holding the value
	src  string              // Identity alias: the Identity's input; "" for an initializer
	node int                 // Identity alias: node index
}

// modelParams lists the model's PyTorch-named tensors in a deterministic
// order (initializers in file order, then Identity aliases in topological
// order, so an alias always follows its source). The rule:
//
//   - float32 initializers, and Identity outputs that alias one;
//   - except names starting with "onnx::" (exporter-generated), and
//     initializers every consumer of which reads them at a shape/axes/pads
//     position (shapeInputs: Reshape's shape, Pad's pads, …), or that are not
//     float32 (int64 shape constants).
//
// A weight (Conv, ConvTranspose, Gemm, MatMul, BatchNormalization input ≥ 1)
// named "onnx::…" means the exporter folded BatchNorm: ErrFoldedBN.
func modelParams(m *onnxio.Model) ([]param, *onnxio.Index, error) {
	if m == nil || m.Proto == nil || m.Graph() == nil {
		return nil, nil, errors.New("model has no graph")
	}
	g := m.Graph()
	ix, err := onnxio.NewIndex(g)
	if err != nil {
		return nil, nil, err
	}
	var folded []string
	for _, n := range g.GetNode() {
		switch n.GetOpType() {
		case "Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization":
		default:
			continue
		}
		for j, in := range n.GetInput() {
			if j == 0 || !strings.HasPrefix(in, "onnx::") {
				continue
			}
			if _, ok := ix.InitializerOf(in); ok {
				folded = append(folded, in)
			}
		}
	}
	if len(folded) > 0 {
		slices.Sort(folded)
		folded = slices.Compact(folded)
		return nil, nil, fmt.Errorf("%w (renamed: %s)", ErrFoldedBN, truncList(folded, 5))
	}

	var out []param
	byName := map[string]*onnxpb.TensorProto{}
	for _, t := range g.GetInitializer() {
		if t.GetDataType() != onnxio.Float || strings.HasPrefix(t.GetName(), "onnx::") || onlyShapeUse(ix, t.GetName()) {
			continue
		}
		byName[t.GetName()] = t
		out = append(out, param{name: t.GetName(), init: t, node: -1})
	}
	// Identity aliases (the exporter's ties); the initializer behind one
	// may be an ONNX-only name that is not itself a parameter.
	for _, i := range ix.Order {
		n := ix.Node(i)
		if len(n.GetOutput()) != 1 {
			continue
		}
		o := n.GetOutput()[0]
		r, ok := ix.Aliases[o] // n is the Identity node that copies r
		if !ok || ix.Init[r].GetDataType() != onnxio.Float || strings.HasPrefix(o, "onnx::") {
			continue
		}
		out = append(out, param{name: o, init: ix.Init[r], src: n.GetInput()[0], node: i})
	}
	return out, ix, nil
}

// onlyShapeUse reports whether every use of name is at a shape position.
func onlyShapeUse(ix *onnxio.Index, name string) bool {
	cons := ix.Consumers[name]
	if len(cons) == 0 {
		return false
	}
	for _, c := range cons {
		n := ix.Node(c)
		pos := shapeInputs[n.GetOpType()]
		for j, in := range n.GetInput() {
			if in == name && !slices.Contains(pos, j) {
				return false
			}
		}
	}
	for _, o := range ix.Outputs {
		if o == name {
			return false
		}
	}
	return true
}

// Export returns the model's parameters keyed by PyTorch state_dict name:
// every float32 initializer and every Identity output that aliases one (the
// TorchScript exporter's de-duplication), as F32 tensors; the ONNX-only
// constants described at modelParams are left out. An aliased name gets its
// own copy of the data. A model whose weights the exporter renamed fails
// with ErrFoldedBN.
func Export(m *onnxio.Model) (map[string]Tensor, error) {
	ps, _, err := modelParams(m)
	if err != nil {
		return nil, fmt.Errorf("export weights: %w", err)
	}
	out := make(map[string]Tensor, len(ps))
	for _, p := range ps {
		v, err := onnxio.Float32s(p.init)
		if err != nil {
			return nil, fmt.Errorf("export weights: %w", err)
		}
		out[p.name] = FromFloat32(p.init.GetDims(), v)
	}
	return out, nil
}

// ImportOptions controls Import. The zero value is strict: the checkpoint
// must hold exactly the model's parameters, with the same shapes.
type ImportOptions struct {
	// AllowMissing keeps the model's value for parameters the checkpoint lacks.
	AllowMissing bool `json:"allow_missing,omitempty"`
	// AllowUnexpected ignores every checkpoint entry the model has no
	// parameter for. Prefer UnexpectedPatterns, which names what may be left.
	AllowUnexpected bool `json:"allow_unexpected,omitempty"`
	// UnexpectedPatterns ignores checkpoint entries the model has no
	// parameter for when their name matches one pattern: a glob
	// (path.Match: "sub_block1.*", "*.num_batches_tracked") when it holds
	// *, ? or [, else a name prefix ("sub_block1."). Other unexpected entries
	// are still a mismatch. Every ignored name is listed in Report.Unexpected.
	UnexpectedPatterns []string `json:"unexpected_patterns,omitempty"`
}

// CheckPatterns reports the first malformed glob of UnexpectedPatterns.
func (o ImportOptions) CheckPatterns() error {
	for _, p := range o.UnexpectedPatterns {
		if p == "" {
			return fmt.Errorf("empty pattern for unexpected names")
		}
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("pattern %q: %w", p, err)
		}
	}
	return nil
}

// unexpectedAllowed reports whether an unexpected checkpoint name may be
// ignored under o.
func (o ImportOptions) unexpectedAllowed(name string) bool {
	if o.AllowUnexpected {
		return true
	}
	for _, p := range o.UnexpectedPatterns {
		if strings.ContainsAny(p, "*?[") {
			if ok, _ := path.Match(p, name); ok {
				return true
			}
		} else if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Report says what Import did. Name lists are sorted.
type Report struct {
	Loaded     []string `json:"loaded"`               // parameters set from the checkpoint
	Untied     []string `json:"untied,omitempty"`     // Identity aliases given their own initializer
	Missing    []string `json:"missing,omitempty"`    // kept from the model (AllowMissing)
	Unexpected []string `json:"unexpected,omitempty"` // ignored (AllowUnexpected)
}

// MismatchError lists why a checkpoint does not fit a model. Lists are
// sorted; Shape entries read "name (checkpoint F32 [10 64] vs model [10 32])".
type MismatchError struct {
	Missing, Unexpected, Shape []string
}

func (e *MismatchError) Error() string {
	var parts []string
	if len(e.Missing) > 0 {
		parts = append(parts, fmt.Sprintf("%d missing from the checkpoint (%s)", len(e.Missing), truncList(e.Missing, 10)))
	}
	if len(e.Unexpected) > 0 {
		parts = append(parts, fmt.Sprintf("%d unexpected in the checkpoint (%s)", len(e.Unexpected), truncList(e.Unexpected, 10)))
	}
	if len(e.Shape) > 0 {
		parts = append(parts, fmt.Sprintf("%d with a different shape or type (%s)", len(e.Shape), truncList(e.Shape, 10)))
	}
	return "checkpoint does not match the model: " + strings.Join(parts, "; ")
}

// Import sets the model's parameters (see Export for which tensors those
// are) from tensors keyed by PyTorch state_dict name, converting F16, BF16
// and F64 to float32. num_batches_tracked entries are ignored. Unless opt
// relaxes it, every parameter must be present, no entry may be left over,
// and shapes must match exactly; otherwise Import returns a *MismatchError
// and leaves m unchanged.
//
// Names the exporter tied together (an Identity node copying one
// initializer under another name) stay tied when the checkpoint gives them
// equal values; when it gives different values, the Identity is replaced by
// an initializer of its own (Report.Untied), so no value is lost.
func Import(m *onnxio.Model, tensors map[string]Tensor, opt ImportOptions) (*Report, error) {
	if err := opt.CheckPatterns(); err != nil {
		return nil, fmt.Errorf("import weights: %w", err)
	}
	ps, ix, err := modelParams(m)
	if err != nil {
		return nil, fmt.Errorf("import weights: %w", err)
	}
	mis := &MismatchError{}
	rep := &Report{}
	known := make(map[string]bool, len(ps))
	values := make(map[string][]float32, len(ps)) // new value of every parameter
	for _, p := range ps {
		known[p.name] = true
		t, ok := tensors[p.name]
		if !ok {
			if !opt.AllowMissing {
				mis.Missing = append(mis.Missing, p.name)
			} else {
				rep.Missing = append(rep.Missing, p.name)
			}
			continue
		}
		dims := p.init.GetDims()
		if !t.DType.IsFloat() || !slices.Equal(t.Shape, dims) && !(len(t.Shape) == 0 && len(dims) == 0) {
			mis.Shape = append(mis.Shape, fmt.Sprintf("%s (checkpoint %s %v vs model %v)", p.name, t.DType, t.Shape, dims))
			continue
		}
		v, err := t.Float32s()
		if err != nil {
			return nil, fmt.Errorf("import weights: tensor %q: %w", p.name, err)
		}
		values[p.name] = v
		rep.Loaded = append(rep.Loaded, p.name)
	}
	for k := range tensors {
		if !known[k] && !isBNCounter(k) {
			if opt.unexpectedAllowed(k) {
				rep.Unexpected = append(rep.Unexpected, k)
			} else {
				mis.Unexpected = append(mis.Unexpected, k)
			}
		}
	}
	if len(mis.Missing)+len(mis.Unexpected)+len(mis.Shape) > 0 {
		slices.Sort(mis.Missing)
		slices.Sort(mis.Unexpected)
		slices.Sort(mis.Shape)
		return nil, mis
	}

	// Current values, for names the checkpoint did not set.
	current := map[string][]float32{}
	valueOf := func(name string) ([]float32, error) {
		if v, ok := values[name]; ok {
			return v, nil
		}
		if v, ok := current[name]; ok {
			return v, nil
		}
		t := ix.Init[name]
		if t == nil { // an alias the checkpoint did not set: its source's old value
			src := ix.Node(ix.Producer[name]).GetInput()[0]
			v, err := origValue(ix, src)
			current[name] = v
			return v, err
		}
		v, err := onnxio.Float32s(t)
		current[name] = v
		return v, err
	}
	// Decide before editing, so a failure leaves m unchanged.
	untie := map[int]param{}
	for _, p := range ps {
		if p.src == "" {
			continue
		}
		a, err := valueOf(p.name)
		if err != nil {
			return nil, fmt.Errorf("import weights: %w", err)
		}
		b, err := valueOf(p.src)
		if err != nil {
			return nil, fmt.Errorf("import weights: %w", err)
		}
		if !sameBits(a, b) {
			untie[p.node] = p
		}
	}
	newVals := map[string][]float32{}
	for _, p := range ps {
		if p.src == "" {
			if v, ok := values[p.name]; ok {
				newVals[p.name] = v
			}
		}
	}
	// Untied aliases need their value before any initializer changes.
	untiedInits := make([]*onnxpb.TensorProto, 0, len(untie))
	for _, p := range ps {
		if _, ok := untie[p.node]; ok && p.src != "" {
			v, err := valueOf(p.name)
			if err != nil {
				return nil, fmt.Errorf("import weights: %w", err)
			}
			untiedInits = append(untiedInits, onnxio.FloatTensor(p.name, p.init.GetDims(), v))
			rep.Untied = append(rep.Untied, p.name)
		}
	}
	for name, v := range newVals {
		if err := onnxio.SetFloat32s(ix.Init[name], v); err != nil {
			return nil, fmt.Errorf("import weights: %w", err)
		}
	}
	g := m.Graph()
	if len(untie) > 0 {
		nodes := g.GetNode()[:0:0]
		for i, n := range g.GetNode() {
			if _, drop := untie[i]; !drop {
				nodes = append(nodes, n)
			}
		}
		g.Node = nodes
		g.Initializer = append(g.Initializer, untiedInits...)
	}
	slices.Sort(rep.Loaded)
	slices.Sort(rep.Untied)
	slices.Sort(rep.Missing)
	slices.Sort(rep.Unexpected)
	return rep, nil
}

// origValue is the model's value of an initializer or Identity alias
// before Import changes anything.
func origValue(ix *onnxio.Index, name string) ([]float32, error) {
	for range 64 {
		if t := ix.Init[name]; t != nil {
			return onnxio.Float32s(t)
		}
		p, ok := ix.Producer[name]
		if !ok {
			break
		}
		name = ix.Node(p).GetInput()[0]
	}
	return nil, fmt.Errorf("cannot resolve the value of %q", name)
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
