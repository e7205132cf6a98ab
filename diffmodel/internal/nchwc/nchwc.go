// Package nchwc rewrites the convolutions of a graph whose weights are
// computed or fed at run time (trained weights, flipped kernels of backward
// passes) into ONNX Runtime's CPU-only NCHWc contrib ops (domain
// com.microsoft.nchwc: ReorderInput, Conv, ReorderOutput), with the weight
// in the blocked OIHWBiBo / OIHWBo layout: a weight that is a plain graph
// input becomes a derived input the caller reorders (Derived.Reorder); a
// weight computed in the graph is reordered by Reshape and Transpose nodes.
//
// ONNX Runtime applies the same transformation itself, but only to
// convolutions whose weights are constant initializers: it reorders them
// once at load. The blocked convolution kernel itself reads its weight from
// an ordinary input, so supplying the blocked weight lets every
// convolution of a training step use it. The output of Lower runs on ONNX
// Runtime's CPU execution provider only; it computes the same values as its
// input up to float rounding. Graphs with subgraphs (If, Loop, Scan) are
// refused.
package nchwc

import (
	"fmt"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// Domain is the operator-set domain of ONNX Runtime's NCHWc ops.
const Domain = "com.microsoft.nchwc"

// Stats counts what Lower rewrote.
type Stats struct {
	Convs          int // Conv nodes moved to the NCHWc kernel
	ConvTransposes int // unit-stride ConvTranspose nodes rewritten as NCHWc Conv
	Skipped        int // Conv/ConvTranspose nodes left as they were
}

// Layout is a blocked weight layout the NCHWc convolution reads.
type Layout int

const (
	// OIHWBiBo: [O/bs][I/bs][kh][kw][i mod bs][o mod bs], for inputs in
	// NCHWc layout.
	OIHWBiBo Layout = iota
	// OIHWBo: [O/bs][I][kh][kw][o mod bs], for inputs in plain NCHW
	// layout with fewer channels than a block.
	OIHWBo
	// FlippedOIHWBiBo is OIHWBiBo of the transposed convolution's kernel:
	// from W [M, C, kh, kw], W′[c, m, y, x] = W[m, c, kh−1−y, kw−1−x].
	FlippedOIHWBiBo
)

// Derived is a graph input of a lowered model that the caller computes
// from another input before each run, with Reorder: a weight in a blocked
// layout. ONNX Runtime's Transpose runs these permutations at about
// 1 GB/s, so a weight that is fed anyway is cheaper to reorder on the Go
// side than in the graph.
type Derived struct {
	Name   string  // the new graph input
	From   string  // the input it is computed from (a weight [O, I, kh, kw])
	Shape  []int64 // From's shape
	Layout Layout
	Block  int // the block size
}

// OutShape is the shape of the derived input: Shape, with the first two
// axes swapped for FlippedOIHWBiBo.
func (d Derived) OutShape() []int64 {
	s := append([]int64(nil), d.Shape...)
	if d.Layout == FlippedOIHWBiBo {
		s[0], s[1] = s[1], s[0]
	}
	return s
}

// Reorder writes the derived tensor computed from src (From's values, in
// row-major order) into dst; both have the same number of elements.
func (d Derived) Reorder(dst, src []float32) {
	bs := d.Block
	o, i, kh, kw := int(d.Shape[0]), int(d.Shape[1]), int(d.Shape[2]), int(d.Shape[3])
	k := kh * kw
	switch d.Layout {
	case OIHWBiBo:
		at := 0
		for ob := 0; ob < o; ob += bs {
			for ib := 0; ib < i; ib += bs {
				for yx := range k {
					for bi := range bs {
						row := ((ob)*i+ib+bi)*k + yx
						for bo := range bs {
							dst[at] = src[row+bo*i*k]
							at++
						}
					}
				}
			}
		}
	case OIHWBo:
		at := 0
		for ob := 0; ob < o; ob += bs {
			for c := range i {
				for yx := range k {
					row := (ob*i+c)*k + yx
					for bo := range bs {
						dst[at] = src[row+bo*i*k]
						at++
					}
				}
			}
		}
	case FlippedOIHWBiBo:
		// src is W [M=o, C=i, kh, kw]; dst is [C/bs][M/bs][kh][kw][m][c].
		at := 0
		for cb := 0; cb < i; cb += bs {
			for mb := 0; mb < o; mb += bs {
				for yx := range k {
					fyx := k - 1 - yx // (kh−1−y)·kw + (kw−1−x)
					for bi := range bs {
						row := ((mb+bi)*i+cb)*k + fyx
						for bo := range bs {
							dst[at] = src[row+bo*k]
							at++
						}
					}
				}
			}
		}
	}
}

// Lower returns a copy of m in which every two-dimensional, ungrouped Conv
// with a non-constant weight, and every unit-stride, ungrouped
// ConvTranspose, runs on the NCHWc kernel. blockSize is ONNX Runtime's
// NCHWc block size on this CPU (8 with AVX2, 16 with AVX-512); the channel
// counts of a rewritten node must be multiples of it (input channels may
// also be fewer than a block). m is not modified.
//
// A weight that is a graph input is reordered by the caller: the lowered
// graph takes the blocked weight as a new input, listed in derived, and
// takes the original input only if some other node still reads it. Other
// weights (computed in the graph) are reordered by Reshape and Transpose
// nodes.
func Lower(m *onnxio.Model, blockSize int) (lowered *onnxio.Model, derived []Derived, st Stats, err error) {
	if blockSize < 4 || blockSize&(blockSize-1) != 0 {
		return nil, nil, st, fmt.Errorf("nchwc: block size %d (want a power of two ≥ 4)", blockSize)
	}
	for _, n := range m.Graph().GetNode() {
		for _, a := range n.GetAttribute() {
			if a.GetG() != nil || len(a.GetGraphs()) > 0 {
				return nil, nil, st, fmt.Errorf("nchwc: node %q (%s) has a subgraph", n.GetName(), n.GetOpType())
			}
		}
	}
	out := m.Clone()
	g := out.Graph()
	shapes, err := onnxio.InferShapes(out)
	if err != nil {
		return nil, nil, st, fmt.Errorf("nchwc: %w", err)
	}
	consts, inits := map[string]bool{}, map[string]bool{}
	for _, t := range g.GetInitializer() {
		consts[t.GetName()] = true
		inits[t.GetName()] = true
	}
	for _, in := range g.GetInput() {
		delete(consts, in.GetName()) // an initializer that is also an input can be fed
	}
	l := &lowering{
		b:      onnxio.NewBuilder(g, "nchwc/"),
		shapes: shapes,
		bs:     int64(blockSize),
		fed:    map[string]bool{},
		made:   map[string]string{},
	}
	for _, in := range g.GetInput() {
		// An initializer that is also an input has a default the caller
		// may rely on; only plain inputs are always fed.
		if !inits[in.GetName()] {
			l.fed[in.GetName()] = true
		}
	}
	old := g.GetNode()
	g.Node = nil
	for _, n := range old {
		var ok bool
		switch n.GetOpType() {
		case "Conv":
			if n.GetDomain() == "" && !consts[input(n, 1)] {
				ok = l.conv(n)
				if ok {
					st.Convs++
				}
			}
		case "ConvTranspose":
			if n.GetDomain() == "" {
				ok = l.convTranspose(n)
				if ok {
					st.ConvTransposes++
				}
			}
		}
		if !ok {
			if n.GetOpType() == "Conv" || n.GetOpType() == "ConvTranspose" {
				st.Skipped++
			}
			g.Node = append(g.Node, n)
		}
	}
	if st.Convs+st.ConvTransposes > 0 {
		addDomain(out)
	}
	// Feed the derived inputs; drop the inputs no node reads any more.
	used := map[string]bool{}
	for _, n := range g.GetNode() {
		for _, in := range n.GetInput() {
			used[in] = true
		}
	}
	for _, o := range g.GetOutput() {
		used[o.GetName()] = true
	}
	inputs := g.GetInput()[:0:0]
	for _, in := range g.GetInput() {
		if used[in.GetName()] || !l.source[in.GetName()] {
			inputs = append(inputs, in)
		}
	}
	for _, d := range l.derived {
		inputs = append(inputs, onnxio.ValueInfo(d.Name, onnxio.Float, onnxio.ShapeOf(d.OutShape()...)))
	}
	g.Input = inputs
	return out, l.derived, st, nil
}

// lowering is the state of one Lower call.
type lowering struct {
	b       *onnxio.Builder
	shapes  *onnxio.Shapes
	bs      int64
	fed     map[string]bool   // graph inputs
	made    map[string]string // reordered weight or input, by key
	source  map[string]bool   // graph inputs that derived inputs are made from
	derived []Derived
}

// weight returns the name of w reordered to layout: a derived input when w
// is a graph input, otherwise the output of reorder nodes. ws is w's shape.
func (l *lowering) weight(w string, ws []int64, layout Layout) string {
	key := fmt.Sprintf("%s|%d", w, layout)
	if name, ok := l.made[key]; ok {
		return name
	}
	var name string
	if l.fed[w] {
		name = l.b.Fresh(w + "@nchwc")
		l.derived = append(l.derived, Derived{Name: name, From: w, Shape: append([]int64(nil), ws...), Layout: layout, Block: int(l.bs)})
		if l.source == nil {
			l.source = map[string]bool{}
		}
		l.source[w] = true
	} else {
		o, c, bs := ws[0], ws[1], l.bs
		switch layout {
		case OIHWBiBo:
			name = reorderWeight(l.b, w, []int64{o / bs, bs, c / bs, bs, ws[2], ws[3]}, []int64{0, 2, 4, 5, 3, 1}, ws, nil)
		case OIHWBo:
			name = reorderWeight(l.b, w, []int64{o / bs, bs, c, ws[2], ws[3]}, []int64{0, 2, 3, 4, 1}, ws, nil)
		case FlippedOIHWBiBo:
			name = reorderWeight(l.b, w, []int64{o / bs, bs, c / bs, bs, ws[2], ws[3]}, []int64{2, 0, 4, 5, 1, 3}, []int64{c, o, ws[2], ws[3]}, []int64{4, 5})
		}
	}
	l.made[key] = name
	return name
}

// reorderInput returns x in NCHWc layout, reordering each tensor once.
func (l *lowering) reorderInput(x string) string {
	key := x + "|in"
	if name, ok := l.made[key]; ok {
		return name
	}
	name := l.b.Op1("ReorderInput", []string{x})
	setDomain(l.b)
	l.made[key] = name
	return name
}

func input(n *onnxpb.NodeProto, i int) string {
	if i < len(n.GetInput()) {
		return n.GetInput()[i]
	}
	return ""
}

func addDomain(m *onnxio.Model) {
	for _, o := range m.Proto.GetOpsetImport() {
		if o.GetDomain() == Domain {
			return
		}
	}
	m.Proto.OpsetImport = append(m.Proto.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: Domain, Version: 1})
}

