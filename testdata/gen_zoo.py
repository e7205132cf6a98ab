"""Regenerates testdata/zoo/: small checkpoints in RobustBench's forms, with
PyTorch's logits, for `srtool zoo import` (zoo/ and cmd/srtool tests).

Run from the repository root with Debian's interpreter:

    /usr/bin/python3 testdata/gen_zoo.py

Needs python3-torch (1.13) and python3-numpy only; nothing is downloaded.
The modules below are srtool's own PyTorch definitions, written from the
published RobustBench architecture code (robustbench/model_zoo/architectures
/wide_resnet.py and resnet.py at commit 78fcc9e, and the subclasses in
model_zoo/cifar10.py and cifar100.py): same module names, hence the same
state_dict keys, and the same forward. The one addition is a base width
(RobustBench hard-codes 16 for the WideResNet and 64 for the ResNets) so
that the fixtures stay small; `srtool zoo import --width W` builds the same
shrunken model. Weights are PyTorch's default initialisation (the WRN's own
He init), BatchNorm affine parameters and running statistics are
randomised so every BN input matters.

Writes, per case, ``<case>.pt`` (torch.save, zip format, in the form the
case describes) and ``<case>.npz`` with ``x_u8`` (4 inputs as uint8 k, the
input being k/255 in float32), ``logits`` (eval mode, float32) and ``meta``
(JSON: zoo id, base width, what the checkpoint holds).
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zoo")

CIFAR10_MEAN, CIFAR10_STD = [0.4914, 0.4822, 0.4465], [0.2471, 0.2435, 0.2616]
CIFAR100_MEAN = [0.5070751592371323, 0.48654887331495095, 0.4409178433670343]
CIFAR100_STD = [0.2673342858792401, 0.2564384629170883, 0.27615047132568404]


# ------------------------------------------------ WideResNet (TRADES-style) ---
class WideBlock(nn.Module):
    """Pre-activation block. When the width changes, the activated input
    feeds both conv1 and the 1x1 convShortcut; otherwise the shortcut is the
    raw input."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.equalInOut = cin == cout
        self.convShortcut = None if self.equalInOut else nn.Conv2d(cin, cout, 1, stride, 0, bias=False)

    def forward(self, x):
        a = self.relu1(self.bn1(x))
        y = self.conv2(self.relu2(self.bn2(self.conv1(a))))
        return (x if self.equalInOut else self.convShortcut(a)) + y


class Group(nn.Module):
    def __init__(self, n, cin, cout, stride):
        super().__init__()
        self.layer = nn.Sequential(*[WideBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1) for i in range(n)])

    def forward(self, x):
        return self.layer(x)


class WRN(nn.Module):
    def __init__(self, depth, widen, classes=10, sub_block1=False, width=16):
        super().__init__()
        n = (depth - 4) // 6
        ch = [width, width * widen, 2 * width * widen, 4 * width * widen]
        self.conv1 = nn.Conv2d(3, ch[0], 3, 1, 1, bias=False)
        self.block1 = Group(n, ch[0], ch[1], 1)
        if sub_block1:  # created, saved, never called
            self.sub_block1 = Group(n, ch[0], ch[1], 1)
        self.block2 = Group(n, ch[1], ch[2], 2)
        self.block3 = Group(n, ch[2], ch[3], 2)
        self.bn1 = nn.BatchNorm2d(ch[3])
        self.relu = nn.ReLU()
        self.fc = nn.Linear(ch[3], classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x):
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = F.avg_pool2d(self.relu(self.bn1(out)), 8)
        return self.fc(out.flatten(1))


# ------------------------------------------------------- PreActResNet-18 ---
class PreAct(nn.Module):
    """Pre-activation basic block. A shape-changing block's 1x1 shortcut conv
    reads the raw input (RobustBench's PreActBlock) or, with act_shortcut,
    relu(bn1(x)) (PreActBlockV2, and PreActBlock with out_shortcut=True)."""

    def __init__(self, cin, cout, stride, act_shortcut):
        super().__init__()
        self.act_shortcut = act_shortcut
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False))

    def forward(self, x):
        a = F.relu(self.bn1(x))
        short = x
        if hasattr(self, "shortcut"):
            short = self.shortcut(a if self.act_shortcut else x)
        return self.conv2(F.relu(self.bn2(self.conv1(a)))) + short


class PreActResNet18(nn.Module):
    def __init__(self, classes=10, bn_before_fc=False, act_shortcut=False, width=64):
        super().__init__()
        self.bn_before_fc = bn_before_fc
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        cin = width
        for s in range(4):
            cout = width << s
            blocks = [PreAct(cin, cout, 1 if s == 0 else 2, act_shortcut), PreAct(cout, cout, 1, act_shortcut)]
            setattr(self, "layer%d" % (s + 1), nn.Sequential(*blocks))
            cin = cout
        if bn_before_fc:
            self.bn = nn.BatchNorm2d(cin)
        self.linear = nn.Linear(cin, classes)

    def forward(self, x):
        out = self.layer4(self.layer3(self.layer2(self.layer1(self.conv1(x)))))
        if self.bn_before_fc:
            out = F.relu(self.bn(out))
        return self.linear(F.avg_pool2d(out, 4).flatten(1))


