#!/usr/bin/python3
"""Exports the kuangliu CIFAR ResNet-18 (width 64, 10 classes, 3x32x32) to ONNX
for srtool's Go benchmarks.  The file (~45 MB) is not committed.

    /usr/bin/python3 scripts/export_resnet18.py OUT.onnx [--train-export] [--golden G.npz]

Default: eval export (TrainingMode.EVAL, constant folding: Conv+BN folded,
fused weights named onnx::Conv_NNN).  --train-export: TrainingMode.PRESERVE with
do_constant_folding=False on the eval-mode model, which keeps the
BatchNormalization nodes (training_mode=0) and every state_dict name.
Both: opset 17, input "input", output "logits", dynamic batch axis.
Unless --fresh, BN gets random affine parameters and running statistics
(2 train-mode passes on random images) so that it looks trained and the
exporter's initializer deduplication does not turn BN tensors into Identity
nodes.  --golden writes x (8 images in [0,1]) and the PyTorch eval logits for a check.
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import export_onnx, randomize_bn, warm_bn, resnet18_cifar  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--train-export", action="store_true", help="keep BatchNormalization and PyTorch names")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fresh", action="store_true",
                    help="export the freshly initialised model as is (BN 1/0/0/1; the exporter then "
                         "deduplicates equal initializers into Identity nodes)")
    ap.add_argument("--num-classes", type=int, default=10)
    ap.add_argument("--golden", help="also write x/logits for 8 random images to this .npz")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    model = resnet18_cifar(a.num_classes)
    if not a.fresh:
        # trained-looking BN: random affine parameters and running statistics
        gen = torch.Generator().manual_seed(1000 + a.seed)
        randomize_bn(model, gen)
        warm_bn(model, (3, 32, 32), gen, steps=2)
    model.eval()
    export_onnx(model, a.out, (1, 3, 32, 32), train_export=a.train_export)
    if a.golden:
        x = torch.rand(8, 3, 32, 32)
        with torch.no_grad():
            z = model(x)
        np.savez(a.golden, x=x.numpy(), logits=z.numpy())
    print("wrote %s (%d bytes, torch %s)" % (a.out, os.path.getsize(a.out), torch.__version__))


if __name__ == "__main__":
    main()