// geometry returns the static 4-D shapes of a node's first two inputs.
func geometry(n *onnxpb.NodeProto, shapes *onnxio.Shapes) (x, w []int64, ok bool) {
	xs, ws := shapes.Shape(input(n, 0)), shapes.Shape(input(n, 1))
	if len(xs) != 4 || len(ws) != 4 || !ws.Static() {
		return nil, nil, false
	}
	for _, d := range xs[1:] {
		if !d.Known() {
			return nil, nil, false
		}
	}
	return xs.Ints(), ws.Ints(), true
}

func (l *lowering) conv(n *onnxpb.NodeProto) bool {
	b, bs := l.b, l.bs
	if onnxio.GetInt(n, "group", 1) != 1 || onnxio.GetString(n, "auto_pad", "NOTSET") != "NOTSET" {
		return false
	}
	xs, ws, ok := geometry(n, l.shapes)
	if !ok {
		return false
	}
	m, c := ws[0], ws[1]
	if m%bs != 0 || (c >= bs && c%bs != 0) || xs[1] != c {
		return false
	}
	x := input(n, 0)
	blocked := c%bs == 0
	var wb string
	if blocked {
		x = l.reorderInput(x)
		wb = l.weight(input(n, 1), ws, OIHWBiBo)
	} else {
		wb = l.weight(input(n, 1), ws, OIHWBo)
	}
	ins := []string{x, wb}
	if bias := input(n, 2); bias != "" {
		ins = append(ins, bias)
	}
	var attrs []*onnxpb.AttributeProto
	for _, a := range n.GetAttribute() {
		switch a.GetName() {
		case "kernel_shape", "pads", "strides", "dilations":
			attrs = append(attrs, a)
		}
	}
	y := b.Op1("Conv", ins, attrs...)
	setDomain(b)
	emitReorderOutput(b, y, n.GetOutput()[0], m)
	return true
}

