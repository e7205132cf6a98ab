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

func (s *Shapes) inferNode(n *onnxpb.NodeProto) error {
	op := n.GetOpType()
	x, hasX := s.in(n, 0)
	switch op {
	case "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "Identity", "Softmax", "LogSoftmax",
		"Neg", "Exp", "Log", "Sqrt", "Abs", "Reciprocal", "Erf", "Floor", "Ceil", "Elu", "Selu",
		"HardSigmoid", "Softplus", "Sign", "Round", "PRelu", "Gelu", "HardSwish", "Mish":
		if hasX {
			s.set(n, 0, x.Elem, x.Shape)
		}
		if op == "Identity" {
			if v, ok := s.val(n, 0); ok {
				s.Values[n.GetOutput()[0]] = v
			}
		}
	case "Dropout":
		if hasX {
			s.set(n, 0, x.Elem, x.Shape)
			s.set(n, 1, Bool, x.Shape)
		}
	case "Cast":
		if hasX {
			s.set(n, 0, int32(GetInt(n, "to", int64(Float))), x.Shape)
		}
		if v, ok := s.val(n, 0); ok {
			s.Values[n.GetOutput()[0]] = v
		}
	case "BatchNormalization":
		if hasX {
			s.set(n, 0, x.Elem, x.Shape)
			if len(x.Shape) > 1 {
				for i := 1; i < 5; i++ {
					s.set(n, i, x.Elem, Shape{x.Shape[1]})
				}
			}
		}
	case "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Equal", "Greater", "Less",
		"GreaterOrEqual", "LessOrEqual", "And", "Or", "Where":
		var shs []Shape
		elem := int32(0)
		for i := range n.GetInput() {
			t, ok := s.in(n, i)
			if !ok {
				return nil
			}
			shs = append(shs, t.Shape)
			if op != "Where" || i > 0 {
				elem = t.Elem
			}
		}
		out, err := Broadcast(shs...)
		if err != nil {
			return err
		}
		switch op {
		case "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or":
			elem = Bool
		}
		s.set(n, 0, elem, out)
		s.arith(n)
	case "Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool":
		if !hasX || len(x.Shape) < 3 {
			return nil
		}
		return s.inferWindow(n, x)
	case "GlobalAveragePool", "GlobalMaxPool":
		if hasX && len(x.Shape) >= 3 {
			out := Shape{x.Shape[0], x.Shape[1]}
			for range x.Shape[2:] {
				out = append(out, D(1))
			}
			s.set(n, 0, x.Elem, out)
		}
	case "Flatten":
		if !hasX {
			return nil
		}
		axis, err := normAxisFlatten(GetInt(n, "axis", 1), len(x.Shape))
		if err != nil {
			return err
		}
		s.set(n, 0, x.Elem, Shape{prodDims(x.Shape[:axis]), prodDims(x.Shape[axis:])})
	case "Gemm":
		a, okA := s.in(n, 0)
		b, okB := s.in(n, 1)
		if !okA || !okB || len(a.Shape) != 2 || len(b.Shape) != 2 {
			return nil
		}
		m, ka := a.Shape[0], a.Shape[1]
		if GetInt(n, "transA", 0) != 0 {
			m, ka = ka, m
		}
		kb, nn := b.Shape[0], b.Shape[1]
		if GetInt(n, "transB", 0) != 0 {
			kb, nn = nn, kb
		}
		if ka.Known() && kb.Known() && ka.Value != kb.Value {
			return fmt.Errorf("gemm inner dimensions %v and %v differ", ka, kb)
		}
		s.set(n, 0, a.Elem, Shape{m, nn})
	case "MatMul":
		a, okA := s.in(n, 0)
		b, okB := s.in(n, 1)
		if !okA || !okB {
			return nil
		}
		out, err := matmulShape(a.Shape, b.Shape)
		if err != nil {
			return err
		}
		s.set(n, 0, a.Elem, out)
	case "Transpose":
		if !hasX {
			return nil
		}
		perm := GetInts(n, "perm", nil)
		if perm == nil {
			for i := len(x.Shape) - 1; i >= 0; i-- {
				perm = append(perm, int64(i))
			}
		}
		if len(perm) != len(x.Shape) {
			return fmt.Errorf("perm %v does not match rank %d", perm, len(x.Shape))
		}
		out := make(Shape, len(perm))
		for i, p := range perm {
			if p < 0 || int(p) >= len(x.Shape) {
				return fmt.Errorf("perm %v out of range", perm)
			}
			out[i] = x.Shape[p]
		}
		s.set(n, 0, x.Elem, out)
	case "Shape":
		if hasX {
			start, end := GetInt(n, "start", 0), GetInt(n, "end", int64(len(x.Shape)))
			r := int64(len(x.Shape))
			if start < 0 {
				start += r
			}
			if end < 0 {
				end += r
			}
			start, end = clampI(start, 0, r), clampI(end, 0, r)
			if end < start {
				end = start
			}
			v := append([]Dim(nil), x.Shape[start:end]...)
			s.set(n, 0, Int64, ShapeOf(int64(len(v))))
			s.Values[n.GetOutput()[0]] = v
		}
	case "Size":
		s.set(n, 0, Int64, Shape{})
	case "Constant":
		if a := FindAttr(n, "value"); a != nil && a.GetT() != nil {
			t := a.GetT()
			s.set(n, 0, t.GetDataType(), ShapeOf(t.GetDims()...))
			if (t.GetDataType() == Int64 || t.GetDataType() == Int32) && NumElements(t) <= 64 {
				if v, err := Int64s(t); err == nil {
					s.Values[n.GetOutput()[0]] = ShapeOf(v...)
				}
			}
		} else if a := FindAttr(n, "value_ints"); a != nil {
			s.set(n, 0, Int64, ShapeOf(int64(len(a.GetInts()))))
			s.Values[n.GetOutput()[0]] = ShapeOf(a.GetInts()...)
		} else if a := FindAttr(n, "value_int"); a != nil {
			s.set(n, 0, Int64, Shape{})
			s.Values[n.GetOutput()[0]] = ShapeOf(a.GetI())
		} else if a := FindAttr(n, "value_float"); a != nil {
			s.set(n, 0, Float, Shape{})
		} else if a := FindAttr(n, "value_floats"); a != nil {
			s.set(n, 0, Float, ShapeOf(int64(len(a.GetFloats()))))
		}
	case "ConstantOfShape":
		v, ok := s.val(n, 0)
		if !ok {
			return nil
		}
		elem := Float
		if a := FindAttr(n, "value"); a != nil && a.GetT() != nil {
			elem = a.GetT().GetDataType()
		}
		s.set(n, 0, elem, Shape(v))
	case "Gather":
		return s.inferGather(n, x, hasX)
	case "Unsqueeze", "Squeeze":
		return s.inferSqueeze(n, x, hasX)
	case "Concat":
		return s.inferConcat(n)
	case "Reshape":
		if !hasX {
			return nil
		}
		target, ok := s.val(n, 1)
		if !ok {
			return nil
		}
		out, err := reshapeShape(x.Shape, target, GetInt(n, "allowzero", 0) != 0)
		if err != nil {
			return err
		}
		s.set(n, 0, x.Elem, out)
		if v, ok := s.val(n, 0); ok {
			s.Values[n.GetOutput()[0]] = v
		}
	case "Expand":
		v, ok := s.val(n, 1)
		if !hasX || !ok {
			return nil
		}
		out, err := Broadcast(x.Shape, Shape(v))
		if err != nil {
			return err
		}
		s.set(n, 0, x.Elem, out)
	case "Pad":
		if !hasX {
			return nil
		}
		var pads []Dim
		if p, ok := s.val(n, 1); ok {
			pads = p
		} else if a := FindAttr(n, "pads"); a != nil {
			pads = ShapeOf(a.GetInts()...)
		} else {
			return nil
		}
		r := len(x.Shape)
		axes := make([]int, r)
		for i := range axes {
			axes[i] = i
		}
		if av, ok := s.val(n, 3); ok {
			axes = axes[:0]
			for _, a := range av {
				ax, err := normAxis(a.Value, r)
				if err != nil {
					return err
				}
				axes = append(axes, ax)
			}
		}
		if len(pads) != 2*len(axes) {
			return fmt.Errorf("pads %v do not match %d axes", pads, len(axes))
		}
		out := append(Shape(nil), x.Shape...)
		for i, ax := range axes {
			if out[ax].Known() {
				out[ax] = D(out[ax].Value + pads[i].Value + pads[i+len(axes)].Value)
			}
		}
		s.set(n, 0, x.Elem, out)
	case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceL1", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin":
		return s.inferReduce(n, x, hasX)
	case "Slice":
		return s.inferSlice(n, x, hasX)
	case "Range":
		st, ok1 := s.val(n, 0)
		lim, ok2 := s.val(n, 1)
		dl, ok3 := s.val(n, 2)
		if ok1 && ok2 && ok3 && len(st) == 1 && len(lim) == 1 && len(dl) == 1 && st[0].Known() && lim[0].Known() && dl[0].Value != 0 {
			cnt := max(int64(0), ceilDiv(lim[0].Value-st[0].Value, dl[0].Value))
			s.set(n, 0, Int64, ShapeOf(cnt))
		}
	case "OneHot":
		ind, ok := s.in(n, 0)
		depth, okd := s.val(n, 1)
		vals, okv := s.in(n, 2)
		if ok && okd && okv && len(depth) == 1 {
			axis := GetInt(n, "axis", -1)
			r := len(ind.Shape) + 1
			ax, err := normAxis(axis, r)
			if err != nil {
				return err
			}
			out := append(Shape(nil), ind.Shape[:ax]...)
			out = append(out, depth[0])
			out = append(out, ind.Shape[ax:]...)
			s.set(n, 0, vals.Elem, out)
		}
	case "GatherElements", "ScatterElements", "ScatterND":
		if op == "GatherElements" {
			if idx, ok := s.in(n, 1); ok && hasX {
				s.set(n, 0, x.Elem, idx.Shape)
			}
		} else if hasX {
			s.set(n, 0, x.Elem, x.Shape)
		}
	case "SoftmaxCrossEntropyLoss":
		if hasX {
			if GetString(n, "reduction", "mean") == "none" {
				s.set(n, 0, x.Elem, Shape{x.Shape[0]})
			} else {
				s.set(n, 0, x.Elem, Shape{})
			}
			s.set(n, 1, x.Elem, x.Shape)
		}
	case "TopK":
		if hasX {
			if kv, ok := s.val(n, 1); ok && len(kv) == 1 {
				ax, err := normAxis(GetInt(n, "axis", -1), len(x.Shape))
				if err != nil {
					return err
				}
				out := append(Shape(nil), x.Shape...)
				out[ax] = kv[0]
				s.set(n, 0, x.Elem, out)
				s.set(n, 1, Int64, out)
			}
		}
	}
	return nil
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

func (s *Shapes) inferWindow(n *onnxpb.NodeProto, x TypeInfo) error {
	op := n.GetOpType()
	spatial := x.Shape[2:]
	var kernel []int64
	var outC Dim
	switch op {
	case "Conv", "ConvTranspose":
		w, ok := s.in(n, 1)
		if !ok || len(w.Shape) != len(x.Shape) {
			return nil
		}
		for _, d := range w.Shape[2:] {
			if !d.Known() {
				return nil
			}
			kernel = append(kernel, d.Value)
		}
		if ks := GetInts(n, "kernel_shape", nil); ks != nil {
			kernel = ks
		}
		g := GetInt(n, "group", 1)
		if op == "Conv" {
			outC = w.Shape[0]
			if x.Shape[1].Known() && w.Shape[1].Known() && x.Shape[1].Value != w.Shape[1].Value*g {
				return fmt.Errorf("input has %d channels but weight %v with group %d expects %d", x.Shape[1].Value, w.Shape, g, w.Shape[1].Value*g)
			}
		} else {
			outC = D(w.Shape[1].Value * g)
		}
	default:
		kernel = GetInts(n, "kernel_shape", nil)
		outC = x.Shape[1]
	}
	p, err := Window(n, spatial, kernel)
	if err != nil {
		return err
	}
	out := Shape{x.Shape[0], outC}
	for i, d := range spatial {
		if !d.Known() {
			out = append(out, Sym("?"))
			continue
		}
		o := p.OutSize(op, i, d.Value)
		if op == "ConvTranspose" {
			if osz := GetInts(n, "output_shape", nil); osz != nil {
				o = osz[i]
			}
		}
		if o <= 0 {
			return fmt.Errorf("output size %d along spatial axis %d (input %d, kernel %d)", o, i, d.Value, kernel[i])
		}
		out = append(out, D(o))
	}
	s.set(n, 0, x.Elem, out)
	if op == "MaxPool" {
		s.set(n, 1, Int64, out)
	}
	return nil
}

func (s *Shapes) inferGather(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
	idx, okI := s.in(n, 1)
	if !hasX || !okI {
		return nil
	}
	axis, err := normAxis(GetInt(n, "axis", 0), len(x.Shape))
	if err != nil {
		return err
	}
	out := append(Shape{}, x.Shape[:axis]...)
	out = append(out, idx.Shape...)
	out = append(out, x.Shape[axis+1:]...)
	s.set(n, 0, x.Elem, out)
	// Value propagation for 1-D data (shape vectors).
	data, okD := s.val(n, 0)
	iv, okV := s.val(n, 1)
	if okD && okV && len(x.Shape) == 1 {
		var vals []Dim
		for _, i := range iv {
			k := i.Value
			if k < 0 {
				k += int64(len(data))
			}
			if k < 0 || k >= int64(len(data)) {
				return fmt.Errorf("gather index %d out of range %d", i.Value, len(data))
			}
			vals = append(vals, data[k])
		}
		s.Values[n.GetOutput()[0]] = vals
	}
	return nil
}

func (s *Shapes) axesOf(n *onnxpb.NodeProto, inputIdx int) ([]int64, bool) {
	if a := FindAttr(n, "axes"); a != nil {
		return a.GetInts(), true
	}
	if v, ok := s.val(n, inputIdx); ok {
		out := make([]int64, len(v))
		for i, d := range v {
			out[i] = d.Value
		}
		return out, true
	}
	if inputIdx < len(n.GetInput()) && n.GetInput()[inputIdx] != "" {
		return nil, false // axes given as a tensor we cannot read
	}
	return nil, true
}

func (s *Shapes) inferSqueeze(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
	if !hasX {
		return nil
	}
	axes, ok := s.axesOf(n, 1)
	if !ok {
		return nil
	}
	v, hasV := s.val(n, 0)
	if n.GetOpType() == "Unsqueeze" {
		r := len(x.Shape) + len(axes)
		ins := map[int]bool{}
		for _, a := range axes {
			ax, err := normAxis(a, r)
			if err != nil {
				return err
			}
			ins[ax] = true
		}
		out := make(Shape, 0, r)
		j := 0
		for i := 0; i < r; i++ {
			if ins[i] {
				out = append(out, D(1))
			} else {
				out = append(out, x.Shape[j])
				j++
			}
		}
		s.set(n, 0, x.Elem, out)
		if hasV {
			s.Values[n.GetOutput()[0]] = v
		}
		return nil
	}
	drop := map[int]bool{}
	if axes == nil {
		for i, d := range x.Shape {
			if d.Known() && d.Value == 1 {
				drop[i] = true
			}
		}
	}
	for _, a := range axes {
		ax, err := normAxis(a, len(x.Shape))
		if err != nil {
			return err
		}
		drop[ax] = true
	}
	var out Shape = Shape{}
	for i, d := range x.Shape {
		if !drop[i] {
			out = append(out, d)
		}
	}
	s.set(n, 0, x.Elem, out)
	if hasV {
		s.Values[n.GetOutput()[0]] = v
	}
	return nil
}

func (s *Shapes) inferConcat(n *onnxpb.NodeProto) error {
	var shs []Shape
	elem := int32(0)
	allVals := true
	var vals []Dim
	for i := range n.GetInput() {
		t, ok := s.in(n, i)
		if !ok {
			return nil
		}
		shs = append(shs, t.Shape)
		elem = t.Elem
		if v, ok := s.val(n, i); ok {
			vals = append(vals, v...)
		} else {
			allVals = false
		}
	}
	if len(shs) == 0 {
		return nil
	}
	axis, err := normAxis(GetInt(n, "axis", 0), len(shs[0]))
	if err != nil {
		return err
	}
	out := append(Shape(nil), shs[0]...)
	var parts []Dim
	for _, sh := range shs {
		if len(sh) != len(out) {
			return fmt.Errorf("concat of ranks %d and %d", len(out), len(sh))
		}
		parts = append(parts, sh[axis])
	}
	sum := int64(0)
	known := true
	for _, p := range parts {
		if !p.Known() {
			known = false
			break
		}
		sum += p.Value
	}
	if known {
		out[axis] = D(sum)
	} else {
		out[axis] = Sym("?")
	}
	s.set(n, 0, elem, out)
	if allVals && len(shs[0]) == 1 {
		s.Values[n.GetOutput()[0]] = vals
	}
	return nil
}

func (s *Shapes) inferReduce(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
	if !hasX {
		return nil
	}
	op := n.GetOpType()
	keep := GetInt(n, "keepdims", 1) != 0
	var axes []int64
	if op == "ArgMax" || op == "ArgMin" {
		axes = []int64{GetInt(n, "axis", 0)}
	} else {
		a, ok := s.axesOf(n, 1)
		if !ok {
			return nil
		}
		axes = a
	}
	red := map[int]bool{}
	if len(axes) == 0 {
		if GetInt(n, "noop_with_empty_axes", 0) != 0 {
			s.set(n, 0, x.Elem, x.Shape)
			return nil
		}
		for i := range x.Shape {
			red[i] = true
		}
	}
	for _, a := range axes {
		ax, err := normAxis(a, len(x.Shape))
		if err != nil {
			return err
		}
		red[ax] = true
	}
	out := Shape{}
	for i, d := range x.Shape {
		if red[i] {
			if keep {
				out = append(out, D(1))
			}
		} else {
			out = append(out, d)
		}
	}
	elem := x.Elem
	if op == "ArgMax" || op == "ArgMin" {
		elem = Int64
	}
	s.set(n, 0, elem, out)
	return nil
}

func (s *Shapes) inferSlice(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
	if !hasX {
		return nil
	}
	var starts, ends, axes, steps []int64
	if a := FindAttr(n, "starts"); a != nil { // opset < 10
		starts, ends = a.GetInts(), GetInts(n, "ends", nil)
		axes = GetInts(n, "axes", nil)
	} else {
		get := func(i int) ([]int64, bool) {
			v, ok := s.val(n, i)
			if !ok {
				return nil, i >= len(n.GetInput()) || n.GetInput()[i] == ""
			}
			out := make([]int64, len(v))
			for j, d := range v {
				out[j] = d.Value
			}
			return out, true
		}
		var ok bool
		if starts, ok = get(1); !ok || starts == nil {
			return nil
		}
		if ends, ok = get(2); !ok || ends == nil {
			return nil
		}
		if axes, ok = get(3); !ok {
			return nil
		}
		if steps, ok = get(4); !ok {
			return nil
		}
	}
	r := len(x.Shape)
	if axes == nil {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	out := append(Shape(nil), x.Shape...)
	vals, hasV := s.val(n, 0)
	var newVals []Dim
	for i, a := range axes {
		ax, err := normAxis(a, r)
		if err != nil {
			return err
		}
		step := int64(1)
		if steps != nil {
			step = steps[i]
		}
		if step == 0 {
			return fmt.Errorf("slice step 0")
		}
		d := x.Shape[ax]
		if !d.Known() {
			out[ax] = Sym("?")
			hasV = false
			continue
		}
		lo, hi := sliceBounds(starts[i], ends[i], step, d.Value)
		cnt := int64(0)
		if step > 0 && hi > lo {
			cnt = ceilDiv(hi-lo, step)
		} else if step < 0 && lo > hi {
			cnt = ceilDiv(lo-hi, -step)
		}
		out[ax] = D(cnt)
		if hasV && r == 1 && int64(len(vals)) == d.Value {
			for k := int64(0); k < cnt; k++ {
				newVals = append(newVals, vals[lo+k*step])
			}
		} else {
			hasV = false
		}
	}
	s.set(n, 0, x.Elem, out)
	if hasV && r == 1 && len(axes) == 1 {
		s.Values[n.GetOutput()[0]] = newVals
	}
	return nil
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

// arith propagates values through elementwise integer arithmetic on shape vectors.
func (s *Shapes) arith(n *onnxpb.NodeProto) {
	op := n.GetOpType()
	if op != "Add" && op != "Sub" && op != "Mul" && op != "Div" {
		return
	}
	a, okA := s.val(n, 0)
	b, okB := s.val(n, 1)
	if !okA || !okB {
		return
	}
	if len(a) != len(b) && len(a) != 1 && len(b) != 1 {
		return
	}
	l := max(len(a), len(b))
	out := make([]Dim, l)
	for i := 0; i < l; i++ {
		x, y := a[min(i, len(a)-1)], b[min(i, len(b)-1)]
		if !x.Known() || !y.Known() {
			out[i] = Sym("?")
			if op == "Mul" && y.Known() && y.Value == 1 {
				out[i] = x
			}
			continue
		}
		switch op {
		case "Add":
			out[i] = D(x.Value + y.Value)
		case "Sub":
			out[i] = D(x.Value - y.Value)
		case "Mul":
			out[i] = D(x.Value * y.Value)
		case "Div":
			if y.Value == 0 {
				return
			}
			out[i] = D(x.Value / y.Value)
		}
	}
	s.Values[n.GetOutput()[0]] = out
}
