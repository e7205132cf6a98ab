package onnxio

import (
	"fmt"
	"sort"
	"strings"

	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// Dim is one dimension: a fixed size (Param == "") or a named symbol such as
// the dynamic batch dimension (Param != "", Value == -1).
type Dim struct {
	Value int64
	Param string
}

// D makes a fixed dimension.
func D(v int64) Dim { return Dim{Value: v} }

// Sym makes a symbolic dimension.
func Sym(name string) Dim { return Dim{Value: -1, Param: name} }

// Known reports whether the dimension has a fixed size.
func (d Dim) Known() bool { return d.Param == "" && d.Value >= 0 }

func (d Dim) String() string {
	if d.Param != "" {
		return d.Param
	}
	return fmt.Sprint(d.Value)
}

// Shape is a tensor shape; nil means unknown rank.
type Shape []Dim

// Ints returns the shape with symbolic dimensions as -1.
func (s Shape) Ints() []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		if d.Known() {
			out[i] = d.Value
		} else {
			out[i] = -1
		}
	}
	return out
}

// Static reports whether every dimension is fixed.
func (s Shape) Static() bool {
	for _, d := range s {
		if !d.Known() {
			return false
		}
	}
	return s != nil
}

// Size returns the product of the fixed dimensions, skipping the symbolic ones.
func (s Shape) Size() int64 {
	n := int64(1)
	for _, d := range s {
		if d.Known() {
			n *= d.Value
		}
	}
	return n
}

func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = d.String()
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// ShapeOf converts fixed sizes to a Shape.
func ShapeOf(dims ...int64) Shape {
	s := make(Shape, len(dims))
	for i, d := range dims {
		s[i] = D(d)
	}
	return s
}

// TypeInfo is an inferred element type and shape.
type TypeInfo struct {
	Elem  int32
	Shape Shape
}

// Shapes holds the results of shape inference.
type Shapes struct {
	// Types maps every tensor name whose type was inferred to its type and shape.
	Types map[string]TypeInfo
	// Values maps small integer tensors whose contents are known statically
	// (shape arithmetic) to their values; symbolic entries stay symbolic.
	Values map[string][]Dim
	// Unknown lists the op types for which no shape rule exists (their outputs have no entry).
	Unknown []string
}

// Shape returns the inferred shape of a tensor (nil if unknown).
func (s *Shapes) Shape(name string) Shape { return s.Types[name].Shape }

// InferShapes propagates element types and shapes from the graph inputs and
// initializers through the node list. Symbolic dimensions (the batch) stay
// symbolic. Ops without a rule leave their outputs unknown and are listed in
// Unknown; an inconsistent graph (e.g. mismatched Conv channels) is an error.
func InferShapes(m *Model) (*Shapes, error) {
	g := m.Graph()
	s := &Shapes{Types: map[string]TypeInfo{}, Values: map[string][]Dim{}}
	for _, t := range g.GetInitializer() {
		s.Types[t.GetName()] = TypeInfo{Elem: t.GetDataType(), Shape: ShapeOf(t.GetDims()...)}
		if (t.GetDataType() == Int64 || t.GetDataType() == Int32) && NumElements(t) <= 64 {
			if v, err := Int64s(t); err == nil {
				s.Values[t.GetName()] = ShapeOf(v...)
			}
		}
	}
	for _, in := range g.GetInput() {
		if _, isInit := s.Types[in.GetName()]; isInit {
			continue
		}
		elem, sh := ValueInfoShape(in)
		s.Types[in.GetName()] = TypeInfo{Elem: elem, Shape: sh}
	}
	unknown := map[string]bool{}
	for i, n := range g.GetNode() {
		if err := s.inferNode(n); err != nil {
			return nil, fmt.Errorf("shape inference at node %d (%s %q): %w", i, n.GetOpType(), n.GetName(), err)
		}
		if len(n.GetOutput()) > 0 && n.GetOutput()[0] != "" {
			if _, ok := s.Types[n.GetOutput()[0]]; !ok {
				unknown[n.GetOpType()] = true
			}
		}
	}
	for op := range unknown {
		s.Unknown = append(s.Unknown, op)
	}
	sort.Strings(s.Unknown)
	return s, nil
}

func (s *Shapes) in(n *onnxpb.NodeProto, i int) (TypeInfo, bool) {
	if i >= len(n.GetInput()) || n.GetInput()[i] == "" {
		return TypeInfo{}, false
	}
	t, ok := s.Types[n.GetInput()[i]]
	return t, ok && t.Shape != nil
}

func (s *Shapes) val(n *onnxpb.NodeProto, i int) ([]Dim, bool) {
	if i >= len(n.GetInput()) || n.GetInput()[i] == "" {
		return nil, false
	}
	v, ok := s.Values[n.GetInput()[i]]
	return v, ok
}