// lowerConvTranspose rewrites a unit-stride ConvTranspose(dy, W) with W of
// shape [M, C, kh, kw] as Conv(dy, W') with W'[c, m, i, j] =
// W[m, c, kh−1−i, kw−1−j] and pads k−1−p.
func (l *lowering) convTranspose(n *onnxpb.NodeProto) bool {
	b, bs := l.b, l.bs
	if onnxio.GetInt(n, "group", 1) != 1 || onnxio.GetString(n, "auto_pad", "NOTSET") != "NOTSET" ||
		onnxio.FindAttr(n, "output_shape") != nil || input(n, 2) != "" {
		return false
	}
	for _, v := range onnxio.GetInts(n, "strides", nil) {
		if v != 1 {
			return false
		}
	}
	for _, v := range onnxio.GetInts(n, "dilations", nil) {
		if v != 1 {
			return false
		}
	}
	for _, v := range onnxio.GetInts(n, "output_padding", nil) {
		if v != 0 {
			return false
		}
	}
	xs, ws, ok := geometry(n, l.shapes)
	if !ok {
		return false
	}
	m, c := ws[0], ws[1] // dy has m channels, the result c
	if m%bs != 0 || c%bs != 0 || xs[1] != m {
		return false
	}
	pads := onnxio.GetInts(n, "pads", []int64{0, 0, 0, 0})
	cp := make([]int64, 4)
	for i := range 4 {
		cp[i] = ws[2+i%2] - 1 - pads[i]
		if cp[i] < 0 {
			return false
		}
	}
	x := l.reorderInput(input(n, 0))
	wb := l.weight(input(n, 1), ws, FlippedOIHWBiBo)
	y := b.Op1("Conv", []string{x, wb},
		onnxio.AttrInts("kernel_shape", ws[2], ws[3]), onnxio.AttrInts("pads", cp...))
	setDomain(b)
	emitReorderOutput(b, y, n.GetOutput()[0], c)
	return true
}

