package semirobust

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/semirobust/srtool/analyzer"
	"github.com/semirobust/srtool/checkpoint"
	"github.com/semirobust/srtool/finetune"
	"github.com/semirobust/srtool/onnxio"
)

// Setup is a robust model whose tail was replaced by a normal
// model's, ready for Algorithm 1.
type Setup struct {
	// Robust is f*; Start is (f*_a, f_b), f* with f's tail.
	Robust, Start *onnxio.Model
	// Analysis is f*'s; Cut splits it after the head, Part names the
	// head's and tail's parameters and BatchNorm statistics.
	Analysis *analyzer.Analysis
	Cut      *analyzer.Cut
	Part     analyzer.Partition
	// Layers counts f*'s weight layers, FbLayers the tail's (K).
	Layers   int
	FbLayers int
	// HeadBN is the frozen head's BatchNorm mode: "eval" or "train".
	HeadBN finetune.BNMode
}

// NewSetup builds (f*_a, f_b): the robust model with every tail
// parameter and BN buffer taken from the normal model, matched by PyTorch
// name (or, when the names differ, by position among parameters of equal
// shapes). The tail is the last fbLayers weight layers or, with fbLayers 0,
// every layer after layer at; headBN is "eval" (also "") or "train", other
// values wrap ErrOption.
func NewSetup(robust, normal *onnxio.Model, at, fbLayers int, headBN finetune.BNMode) (*Setup, error) {
	an, err := analyzer.Analyze(robust)
	if err != nil {
		return nil, fmt.Errorf("robust model: %w", err)
	}
	nan, err := analyzer.Analyze(normal)
	if err != nil {
		return nil, fmt.Errorf("normal model: %w", err)
	}
	if len(an.Layers) != len(nan.Layers) {
		return nil, fmt.Errorf("the robust model has %d weight layers and the normal one %d: architectures do not match", len(an.Layers), len(nan.Layers))
	}
	for i := range an.Layers {
		a, b := an.Layers[i], nan.Layers[i]
		if a.Op != b.Op || a.ParamCount != b.ParamCount {
			return nil, fmt.Errorf("weight layer %d is %s with %d parameters in the robust model but %s with %d in the normal one: architectures do not match", i+1, a.Op, a.ParamCount, b.Op, b.ParamCount)
		}
	}
	var cut *analyzer.Cut
	if fbLayers > 0 {
		cut, err = an.CutTail(fbLayers)
	} else {
		cut, err = an.CutAfter(at)
	}
	if err != nil {
		return nil, err
	}
	part := an.Partition(cut)
	if len(part.TailParams) == 0 {
		return nil, fmt.Errorf("the split after layer %d leaves no trainable parameter in the tail", cut.After)
	}
	switch headBN {
	case "", finetune.HeadBNEval:
		headBN = finetune.HeadBNEval
	case finetune.HeadBNTrain:
	default:
		return nil, optionf("--head-bn %q: want eval or train", headBN)
	}
	src, err := checkpoint.Export(normal)
	if err != nil {
		return nil, fmt.Errorf("normal model: %w", err)
	}
	dst, err := checkpoint.Export(robust)
	if err != nil {
		return nil, fmt.Errorf("robust model: %w", err)
	}
	names := append(append([]string(nil), part.TailParams...), part.TailStats...)
	tail := map[string]checkpoint.Tensor{}
	byName := true
	for _, n := range names {
		if _, ok := src[n]; !ok {
			byName = false
			break
		}
	}
	if byName {
		for _, n := range names {
			if fmt.Sprint(src[n].Shape) != fmt.Sprint(dst[n].Shape) {
				return nil, fmt.Errorf("tail parameter %s has shape %v in the normal model but %v in the robust one", n, src[n].Shape, dst[n].Shape)
			}
			tail[n] = src[n]
		}
	} else {
		// Names were folded or renamed: match by position in the parameter order.
		rn, nn := exportOrder(robust, dst), exportOrder(normal, src)
		if len(rn) != len(nn) {
			return nil, fmt.Errorf("the models have %d and %d parameter tensors and different names: architectures do not match", len(rn), len(nn))
		}
		pos := map[string]int{}
		for i, n := range rn {
			pos[n] = i
		}
		for _, n := range names {
			i, ok := pos[n]
			if !ok {
				return nil, fmt.Errorf("tail parameter %s not found in the robust model's parameters", n)
			}
			s := src[nn[i]]
			if fmt.Sprint(s.Shape) != fmt.Sprint(dst[n].Shape) {
				return nil, fmt.Errorf("matching by position: %s %v (robust) vs %s %v (normal): architectures do not match", n, dst[n].Shape, nn[i], s.Shape)
			}
			tail[n] = s
		}
	}
	start := robust.Clone()
	if _, err := checkpoint.Import(start, tail, checkpoint.ImportOptions{AllowMissing: true}); err != nil {
		return nil, err
	}
	return &Setup{Robust: robust, Start: start, Analysis: an, Cut: cut, Part: part, Layers: len(an.Layers), FbLayers: len(an.Layers) - cut.After, HeadBN: headBN}, nil
}

