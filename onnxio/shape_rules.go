package onnxio

import (
	"fmt"

	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// shapeRule sets the types of n's outputs from those of its inputs (x is
// input 0 when hasX) and, for shape arithmetic, their values. A rule leaves
// the outputs it cannot infer unset and returns an error only for an
// inconsistent node.
type shapeRule func(s *Shapes, n *onnxpb.NodeProto, x TypeInfo, hasX bool) error

// shapeRules is the table of shape rules keyed by ONNX op type.
var shapeRules = map[string]shapeRule{
	// Elementwise with one input: the output is the input's type.
	"Relu":        (*Shapes).inferSame,
	"LeakyRelu":   (*Shapes).inferSame,
	"Sigmoid":     (*Shapes).inferSame,
	"Tanh":        (*Shapes).inferSame,
	"Clip":        (*Shapes).inferSame,
	"Softmax":     (*Shapes).inferSame,
	"LogSoftmax":  (*Shapes).inferSame,
	"Neg":         (*Shapes).inferSame,
	"Exp":         (*Shapes).inferSame,
	"Log":         (*Shapes).inferSame,
	"Sqrt":        (*Shapes).inferSame,
	"Abs":         (*Shapes).inferSame,
	"Reciprocal":  (*Shapes).inferSame,
	"Erf":         (*Shapes).inferSame,
	"Floor":       (*Shapes).inferSame,
	"Ceil":        (*Shapes).inferSame,
	"Elu":         (*Shapes).inferSame,
	"Selu":        (*Shapes).inferSame,
	"HardSigmoid": (*Shapes).inferSame,
	"Softplus":    (*Shapes).inferSame,
	"Sign":        (*Shapes).inferSame,
	"Round":       (*Shapes).inferSame,
	"PRelu":       (*Shapes).inferSame,
	"Gelu":        (*Shapes).inferSame,
	"HardSwish":   (*Shapes).inferSame,
	"Mish":        (*Shapes).inferSame,
	"Identity":    (*Shapes).inferIdentity,
	"Dropout":     (*Shapes).inferDropout,
	"Cast":        (*Shapes).inferCast,
	// Scatters write into a copy of their data input.
	"ScatterElements": (*Shapes).inferSame,
	"ScatterND":       (*Shapes).inferSame,
	"GatherElements":  (*Shapes).inferGatherElements,
	// Broadcasting elementwise ops.
	"Add":            elementwise(lastElem, addDims),
	"Sub":            elementwise(lastElem, subDims),
	"Mul":            elementwise(lastElem, mulDims),
	"Div":            elementwise(lastElem, divDims),
	"Pow":            elementwise(lastElem, nil),
	"Max":            elementwise(lastElem, nil),
	"Min":            elementwise(lastElem, nil),
	"Sum":            elementwise(lastElem, nil),
	"Mean":           elementwise(lastElem, nil),
	"Equal":          elementwise(boolElem, nil),
	"Greater":        elementwise(boolElem, nil),
	"Less":           elementwise(boolElem, nil),
	"GreaterOrEqual": elementwise(boolElem, nil),
	"LessOrEqual":    elementwise(boolElem, nil),
	"And":            elementwise(boolElem, nil),
	"Or":             elementwise(boolElem, nil),
	"Where":          elementwise(whereElem, nil),
	// Windows over the spatial axes.
	"Conv":               (*Shapes).inferWindow,
	"ConvTranspose":      (*Shapes).inferWindow,
	"MaxPool":            (*Shapes).inferWindow,
	"AveragePool":        (*Shapes).inferWindow,
	"LpPool":             (*Shapes).inferWindow,
	"GlobalAveragePool":  (*Shapes).inferGlobalPool,
	"GlobalMaxPool":      (*Shapes).inferGlobalPool,
	"BatchNormalization": (*Shapes).inferBatchNorm,
	// Linear algebra.
	"Gemm":   (*Shapes).inferGemm,
	"MatMul": (*Shapes).inferMatMul,
	// Reductions.
	"ReduceMean":              (*Shapes).inferReduce,
	"ReduceSum":               (*Shapes).inferReduce,
	"ReduceMax":               (*Shapes).inferReduce,
	"ReduceMin":               (*Shapes).inferReduce,
	"ReduceProd":              (*Shapes).inferReduce,
	"ReduceL2":                (*Shapes).inferReduce,
	"ReduceL1":                (*Shapes).inferReduce,
	"ReduceLogSumExp":         (*Shapes).inferReduce,
	"ReduceSumSquare":         (*Shapes).inferReduce,
	"ArgMax":                  (*Shapes).inferArgReduce,
	"ArgMin":                  (*Shapes).inferArgReduce,
	"TopK":                    (*Shapes).inferTopK,
	"SoftmaxCrossEntropyLoss": (*Shapes).inferSoftmaxCrossEntropyLoss,
	// Layout.
	"Flatten":   (*Shapes).inferFlatten,
	"Reshape":   (*Shapes).inferReshape,
	"Squeeze":   (*Shapes).inferSqueeze,
	"Unsqueeze": (*Shapes).inferUnsqueeze,
	"Transpose": (*Shapes).inferTranspose,
	"Concat":    (*Shapes).inferConcat,
	"Slice":     (*Shapes).inferSlice,
	"Pad":       (*Shapes).inferPad,
	"Expand":    (*Shapes).inferExpand,
	"Gather":    (*Shapes).inferGather,
	"OneHot":    (*Shapes).inferOneHot,
	// Shape arithmetic and constants.
	"Shape":           (*Shapes).inferShape,
	"Size":            (*Shapes).inferSize,
	"Constant":        (*Shapes).inferConstant,
	"ConstantOfShape": (*Shapes).inferConstantOfShape,
	"Range":           (*Shapes).inferRange,
}

// copyValue passes input 0's known value to output 0 (ops that keep the
// contents of a shape vector).
func (s *Shapes) copyValue(n *onnxpb.NodeProto) {
	if v, ok := s.val(n, 0); ok {
		s.Values[n.GetOutput()[0]] = v
	}
}

func (s *Shapes) inferSame(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
	if hasX {
		s.set(n, 0, x.Elem, x.Shape)
	}
	return nil
}

func (s *Shapes) inferIdentity(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
	s.inferSame(n, x, hasX)
	s.copyValue(n)
	return nil
}

func (s *Shapes) inferDropout(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
	if hasX {
		s.set(n, 0, x.Elem, x.Shape)
		s.set(n, 1, Bool, x.Shape)
	}
	return nil
}

func (s *Shapes) inferCast(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
	if hasX {
		s.set(n, 0, int32(GetInt(n, "to", int64(Float))), x.Shape)
	}
	s.copyValue(n)
	return nil
}

func (s *Shapes) inferGatherElements(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
	if idx, ok := s.in(n, 1); ok && hasX {
		s.set(n, 0, x.Elem, idx.Shape)
	}
	return nil
}

// elementwise is the rule of a broadcasting op whose output has element type
// elem(inputs); with dims set, it also computes the values of integer shape
// vectors dimension by dimension.
func elementwise(elem func(ins []TypeInfo) int32, dims func(x, y Dim) (Dim, bool)) shapeRule {
	return func(s *Shapes, n *onnxpb.NodeProto, _ TypeInfo, _ bool) error {
		var ins []TypeInfo
		var shs []Shape
		for i := range n.GetInput() {
			t, ok := s.in(n, i)
			if !ok {
				return nil
			}
			ins = append(ins, t)
			shs = append(shs, t.Shape)
		}
		out, err := Broadcast(shs...)
		if err != nil {
			return err
		}
		s.set(n, 0, elem(ins), out)
		if dims != nil {
			s.arith(n, dims)
		}
		return nil
	}
}

// lastElem is the element type of the last input (0 for none).
func lastElem(ins []TypeInfo) int32 {
	if len(ins) == 0 {
		return 0
	}
	return ins[len(ins)-1].Elem
}

func boolElem([]TypeInfo) int32 { return Bool }

// whereElem is the type of Where's branches (inputs 1 and 2), not of its
// condition.
func whereElem(ins []TypeInfo) int32 {
	if len(ins) < 2 {
		return 0
	}
	return ins[len(ins)-1].Elem
}

// knownDims lifts integer arithmetic to dimensions: a symbolic operand
// gives a symbolic result; ok false drops the value (division by zero).
func knownDims(f func(a, b int64) (int64, bool)) func(x, y Dim) (Dim, bool) {
	return func(x, y Dim) (Dim, bool) {
		if !x.Known() || !y.Known() {
			return Sym("?"), true
		}
		v, ok := f(x.Value, y.Value)
		return D(v), ok
	}
}

var (
	addDims = knownDims(func(a, b int64) (int64, bool) { return a + b, true })
	subDims = knownDims(func(a, b int64) (int64, bool) { return a - b, true })
	divDims = knownDims(func(a, b int64) (int64, bool) {
		if b == 0 {
			return 0, false
		}
		return a / b, true
	})
	mulDims = func(x, y Dim) (Dim, bool) {
		if !x.Known() && y.Known() && y.Value == 1 {
			return x, true // batch × 1 stays the batch
		}
		return knownDims(func(a, b int64) (int64, bool) { return a * b, true })(x, y)
	}
)

// arith propagates values through elementwise integer arithmetic on shape
// vectors, one dimension at a time with dims.
func (s *Shapes) arith(n *onnxpb.NodeProto, dims func(x, y Dim) (Dim, bool)) {
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
		d, ok := dims(a[min(i, len(a)-1)], b[min(i, len(b)-1)])
		if !ok {
			return
		}
		out[i] = d
	}
	s.Values[n.GetOutput()[0]] = out
}

