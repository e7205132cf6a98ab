package analyzer

import (
	"sort"

	"github.com/semirobust/srtool/onnxio"
)

// Partition sorts a cut's parameters and BatchNorm nodes by side.
type Partition struct {
	// HeadParams and TailParams are the float initializers read by the
	// weight layers (weights, biases) and BatchNorm scales and shifts of
	// each side, in graph order.
	HeadParams, TailParams []string
	// HeadStats and TailStats are the BatchNorm running means and variances.
	HeadStats, TailStats []string
	// HeadBN and TailBN are the BatchNormalization node names.
	HeadBN, TailBN []string
}

// Partition lists the trainable parameters, BN statistics and BN nodes on
// each side of c, under the names the nodes read: for an initializer behind
// an Identity (the exporter's de-duplication of equal tensors) that is the
// Identity's output, which carries the PyTorch name.
func (an *Analysis) Partition(c *Cut) Partition {
	var p Partition
	seen := map[string]bool{}
	add := func(list *[]string, name string) {
		if name == "" || seen[name] {
			return
		}
		seen[name] = true
		*list = append(*list, name)
	}
	consts := an.constNodes()
	for _, i := range an.Index.Order {
		if consts[i] {
			continue
		}
		n := an.Index.Node(i)
		head := c.head[i]
		params, stats, bns := &p.TailParams, &p.TailStats, &p.TailBN
		if head {
			params, stats, bns = &p.HeadParams, &p.HeadStats, &p.HeadBN
		}
		in := n.GetInput()
		switch n.GetOpType() {
		case "Conv", "ConvTranspose", "Gemm", "MatMul":
			for _, x := range in[1:] {
				if name := an.resolveInit(x); name != "" && an.Index.Init[name].GetDataType() == onnxio.Float {
					add(params, x)
				}
			}
		case "BatchNormalization":
			*bns = append(*bns, n.GetName())
			for k, x := range in[1:] {
				if an.resolveInit(x) == "" {
					continue
				}
				if k < 2 {
					add(params, x)
				} else {
					add(stats, x)
				}
			}
		}
	}
	return p
}

// Params returns every parameter name of the model's weight layers and
// BatchNorms (both sides of any cut), sorted.
func (p Partition) Params() []string {
	out := append(append([]string(nil), p.HeadParams...), p.TailParams...)
	sort.Strings(out)
	return out
}

// WholeModel returns a cut with an empty head: every node is in the tail,
// e.g. to train all parameters.
func (an *Analysis) WholeModel() *Cut { return &Cut{head: map[int]bool{}} }