// exportOrder lists exported parameter names in initializer order, then
// the exporter-tied ones (onnxio.InitializerAliases) in node order.
func exportOrder(m *onnxio.Model, ts map[string]checkpoint.Tensor) []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range m.Graph().GetInitializer() {
		if _, ok := ts[t.GetName()]; ok && !seen[t.GetName()] {
			seen[t.GetName()] = true
			out = append(out, t.GetName())
		}
	}
	aliases := onnxio.InitializerAliases(m.Graph())
	for _, n := range m.Graph().GetNode() {
		if n.GetOpType() == "Identity" && len(n.GetOutput()) == 1 && aliases[n.GetOutput()[0]] != "" {
			if _, ok := ts[n.GetOutput()[0]]; ok && !seen[n.GetOutput()[0]] {
				seen[n.GetOutput()[0]] = true
				out = append(out, n.GetOutput()[0])
			}
		}
	}
	return out
}

// UntrainedTail is (f*_a, f_b⁰): the semirobust start with every tail
// parameter re-initialised as PyTorch initialises a fresh module, seeded:
// conv and linear weights and biases uniform in ±1/√fan_in (kaiming_uniform
// with a = √5), BatchNorm scale 1, shift 0, running mean 0, variance 1.
func UntrainedTail(s *Setup, seed uint64) (*onnxio.Model, error) {
	tail := map[string]bool{}
	for _, n := range s.Part.TailParams {
		tail[n] = true
	}
	for _, n := range s.Part.TailStats {
		tail[n] = true
	}
	bn := map[string]bool{}
	for _, n := range s.Part.TailBN {
		bn[n] = true
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	ps := finetune.Params{}
	// newParam allocates name's new value in ps, shaped as in the model.
	newParam := func(name string) ([]float32, error) {
		dims, err := ShapeOf(s.Start, name)
		if err != nil {
			return nil, err
		}
		n := 1
		for _, d := range dims {
			n *= int(d)
		}
		ps[name] = make([]float32, n)
		return ps[name], nil
	}
	fill := func(name string, v float32) error {
		x, err := newParam(name)
		for i := range x {
			x[i] = v
		}
		return err
	}
	uniform := func(name string, fanIn int64) error {
		x, err := newParam(name)
		bound := 1 / math.Sqrt(float64(max(fanIn, 1)))
		for i := range x {
			x[i] = float32((2*rng.Float64() - 1) * bound)
		}
		return err
	}
	for _, node := range s.Start.Graph().GetNode() {
		in := node.GetInput()
		switch {
		case bn[node.GetName()] && len(in) >= 5:
			for i, v := range []float32{1, 0, 0, 1} {
				if tail[in[i+1]] {
					if err := fill(in[i+1], v); err != nil {
						return nil, err
					}
				}
			}
		case (node.GetOpType() == "Conv" || node.GetOpType() == "Gemm") && len(in) >= 2 && tail[in[1]]:
			dims, err := ShapeOf(s.Start, in[1])
			if err != nil {
				return nil, err
			}
			fanIn := int64(1)
			for _, d := range dims[1:] {
				fanIn *= d
			}
			if err := uniform(in[1], fanIn); err != nil {
				return nil, err
			}
			if len(in) >= 3 && tail[in[2]] {
				if err := uniform(in[2], fanIn); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, n := range s.Part.TailParams {
		if _, ok := ps[n]; !ok {
			return nil, fmt.Errorf("--untrained-fb: tail parameter %s is not a Conv, Gemm or BatchNormalization input; cannot re-initialise it", n)
		}
	}
	return WithParams(s.Start, ps)
}

// TailParamCount is the number of trainable parameters of K's tail.
func TailParamCount(s *Setup) (int64, error) {
	var n int64
	for _, name := range s.Part.TailParams {
		dims, err := ShapeOf(s.Start, name)
		if err != nil {
			return 0, err
		}
		p := int64(1)
		for _, d := range dims {
			p *= d
		}
		n += p
	}
	return n, nil
}