func (s *Shapes) inferBatchNorm(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
	if hasX {
		s.set(n, 0, x.Elem, x.Shape)
		if len(x.Shape) > 1 {
			for i := 1; i < 5; i++ {
				s.set(n, i, x.Elem, Shape{x.Shape[1]})
			}
		}
	}
	return nil
}

func (s *Shapes) inferGlobalPool(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
	if hasX && len(x.Shape) >= 3 {
		out := Shape{x.Shape[0], x.Shape[1]}
		for range x.Shape[2:] {
			out = append(out, D(1))
		}
		s.set(n, 0, x.Elem, out)
	}
	return nil
}

func (s *Shapes) inferFlatten(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
	if !hasX {
		return nil
	}
	axis, err := normAxisFlatten(GetInt(n, "axis", 1), len(x.Shape))
	if err != nil {
		return err
	}
	s.set(n, 0, x.Elem, Shape{prodDims(x.Shape[:axis]), prodDims(x.Shape[axis:])})
	return nil
}

func (s *Shapes) inferGemm(n *onnxpb.NodeProto, _ TypeInfo, _ bool) error {
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
	return nil
}

func (s *Shapes) inferMatMul(n *onnxpb.NodeProto, _ TypeInfo, _ bool) error {
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
	return nil
}

func (s *Shapes) inferTranspose(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
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
	return nil
}

