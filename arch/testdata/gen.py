"""Regenerates the fixtures of srtool's arch package.

Run from the repository root with Debian's interpreter:

    /usr/bin/python3 arch/testdata/gen.py

Needs python3-torch (1.13) and python3-numpy only. The architectures below
copy the reference implementations, with two additions that only this script
makes: a number of input channels and a base width (kuangliu's and
RobustBench's code hard-code 3 channels and 64 / 16), and, when the last
feature map is not the reference pooling size, a global average pool instead
of ``F.avg_pool2d(out, k)`` (which would fail or change the feature count).
srtool's arch.Build documents the same rule.

Writes
* ``<case>.npz``: ``param/<name>`` for every state_dict entry (no
  num_batches_tracked), ``x_u8`` (2 inputs
  as uint8 k, the input being k/255 in float32) and ``logits`` (eval mode);
  BN affine parameters and running statistics are randomised so that every
  BN input is exercised.
* ``full_size.json``: state_dict names and shapes, in order, and the
  parameter count (model.parameters()) of the full-size default models.
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def pool(out, k):
    if out.shape[-1] == k and out.shape[-2] == k:
        return F.avg_pool2d(out, k)
    return F.adaptive_avg_pool2d(out, 1)


# -------------------------------------------- kuangliu/pytorch-cifar ResNet ---
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != self.expansion * planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(self.expansion * planes),
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class ResNet(nn.Module):
    def __init__(self, num_blocks, num_classes=10, in_ch=3, width=64):
        super().__init__()
        w = width
        self.in_planes = w
        self.conv1 = nn.Conv2d(in_ch, w, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.layer1 = self._make_layer(w, num_blocks[0], 1)
        self.layer2 = self._make_layer(2 * w, num_blocks[1], 2)
        self.layer3 = self._make_layer(4 * w, num_blocks[2], 2)
        self.layer4 = self._make_layer(8 * w, num_blocks[3], 2)
        self.linear = nn.Linear(8 * w, num_classes)

    def _make_layer(self, planes, num_blocks, stride):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = pool(out, 4)
        out = out.view(out.size(0), -1)
        return self.linear(out)


# ------------------------------------------ RobustBench PreActResNet-18 ---
class PreActBlock(nn.Module):
    """RobustBench's PreActBlock; with v2=True its PreActBlockV2, whose 1x1
    shortcut conv reads the activated input relu(bn1(x)) instead of x."""
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, v2=False):
        super().__init__()
        self.v2 = v2
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        if stride != 1 or in_planes != self.expansion * planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False))

    def forward(self, x):
        out = F.relu(self.bn1(x))
        if hasattr(self, "shortcut"):
            shortcut = self.shortcut(out if self.v2 else x)
        else:
            shortcut = x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        out += shortcut
        return out


class PreActResNet(nn.Module):
    """bn_before_fc=True is RobustBench's only use of it: PreActBlockV2 blocks
    and relu(bn(.)) before the pooling."""

    def __init__(self, num_blocks, num_classes=10, bn_before_fc=False, in_ch=3, width=64):
        super().__init__()
        w = width
        self.in_planes = w
        self.bn_before_fc = bn_before_fc
        self.conv1 = nn.Conv2d(in_ch, w, kernel_size=3, stride=1, padding=1, bias=False)
        self.layer1 = self._make_layer(w, num_blocks[0], 1)
        self.layer2 = self._make_layer(2 * w, num_blocks[1], 2)
        self.layer3 = self._make_layer(4 * w, num_blocks[2], 2)
        self.layer4 = self._make_layer(8 * w, num_blocks[3], 2)
        if bn_before_fc:
            self.bn = nn.BatchNorm2d(8 * w)
        self.linear = nn.Linear(8 * w, num_classes)

    def _make_layer(self, planes, num_blocks, stride):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(PreActBlock(self.in_planes, planes, s, v2=self.bn_before_fc))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = self.conv1(x)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        if self.bn_before_fc:
            out = F.relu(self.bn(out))
        out = pool(out, 4)
        out = out.view(out.size(0), -1)
        return self.linear(out)


# -------------------------------------------------- RobustBench WideResNet ---
class WBlock(nn.Module):
    def __init__(self, in_planes, out_planes, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.equalInOut = in_planes == out_planes
        self.convShortcut = (not self.equalInOut) and nn.Conv2d(
            in_planes, out_planes, kernel_size=1, stride=stride, padding=0, bias=False) or None

    def forward(self, x):
        if not self.equalInOut:
            x = self.relu1(self.bn1(x))
        else:
            out = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(out if self.equalInOut else x)))
        out = self.conv2(out)
        return torch.add(x if self.equalInOut else self.convShortcut(x), out)


class NetworkBlock(nn.Module):
    def __init__(self, nb_layers, in_planes, out_planes, stride):
        super().__init__()
        self.layer = nn.Sequential(*[
            WBlock(i == 0 and in_planes or out_planes, out_planes, i == 0 and stride or 1)
            for i in range(int(nb_layers))])

    def forward(self, x):
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth=34, num_classes=10, widen_factor=10, in_ch=3, width=16):
        super().__init__()
        b = width
        ch = [b, b * widen_factor, 2 * b * widen_factor, 4 * b * widen_factor]
        assert (depth - 4) % 6 == 0
        n = (depth - 4) / 6
        self.conv1 = nn.Conv2d(in_ch, ch[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, ch[0], ch[1], 1)
        self.block2 = NetworkBlock(n, ch[1], ch[2], 2)
        self.block3 = NetworkBlock(n, ch[2], ch[3], 2)
        self.bn1 = nn.BatchNorm2d(ch[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(ch[3], num_classes)
        self.nChannels = ch[3]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                m.bias.data.zero_()

    def forward(self, x):
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = self.relu(self.bn1(out))
        out = pool(out, 8)
        out = out.view(-1, self.nChannels)
        return self.fc(out)


# ------------------------------------------------- input normalisation ---
class Normalized(nn.Module):
    """A RobustBench-style normalising subclass, written as a wrapper: mu and
    sigma are buffers of shape [1, C, 1, 1] registered before the network's
    own entries, so they lead the state_dict under their bare names."""

    def __init__(self, net, mean, std):
        super().__init__()
        c = len(mean)
        self.register_buffer("mu", torch.tensor(mean).view(1, c, 1, 1))
        self.register_buffer("sigma", torch.tensor(std).view(1, c, 1, 1))
        self.net = net

    def forward(self, x):
        return self.net((x - self.mu) / self.sigma)

    def state_dict(self, *args, **kwargs):
        sd = super().state_dict(*args, **kwargs)
        return type(sd)((k[len("net."):] if k.startswith("net.") else k, v) for k, v in sd.items())


CIFAR10_MEAN = [0.4914, 0.4822, 0.4465]
CIFAR10_STD = [0.2471, 0.2435, 0.2616]


# ----------------------------------------------------------------- cases ---
# name: (arch name in srtool, constructor, (C, H, W), classes, base width)
SMALL = {
    "resnet-small_w4_3x32x32": ("resnet-small", lambda: ResNet((1, 1, 1, 1), 10, 3, 4), (3, 32, 32), 10, 4),
    "resnet-small_w4_1x28x28": ("resnet-small", lambda: ResNet((1, 1, 1, 1), 10, 1, 4), (1, 28, 28), 10, 4),
    "resnet-small_w2_3x40x40": ("resnet-small", lambda: ResNet((1, 1, 1, 1), 5, 3, 2), (3, 40, 40), 5, 2),
    "resnet18_w4_3x32x32": ("resnet18", lambda: ResNet((2, 2, 2, 2), 10, 3, 4), (3, 32, 32), 10, 4),
    "preact-resnet18_w4_3x32x32": ("preact-resnet18", lambda: PreActResNet((2, 2, 2, 2), 10, False, 3, 4), (3, 32, 32), 10, 4),
    "preact-resnet18-bn_w2_3x32x32": ("preact-resnet18-bn", lambda: PreActResNet((2, 2, 2, 2), 10, True, 3, 2), (3, 32, 32), 10, 2),
    "wrn-16-1_w4_3x32x32": ("wrn-16-1", lambda: WideResNet(16, 10, 1, 3, 4), (3, 32, 32), 10, 4),
    "wrn-10-2_w4_1x28x28": ("wrn-10-2", lambda: WideResNet(10, 7, 2, 1, 4), (1, 28, 28), 7, 4),
}

# Cases added later, seeded after SMALL's so that SMALL's files stay as they were.
LATER = {
    "preact-resnet18-bn_w2_norm_3x32x32": ("preact-resnet18-bn", lambda: Normalized(PreActResNet((2, 2, 2, 2), 10, True, 3, 2), CIFAR10_MEAN, CIFAR10_STD), (3, 32, 32), 10, 2),
}

FULL = {
    "resnet18": lambda: ResNet((2, 2, 2, 2)),
    "preact-resnet18": lambda: PreActResNet((2, 2, 2, 2)),
    "preact-resnet18-bn": lambda: PreActResNet((2, 2, 2, 2), bn_before_fc=True),
    "wrn-34-10": lambda: WideResNet(34, 10, 10),
    "wrn-28-10": lambda: WideResNet(28, 10, 10),
}


def state(model):
    return [(k, v) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]


def randomize_bn(model, gen):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(c, generator=gen))
                m.bias.copy_(0.2 * torch.randn(c, generator=gen))
                m.running_mean.copy_(0.2 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    total = 0
    cases = sorted(SMALL.items()) + sorted(LATER.items())
    for i, (case, (arch, make, shape, classes, width)) in enumerate(cases):
        torch.manual_seed(1000 + i)
        gen = torch.Generator().manual_seed(2000 + i)
        model = make()
        randomize_bn(model, gen)
        model.eval()
        # Inputs on the 8-bit grid, stored as uint8 (a quarter of the bytes);
        # both sides compute x = k / 255 in float32, which rounds identically.
        x_u8 = torch.randint(0, 256, (2,) + shape, generator=gen, dtype=torch.uint8)
        x = x_u8.float() / 255
        with torch.no_grad():
            logits = model(x)
        arrays = {"param/" + k: v.numpy().astype(np.float32) for k, v in state(model)}
        arrays["x_u8"] = x_u8.numpy()
        arrays["logits"] = logits.numpy()
        meta = {"arch": arch, "in": list(shape), "classes": classes, "width": width}
        if isinstance(model, Normalized):
            meta["mean"] = model.mu.flatten().tolist()
            meta["std"] = model.sigma.flatten().tolist()
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        path = os.path.join(HERE, case + ".npz")
        np.savez_compressed(path, **arrays)
        size = os.path.getsize(path)
        total += size
        print(f"{path}: {size} bytes")

    full = {}
    for name, make in FULL.items():
        torch.manual_seed(0)
        model = make()
        full[name] = {
            "state_dict": [[k, list(v.shape)] for k, v in state(model)],
            "parameters": sum(p.numel() for p in model.parameters()),
        }
    path = os.path.join(HERE, "full_size.json")
    with open(path, "w") as f:
        json.dump(full, f, indent=1)
        f.write("\n")
    size = os.path.getsize(path)
    total += size
    print(f"{path}: {size} bytes")
    for name in full:
        print(name, full[name]["parameters"])
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
