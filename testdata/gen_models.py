#!/usr/bin/python3
"""Regenerates srtool's small ONNX model fixtures and their PyTorch golden data.

    /usr/bin/python3 testdata/gen_models.py          # from the repository root

Needs Debian's python3-torch (1.13), python3-onnx and python3-numpy.  Writes
testdata/models/<name>_eval.onnx, <name>_train.onnx and <name>_golden.npz for
every architecture in ARCHS; see testdata/README.md for what is in them.  The
output is deterministic (fixed seeds, one thread).
"""
import copy
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
from torch_models import (KuangResNet, TVResNet, WideResNet, export_onnx,  # noqa: E402
                          rand_images, randomize_bn, warm_bn)

OUT = os.path.join(HERE, "models")
NUM_CLASSES = 10


def he_init(model):
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model


# name -> (constructor, input shape (C,H,W), seed)
ARCHS = {
    # kuangliu CIFAR ResNet, one BasicBlock per stage, widths 8-16-32-64:
    # 13 weight layers (conv1, 8 block convs, 3 shortcut convs, linear).
    # (kuangliu keeps PyTorch's default init; we re-init convs with He/fan_out
    # as torchvision and RobustBench do, so the logits vary across images)
    "resnet10_cifar": (lambda: he_init(KuangResNet((1, 1, 1, 1), NUM_CLASSES, base_width=8)), (3, 32, 32), 1),
    # RobustBench pre-activation WideResNet-16-1 with base width 8 (8-8-16-32):
    # 16 weight layers (conv1, 12 block convs, 2 convShortcut, fc).
    "wrn16_1": (lambda: WideResNet(depth=16, num_classes=NUM_CLASSES, widen_factor=1, base_width=8), (3, 32, 32), 2),
    # torchvision-style ResNet with the ImageNet stem (7x7/2 conv, BN, ReLU,
    # MaxPool 3x3/2 pad 1), one BasicBlock per stage, widths 8-16-32-64,
    # 64x64 input: 13 weight layers (conv1, 8 block convs, 3 downsample.0, fc).
    "resnet10_imagenet": (lambda: TVResNet((1, 1, 1, 1), NUM_CLASSES, base_width=8), (3, 64, 64), 3),
}

# A freshly initialised model (BN weight 1, bias 0, running mean 0, var 1) is
# exported as is: the TorchScript exporter then deduplicates initializers with
# equal values, so most BN tensors of the _train export (and the zero fused
# biases of the _eval export) are Identity nodes fed by one initializer.
# Tiny widths (2-4-8-16); golden data: x, y, logits and param/ only.
FRESH = {
    "fresh_tiny": (lambda: KuangResNet((1, 1, 1, 1), NUM_CLASSES, base_width=2), (3, 32, 32), 4),
}

N_GOLDEN = 4      # images for eval-mode golden data
N_TRAIN = 8       # batch of the train-mode SGD step
LR = 0.1
BN_WARMUP_STEPS = 5
HEAD_SCALE = 8.0


def scale_head(model, factor):
    """Scales the last Linear layer so the logits spread over a few units
    (random-init logits are ~0.1 apart, which makes weak gradient fixtures)."""
    fc = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        fc.weight.mul_(factor)
        fc.bias.mul_(factor)


def cw_margin(z, y):
    """max_{j != y} z_j - z_y per sample (the C&W / margin loss)."""
    zy = z.gather(1, y[:, None])[:, 0]
    other = z.masked_fill(F.one_hot(y, z.shape[1]).bool(), float("-inf")).amax(1)
    return other - zy


