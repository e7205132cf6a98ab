package analyzer

import (
	"google.golang.org/protobuf/proto"

	"github.com/semirobust/srtool/onnxio/onnxpb"
)

func cloneVI(v *onnxpb.ValueInfoProto) *onnxpb.ValueInfoProto {
	return proto.Clone(v).(*onnxpb.ValueInfoProto)
}

func cloneVIs(vs []*onnxpb.ValueInfoProto) []*onnxpb.ValueInfoProto {
	out := make([]*onnxpb.ValueInfoProto, len(vs))
	for i, v := range vs {
		out[i] = cloneVI(v)
	}
	return out
}

// cloneModelShell copies everything of m but its graph, and sets g.
func cloneModelShell(m *onnxpb.ModelProto, g *onnxpb.GraphProto) *onnxpb.ModelProto {
	saved := m.Graph
	m.Graph = nil
	out := proto.Clone(m).(*onnxpb.ModelProto)
	m.Graph = saved
	out.Graph = g
	return out
}

func nodeDiv(a, b, out, name string) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{Name: name, OpType: "Div", Input: []string{a, b}, Output: []string{out}}
}