func (s *Shapes) set(n *onnxpb.NodeProto, i int, elem int32, sh Shape) {
	if i < len(n.GetOutput()) && n.GetOutput()[i] != "" {
		s.Types[n.GetOutput()[i]] = TypeInfo{Elem: elem, Shape: sh}
	}
}

func normAxis(a int64, rank int) (int, error) {
	if a < 0 {
		a += int64(rank)
	}
	if a < 0 || a >= int64(rank) {
		return 0, fmt.Errorf("axis %d out of range for rank %d", a, rank)
	}
	return int(a), nil
}

// Broadcast returns the numpy-style broadcast of shapes.
func Broadcast(shapes ...Shape) (Shape, error) {
	rank := 0
	for _, sh := range shapes {
		rank = max(rank, len(sh))
	}
	out := make(Shape, rank)
	for i := range out {
		out[i] = D(1)
	}
	for _, sh := range shapes {
		off := rank - len(sh)
		for i, d := range sh {
			o := out[off+i]
			switch {
			case d.Known() && d.Value == 1:
			case o.Known() && o.Value == 1:
				out[off+i] = d
			case d == o:
			case !d.Known() || !o.Known():
				if d.Known() {
					out[off+i] = d
				}
			default:
				return nil, fmt.Errorf("shapes %v cannot be broadcast", shapes)
			}
		}
	}
	return out, nil
}

// inferNode applies n's shape rule; an op without one leaves its outputs
// unknown (InferShapes lists it in Unknown) and is not an error.
func (s *Shapes) inferNode(n *onnxpb.NodeProto) error {
	rule, ok := shapeRules[n.GetOpType()]
	if !ok {
		return nil
	}
	x, hasX := s.in(n, 0)
	return rule(s, n, x, hasX)
}

func clampI(v, lo, hi int64) int64 { return max(lo, min(hi, v)) }

func ceilDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) == (b < 0)) {
		q++
	}
	return q
}

func normAxisFlatten(a int64, rank int) (int, error) {
	if a < 0 {
		a += int64(rank)
	}
	if a < 0 || a > int64(rank) {
		return 0, fmt.Errorf("flatten axis %d out of range for rank %d", a, rank)
	}
	return int(a), nil
}

// monomial is coeff × product of symbols, used to reason about products of
// dimensions that include the symbolic batch.
type monomial struct {
	coeff int64
	syms  []string
}

func prodMono(dims []Dim) monomial {
	m := monomial{coeff: 1}
	for _, d := range dims {
		if d.Known() {
			m.coeff *= d.Value
		} else {
			m.syms = append(m.syms, d.Param)
		}
	}
	sort.Strings(m.syms)
	return m
}

func (m monomial) dim() Dim {
	switch {
	case len(m.syms) == 0:
		return D(m.coeff)
	case len(m.syms) == 1 && m.coeff == 1:
		return Sym(m.syms[0])
	default:
		name := strings.Join(m.syms, "*")
		if m.coeff != 1 {
			name = fmt.Sprintf("%d*%s", m.coeff, name)
		}
		return Sym(name)
	}
}

