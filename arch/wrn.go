package arch

import "fmt"

func wrnConv(_, fanOut int) rule { return heFanOut(fanOut) }

// wideResNet is RobustBench model_zoo/architectures/wide_resnet.py
// WideResNet(depth, widen_factor=widen) (TRADES-style, pre-activation) with
// base width cfg.Width (RobustBench: 16) and cfg.In[0] input channels.
func wideResNet(n *net, cfg Config, depth, widen int) {
	b := cfg.Width
	ch := [4]int{b, b * widen, 2 * b * widen, 4 * b * widen}
	blocks := (depth - 4) / 6
	x := n.conv("conv1", n.input(cfg), ch[0], 3, 1, 1, wrnConv)
	for g := range 3 {
		stride := min(g, 1) + 1
		for i := range blocks {
			x = wrnBlock(n, fmt.Sprintf("block%d.layer.%d", g+1, i), x, ch[g+1], stride)
			stride = 1
		}
	}
	x = n.relu("relu", n.bn("bn1", x))
	n.head(x, 8, "fc", cfg.Classes, true)
}

// wrnBlock is RobustBench's WideResNet BasicBlock. With equal widths it
// computes x + conv2(relu2(bn2(conv1(relu1(bn1(x)))))); otherwise the
// activated a = relu1(bn1(x)) feeds both conv1 and the 1×1 convShortcut:
// convShortcut(a) + conv2(relu2(bn2(conv1(a)))).
func wrnBlock(n *net, mod string, x value, out, stride int) value {
	equal := x.c == out
	a := n.relu(mod+".relu1", n.bn(mod+".bn1", x))
	y := n.conv(mod+".conv1", a, out, 3, stride, 1, wrnConv)
	y = n.relu(mod+".relu2", n.bn(mod+".bn2", y))
	y = n.conv(mod+".conv2", y, out, 3, 1, 1, wrnConv)
	if equal {
		return n.add(mod+".add", x, y)
	}
	return n.add(mod+".add", n.conv(mod+".convShortcut", a, out, 1, stride, 0, wrnConv), y)
}