// reorderWeight reshapes w to split, reverses the axes in flip, transposes
// by perm and reshapes to final.
func reorderWeight(b *onnxio.Builder, w string, split, perm, final, flip []int64) string {
	t := b.Op1("Reshape", []string{w, b.Ints1(split...)})
	if len(flip) > 0 {
		starts := make([]int64, len(flip))
		ends := make([]int64, len(flip))
		steps := make([]int64, len(flip))
		for i := range flip {
			starts[i], ends[i], steps[i] = -1, -1<<63, -1
		}
		t = b.Op1("Slice", []string{t, b.Ints1(starts...), b.Ints1(ends...), b.Ints1(flip...), b.Ints1(steps...)})
	}
	t = b.Op1("Transpose", []string{t}, onnxio.AttrInts("perm", perm...))
	return b.Op1("Reshape", []string{t, b.Ints1(final...)})
}

func emitReorderOutput(b *onnxio.Builder, y, out string, channels int64) {
	b.G.Node = append(b.G.Node, &onnxpb.NodeProto{
		Name: b.Fresh("ReorderOutput"), OpType: "ReorderOutput", Domain: Domain,
		Input: []string{y}, Output: []string{out},
		Attribute: []*onnxpb.AttributeProto{onnxio.AttrInt("channels", channels)},
	})
}

// setDomain puts the node just appended into the NCHWc domain.
func setDomain(b *onnxio.Builder) {
	b.G.Node[len(b.G.Node)-1].Domain = Domain
}