// divMono returns a/b when it is a monomial.
func divMono(a, b monomial) (monomial, bool) {
	if b.coeff == 0 || a.coeff%b.coeff != 0 {
		return monomial{}, false
	}
	rest := append([]string(nil), a.syms...)
	for _, s := range b.syms {
		found := false
		for i, r := range rest {
			if r == s {
				rest = append(rest[:i], rest[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			return monomial{}, false
		}
	}
	return monomial{coeff: a.coeff / b.coeff, syms: rest}, true
}

func prodDims(dims []Dim) Dim { return prodMono(dims).dim() }

func reshapeShape(in Shape, target []Dim, allowZero bool) (Shape, error) {
	out := make(Shape, len(target))
	infer := -1
	for i, t := range target {
		switch {
		case t.Param != "":
			out[i] = t
		case t.Value == 0 && !allowZero:
			if i >= len(in) {
				return nil, fmt.Errorf("reshape target %v copies dimension %d of rank-%d input", target, i, len(in))
			}
			out[i] = in[i]
		case t.Value == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("reshape target %v has two -1 entries", target)
			}
			infer = i
		case t.Value < -1:
			return nil, fmt.Errorf("bad reshape target %v", target)
		default:
			out[i] = t
		}
	}
	if infer >= 0 {
		rest := append(Shape(nil), out[:infer]...)
		rest = append(rest, out[infer+1:]...)
		q, ok := divMono(prodMono(in), prodMono(rest))
		if !ok {
			out[infer] = Sym("?")
		} else {
			out[infer] = q.dim()
		}
	} else if in.Static() && Shape(out).Static() && in.Size() != Shape(out).Size() {
		return nil, fmt.Errorf("cannot reshape %v to %v", in, out)
	}
	return out, nil
}

func matmulShape(a, b Shape) (Shape, error) {
	if len(a) == 0 || len(b) == 0 {
		return nil, fmt.Errorf("MatMul of a scalar")
	}
	a1, b1 := len(a) == 1, len(b) == 1
	if a1 {
		a = Shape{D(1), a[0]}
	}
	if b1 {
		b = Shape{b[0], D(1)}
	}
	ka, kb := a[len(a)-1], b[len(b)-2]
	if ka.Known() && kb.Known() && ka.Value != kb.Value {
		return nil, fmt.Errorf("MatMul inner dimensions %v and %v differ", ka, kb)
	}
	batch, err := Broadcast(a[:len(a)-2], b[:len(b)-2])
	if err != nil {
		return nil, err
	}
	out := append(batch, a[len(a)-2], b[len(b)-1])
	if a1 {
		out = append(out[:len(out)-2], out[len(out)-1])
	}
	if b1 {
		out = out[:len(out)-1]
	}
	return out, nil
}

// WindowParams are the resolved spatial parameters of a Conv, ConvTranspose or pooling node.
type WindowParams struct {
	Kernel, Strides, Dilations []int64
	PadsBegin, PadsEnd         []int64
	OutputPadding              []int64
	CeilMode                   bool
	Group                      int64
}

// Window resolves a window op's attributes against the input's spatial size
// (auto_pad included). spatial holds the input spatial dims; kernel is the
// kernel size (from the weight for Conv, kernel_shape otherwise).
func Window(n *onnxpb.NodeProto, spatial []Dim, kernel []int64) (WindowParams, error) {
	r := len(spatial)
	p := WindowParams{Kernel: kernel, Group: GetInt(n, "group", 1), CeilMode: GetInt(n, "ceil_mode", 0) != 0}
	ones := make([]int64, r)
	zeros := make([]int64, r)
	for i := range ones {
		ones[i] = 1
	}
	p.Strides = GetInts(n, "strides", ones)
	p.Dilations = GetInts(n, "dilations", ones)
	p.OutputPadding = GetInts(n, "output_padding", zeros)
	pads := GetInts(n, "pads", append(append([]int64{}, zeros...), zeros...))
	if len(p.Strides) != r || len(p.Dilations) != r || len(pads) != 2*r || len(kernel) != r || len(p.OutputPadding) != r {
		return p, fmt.Errorf("attributes do not match %d spatial dimensions", r)
	}
	p.PadsBegin, p.PadsEnd = pads[:r], pads[r:]
	for i := 0; i < r; i++ {
		if p.Strides[i] <= 0 || p.Dilations[i] <= 0 || kernel[i] <= 0 {
			return p, fmt.Errorf("non-positive stride, dilation or kernel size")
		}
	}
	switch ap := GetString(n, "auto_pad", "NOTSET"); ap {
	case "NOTSET", "":
	case "VALID":
		p.PadsBegin, p.PadsEnd = zeros, append([]int64{}, zeros...)
	case "SAME_UPPER", "SAME_LOWER":
		if n.GetOpType() == "ConvTranspose" {
			return p, fmt.Errorf("auto_pad %s on ConvTranspose is not supported; use explicit pads", ap)
		}
		p.PadsBegin, p.PadsEnd = make([]int64, r), make([]int64, r)
		for i := 0; i < r; i++ {
			if !spatial[i].Known() {
				return p, fmt.Errorf("auto_pad %s needs a fixed spatial size", ap)
			}
			in := spatial[i].Value
			out := ceilDiv(in, p.Strides[i])
			eff := (kernel[i]-1)*p.Dilations[i] + 1
			total := max(0, (out-1)*p.Strides[i]+eff-in)
			small, big := total/2, total-total/2
			if ap == "SAME_UPPER" {
				p.PadsBegin[i], p.PadsEnd[i] = small, big
			} else {
				p.PadsBegin[i], p.PadsEnd[i] = big, small
			}
		}
	default:
		return p, fmt.Errorf("unknown auto_pad %q", ap)
	}
	return p, nil
}

// OutSize returns the output spatial size of a window op along axis i for input size in.
func (p WindowParams) OutSize(op string, i int, in int64) int64 {
	eff := (p.Kernel[i]-1)*p.Dilations[i] + 1
	if op == "ConvTranspose" {
		return p.Strides[i]*(in-1) + p.OutputPadding[i] + eff - p.PadsBegin[i] - p.PadsEnd[i]
	}
	num := in + p.PadsBegin[i] + p.PadsEnd[i] - eff
	if p.CeilMode {
		o := ceilDiv(num, p.Strides[i]) + 1
		// PyTorch/ONNX rule: the last window must start inside the input or left padding.
		if (o-1)*p.Strides[i] >= in+p.PadsBegin[i] {
			o--
		}
		return o
	}
	return num/p.Strides[i] + 1
}

func sliceBounds(start, end, step, dim int64) (int64, int64) {
	if start < 0 {
		start += dim
	}
	if end < 0 {
		end += dim
	}
	if step > 0 {
		return clampI(start, 0, dim), clampI(end, 0, dim)
	}
	return clampI(start, -1, dim-1), clampI(end, -1, dim-1)
}
