package arch

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// Opset is the ai.onnx opset version of every model Build returns.
const Opset = 17

// Config sets the input, the classifier and the initialisation of a model.
// The zero value is a 3×32×32 input, 10 classes, the architecture's base width
// and seed 0.
type Config struct {
	// In is the input's channels, height and width (C, H, W); all zero means
	// 3×32×32. H and W must allow the architecture's downsampling: at least
	// 8 for the ResNets (three stride-2 stages), 4 for the WRNs (two).
	In [3]int `json:"in"`
	// Classes is the number of logits; 0 means 10, otherwise at least 2.
	Classes int `json:"classes"`
	// Width is the base width (channels of the first stage): 0 means the
	// architecture's own (64 for the ResNets, 16 for the WRNs).
	Width int `json:"width"`
	// Seed seeds the random initialisation.
	Seed uint64 `json:"seed"`
	// Normalize, when set, makes the model normalise its input inside the
	// graph (see Normalization); nil means the input feeds conv1 directly.
	Normalize *Normalization `json:"normalize,omitempty"`
}

// Normalization is per-channel input normalisation inside the model, as
// RobustBench's normalising subclasses do it: the graph computes
// (input − mu) / sigma before conv1, with mu and sigma stored as float32
// initializers named "mu" and "sigma" of shape [1, C, 1, 1] — the names and
// shapes of those subclasses' buffers, so a checkpoint's mu and sigma load by
// name and the model keeps taking pixels in [0,1]. They are constants of the
// graph, not trainable parameters (srtool trains only Conv, Gemm and
// BatchNormalization inputs). Mean and Std hold one value per input channel;
// every Std value must be positive.
type Normalization struct {
	Mean []float32 `json:"mean"`
	Std  []float32 `json:"std"`
}

// ErrUnknownArch is wrapped by Build's error for a name it does not know.
var ErrUnknownArch = errors.New("unknown architecture")

// MaxParams bounds the number of parameters and buffers of a model: a
// protobuf message, hence a self-contained ONNX file, is at most 2 GiB.
const MaxParams = 500_000_000

// pcgStream is the second PCG word; with Config.Seed it fixes the generator.
const pcgStream = 0x7372746f6f6c6172 // "srtoolar"

// family describes one fixed architecture name.
type family struct {
	build func(n *net, cfg Config)
	width int // default base width
	down  int // total downsampling factor of the body
}

var families = map[string]family{
	"resnet18":           {build: func(n *net, c Config) { kuangResNet(n, c, [4]int{2, 2, 2, 2}) }, width: 64, down: 8},
	"resnet-small":       {build: func(n *net, c Config) { kuangResNet(n, c, [4]int{1, 1, 1, 1}) }, width: 64, down: 8},
	"preact-resnet18":    {build: func(n *net, c Config) { preActResNet(n, c, false) }, width: 64, down: 8},
	"preact-resnet18-bn": {build: func(n *net, c Config) { preActResNet(n, c, true) }, width: 64, down: 8},
	"wrn-28-10":          wrnFamily(28, 10),
	"wrn-34-10":          wrnFamily(34, 10),
}

func wrnFamily(depth, widen int) family {
	return family{build: func(n *net, c Config) { wideResNet(n, c, depth, widen) }, width: 16, down: 4}
}

