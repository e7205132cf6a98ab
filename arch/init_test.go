package arch

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/semirobust/srtool/onnxio"
	"github.com/semirobust/srtool/onnxio/onnxpb"
)

// wantInit is PyTorch's initial distribution of one tensor: uniform on
// [−bound, bound], normal with standard deviation std, or the constant c.
type wantInit struct {
	uniform, normal bool
	scale           float64 // bound or std
	c               float32
}

func (w wantInit) String() string {
	switch {
	case w.uniform:
		return fmt.Sprintf("U(±%.4g)", w.scale)
	case w.normal:
		return fmt.Sprintf("N(0, %.4g²)", w.scale)
	}
	return fmt.Sprintf("constant %g", w.c)
}

// expectedInit derives, from a tensor's name and shape alone, what PyTorch's
// reference module does to it: torch.nn defaults (Conv2d/Linear
// reset_parameters: kaiming_uniform_(a=√5), bound 1/√fan_in; BatchNorm2d 1, 0,
// 0, 1) and, for RobustBench's WideResNet, its override (conv
// normal_(0, √(2/(k·k·out_channels))), Linear bias zero_()).
func expectedInit(wrn bool, t *onnxpb.TensorProto) wantInit {
	name, dims := t.GetName(), t.GetDims()
	switch {
	case strings.HasSuffix(name, ".running_mean"):
		return wantInit{c: 0}
	case strings.HasSuffix(name, ".running_var"):
		return wantInit{c: 1}
	case len(dims) == 1 && !strings.HasPrefix(name, "fc.") && !strings.HasPrefix(name, "linear."): // BN affine
		if strings.HasSuffix(name, ".weight") {
			return wantInit{c: 1}
		}
		return wantInit{c: 0}
	case len(dims) == 4 && wrn:
		return wantInit{normal: true, scale: math.Sqrt(2 / float64(dims[0]*dims[2]*dims[3]))}
	case len(dims) == 4:
		return wantInit{uniform: true, scale: 1 / math.Sqrt(float64(dims[1]*dims[2]*dims[3]))}
	case name == "fc.bias" && wrn:
		return wantInit{c: 0}
	case len(dims) == 1: // Linear bias: fan_in is the weight's second dimension
		return wantInit{uniform: true, scale: -1}
	default: // Linear weight
		return wantInit{uniform: true, scale: 1 / math.Sqrt(float64(dims[1]))}
	}
}

// TestInit checks every tensor of the full-size models against PyTorch's
// initialisation: constants exactly; for random tensors the support, the mean
// and the standard deviation (within 6 standard errors of the sample std,
// whose relative error is √((κ−1)/4n) for kurtosis κ = 1.8 uniform, 3 normal).
func TestInit(t *testing.T) {
	for _, name := range []string{"resnet18", "preact-resnet18", "wrn-34-10"} {
		t.Run(name, func(t *testing.T) {
			wrn := strings.HasPrefix(name, "wrn")
			m := buildFull(t, name)
			var linearFanIn int64
			for _, init := range m.Graph().GetInitializer() {
				w := expectedInit(wrn, init)
				if init.GetName() == "linear.weight" || init.GetName() == "fc.weight" {
					linearFanIn = init.GetDims()[1]
				}
				if w.uniform && w.scale < 0 {
					w.scale = 1 / math.Sqrt(float64(linearFanIn))
				}
				data, err := onnxio.Float32s(init)
				if err != nil {
					t.Fatal(err)
				}
				checkInit(t, init.GetName(), data, w)
			}
		})
	}
}

func checkInit(t *testing.T, name string, data []float32, w wantInit) {
	t.Helper()
	if !w.uniform && !w.normal {
		for i, v := range data {
			if v != w.c {
				t.Errorf("%s[%d] = %g; want %s", name, i, v, w)
				return
			}
		}
		return
	}
	var sum, sq float64
	for i, v := range data {
		if w.uniform && math.Abs(float64(v)) > w.scale*(1+1e-6) {
			t.Errorf("%s[%d] = %g outside %s", name, i, v, w)
			return
		}
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	n := float64(len(data))
	mean := sum / n
	std := math.Sqrt(sq/n - mean*mean)
	wantStd, kurt := w.scale/math.Sqrt(3), 1.8
	if w.normal {
		wantStd, kurt = w.scale, 3
	}
	if d := math.Abs(mean); d > 6*wantStd/math.Sqrt(n) {
		t.Errorf("%s: mean %.3g over %d values; want 0 ± %.3g (%s)", name, mean, len(data), 6*wantStd/math.Sqrt(n), w)
	}
	if rel := math.Abs(std/wantStd - 1); rel > 6*math.Sqrt((kurt-1)/(4*n)) {
		t.Errorf("%s: std %.5g over %d values; want %.5g ± %.2f%% (%s)", name, std, len(data), wantStd, 600*math.Sqrt((kurt-1)/(4*n)), w)
	}
}