// inferShape gives the Shape op's output its value: x's dimensions from start
// to end.
func (s *Shapes) inferShape(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
	if !hasX {
		return nil
	}
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
	return nil
}

func (s *Shapes) inferSize(n *onnxpb.NodeProto, _ TypeInfo, _ bool) error {
	s.set(n, 0, Int64, Shape{})
	return nil
}

func (s *Shapes) inferConstant(n *onnxpb.NodeProto, _ TypeInfo, _ bool) error {
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
	return nil
}

func (s *Shapes) inferConstantOfShape(n *onnxpb.NodeProto, _ TypeInfo, _ bool) error {
	v, ok := s.val(n, 0)
	if !ok {
		return nil
	}
	elem := Float
	if a := FindAttr(n, "value"); a != nil && a.GetT() != nil {
		elem = a.GetT().GetDataType()
	}
	s.set(n, 0, elem, Shape(v))
	return nil
}

func (s *Shapes) inferReshape(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
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
	s.copyValue(n)
	return nil
}

func (s *Shapes) inferExpand(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
	v, ok := s.val(n, 1)
	if !hasX || !ok {
		return nil
	}
	out, err := Broadcast(x.Shape, Shape(v))
	if err != nil {
		return err
	}
	s.set(n, 0, x.Elem, out)
	return nil
}

func (s *Shapes) inferPad(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
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
	return nil
}

func (s *Shapes) inferRange(n *onnxpb.NodeProto, _ TypeInfo, _ bool) error {
	st, ok1 := s.val(n, 0)
	lim, ok2 := s.val(n, 1)
	dl, ok3 := s.val(n, 2)
	if ok1 && ok2 && ok3 && len(st) == 1 && len(lim) == 1 && len(dl) == 1 && st[0].Known() && lim[0].Known() && dl[0].Value != 0 {
		cnt := max(int64(0), ceilDiv(lim[0].Value-st[0].Value, dl[0].Value))
		s.set(n, 0, Int64, ShapeOf(cnt))
	}
	return nil
}

func (s *Shapes) inferOneHot(n *onnxpb.NodeProto, _ TypeInfo, _ bool) error {
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
	return nil
}

func (s *Shapes) inferSoftmaxCrossEntropyLoss(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
	if hasX {
		if GetString(n, "reduction", "mean") == "none" {
			s.set(n, 0, x.Elem, Shape{x.Shape[0]})
		} else {
			s.set(n, 0, x.Elem, Shape{})
		}
		s.set(n, 1, x.Elem, x.Shape)
	}
	return nil
}

func (s *Shapes) inferTopK(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
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
	return nil
}

func (s *Shapes) inferWindow(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
	if !hasX || len(x.Shape) < 3 {
		return nil
	}
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

func (s *Shapes) inferUnsqueeze(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
	if !hasX {
		return nil
	}
	axes, ok := s.axesOf(n, 1)
	if !ok {
		return nil
	}
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
	s.copyValue(n)
	return nil
}

func (s *Shapes) inferSqueeze(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
	if !hasX {
		return nil
	}
	axes, ok := s.axesOf(n, 1)
	if !ok {
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
	s.copyValue(n)
	return nil
}

func (s *Shapes) inferConcat(n *onnxpb.NodeProto, _ TypeInfo, _ bool) error {
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
	axes, ok := s.axesOf(n, 1)
	if !ok {
		return nil
	}
	return s.reduceAxes(n, x, axes, x.Elem)
}

// inferArgReduce is ArgMax's and ArgMin's rule: one axis, int64 indices.
func (s *Shapes) inferArgReduce(n *onnxpb.NodeProto, x TypeInfo, hasX bool) error {
	if !hasX {
		return nil
	}
	return s.reduceAxes(n, x, []int64{GetInt(n, "axis", 0)}, Int64)
}

// reduceAxes sets the output of a reduction of x over axes (none: all, or
// none at all with noop_with_empty_axes) with element type elem.
func (s *Shapes) reduceAxes(n *onnxpb.NodeProto, x TypeInfo, axes []int64, elem int32) error {
	keep := GetInt(n, "keepdims", 1) != 0
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
