package arch

import "fmt"

func defaultConv(fanIn, _ int) rule { return torchDefault(fanIn) }

// kuangResNet is kuangliu/pytorch-cifar models/resnet.py ResNet(BasicBlock,
// blocks) with base width cfg.Width and cfg.In[0] input channels.
func kuangResNet(n *net, cfg Config, blocks [4]int) {
	w := cfg.Width
	x := n.conv("conv1", n.input(cfg), w, 3, 1, 1, defaultConv)
	x = n.relu("relu", n.bn("bn1", x))
	for s := range 4 {
		planes, stride := w<<s, min(s, 1)+1
		for i := range blocks[s] {
			x = basicBlock(n, fmt.Sprintf("layer%d.%d", s+1, i), x, planes, stride)
			stride = 1
		}
	}
	n.head(x, 4, "linear", cfg.Classes, false)
}

// basicBlock is kuangliu's BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) +
// shortcut(x)), the shortcut being conv 1×1 + BN when the shape changes.
func basicBlock(n *net, mod string, x value, planes, stride int) value {
	out := n.conv(mod+".conv1", x, planes, 3, stride, 1, defaultConv)
	out = n.relu(mod+".relu1", n.bn(mod+".bn1", out))
	out = n.bn(mod+".bn2", n.conv(mod+".conv2", out, planes, 3, 1, 1, defaultConv))
	short := x
	if stride != 1 || x.c != planes {
		short = n.conv(mod+".shortcut.0", x, planes, 1, stride, 0, defaultConv)
		short = n.bn(mod+".shortcut.1", short)
	}
	return n.relu(mod+".relu2", n.add(mod+".add", out, short))
}

// preActResNet is RobustBench model_zoo/architectures/resnet.py
// PreActResNet(PreActBlock, [2,2,2,2], bn_before_fc=bnBeforeFC).
func preActResNet(n *net, cfg Config, bnBeforeFC bool) {
	w := cfg.Width
	x := n.conv("conv1", n.input(cfg), w, 3, 1, 1, defaultConv)
	for s := range 4 {
		planes, stride := w<<s, min(s, 1)+1
		for i := range 2 {
			x = preActBlock(n, fmt.Sprintf("layer%d.%d", s+1, i), x, planes, stride)
			stride = 1
		}
	}
	if bnBeforeFC {
		x = n.relu("relu", n.bn("bn", x))
	}
	n.head(x, 4, "linear", cfg.Classes, false)
}

// preActBlock is RobustBench's PreActBlock: conv2(relu(bn2(conv1(relu(bn1(x))))))
// + shortcut, the shortcut being a 1×1 conv of the raw x when the shape changes.
func preActBlock(n *net, mod string, x value, planes, stride int) value {
	out := n.relu(mod+".relu1", n.bn(mod+".bn1", x))
	out = n.conv(mod+".conv1", out, planes, 3, stride, 1, defaultConv)
	out = n.relu(mod+".relu2", n.bn(mod+".bn2", out))
	out = n.conv(mod+".conv2", out, planes, 3, 1, 1, defaultConv)
	short := x // built after conv2 so that parameters follow state_dict order
	if stride != 1 || x.c != planes {
		short = n.conv(mod+".shortcut.0", x, planes, 1, stride, 0, defaultConv)
	}
	return n.add(mod+".add", out, short)
}
