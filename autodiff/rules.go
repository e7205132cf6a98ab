package autodiff

import "github.com/semirobust/srtool/onnxio/onnxpb"

// vjp is a vector-Jacobian product rule: given a forward node and the
// gradients of its outputs (dy[i] == "" when output i gets none), it emits
// nodes computing the gradient of each input i with need[i] set and returns
// their names ("" for inputs it leaves alone).
type vjp func(c *ctx, n *onnxpb.NodeProto, dy []string, need []bool) []string

// rules is the table of VJP rules keyed by ONNX op type.
var rules = map[string]vjp{
	// vjp_conv.go
	"Conv": vjpConv,
	// vjp_norm.go
	"BatchNormalization": vjpBatchNorm,
	// vjp_pool.go
	"MaxPool":           vjpMaxPool,
	"AveragePool":       vjpAveragePool,
	"GlobalAveragePool": vjpGlobalAveragePool,
	"ReduceMean":        vjpReduce,
	"ReduceSum":         vjpReduce,
	// vjp_linear.go
	"Gemm":   vjpGemm,
	"MatMul": vjpMatMul,
	// vjp_elementwise.go
	"Add":        vjpAdd,
	"Sub":        vjpSub,
	"Mul":        vjpMul,
	"Div":        vjpDiv,
	"Neg":        vjpNeg,
	"Relu":       vjpRelu,
	"LeakyRelu":  vjpLeakyRelu,
	"Sigmoid":    vjpSigmoid,
	"Tanh":       vjpTanh,
	"Clip":       vjpClip,
	"Softmax":    vjpSoftmax,
	"LogSoftmax": vjpLogSoftmax,
	"Identity":   vjpIdentity,
	"Dropout":    vjpDropout,
	// vjp_shape.go
	"Flatten":   vjpReshape,
	"Reshape":   vjpReshape,
	"Squeeze":   vjpReshape,
	"Unsqueeze": vjpReshape,
	"Transpose": vjpTranspose,
	"Concat":    vjpConcat,
	"Pad":       vjpPad,
}

// in returns input i of n ("" if absent).
func in(n *onnxpb.NodeProto, i int) string {
	if i < len(n.GetInput()) {
		return n.GetInput()[i]
	}
	return ""
}

// out returns output i of n ("" if absent).
func out(n *onnxpb.NodeProto, i int) string {
	if i < len(n.GetOutput()) {
		return n.GetOutput()[i]
	}
	return ""
}

func grads(n *onnxpb.NodeProto) []string { return make([]string, len(n.GetInput())) }
