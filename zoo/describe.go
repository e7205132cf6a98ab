package zoo

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/semirobust/srtool/checkpoint"
)

// describe guesses, from a state_dict's names and shapes, which of the
// architectures it is (family, depth, widths, classes), so that a refused
// checkpoint says what it would fit; "" when nothing is recognised.
func describe(sd map[string]checkpoint.Tensor) string {
	dim := func(name string, i int) int64 {
		t, ok := sd[name]
		if !ok || len(t.Shape) <= i {
			return 0
		}
		return t.Shape[i]
	}
	blocks := func(prefix string) int { // count prefix{i}. groups
		n := 0
		for k := range sd {
			if rest, ok := strings.CutPrefix(k, prefix); ok {
				if i, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, '.'), 0)]); err == nil && i+1 > n {
					n = i + 1
				}
			}
		}
		return n
	}
	var s string
	switch {
	case sd["init_conv.weight"].Shape != nil:
		return "a DeepMind-style WideResNet (RobustBench's DMWideResNet), which srtool does not build"
	case sd["block1.layer.0.conv1.weight"].Shape != nil:
		base := dim("conv1.weight", 0)
		if base == 0 {
			return ""
		}
		n := blocks("block1.layer.")
		s = fmt.Sprintf("wrn-%d-%d at base width %d with %d classes", 6*n+4, dim("block1.layer.0.conv1.weight", 0)/base, base, dim("fc.weight", 0))
	case sd["layer1.0.conv3.weight"].Shape != nil:
		return "a ResNet with Bottleneck blocks (ResNet-50 style), which srtool does not build"
	case sd["layer1.0.conv1.weight"].Shape != nil:
		counts := [4]int{blocks("layer1."), blocks("layer2."), blocks("layer3."), blocks("layer4.")}
		name := "resnet18"
		switch {
		case sd["bn1.weight"].Shape == nil && sd["bn.weight"].Shape != nil:
			name = "preact-resnet18-bn"
		case sd["bn1.weight"].Shape == nil:
			name = "preact-resnet18"
		}
		if counts != [4]int{2, 2, 2, 2} {
			name = fmt.Sprintf("a ResNet with %v blocks (not ResNet-18)", counts)
		}
		s = fmt.Sprintf("%s at base width %d with %d classes", name, dim("conv1.weight", 0), dim("linear.weight", 0))
	default:
		return ""
	}
	if _, ok := sd["mu"]; ok {
		s += ", with mu/sigma normalisation buffers"
	}
	return s
}