def golden(model, shape, gen):
    g = {}
    model.eval()
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        g["param/" + k] = v.detach().numpy().copy()

    x = rand_images(N_GOLDEN, shape, gen)
    y = torch.randint(0, NUM_CLASSES, (N_GOLDEN,), generator=gen)
    g["x"] = x.numpy().copy()
    g["y"] = y.numpy().astype(np.int64)

    # eval mode: logits, mean CE, d CE / d x and d CE / d every parameter
    xr = x.clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    z = model(xr)
    loss = F.cross_entropy(z, y)
    loss.backward()
    g["logits"] = z.detach().numpy().copy()
    g["loss_ce"] = np.float32(loss.item())
    g["grad_input_ce"] = xr.grad.numpy().copy()
    for k, p in model.named_parameters():
        g["grad/" + k] = p.grad.numpy().copy()

    # eval mode: CW margin, gradient of its sum w.r.t. the input
    xr = x.clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    m = cw_margin(model(xr), y)
    m.sum().backward()
    g["cw_margin"] = m.detach().numpy().copy()
    g["loss_cw"] = np.float32(m.sum().item())
    g["grad_input_cw"] = xr.grad.numpy().copy()
    model.zero_grad(set_to_none=True)

    # one SGD step in train mode (BN uses batch statistics and updates its
    # running statistics with momentum 0.1 and the unbiased batch variance)
    tx = rand_images(N_TRAIN, shape, gen)
    ty = torch.randint(0, NUM_CLASSES, (N_TRAIN,), generator=gen)
    tm = copy.deepcopy(model)
    tm.train()
    opt = torch.optim.SGD(tm.parameters(), lr=LR, momentum=0.0, weight_decay=0.0)
    opt.zero_grad(set_to_none=True)
    tz = tm(tx)
    tloss = F.cross_entropy(tz, ty)
    tloss.backward()
    opt.step()
    tm.eval()
    g["train_x"] = tx.numpy().copy()
    g["train_y"] = ty.numpy().astype(np.int64)
    g["train_logits"] = tz.detach().numpy().copy()
    g["train_loss"] = np.float32(tloss.item())
    for k, p in tm.named_parameters():
        g["step/" + k] = p.detach().numpy().copy()
    for name, mod in tm.named_modules():
        if isinstance(mod, nn.BatchNorm2d):
            g["step_bn/%s.running_mean" % name] = mod.running_mean.numpy().copy()
            g["step_bn/%s.running_var" % name] = mod.running_var.numpy().copy()
    for k, v in g.items():
        assert v.dtype in (np.float32, np.int64), (k, v.dtype)
    return g


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    for name, (build, shape, seed) in ARCHS.items():
        torch.manual_seed(seed)
        model = build()
        gen = torch.Generator().manual_seed(1000 + seed)
        randomize_bn(model, gen)
        warm_bn(model, shape, gen, BN_WARMUP_STEPS)
        scale_head(model, HEAD_SCALE)
        export_onnx(model, os.path.join(OUT, name + "_eval.onnx"), (1,) + shape)
        export_onnx(model, os.path.join(OUT, name + "_train.onnx"), (1,) + shape, train_export=True)
        g = golden(model, shape, gen)
        np.savez_compressed(os.path.join(OUT, name + "_golden.npz"), **g)
        nparams = sum(p.numel() for p in model.parameters())
        print("%-18s params=%d input=%s" % (name, nparams, shape))
    for name, (build, shape, seed) in FRESH.items():
        torch.manual_seed(seed)
        model = build().eval()
        gen = torch.Generator().manual_seed(1000 + seed)
        export_onnx(model, os.path.join(OUT, name + "_eval.onnx"), (1,) + shape)
        export_onnx(model, os.path.join(OUT, name + "_train.onnx"), (1,) + shape, train_export=True)
        g = {"param/" + k: v.numpy().copy() for k, v in model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
        x = rand_images(N_GOLDEN, shape, gen)
        with torch.no_grad():
            g["logits"] = model(x).numpy().copy()
        g["x"] = x.numpy().copy()
        g["y"] = torch.randint(0, NUM_CLASSES, (N_GOLDEN,), generator=gen).numpy().astype(np.int64)
        np.savez_compressed(os.path.join(OUT, name + "_golden.npz"), **g)
        print("%-18s params=%d input=%s (fresh init)" % (name, sum(p.numel() for p in model.parameters()), shape))
    total = 0
    for f in sorted(os.listdir(OUT)):
        s = os.path.getsize(os.path.join(OUT, f))
        total += s
        print("  %-32s %9d bytes" % (f, s))
    print("  %-32s %9d bytes (torch %s)" % ("total", total, torch.__version__))


if __name__ == "__main__":
    main()
