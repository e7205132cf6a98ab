package analyzer

import (
	"fmt"
	"sort"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// CutTensor is one tensor crossing the cut.
type CutTensor struct {
	Name  string  `json:"name"`
	Shape []int64 `json:"shape"` // -1 for symbolic dims
	Elem  int32   `json:"elem_type"`
}

// Cut is a partition of the graph's nodes into head and tail.
type Cut struct {
	// After is the last head layer (0 for a tensor-defined cut).
	After   int         `json:"after_layer"`
	Tensors []CutTensor `json:"tensors"`
	head    map[int]bool
}

// CutAfter partitions the graph after weight layer a (1 ≤ a < L): the tail
// holds every node that depends on a weight layer numbered above a.
func (an *Analysis) CutAfter(a int) (*Cut, error) {
	if a < 1 || a >= len(an.Layers) {
		return nil, fmt.Errorf("split point %d out of range: the model has %d weight layers, so a must be in 1..%d", a, len(an.Layers), len(an.Layers)-1)
	}
	var later []int
	for _, l := range an.Layers[a:] {
		later = append(later, l.Node)
	}
	tail := an.Index.Descendants(later)
	head := map[int]bool{}
	for i := range an.Model.Graph().GetNode() {
		if !tail[i] {
			head[i] = true
		}
	}
	c, err := an.makeCut(head)
	if err != nil {
		return nil, err
	}
	c.After = a
	return c, nil
}

// CutTail partitions the graph so that the tail holds the last k weight layers.
func (an *Analysis) CutTail(k int) (*Cut, error) {
	if k < 1 || k >= len(an.Layers) {
		return nil, fmt.Errorf("tail of %d weight layers out of range: the model has %d weight layers, so K must be in 1..%d", k, len(an.Layers), len(an.Layers)-1)
	}
	return an.CutAfter(len(an.Layers) - k)
}

// CutAt partitions the graph at a user-given set of tensors: the head holds
// every node needed to compute them, the tail the rest, and the tail must
// need no other head tensor.
func (an *Analysis) CutAt(tensors []string) (*Cut, error) {
	if len(tensors) == 0 {
		return nil, fmt.Errorf("no cut tensors given")
	}
	want := map[string]bool{}
	for _, t := range tensors {
		if _, ok := an.Index.Producer[t]; !ok {
			return nil, fmt.Errorf("cut tensor %q is not produced by any node", t)
		}
		want[t] = true
	}
	head := an.Index.Ancestors(tensors)
	c, err := an.makeCut(head)
	if err != nil {
		return nil, err
	}
	var extra []string
	for _, t := range c.Tensors {
		if !want[t.Name] {
			extra = append(extra, t.Name)
		}
	}
	if len(extra) > 0 {
		return nil, fmt.Errorf("the given tensors do not cut the graph: the tail also needs %v from the head", extra)
	}
	return c, nil
}

// makeCut computes the crossing tensors for a head node set. Constant nodes
// (no inputs) go with their consumers and are copied to both sides if needed.
func (an *Analysis) makeCut(head map[int]bool) (*Cut, error) {
	g := an.Model.Graph()
	consts := an.constNodes()
	produced := map[string]bool{}
	for i := range head {
		for _, o := range g.GetNode()[i].GetOutput() {
			produced[o] = true
		}
	}
	for _, in := range an.Index.Inputs {
		produced[in] = true // graph inputs are available on the head side
	}
	seen := map[string]bool{}
	var names []string
	for i, n := range g.GetNode() {
		if head[i] || consts[i] {
			continue
		}
		for _, in := range n.GetInput() {
			if in == "" || an.Index.IsInit(in) || seen[in] || !produced[in] {
				continue
			}
			if p, ok := an.Index.Producer[in]; ok && consts[p] {
				continue
			}
			seen[in] = true
			names = append(names, in)
		}
	}
	for _, o := range an.Index.Outputs {
		if p, ok := an.Index.Producer[o]; ok && head[p] && !consts[p] {
			return nil, fmt.Errorf("graph output %q would be computed in the head; choose a later split", o)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("the cut is empty: the tail does not depend on the head")
	}
	// Order cut tensors by producer position, graph inputs first.
	pos := func(t string) int {
		if p, ok := an.Index.Producer[t]; ok {
			return p
		}
		return -1
	}
	sort.SliceStable(names, func(i, j int) bool { return pos(names[i]) < pos(names[j]) })
	c := &Cut{head: head}
	for _, t := range names {
		ti := an.Shapes.Types[t]
		elem := ti.Elem
		if elem == 0 {
			elem = onnxio.Float
		}
		c.Tensors = append(c.Tensors, CutTensor{Name: t, Shape: ti.Shape.Ints(), Elem: elem})
	}
	return c, nil
}

// constNodes returns the nodes that depend on no graph input: Constant nodes
// and chains over initializers only (e.g. Identity of a shared weight). They
// are copied to every side that reads them.
func (an *Analysis) constNodes() map[int]bool {
	g := an.Model.Graph()
	isConst := map[int]bool{}
	for _, i := range an.Index.Order {
		c := true
		for _, in := range g.GetNode()[i].GetInput() {
			if in == "" || an.Index.IsInit(in) {
				continue
			}
			if p, ok := an.Index.Producer[in]; ok && isConst[p] {
				continue
			}
			c = false
			break
		}
		isConst[i] = c
	}
	return isConst
}

// Split builds the head and tail models of a cut. Both keep the model's
// opset imports, IR version and metadata; head outputs and tail inputs are
// the cut tensors with their original names and inferred shapes; each
// initializer goes only to the side(s) that use it.
func (an *Analysis) Split(c *Cut) (head, tail *onnxio.Model, err error) {
	g := an.Model.Graph()
	consts := an.constNodes()
	var headNodes, tailNodes []*onnxpb.NodeProto
	for _, i := range an.Index.Order {
		n := g.GetNode()[i]
		switch {
		case consts[i]:
			// Decided below by use.
		case c.head[i]:
			headNodes = append(headNodes, n)
		default:
			tailNodes = append(tailNodes, n)
		}
	}
	// Constant nodes go to each side that reads them.
	addConsts := func(nodes []*onnxpb.NodeProto) []*onnxpb.NodeProto {
		need := map[string]bool{}
		for _, n := range nodes {
			for _, in := range n.GetInput() {
				need[in] = true
			}
		}
		// Walk backwards so that constant chains (Constant → Identity) are pulled in whole.
		picked := map[int]bool{}
		for k := len(an.Index.Order) - 1; k >= 0; k-- {
			i := an.Index.Order[k]
			if !consts[i] {
				continue
			}
			for _, o := range g.GetNode()[i].GetOutput() {
				if need[o] {
					picked[i] = true
					for _, in := range g.GetNode()[i].GetInput() {
						need[in] = true
					}
					break
				}
			}
		}
		var out []*onnxpb.NodeProto
		for _, i := range an.Index.Order {
			if picked[i] {
				out = append(out, g.GetNode()[i])
			}
		}
		return append(out, nodes...)
	}
	headNodes = addConsts(headNodes)
	tailNodes = addConsts(tailNodes)

	var cutVI []*onnxpb.ValueInfoProto
	cutNames := map[string]bool{}
	for _, t := range c.Tensors {
		cutVI = append(cutVI, onnxio.ValueInfo(t.Name, t.Elem, an.Shapes.Types[t.Name].Shape))
		cutNames[t.Name] = true
	}

	// Head: original non-initializer inputs that it reads, cut tensors out.
	headGraph := &onnxpb.GraphProto{Name: g.GetName() + "_head", Node: headNodes, Output: cloneVIs(cutVI)}
	tailGraph := &onnxpb.GraphProto{Name: g.GetName() + "_tail", Node: tailNodes, Output: cloneVIs(g.GetOutput())}
	// Graph inputs that are cut tensors (tail reads the model input directly) pass through.
	for _, in := range g.GetInput() {
		if an.Index.IsInit(in.GetName()) {
			continue
		}
		if usedBy(headNodes, in.GetName()) || cutNames[in.GetName()] {
			headGraph.Input = append(headGraph.Input, cloneVI(in))
		}
	}
	if len(headGraph.GetInput()) == 0 {
		for _, in := range g.GetInput() {
			if !an.Index.IsInit(in.GetName()) {
				headGraph.Input = append(headGraph.Input, cloneVI(in))
			}
		}
	}
	// A cut tensor that is a graph input (the tail reads the model input
	// directly) is listed as both input and output of the head.
	tailGraph.Input = cloneVIs(cutVI)
	distributeInits(g, headGraph)
	distributeInits(g, tailGraph)
	keepValueInfo(g, headGraph)
	keepValueInfo(g, tailGraph)

	head = &onnxio.Model{Proto: cloneModelShell(an.Model.Proto, headGraph), Dir: an.Model.Dir}
	tail = &onnxio.Model{Proto: cloneModelShell(an.Model.Proto, tailGraph), Dir: an.Model.Dir}
	if err := head.Validate(); err != nil {
		return nil, nil, fmt.Errorf("head model: %w", err)
	}
	if err := tail.Validate(); err != nil {
		return nil, nil, fmt.Errorf("tail model: %w", err)
	}
	return head, tail, nil
}

func usedBy(nodes []*onnxpb.NodeProto, name string) bool {
	for _, n := range nodes {
		for _, in := range n.GetInput() {
			if in == name {
				return true
			}
		}
	}
	return false
}

// distributeInits copies into sub the initializers its nodes read (shared
// tensor data, not deep copies: callers must not edit one side in place).
func distributeInits(g, sub *onnxpb.GraphProto) {
	need := map[string]bool{}
	for _, n := range sub.GetNode() {
		for _, in := range n.GetInput() {
			need[in] = true
		}
		for _, a := range n.GetAttribute() {
			if a.GetG() != nil {
				for _, sn := range a.GetG().GetNode() {
					for _, in := range sn.GetInput() {
						need[in] = true
					}
				}
			}
		}
	}
	for _, t := range g.GetInitializer() {
		if need[t.GetName()] {
			sub.Initializer = append(sub.Initializer, t)
		}
	}
	// Keep initializers that the original also listed as graph inputs (overridable).
	inits := map[string]bool{}
	for _, t := range sub.Initializer {
		inits[t.GetName()] = true
	}
	for _, in := range g.GetInput() {
		if inits[in.GetName()] {
			sub.Input = append(sub.Input, cloneVI(in))
		}
	}
}

func keepValueInfo(g, sub *onnxpb.GraphProto) {
	have := map[string]bool{}
	for _, n := range sub.GetNode() {
		for _, o := range n.GetOutput() {
			have[o] = true
		}
	}
	for _, o := range sub.GetOutput() {
		delete(have, o.GetName())
	}
	for _, vi := range g.GetValueInfo() {
		if have[vi.GetName()] {
			sub.ValueInfo = append(sub.ValueInfo, cloneVI(vi))
		}
	}
}
