#!/usr/bin/python3
"""Exports torchvision.models.resnet18(weights=None, num_classes=1000) (random
init, input 3x224x224) to ONNX for a manual check of srtool on the ImageNet
architecture.  Not committed.

    /usr/bin/python3 scripts/export_torchvision_resnet18.py OUT.onnx [--train-export] [--golden G.npz]

BN is randomised as in export_resnet18.py unless --fresh.  Export settings
are those of scripts/export_resnet18.py (opset 17, "input" -> "logits",
dynamic batch; --train-export keeps BN with PyTorch names).
"""
import argparse
import os
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import export_onnx, randomize_bn, warm_bn  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--train-export", action="store_true", help="keep BatchNormalization and PyTorch names")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fresh", action="store_true",
                    help="export the freshly initialised model as is (BN 1/0/0/1; the exporter then "
                         "deduplicates equal initializers into Identity nodes)")
    ap.add_argument("--golden", help="also write x/logits for 2 random images to this .npz")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    model = torchvision.models.resnet18(weights=None, num_classes=1000)
    if not a.fresh:
        # trained-looking BN: random affine parameters and running statistics
        gen = torch.Generator().manual_seed(1000 + a.seed)
        randomize_bn(model, gen)
        warm_bn(model, (3, 224, 224), gen, steps=2)
    model.eval()
    export_onnx(model, a.out, (1, 3, 224, 224), train_export=a.train_export)
    if a.golden:
        x = torch.rand(2, 3, 224, 224)
        with torch.no_grad():
            z = model(x)
        np.savez(a.golden, x=x.numpy(), logits=z.numpy())
    print("wrote %s (%d bytes, torch %s, torchvision %s)" % (
        a.out, os.path.getsize(a.out), torch.__version__, torchvision.__version__))


if __name__ == "__main__":
    main()
