"""PyTorch architectures used by srtool's fixture and benchmark scripts.

Only imported by the scripts in scripts/ and testdata/gen_models.py; the Go
tests never need Python.  Module and parameter names follow the reference
implementations so that ONNX initializer names match real checkpoints:

* ``KuangResNet``  -- kuangliu/pytorch-cifar ``ResNet`` with ``BasicBlock``
  (conv1, bn1, layer1.0.conv1, ..., layerN.0.shortcut.0/1, linear).
  ``base_width`` 64 with ``[2, 2, 2, 2]`` blocks is the usual CIFAR ResNet-18.
* ``WideResNet``   -- RobustBench ``model_zoo/architectures/wide_resnet.py``
  (pre-activation; conv1, block1.layer.0.bn1, ..., convShortcut, bn1, fc).
  ``base_width`` replaces RobustBench's hard-coded 16 (16 = the original).
* ``TVResNet``     -- torchvision ``resnet`` with the ImageNet stem
  (7x7/2 conv, BN, ReLU, MaxPool 3x3/2 pad 1, BasicBlocks with downsample.0/1,
  AdaptiveAvgPool2d(1), flatten, fc); widths scaled by ``base_width``
  (64 = torchvision's resnet18 widths).
"""
import json
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}


def load_safetensors(path):
    """A minimal safetensors reader (the safetensors package is not in Debian 12):
    name -> torch tensor, F32/F16/F64/I64."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        arr = np.frombuffer(data[lo:hi], dtype=SAFETENSORS_DTYPES[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


# ---------------------------------------------------------------- kuangliu ---
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
        out = F.relu(out)
        return out


class KuangResNet(nn.Module):
    def __init__(self, num_blocks=(2, 2, 2, 2), num_classes=10, base_width=64):
        super().__init__()
        w = base_width
        self.in_planes = w
        self.conv1 = nn.Conv2d(3, w, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.layer1 = self._make_layer(w, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(2 * w, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(4 * w, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(8 * w, num_blocks[3], stride=2)
        self.linear = nn.Linear(8 * w * BasicBlock.expansion, num_classes)

    def _make_layer(self, planes, num_blocks, stride):
        strides = [stride] + [1] * (num_blocks - 1)
        layers = []
        for s in strides:
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes * BasicBlock.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = self.layer4(out)
        out = F.avg_pool2d(out, 4)
        out = out.view(out.size(0), -1)
        out = self.linear(out)
        return out


def resnet18_cifar(num_classes=10):
    return KuangResNet((2, 2, 2, 2), num_classes=num_classes, base_width=64)


# -------------------------------------------------------- RobustBench WRN ---
class WRNBasicBlock(nn.Module):
    def __init__(self, in_planes, out_planes, stride, dropRate=0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.droprate = dropRate
        self.equalInOut = in_planes == out_planes
        self.convShortcut = (not self.equalInOut) and nn.Conv2d(
            in_planes, out_planes, kernel_size=1, stride=stride, padding=0, bias=False) or None

    def forward(self, x):
        if not self.equalInOut:
            x = self.relu1(self.bn1(x))
        else:
            out = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(out if self.equalInOut else x)))
        if self.droprate > 0:
            out = F.dropout(out, p=self.droprate, training=self.training)
        out = self.conv2(out)
        return torch.add(x if self.equalInOut else self.convShortcut(x), out)


class NetworkBlock(nn.Module):
    def __init__(self, nb_layers, in_planes, out_planes, block, stride, dropRate=0.0):
        super().__init__()
        self.layer = self._make_layer(block, in_planes, out_planes, nb_layers, stride, dropRate)

    def _make_layer(self, block, in_planes, out_planes, nb_layers, stride, dropRate):
        layers = []
        for i in range(int(nb_layers)):
            layers.append(block(i == 0 and in_planes or out_planes, out_planes, i == 0 and stride or 1, dropRate))
        return nn.Sequential(*layers)

    def forward(self, x):
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth=34, num_classes=10, widen_factor=10, dropRate=0.0, base_width=16):
        super().__init__()
        b = base_width
        nChannels = [b, b * widen_factor, 2 * b * widen_factor, 4 * b * widen_factor]
        assert (depth - 4) % 6 == 0
        n = (depth - 4) / 6
        block = WRNBasicBlock
        self.conv1 = nn.Conv2d(3, nChannels[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, nChannels[0], nChannels[1], block, 1, dropRate)
        self.block2 = NetworkBlock(n, nChannels[1], nChannels[2], block, 2, dropRate)
        self.block3 = NetworkBlock(n, nChannels[2], nChannels[3], block, 2, dropRate)
        self.bn1 = nn.BatchNorm2d(nChannels[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(nChannels[3], num_classes)
        self.nChannels = nChannels[3]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                m.bias.data.zero_()

    def forward(self, x):
        out = self.conv1(x)
        out = self.block1(out)
        out = self.block2(out)
        out = self.block3(out)
        out = self.relu(self.bn1(out))
        out = F.avg_pool2d(out, 8)
        out = out.view(-1, self.nChannels)
        return self.fc(out)


# ------------------------------------------------- torchvision ImageNet stem ---
class TVBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class TVResNet(nn.Module):
    def __init__(self, layers=(2, 2, 2, 2), num_classes=1000, base_width=64):
        super().__init__()
        w = base_width
        self.inplanes = w
        self.conv1 = nn.Conv2d(3, w, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(w, layers[0])
        self.layer2 = self._make_layer(2 * w, layers[1], stride=2)
        self.layer3 = self._make_layer(4 * w, layers[2], stride=2)
        self.layer4 = self._make_layer(8 * w, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * w, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
        layers = [TVBasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        for _ in range(1, blocks):
            layers.append(TVBasicBlock(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.fc(x)
        return x


# ------------------------------------------------- realistic BN statistics ---
def rand_images(n, shape, gen):
    """Random but structured images on the 8-bit pixel grid k/255.

    Each image is a low-frequency random pattern (8x8 noise, bilinearly
    upsampled) with its own colour, contrast and a little pixel noise, so that
    different images give clearly different logits (plain uniform noise makes
    every image look alike to the network).
    """
    c, h, w = shape
    low = torch.rand((n, c, max(h // 8, 1), max(w // 8, 1)), generator=gen)
    up = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    contrast = 0.2 + 0.8 * torch.rand((n, 1, 1, 1), generator=gen)
    colour = torch.rand((n, c, 1, 1), generator=gen)
    noise = 0.05 * torch.randn((n, c, h, w), generator=gen)
    img = (colour * (1 - contrast) + contrast * up + noise).clamp(0, 1)
    return torch.round(img * 255) / 255


def randomize_bn(model, gen):
    """Gives every BatchNorm non-trivial affine parameters and running stats."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))


def warm_bn(model, shape, gen, steps=5):
    """A few train-mode forward passes so running_mean/var move away from 0/1."""
    model.train()
    with torch.no_grad():
        for i in range(steps):
            model(rand_images(16, shape, gen))
    model.eval()


# ------------------------------------------------------------------ export ---
def export_onnx(model, path, input_shape, train_export=False, opset=17):
    """Exports ``model`` (left in eval mode) with srtool's conventions.

    eval export:  default TorchScript export (TrainingMode.EVAL, constant
                  folding on) -> Conv+BN folded, fused weights get
                  autogenerated ``onnx::Conv_NNN`` names.
    train export: ``training=TrainingMode.PRESERVE, do_constant_folding=False``
                  on a model in eval() mode -> in torch 1.13 the eval peephole
                  (Conv+BN fusion) is skipped, BatchNormalization nodes stay
                  with ``training_mode=0`` (inference semantics) and every
                  initializer keeps its state_dict name.
    """
    model.eval()
    dummy = torch.zeros(*input_shape)
    kwargs = dict(
        opset_version=opset,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    if train_export:
        kwargs.update(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    with torch.no_grad():
        torch.onnx.export(model, dummy, path, **kwargs)
    assert not model.training
