// Package nchwc rewrites the convolutions of a graph whose weights are
// computed or fed at run time (trained weights, flipped kernels of backward
// passes) into ONNX Runtime's CPU-only NCHWc contrib ops (domain
// com.microsoft.nchwc: ReorderInput, Conv, ReorderOutput), with the weight
// reordered into the blocked OIHWBiBo / OIHWBo layout by Reshape and
// Transpose nodes inside the graph.
//
// ONNX Runtime applies the same transformation itself, but only to
// convolutions whose weights are constant initializers: it reorders them
// once at load. The blocked convolution kernel itself reads its weight from
// an ordinary input, so doing the reorder in the graph lets every
// convolution of a training step use it. The output of Lower runs on ONNX
// Runtime's CPU execution provider only; it computes the same values as its
// input up to float rounding.
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

// Lower returns a copy of m in which every two-dimensional, ungrouped Conv
// with a non-constant weight, and every unit-stride, ungrouped
// ConvTranspose, runs on the NCHWc kernel. blockSize is ONNX Runtime's
// NCHWc block size on this CPU (8 with AVX2, 16 with AVX-512); the channel
// counts of a rewritten node must be multiples of it (input channels may
// also be fewer than a block). m is not modified.
func Lower(m *onnxio.Model, blockSize int) (*onnxio.Model, Stats, error) {
	var st Stats
	if blockSize < 4 || blockSize&(blockSize-1) != 0 {
		return nil, st, fmt.Errorf("nchwc: block size %d (want a power of two ≥ 4)", blockSize)
	}
	out := m.Clone()
	g := out.Graph()
	shapes, err := onnxio.InferShapes(out)
	if err != nil {
		return nil, st, fmt.Errorf("nchwc: %w", err)
	}
	consts := map[string]bool{}
	for _, t := range g.GetInitializer() {
		consts[t.GetName()] = true
	}
	for _, in := range g.GetInput() {
		delete(consts, in.GetName()) // an initializer that is also an input can be fed
	}
	b := onnxio.NewBuilder(g, "nchwc/")
	old := g.GetNode()
	g.Node = nil
	bs := int64(blockSize)
	for _, n := range old {
		var ok bool
		switch n.GetOpType() {
		case "Conv":
			if n.GetDomain() == "" && !consts[input(n, 1)] {
				ok = lowerConv(b, n, shapes, bs)
				if ok {
					st.Convs++
				}
			}
		case "ConvTranspose":
			if n.GetDomain() == "" {
				ok = lowerConvTranspose(b, n, shapes, bs)
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
	return out, st, nil
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

func lowerConv(b *onnxio.Builder, n *onnxpb.NodeProto, shapes *onnxio.Shapes, bs int64) bool {
	if onnxio.GetInt(n, "group", 1) != 1 || onnxio.GetString(n, "auto_pad", "NOTSET") != "NOTSET" {
		return false
	}
	xs, ws, ok := geometry(n, shapes)
	if !ok {
		return false
	}
	m, c := ws[0], ws[1]
	if m%bs != 0 || (c%bs != 0 && c >= bs) || c%4 != 0 && c >= bs || xs[1] != c {
		return false
	}
	x := input(n, 0)
	blocked := c%bs == 0
	var wb string
	if blocked {
		x = b.Op1("ReorderInput", []string{x})
		setDomain(b)
		// OIHW → [O/bs][I/bs][kh][kw][bi][bo]
		wb = reorderWeight(b, input(n, 1), []int64{m / bs, bs, c / bs, bs, ws[2], ws[3]}, []int64{0, 2, 4, 5, 3, 1}, ws, nil)
	} else {
		// OIHW → [O/bs][I][kh][kw][bo]
		wb = reorderWeight(b, input(n, 1), []int64{m / bs, bs, c, ws[2], ws[3]}, []int64{0, 2, 3, 4, 1}, ws, nil)
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
func lowerConvTranspose(b *onnxio.Builder, n *onnxpb.NodeProto, shapes *onnxio.Shapes, bs int64) bool {
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
	xs, ws, ok := geometry(n, shapes)
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
	x := b.Op1("ReorderInput", []string{input(n, 0)})
	setDomain(b)
	// [M, C, kh, kw] → flip kh, kw → [C/bs][M/bs][kh][kw][bi = m][bo = c]
	wb := reorderWeight(b, input(n, 1), []int64{m / bs, bs, c / bs, bs, ws[2], ws[3]}, []int64{2, 0, 4, 5, 1, 3}, []int64{c, m, ws[2], ws[3]}, []int64{4, 5})
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