// Names returns the architecture names Build accepts, sorted. Besides these,
// Build accepts any "wrn-D-K" (WideResNet of depth D = 6n+4 ≥ 10 and widen
// factor K ≥ 1), e.g. "wrn-16-1".
func Names() []string {
	names := make([]string, 0, len(families))
	for k := range families {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func lookup(name string) (family, error) {
	if f, ok := families[name]; ok {
		return f, nil
	}
	if rest, ok := strings.CutPrefix(name, "wrn-"); ok {
		ds, ks, ok := strings.Cut(rest, "-")
		d, errD := strconv.Atoi(ds)
		k, errK := strconv.Atoi(ks)
		if !ok || errD != nil || errK != nil {
			return family{}, fmt.Errorf("architecture %q: want wrn-D-K with integer depth D and widen factor K, e.g. wrn-34-10", name)
		}
		if d < 10 || (d-4)%6 != 0 {
			return family{}, fmt.Errorf("architecture %q: WideResNet depth %d is not 6n+4 with n ≥ 1 (10, 16, 22, 28, 34, 40, …)", name, d)
		}
		if k < 1 {
			return family{}, fmt.Errorf("architecture %q: widen factor %d is less than 1", name, k)
		}
		return wrnFamily(d, k), nil
	}
	return family{}, fmt.Errorf("architecture %q: %w; known: %s, or wrn-D-K with depth D = 6n+4 and widen factor K (e.g. wrn-16-1)",
		name, ErrUnknownArch, strings.Join(Names(), ", "))
}

// normalize fills the zero-value defaults of cfg and checks it.
func (f family) normalize(name string, cfg Config) (Config, error) {
	if cfg.In == [3]int{} {
		cfg.In = [3]int{3, 32, 32}
	}
	if cfg.Classes == 0 {
		cfg.Classes = 10
	}
	if cfg.Width == 0 {
		cfg.Width = f.width
	}
	c, h, w := cfg.In[0], cfg.In[1], cfg.In[2]
	switch {
	case c < 1 || h < 1 || w < 1:
		return cfg, fmt.Errorf("%s: input %d×%d×%d (C×H×W) has a dimension below 1", name, c, h, w)
	case h < f.down || w < f.down:
		return cfg, fmt.Errorf("%s: input %d×%d is too small: the network downsamples by %d, so H and W must be at least %d",
			name, h, w, f.down, f.down)
	case cfg.Classes < 2:
		return cfg, fmt.Errorf("%s: %d classes; a classifier needs at least 2", name, cfg.Classes)
	case cfg.Width < 1:
		return cfg, fmt.Errorf("%s: base width %d is less than 1", name, cfg.Width)
	}
	if nz := cfg.Normalize; nz != nil {
		if len(nz.Mean) != c || len(nz.Std) != c {
			return cfg, fmt.Errorf("%s: normalisation has %d mean and %d std values for %d input channels", name, len(nz.Mean), len(nz.Std), c)
		}
		for i := range c {
			if !(nz.Std[i] > 0) || math.IsInf(float64(nz.Std[i]), 0) || math.IsNaN(float64(nz.Mean[i])) || math.IsInf(float64(nz.Mean[i]), 0) {
				return cfg, fmt.Errorf("%s: normalisation mean %v, std %v: want finite values and positive std", name, nz.Mean, nz.Std)
			}
		}
	}
	return cfg, nil
}

// Build returns architecture name (see Names and the package documentation)
// configured by cfg, with freshly initialised weights. The caller owns the
// model. Two calls with equal arguments return byte-identical models.
func Build(name string, cfg Config) (*onnxio.Model, error) {
	f, err := lookup(name)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	cfg, err = f.normalize(name, cfg)
	if err != nil {
		return nil, fmt.Errorf("build %w", err)
	}
	n := newNet(cfg)
	f.build(n, cfg)
	if n.err != nil {
		return nil, fmt.Errorf("build %s: %w", name, n.err)
	}
	if n.count > MaxParams {
		return nil, fmt.Errorf("build %s: %d parameters exceed the %d a self-contained ONNX file can hold; lower the width", name, n.count, MaxParams)
	}
	n.initialize(rand.New(rand.NewPCG(cfg.Seed, pcgStream)))

	meta, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", name, err)
	}
	n.g.Name = name
	m := &onnxio.Model{Proto: &onnxpb.ModelProto{
		IrVersion:    8,
		ProducerName: "srtool",
		Graph:        n.g,
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Version: Opset}},
		MetadataProps: []*onnxpb.StringStringEntryProto{
			{Key: "srtool.arch", Value: name},
			{Key: "srtool.arch.config", Value: string(meta)},
		},
	}}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("build %s: %w", name, err)
	}
	return m, nil
}