# ------------------------------------------- ResNet-18 (kuangliu, post-act) ---
class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, classes=10, width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        cin = width
        for s in range(4):
            cout = width << s
            setattr(self, "layer%d" % (s + 1), nn.Sequential(Basic(cin, cout, 1 if s == 0 else 2), Basic(cout, cout, 1)))
            cin = cout
        self.linear = nn.Linear(cin, classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(F.avg_pool2d(out, 4).flatten(1))


# ------------------------------------------------------ normalising models ---
def normalised(base, mean, std):
    """A subclass of base that registers mu/sigma buffers ([1, 3, 1, 1]) after
    the network and normalises x with them, as RobustBench's Wong2020FastNet,
    Rice2020OverfittingNetL2, Modas2021PRIMEResNet18 … do. Buffers of the
    module itself come first in its state_dict."""

    class Normalised(base):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.register_buffer("mu", torch.tensor(mean).view(1, 3, 1, 1))
            self.register_buffer("sigma", torch.tensor(std).view(1, 3, 1, 1))

        def forward(self, x):
            return super().forward((x - self.mu) / self.sigma)

    return Normalised


# id, constructor, base width, how the checkpoint is saved
CASES = [
    # WideResNet-28-10 with the dead sub_block1, saved as Carmon2019Unlabeled
    # is: {"state_dict": {"module." + key: …}, …}.
    ("carmon2019unlabeled", "cifar10/Linf/Carmon2019Unlabeled",
     lambda: WRN(28, 10, sub_block1=True, width=1), 1, "state_dict+module"),
    # PreActResNet-18 (PreActBlock) with mu/sigma in the checkpoint.
    ("wong2020fast", "cifar10/Linf/Wong2020Fast",
     lambda: normalised(PreActResNet18, CIFAR10_MEAN, CIFAR10_STD)(width=2), 2, "plain"),
    # PreActBlockV2 + bn_before_fc, normalising, saved without mu/sigma (as
    # the checkpoints RobustBench loads non-strictly: the class's buffers).
    ("rice2020overfitting_l2", "cifar10/L2/Rice2020Overfitting",
     lambda: normalised(PreActResNet18, CIFAR10_MEAN, CIFAR10_STD)(bn_before_fc=True, act_shortcut=True, width=2), 2,
     "plain-without-mu-sigma"),
    # CIFAR-100 Rice2020Overfitting: PreActBlock with out_shortcut=True
    # (the same function as PreActBlockV2), 100 classes, mu/sigma saved.
    ("rice2020overfitting_c100", "cifar100/Linf/Rice2020Overfitting",
     lambda: normalised(PreActResNet18, CIFAR100_MEAN, CIFAR100_STD)(classes=100, bn_before_fc=True, act_shortcut=True, width=2), 2,
     "plain"),
    # kuangliu ResNet-18 whose mu/sigma were updated from the training data
    # (PRIME's class defaults are 0.5): the checkpoint's values differ from
    # the table's and must win.
    ("modas2021prime_c100", "cifar100/corruptions/Modas2021PRIMEResNet18",
     lambda: normalised(ResNet18, [0.5071, 0.4865, 0.4409], [0.2673, 0.2564, 0.2762])(classes=100, width=2), 2, "plain"),
]


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
    os.makedirs(OUT, exist_ok=True)
    total = 0
    for i, (case, zid, make, width, form) in enumerate(CASES):
        torch.manual_seed(3000 + i)
        gen = torch.Generator().manual_seed(4000 + i)
        model = make()
        randomize_bn(model, gen)
        model.eval()
        x_u8 = torch.randint(0, 256, (4, 3, 32, 32), generator=gen, dtype=torch.uint8)
        with torch.no_grad():
            logits = model(x_u8.float() / 255)
        sd = model.state_dict()
        if form == "state_dict+module":
            obj = {"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 76}
        elif form == "plain-without-mu-sigma":
            obj = {k: v for k, v in sd.items() if k not in ("mu", "sigma")}
        else:
            obj = sd
        pt = os.path.join(OUT, case + ".pt")
        torch.save(obj, pt)
        meta = {"id": zid, "width": width, "checkpoint": form,
                "tensors": len(obj.get("state_dict", obj)),
                "sub_block1": sum(1 for k in sd if k.startswith("sub_block1.") and not k.endswith("num_batches_tracked"))}
        if "mu" in sd:
            meta["mean"] = sd["mu"].flatten().tolist()
            meta["std"] = sd["sigma"].flatten().tolist()
        npz = os.path.join(OUT, case + ".npz")
        np.savez_compressed(npz, x_u8=x_u8.numpy(), logits=logits.numpy(),
                            meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
        for p in (pt, npz):
            total += os.path.getsize(p)
            print("%s: %d bytes" % (p, os.path.getsize(p)))
        print("  %s: logits up to %.3g" % (zid, logits.abs().max().item()))
    print("total %d bytes" % total)


if __name__ == "__main__":
    main()
