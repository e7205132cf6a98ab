package onnxio

import (
	"fmt"

	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// Index answers producer/consumer questions about a graph. It is a snapshot:
// rebuild it after editing the graph.
type Index struct {
	Graph *onnxpb.GraphProto
	// Producer maps a tensor name to the index of the node producing it.
	Producer map[string]int
	// Consumers maps a tensor name to the indices of the nodes reading it, in node order.
	Consumers map[string][]int
	// Init maps initializer names to initializers.
	Init map[string]*onnxpb.TensorProto
	// Aliases maps Identity outputs that copy an initializer to its name
	// (InitializerAliases): parameters the PyTorch exporter tied.
	Aliases map[string]string
	// Inputs holds the names of graph inputs that are not initializers.
	Inputs []string
	// Outputs holds the graph output names.
	Outputs []string
	// Order is a topological order of node indices (the node list order when
	// it is already topological, as ONNX requires).
	Order []int
}

// NewIndex indexes g. It fails if a tensor is produced twice or the graph has a cycle.
func NewIndex(g *onnxpb.GraphProto) (*Index, error) {
	ix := &Index{
		Graph:     g,
		Producer:  map[string]int{},
		Consumers: map[string][]int{},
		Init:      map[string]*onnxpb.TensorProto{},
	}
	for _, t := range g.GetInitializer() {
		ix.Init[t.GetName()] = t
	}
	for _, in := range g.GetInput() {
		if _, ok := ix.Init[in.GetName()]; !ok {
			ix.Inputs = append(ix.Inputs, in.GetName())
		}
	}
	for _, out := range g.GetOutput() {
		ix.Outputs = append(ix.Outputs, out.GetName())
	}
	for i, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			if o == "" {
				continue
			}
			if j, dup := ix.Producer[o]; dup {
				return nil, fmt.Errorf("tensor %q is produced by nodes %d and %d", o, j, i)
			}
			ix.Producer[o] = i
		}
	}
	for i, n := range g.GetNode() {
		seen := map[string]bool{}
		for _, in := range n.GetInput() {
			if in == "" || seen[in] {
				continue
			}
			seen[in] = true
			ix.Consumers[in] = append(ix.Consumers[in], i)
		}
	}
	order, err := ix.topo()
	if err != nil {
		return nil, err
	}
	ix.Order = order
	ix.Aliases = InitializerAliases(g)
	return ix, nil
}

// topo returns a topological order (Kahn's algorithm); for a node list that
// is already sorted, as ONNX requires, it is the node order.
func (ix *Index) topo() ([]int, error) {
	nodes := ix.Graph.GetNode()
	indeg := make([]int, len(nodes))
	for i, n := range nodes {
		// One count per distinct produced input tensor, as Consumers lists a
		// node once per tensor it reads: a node reading two outputs of one
		// producer waits for both decrements.
		seen := map[string]bool{}
		for _, in := range n.GetInput() {
			if _, ok := ix.Producer[in]; ok && !seen[in] {
				seen[in] = true
				indeg[i]++
			}
		}
	}
	order := make([]int, 0, len(nodes))
	// Nodes are nearly always already sorted, so a simple scan-based queue is fine.
	ready := make([]bool, len(nodes))
	done := make([]bool, len(nodes))
	for i := range nodes {
		ready[i] = indeg[i] == 0
	}
	next := 0
	for len(order) < len(nodes) {
		i := -1
		for j := 0; j < len(nodes); j++ {
			k := (next + j) % len(nodes)
			if ready[k] && !done[k] {
				i = k
				break
			}
		}
		if i < 0 {
			return nil, fmt.Errorf("graph has a cycle")
		}
		done[i] = true
		order = append(order, i)
		next = i
		for _, o := range nodes[i].GetOutput() {
			for _, c := range ix.Consumers[o] {
				indeg[c]--
				if indeg[c] == 0 {
					ready[c] = true
				}
			}
		}
	}
	return order, nil
}

// Node returns node i.
func (ix *Index) Node(i int) *onnxpb.NodeProto { return ix.Graph.GetNode()[i] }

// IsInit reports whether name is an initializer.
func (ix *Index) IsInit(name string) bool { _, ok := ix.Init[name]; return ok }

// Ancestors returns the set of node indices needed to compute the given tensors.
func (ix *Index) Ancestors(tensors []string) map[int]bool {
	seen := map[int]bool{}
	stack := append([]string(nil), tensors...)
	for len(stack) > 0 {
		t := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		p, ok := ix.Producer[t]
		if !ok || seen[p] {
			continue
		}
		seen[p] = true
		stack = append(stack, ix.Node(p).GetInput()...)
	}
	return seen
}

// Descendants returns the set of node indices that read, directly or not, any of the given nodes' outputs,
// including the given nodes themselves.
func (ix *Index) Descendants(nodes []int) map[int]bool {
	seen := map[int]bool{}
	stack := append([]int(nil), nodes...)
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[i] {
			continue
		}
		seen[i] = true
		for _, o := range ix.Node(i).GetOutput() {
			stack = append(stack, ix.Consumers[o]...)
		}
	}
	return seen
}
