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
// PreActResNet(block, [2,2,2,2], bn_before_fc=v2) with base width cfg.Width
// and cfg.In[0] input channels. v2 selects the variant every RobustBench
// model with bn_before_fc uses: PreActBlockV2 blocks (equivalently
// PreActBlock with out_shortcut=True) and relu(bn(·)) before the pooling;
// otherwise the blocks are PreActBlock and there is no final BN.
func preActResNet(n *net, cfg Config, v2 bool) {
	w := cfg.Width
	x := n.conv("conv1", n.input(cfg), w, 3, 1, 1, defaultConv)
	for s := range 4 {
		planes, stride := w<<s, min(s, 1)+1
		for i := range 2 {
			x = preActBlock(n, fmt.Sprintf("layer%d.%d", s+1, i), x, planes, stride, v2)
			stride = 1
		}
	}
	if v2 {
		x = n.relu("relu", n.bn("bn", x))
	}
	n.head(x, 4, "linear", cfg.Classes, false)
}

// preActBlock computes conv2(relu(bn2(conv1(a)))) + shortcut with
// a = relu(bn1(x)). The shortcut is x itself when the shape is kept, and
// otherwise a 1×1 conv of the raw x (RobustBench's PreActBlock) or, with v2,
// of the activated a (PreActBlockV2).
func preActBlock(n *net, mod string, x value, planes, stride int, v2 bool) value {
	a := n.relu(mod+".relu1", n.bn(mod+".bn1", x))
	out := n.conv(mod+".conv1", a, planes, 3, stride, 1, defaultConv)
	out = n.relu(mod+".relu2", n.bn(mod+".bn2", out))
	out = n.conv(mod+".conv2", out, planes, 3, 1, 1, defaultConv)
	short := x // built after conv2 so that parameters follow state_dict order
	if stride != 1 || x.c != planes {
		from := x
		if v2 {
			from = a
		}
		short = n.conv(mod+".shortcut.0", from, planes, 1, stride, 0, defaultConv)
	}
	return n.add(mod+".add", out, short)
}
